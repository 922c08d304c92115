"""``orbitai seg predict|evaluate`` end to end with the bundled CT model, and bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.cli import main
from orbitai.io import Volume, read_volume, write_volume
from orbitai.io.segfile import read_segmentation
from orbitai.labels import values_for
from orbitai.orbit.result import SegmentationResult
from orbitai.phantoms import brain_flair_case, orbit_case, write_cohort

SEED = 777002  # never used for training cohorts


@pytest.fixture(scope="module")
def ct_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("ct")
    case = orbit_case(SEED, modality="ct")   # oblique or not, as drawn
    return case, write_volume(case.image, d / "ct.nrrd")


def test_predict_writes_segmentation_in_input_geometry(ct_case, tmp_path, capsys):
    case, path = ct_case
    out = tmp_path / "pred"
    assert main(["seg", "predict", str(path), "--out", str(out), "--uncertainty", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "segmentation.seg.nrrd", "uncertainty.nrrd",
                                                      "volumes.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["pred"]     # the temporary folder is gone
    labels, table = read_segmentation(out / "segmentation.seg.nrrd")
    assert labels.same_geometry(case.image, tol=1e-4)
    assert {1, 2} <= set(np.unique(labels.array).tolist())
    assert table[1].name == "eyeball_left"
    eye = np.isin(labels.array, values_for("eyeball"))
    truth = np.isin(case.labels.array, values_for("eyeball"))
    assert 2 * np.count_nonzero(eye & truth) / (eye.sum() + truth.sum()) > 0.85
    rows = list(csv.DictReader((out / "volumes.csv").open()))
    assert {r["name"] for r in rows} >= {"eyeball_left", "eyeball_right"}
    assert "eyeball_left" in capsys.readouterr().out
    # the one contract: result.json names the files, the structures and their volumes; read back checked
    data = json.loads((out / "result.json").read_text())
    assert data["task"] == "segmentation" and data["model"] == "orbit_svnet_ct_demo" and data["warnings"] == []
    assert data["files"] == {"segmentation": "segmentation.seg.nrrd", "volumes": "volumes.csv",
                             "uncertainty": "uncertainty.nrrd"}
    res = SegmentationResult.read(out, reference=case.image)
    np.testing.assert_array_equal(res.labels.array, labels.array)
    assert [r["name"] for r in res.volumes] == [r["name"] for r in rows]
    assert res.volumes[0]["volume_cm3"] == pytest.approx(float(rows[0]["volume_cm3"]))
    assert res.uncertainty.same_geometry(case.image) and 0 <= res.uncertainty.array.min()
    assert res.model == "orbit_svnet_ct_demo" and res.data["device"] == "cpu"


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
    out = str(tmp_path / "x")
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
    assert not (tmp_path / "x").exists()


def test_brain_only_scan_is_refused(tmp_path, capsys):
    # A CT-like scan of the brain alone: the FLAIR phantom's central 96 x 96 x 48 mm in pseudo-HU.
    flair = brain_flair_case(5, "ms").image
    k, j, i = (np.array(flair.shape) - np.array([48, 96, 96])) // 2
    a = flair.array[k:k + 48, j:j + 96, i:i + 96].astype(np.float32)
    hu = np.where(a > 0.05 * a.max(), 20 + 30 * a / a.max(), -1000).astype(np.float32)
    origin = flair.index_to_physical((i, j, k))
    write_volume(Volume(hu, flair.spacing, origin, flair.direction), tmp_path / "brain.nrrd")
    assert main(["seg", "predict", str(tmp_path / "brain.nrrd"), "--out", str(tmp_path / "b"),
                 "--model", "orbit_svnet_ct_demo"]) == 2
    assert "No orbit found" in _err(capsys)
    assert not (tmp_path / "b").exists()


def test_wrong_model_name(ct_case, tmp_path, capsys):
    _, path = ct_case
    assert main(["seg", "predict", str(path), "--out", str(tmp_path / "o"), "--model", "nope"]) == 2
    assert "No model bundle named 'nope'" in _err(capsys)


def test_out_is_a_folder(ct_case, tmp_path, capsys):
    _, path = ct_case
    assert main(["seg", "predict", str(path), "--out", str(tmp_path / "o.seg.nrrd")]) == 2
    assert "--out takes a folder" in _err(capsys)
    (tmp_path / "file").write_text("x")
    assert main(["seg", "predict", str(path), "--out", str(tmp_path / "file" / "o"), "--device", "cpu",
                 "--no-mirror"]) == 2
    err = _err(capsys).strip()
    assert err.startswith("orbitai seg predict: error: The output folder") and len(err.splitlines()) == 1
    assert "lies below the file" in err
    assert (tmp_path / "file").read_text() == "x"


def test_rerun_into_the_same_folder_leaves_no_stale_files(ct_case, tmp_path):
    """A second run into the same --out folder replaces the first run's result: the files it named
    are gone (other files stay) and a file that result.json does not list is never read."""
    case, path = ct_case
    out = tmp_path / "again"
    run = ["seg", "predict", str(path), "--out", str(out), "--device", "cpu", "--no-mirror"]
    assert main([*run, "--uncertainty", "--labelmap"]) == 0
    assert SegmentationResult.read(out, case.image).uncertainty is not None
    (out / "input.nrrd").write_text("a job's own file")
    assert main(run) == 0
    assert sorted(p.name for p in out.iterdir()) == ["input.nrrd", "result.json", "segmentation.seg.nrrd",
                                                     "volumes.csv"]
    write_volume(case.image, out / "uncertainty.nrrd")   # a contract name, but not listed by result.json
    assert SegmentationResult.read(out, case.image).uncertainty is None


def test_result_folder_is_validated(ct_case, tmp_path):
    """SegmentationResult.read refuses folders that break the contract, one clear line each."""
    from orbitai.errors import ResultError
    from orbitai.io import VolumeError

    case, path = ct_case
    out = tmp_path / "r"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu", "--no-mirror", "--labelmap"]) == 0
    good = json.loads((out / "result.json").read_text())
    assert good["files"]["labelmap"] == "labels.nrrd"
    np.testing.assert_array_equal(read_volume(out / "labels.nrrd").array, SegmentationResult.read(out).labels.array)
    broken = {
        "wrong task": (dict(good, task="tao_activity"), "not a 'segmentation' result"),
        "no structures": ({k: v for k, v in good.items() if k != "structures"}, "lists no structures"),
        "negative volume": (dict(good, structures=[dict(good["structures"][0], volume_cm3=-1.0)]
                                 + good["structures"][1:]), "volume_cm3 must be a finite number >= 0"),
        "unlisted label": (dict(good, structures=good["structures"][2:]), "does not list"),
        "missing file": (dict(good, files=dict(good["files"], volumes="nope.csv")), "nope.csv .* is missing"),
        "path escape": (dict(good, files=dict(good["files"], segmentation="../x.seg.nrrd")), "plain file name"),
        "no task": ({k: v for k, v in good.items() if k != "task"}, "names no task"),
        "warnings not strings": (dict(good, warnings=[1, 2]), "'warnings' must be a list of strings"),
        "warnings not a list": (dict(good, warnings="careful"), "'warnings' must be a list of strings"),
        "model not a string": (dict(good, model=3), "'model' must be a string"),
        "files not a map": (dict(good, files=["segmentation.seg.nrrd"]), "'files' must map roles"),
        "unlisted segmentation": (dict(good, files={"volumes": "volumes.csv"}), "names no segmentation file"),
    }
    for data, message in broken.values():
        (out / "result.json").write_text(json.dumps(data))
        with pytest.raises(ResultError, match=message):
            SegmentationResult.read(out, case.image)
    (out / "result.json").write_text(json.dumps(good))
    shifted = Volume(np.zeros(case.image.shape, np.float32), case.image.spacing, (5.0, 0.0, 0.0), case.image.direction)
    with pytest.raises(VolumeError, match="does not lie on the input volume's grid"):
        SegmentationResult.read(out, shifted)
    (out / "result.json").unlink()
    with pytest.raises(ResultError, match="no result.json"):
        SegmentationResult.read(out)


def test_train_without_a_manifest_needs_a_synthetic_configuration(tmp_path, capsys):
    assert main(["seg", "train", "--config", "svnet-demo-ct", "--out", str(tmp_path / "m")]) == 2
    assert "--manifest is needed: configuration svnet-demo-ct" in _err(capsys)
    assert main(["seg", "train", "--config", "svnet-demo-mri", "--init", "orbit_sequnet_ct_demo",
                 "--out", str(tmp_path / "m")]) == 2
    assert "is not the configuration's" in _err(capsys)
    assert not list(tmp_path.iterdir())
