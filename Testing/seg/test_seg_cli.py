"""``orbitai seg predict|evaluate`` end to end with the bundled CT model, and bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.cli import main
from orbitai.io import Volume, read_volume, write_volume
from orbitai.labels import values_for
from orbitai.phantoms import brain_flair_case, orbit_case, write_cohort
from orbitai.segfile import read_segmentation

SEED = 777002  # never used for training cohorts


@pytest.fixture(scope="module")
def ct_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("ct")
    case = orbit_case(SEED, modality="ct")   # oblique or not, as drawn
    return case, write_volume(case.image, d / "ct.nrrd")


def test_predict_writes_segmentation_in_input_geometry(ct_case, tmp_path, capsys):
    case, path = ct_case
    out = tmp_path / "pred.seg.nrrd"
    assert main(["seg", "predict", str(path), "--out", str(out), "--volumes", str(tmp_path / "v.csv"),
                 "--device", "cpu"]) == 0
    labels, table = read_segmentation(out)
    assert labels.same_geometry(case.image, tol=1e-4)
    assert {1, 2} <= set(np.unique(labels.array).tolist())
    assert table[1].name == "eyeball_left"
    eye = np.isin(labels.array, values_for("eyeball"))
    truth = np.isin(case.labels.array, values_for("eyeball"))
    assert 2 * np.count_nonzero(eye & truth) / (eye.sum() + truth.sum()) > 0.85
    rows = list(csv.DictReader((tmp_path / "v.csv").open()))
    assert {r["name"] for r in rows} >= {"eyeball_left", "eyeball_right"}
    assert "eyeball_left" in capsys.readouterr().out


def test_evaluate_writes_per_case_and_summary(tmp_path):
    manifest = write_cohort("orbit-ct", 1, 9001, tmp_path / "cohort", montage_cases=0)
    assert main(["seg", "evaluate", "--manifest", str(manifest), "--model", "orbit_svnet_ct_demo",
                 "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert set(summary["per_structure"]) >= {"eyeball", "optic_nerve", "medial_rectus_muscle"}
    assert 0 <= summary["mean"]["iou"] <= 1
    rows = list(csv.DictReader((tmp_path / "eval" / "per_case.csv").open()))
    assert len(rows) == 6 and {"iou", "dice", "sp", "sn", "vs"} <= set(rows[0])


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_bad_inputs_get_clear_errors(tmp_path, capsys):
    out = str(tmp_path / "x.seg.nrrd")
    sitk.WriteImage(sitk.Image(64, 64, sitk.sitkFloat32), str(tmp_path / "slice.nrrd"))
    assert main(["seg", "predict", str(tmp_path / "slice.nrrd"), "--out", out]) == 2
    assert "Expected a 3D image" in _err(capsys)
    four = sitk.JoinSeries([sitk.Image([16, 16, 16], sitk.sitkFloat32)] * 3)
    sitk.WriteImage(four, str(tmp_path / "series.nrrd"))
    assert main(["seg", "predict", str(tmp_path / "series.nrrd"), "--out", out]) == 2
    assert "3D image" in _err(capsys)
    arr = np.zeros((20, 40, 40), np.float32)
    arr[3, 3, 3] = np.nan
    write_volume(Volume(arr), tmp_path / "nan.nrrd")
    assert main(["seg", "predict", str(tmp_path / "nan.nrrd"), "--out", out]) == 2
    assert "NaN" in _err(capsys)
    assert main(["seg", "predict", str(tmp_path / "missing.nrrd"), "--out", out]) == 2
    assert "No such file" in _err(capsys)
    assert not (tmp_path / "x.seg.nrrd").exists()


def test_brain_only_scan_is_refused(tmp_path, capsys):
    # A CT-like scan of the brain alone: the FLAIR phantom's central 96 x 96 x 48 mm in pseudo-HU.
    flair = brain_flair_case(5, "ms").image
    k, j, i = (np.array(flair.shape) - np.array([48, 96, 96])) // 2
    a = flair.array[k:k + 48, j:j + 96, i:i + 96].astype(np.float32)
    hu = np.where(a > 0.05 * a.max(), 20 + 30 * a / a.max(), -1000).astype(np.float32)
    origin = flair.index_to_physical((i, j, k))
    write_volume(Volume(hu, flair.spacing, origin, flair.direction), tmp_path / "brain.nrrd")
    assert main(["seg", "predict", str(tmp_path / "brain.nrrd"), "--out", str(tmp_path / "b.seg.nrrd"),
                 "--model", "orbit_svnet_ct_demo"]) == 2
    assert "No orbit found" in _err(capsys)
    assert not (tmp_path / "b.seg.nrrd").exists()


def test_wrong_model_name(ct_case, tmp_path, capsys):
    _, path = ct_case
    assert main(["seg", "predict", str(path), "--out", str(tmp_path / "o.seg.nrrd"), "--model", "nope"]) == 2
    assert "No model bundle named 'nope'" in _err(capsys)
