"""Issue 62.12, 69.2, 69.3: a bundle's trust statistics that cannot flag or calibrate anything (NaN, zero, infinite,
mis-shaped or pickled arrays, written with re-computed checksums as a foreign bundle would be) are refused when the
bundle loads, in one line naming the bundle: never a NaN distance that is not flagged, a distance of 0 for every
case, a threshold that flags nothing, a broadcasting error or "iteration over a 0-d array"."""
from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from orbitai.bundle import load_bundle
from orbitai.bundle.core import BUILTIN_DIR
from orbitai.bundle.formats import file_entry
from orbitai.classify.trust import TRUST_FILE, Trust
from orbitai.classify.trust_features import feature_size
from orbitai.cli import main
from orbitai.errors import BundleError
from orbitai.io import write_volume
from orbitai.phantoms.orbit import orbit_case
from orbitai.tao.models import load_tao_model

SOURCE = BUILTIN_DIR / "tao_network_b_demo"


def _tampered(folder: Path, arrays: dict | None = None, block: dict | None = None, raw: bytes | None = None) -> Path:
    """A copy of TAO Network B whose trust arrays (or ``raw`` .npz bytes) and block are replaced, every checksum
    re-computed so that only the values can tell."""
    shutil.copytree(SOURCE, folder)
    meta = json.loads((folder / "metadata.json").read_text())
    with np.load(folder / TRUST_FILE, allow_pickle=False) as z:
        current = {k: z[k] for k in z.files}
    if raw is not None:
        (folder / TRUST_FILE).write_bytes(raw)
    else:
        current.update(arrays or {})
        np.savez_compressed(folder / TRUST_FILE, **current)
    meta["files"]["trust"] = {**file_entry(folder / TRUST_FILE, "npz"), "path": TRUST_FILE}
    meta["trust"].update(block or {})
    meta["name"] = folder.name
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def _pickled_npz() -> bytes:
    """An .npz whose members are pickles, not .npy arrays (np.load hands such a member back as raw bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("means.npy", pickle.dumps([[0.0] * 256, [1.0] * 256]))
        z.writestr("precision.npy", pickle.dumps(np.eye(256).tolist()))
    return buf.getvalue()


def _precision() -> np.ndarray:
    with np.load(SOURCE / TRUST_FILE) as z:
        return z["precision"]


TAMPERINGS = {
    "nan precision": (dict(arrays={"precision": np.full((256, 256), np.nan, np.float32)}), "NaN"),
    "zero precision": (dict(arrays={"precision": np.zeros((256, 256), np.float32)}), "positive definite"),
    "infinite precision": (dict(arrays={"precision": np.where(np.eye(256) > 0, np.inf, 0).astype(np.float32)}),
                           "infinite"),
    "negative precision": (dict(arrays={"precision": -np.eye(256, dtype=np.float32)}), "positive definite"),
    "infinite threshold": (dict(block={"threshold": float("inf")}), "threshold"),
    "nan threshold": (dict(block={"threshold": float("nan")}), "threshold"),
    "zero threshold": (dict(block={"threshold": 0.0}), "threshold"),
    "zero temperature": (dict(block={"temperature": 0.0}), "temperature"),
    "means of 3 features": (dict(arrays={"means": np.zeros((2, 3), np.float32)}), "3 features"),
    "3 features throughout": (dict(arrays={"means": np.zeros((2, 3), np.float32),
                                           "precision": np.eye(3, dtype=np.float32)}), "network gives 256"),
    "three classes": (dict(arrays={"means": np.zeros((3, 256), np.float32)}), "2 classes"),
    "flat means": (dict(arrays={"means": np.zeros(256, np.float32)}), "2-D"),
    "object means": (dict(arrays={"means": np.array(["a", "b"])}), "not an array of numbers"),
    "pickled members": (dict(raw=_pickled_npz()), "not an array of numbers"),
}


def test_the_bundled_networks_statistics_fit_their_feature_layers():
    for name in ("tao_network_a_demo", "tao_network_b_demo"):
        bundle = load_bundle(BUILTIN_DIR / name)
        model = bundle.load_model("cpu")
        trust = Trust.of_bundle(bundle, model)
        assert trust is not None and np.asarray(trust.means).shape == (2, feature_size(model))


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_tampered_trust_statistics_are_refused_at_load_in_one_line_naming_the_bundle(tmp_path, case):
    change, words = TAMPERINGS[case]
    folder = _tampered(tmp_path / "tao_tampered", **change)
    with pytest.raises(BundleError) as err:      # the checksums hold: only the values can tell
        bundle, model = load_tao_model(str(folder), "cpu")
        Trust.of_bundle(bundle, model)
    msg = str(err.value)
    assert "\n" not in msg and "tao_tampered" in msg and words in msg, msg


@pytest.fixture(scope="module")
def mri(tmp_path_factory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tao_tampered_inputs")
    case = orbit_case(3990123, "t2", tao="active", orientation="axial")
    return str(write_volume(case.image, d / "t2.nrrd")), str(write_volume(case.labels, d / "t2_seg.nrrd"))


@pytest.mark.parametrize("case", ["nan precision", "zero precision", "infinite threshold", "means of 3 features",
                                  "pickled members"])
def test_tao_predict_with_tampered_statistics_ends_in_one_line_and_writes_nothing(tmp_path, mri, capsys, case):
    change, words = TAMPERINGS[case]
    folder = _tampered(tmp_path / "tao_tampered", **change)
    out = tmp_path / "out"
    code = main(["tao", "predict", mri[0], "--segmentation", mri[1], "--model", str(folder), "--no-maps",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "tao_tampered" in err and words in err, err
    assert not out.exists()
