"""The installed pyradiomics reproduces pyradiomics' own published baseline (data/baseline/*.csv of
AIM-Harvard/pyradiomics, vendored in Testing/data/pyradiomics_baseline) for the feature classes
the IVGC protocol uses: firstorder, shape, glcm, glrlm, glszm; test cases brain1 and breast1, each
in the configurations the baseline has for it (plain, resampling; for the classes other than
shape also normalisation and re-segmentation).

As pyradiomics' own test (tests/testUtils.py) does: the settings come from the baseline's
``diagnostics_Configuration_Settings`` row, the image and mask hashes must match the baseline's,
and every feature must be within its tolerance (relative difference < 3 %). Tighter here: 1e-6
for firstorder and the texture classes, 2e-3 for shape (see the bound below)."""
from __future__ import annotations

import ast
import csv
import math
from pathlib import Path

import pytest
import SimpleITK as sitk

pytest.importorskip("radiomics")

DATA = Path(__file__).resolve().parents[1] / "data" / "pyradiomics_baseline"
CLASSES = ("firstorder", "shape", "glcm", "glrlm", "glszm")
CASES = ("brain1", "breast1")


def _baseline(cls: str) -> dict[str, dict[str, str]]:
    """configuration column -> {row name: value}."""
    with (DATA / f"baseline_{cls}.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    return {col: {r[0]: r[i] for r in rows[1:]} for i, col in enumerate(header) if i > 0}


def _configs(cls: str) -> list[str]:
    return [c for c in _baseline(cls) if c.split("_")[0] in CASES]


@pytest.mark.parametrize("cls", CLASSES)
def test_installed_pyradiomics_reproduces_its_published_baseline(cls):
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    base = _baseline(cls)
    configs = _configs(cls)
    # both cases, each plain and resampled (shape) or in all four configurations (the others)
    assert {c.split("_")[0] for c in configs} == set(CASES) and len(configs) >= 4, configs
    diffs: list[float] = []
    for config in configs:
        ref = base[config]
        case = ref["diagnostics_Configuration_TestCase"]
        settings = ast.literal_eval(ref["diagnostics_Configuration_Settings"])
        image = sitk.ReadImage(str(DATA / f"{case}_image.nrrd"))
        mask = sitk.ReadImage(str(DATA / f"{case}_label.nrrd"), sitk.sitkUInt32)
        assert sitk.Hash(image) == ref["diagnostics_Image-original_Hash"]
        assert sitk.Hash(mask) == ref["diagnostics_Mask-original_Hash"]
        assert ast.literal_eval(ref["diagnostics_Configuration_EnabledImageTypes"]) == {"Original": {}}
        settings["additionalInfo"] = False
        extractor = RadiomicsFeatureExtractor(**settings)
        extractor.disableAllFeatures()
        extractor.enableFeatureClassByName(cls)
        result = extractor.execute(image, mask)
        names = [n for n in ref if n.startswith(f"original_{cls}_")]
        assert names and set(names) <= set(result), sorted(set(names) - set(result))
        for name in names:
            want, got = float(ref[name]), float(result[name])
            assert not math.isnan(got), (config, name)
            diff = 0.0 if got == want else (1.0 if want == 0 else abs(1.0 - got / want))
            assert diff < 0.03, f"{config} {name}: baseline {want}, installed pyradiomics {got}"
            diffs.append(diff)
    # Tighter than pyradiomics' 3 %: measured max 4e-15 (firstorder), 1e-12 (glcm), 2e-16 (glrlm, glszm);
    # shape 9e-4 (brain1's mesh features Sphericity, SurfaceArea, SurfaceVolumeRatio, MeshVolume: the
    # compiled marching-cubes mesh against the full-python baseline).
    bound = 2e-3 if cls == "shape" else 1e-6
    assert max(diffs) <= bound, f"{cls}: max relative difference {max(diffs):.3g} from the baseline"
