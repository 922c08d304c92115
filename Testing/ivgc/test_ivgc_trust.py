"""IVGC calls say how far to trust them (issue 51): every bundled model carries its out-of-distribution statistics
and calibration (in a checksummed bundle file); an IVGC phantom is not flagged, noise with the same segmentation is,
a CT is refused; every result states the models' scope; a bundle without the statistics loads with a warning."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from orbitai.classify.trust import NO_TRUST_WARNING, OOD_MESSAGE, Trust
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import OrbitAIError
from orbitai.io import read_volume, write_volume
from orbitai.ivgc.models import IVGC_MODELS, load_ivgc_model
from orbitai.ivgc.predict import SCOPE, IvgcOptions, predict_ivgc
from orbitai.phantoms.cohort import write_cohort
from orbitai.phantoms.orbit import orbit_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ivgc")
    return read_manifest(write_cohort("ivgc", 2, 7990, folder / "c", montage_cases=0))[0]


@pytest.mark.parametrize("kind", ["svm", "resnet50", "rdinet", "rdinet_clinical"])
def test_bundled_models_carry_their_trust_statistics(kind):
    bundle, _ = load_ivgc_model(kind)
    trust = Trust.of_bundle(bundle)
    assert trust is not None and trust.threshold > 0 and bundle.metadata["files"]["trust"]["format"] == "npz"
    assert np.asarray(trust.precision).shape[0] == np.asarray(trust.means).shape[1]


@pytest.mark.parametrize("kind", ["svm", "resnet50"])
def test_a_phantom_is_not_flagged_and_noise_is(case, tmp_path, kind):
    pred = predict_ivgc(case.image, case.segmentation, kind, options=IvgcOptions(gradcam=False))
    data = pred.result().data
    assert not pred.flagged and "trust" not in data and data["ood"]["flagged"] is False and data["scope"] == SCOPE
    assert NO_TRUST_WARNING not in pred.warnings
    mri = read_volume(case.image)      # noise of the image's mean level (a faint noise keeps the radiomics quick)
    noise = np.random.default_rng(0).normal(float(np.mean(mri.array)), 20, mri.shape).clip(0).astype(np.float32)
    path = write_volume(mri.with_array(noise), tmp_path / "noise.nrrd")
    bad = predict_ivgc(path, case.segmentation, kind, options=IvgcOptions(gradcam=False))
    assert bad.flagged and bad.result().data["trust"] == OOD_MESSAGE
    assert any(OOD_MESSAGE in w for w in bad.warnings)


def test_a_ct_is_refused(tmp_path):
    ct = orbit_case(7991, "ct", orientation="coronal")
    image, labels = write_volume(ct.image, tmp_path / "ct.nrrd"), write_volume(ct.labels, tmp_path / "ct_seg.nrrd")
    with pytest.raises(OrbitAIError, match="CT"):
        predict_ivgc(image, labels, "svm", options=IvgcOptions(gradcam=False))


def test_a_bundle_without_the_statistics_loads_with_a_warning(case, tmp_path):
    folder = tmp_path / "ivgc_svm_old"
    shutil.copytree(IVGC_MODELS.find("svm").path, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    del meta["trust"], meta["files"]["trust"]
    meta["name"] = folder.name
    (folder / "metadata.json").write_text(json.dumps(meta))
    (folder / "trust.npz").unlink()
    pred = predict_ivgc(case.image, case.segmentation, str(folder), options=IvgcOptions(gradcam=False))
    assert NO_TRUST_WARNING in pred.warnings and "ood" not in pred.result().data
