"""``orbitai tao predict|evaluate|train`` end to end with the bundled demo networks, and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orbitai.bundle import load_bundle
from orbitai.cli import main
from orbitai.io import Volume, read_volume, write_volume
from orbitai.io.segfile import write_segmentation
from orbitai.phantoms import orbit_case, write_cohort
from orbitai.tao.result import TaoResult, TaoResultError

SEED = 777060  # never used for training cohorts


@pytest.fixture(scope="module")
def t2(tmp_path_factory):
    d = tmp_path_factory.mktemp("t2")
    case = orbit_case(SEED, "t2", tao="active", orientation="axial")
    return case, write_volume(case.image, d / "t2.nrrd"), write_segmentation(case.labels, d / "t2.seg.nrrd")


@pytest.mark.parametrize("model", ["A", "B"])
def test_predict_writes_result_and_maps_in_input_geometry(t2, tmp_path, model, capsys):
    case, img, seg = t2
    out = tmp_path / "out"
    assert main(["tao", "predict", str(img), "--segmentation", str(seg), "--model", model,
                 "--device", "cpu", "--figure", "--out", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert (out / "tao_maps.png").stat().st_size > 10_000
    assert res["network"] == model and res["segmentation"] == "given"
    assert [e["side"] for e in res["eyes"]] == ["right", "left"]
    for e in res["eyes"]:
        assert 0.0 <= e["probability_active"] <= 1.0
        assert e["call"] == ("active" if e["probability_active"] >= res["threshold"] else "inactive")
        box = e["crop_box_ras"]
        assert len(box["corners"]) == 8 and np.allclose(box["size_mm"][:2], 49.95, atol=0.05)
    for kind in ("occlusion", "gradcam"):
        m = read_volume(out / f"{kind}.nrrd")
        assert m.same_geometry(case.image) and m.array.dtype == np.float32
        assert m.array.min() >= 0 and m.array.max() <= 1 and m.array.max() > 0
    assert "P(active)" in capsys.readouterr().out
    # the one contract: result.json names its task and files; TaoResult reads it back, checked
    assert res["task"] == "tao_activity"
    assert res["files"] == {"occlusion": "occlusion.nrrd", "gradcam": "gradcam.nrrd", "figure": "tao_maps.png"}
    back = TaoResult.read(out, reference=case.image)
    assert back.data["eyes"] == res["eyes"] and set(back.maps) == {"occlusion", "gradcam"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]     # the temporary folder is gone


def test_predict_finds_the_orbits_itself(t2, tmp_path):
    case, img, _ = t2
    out = tmp_path / "auto"
    assert main(["tao", "predict", str(img), "--model", "B", "--no-maps", "--device", "cpu", "--out", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["segmentation"].startswith("predicted") and len(res["eyes"]) >= 1
    assert res["files"] == {} and sorted(p.name for p in out.iterdir()) == ["result.json"]
    back = TaoResult.read(out, case.image)
    assert back.maps == {} and back.model == "tao_network_b_demo"
    bad = dict(res, task="segmentation")
    (out / "result.json").write_text(json.dumps(bad))
    with pytest.raises(TaoResultError, match="not a 'tao_activity' result"):
        TaoResult.read(out, case.image)
    (out / "result.json").write_text(json.dumps(dict(res, files={"gradcam": "gradcam.nrrd"})))
    with pytest.raises(TaoResultError, match="gradcam file gradcam.nrrd .* is missing"):
        TaoResult.read(out)


def test_no_maps_rerun_into_the_same_folder_returns_no_maps(t2, tmp_path):
    """``--no-maps`` into a folder that holds an earlier run's maps: the old maps are removed and
    never read back, even when a map file is put back under its contract name."""
    case, img, seg = t2
    out = tmp_path / "again"
    run = ["tao", "predict", str(img), "--segmentation", str(seg), "--device", "cpu", "--out", str(out)]
    assert main(run) == 0
    assert set(TaoResult.read(out, case.image).maps) == {"occlusion", "gradcam"}
    assert main([*run, "--no-maps"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]
    write_volume(case.image.with_array(np.zeros(case.image.shape, np.float32)), out / "occlusion.nrrd")
    assert TaoResult.read(out, case.image).maps == {}


def test_result_json_fields_are_typed(t2, tmp_path):
    case, img, seg = t2
    out = tmp_path / "typed"
    assert main(["tao", "predict", str(img), "--segmentation", str(seg), "--no-maps", "--device", "cpu",
                 "--out", str(out)]) == 0
    good = json.loads((out / "result.json").read_text())
    for data, message in (({k: v for k, v in good.items() if k != "task"}, "names no task"),
                          (dict(good, warnings=[1, 2]), "'warnings' must be a list of strings"),
                          (dict(good, files={"occlusion": "../occlusion.nrrd"}), "plain file names")):
        (out / "result.json").write_text(json.dumps(data))
        with pytest.raises(TaoResultError, match=message):
            TaoResult.read(out)


def test_bundle_input_block_is_used_at_prediction(t2, tmp_path):
    """The crop geometry and normalisation come from the bundle's input block, not from literals:
    the same weights with a wider crop field of view give a proportionally larger crop box."""
    import shutil

    from orbitai.bundle import BundleError, find_bundle
    from orbitai.tao.predict import input_spec
    from orbitai.tao.spec import TaoInputSpec

    bundle = find_bundle("tao_network_b_demo")
    spec = input_spec(bundle)
    assert (spec.slices, spec.crop_pixels, spec.net_pixels, spec.bias_field) == (5, 164, 128, "n4")
    bad = {**bundle.metadata, "input": {**bundle.metadata["input"], "net_pixels": 200}}
    with pytest.raises(BundleError, match=r"cannot prepare: net_pixels 200 and crop_pixels 164"):
        TaoInputSpec.from_metadata(bad)

    _, img, seg = t2
    wide = tmp_path / "tao_b_wide"
    shutil.copytree(bundle.path, wide)
    meta = json.loads((wide / "metadata.json").read_text())
    meta["input"].update(crop_side_mm=80.0, bias_field="none")
    (wide / "metadata.json").write_text(json.dumps(meta))
    for model, out, side in (("B", tmp_path / "paper", 49.95), (str(wide), tmp_path / "wide", 128 * 80 / 164)):
        assert main(["tao", "predict", str(img), "--segmentation", str(seg), "--model", model, "--no-maps",
                     "--device", "cpu", "--out", str(out)]) == 0
        res = json.loads((out / "result.json").read_text())
        for e in res["eyes"]:
            assert np.allclose(e["crop_box_ras"]["size_mm"][:2], side, atol=0.05)


def test_bad_input_is_refused_and_nothing_written(tmp_path, capsys):
    ct = orbit_case(SEED, "ct", orientation="axial")
    ct_path = write_volume(ct.image, tmp_path / "ct.nrrd")
    assert main(["tao", "predict", str(ct_path), "--out", str(tmp_path / "o1")]) == 2
    assert "looks like CT" in capsys.readouterr().err
    mri = orbit_case(SEED, "t2", orientation="axial").image
    flat = write_volume(Volume(mri.array[5:6], mri.spacing, mri.origin, mri.direction), tmp_path / "one.nrrd")
    assert main(["tao", "predict", str(flat), "--out", str(tmp_path / "o2")]) == 2
    assert "slice" in capsys.readouterr().err
    noise = np.random.default_rng(SEED).normal(100, 2, mri.array.shape).astype(mri.array.dtype)   # no eyes, not blank
    noorbit = write_volume(mri.with_array(noise), tmp_path / "blank.nrrd")
    assert main(["tao", "predict", str(noorbit), "--out", str(tmp_path / "o3"), "--device", "cpu"]) == 2
    assert "No orbit found" in capsys.readouterr().err
    for o in ("o1", "o2", "o3"):
        assert not (tmp_path / o / "result.json").exists()


def test_train_and_evaluate_small_cohort(tmp_path, capsys):
    man = write_cohort("tao", 6, SEED, tmp_path / "cohort", montage_cases=0)
    bundle = tmp_path / "tiny_b"
    assert main(["tao", "train", "--manifest", str(man), "--network", "B", "--epochs", "1", "--holdout", "0.34",
                 "--device", "cpu", "--out", str(bundle)]) == 0
    b = load_bundle(bundle)
    assert b.metadata["task"] == "tao_activity" and b.metadata["training"]["heldout_eyes"] == 4
    # the schedule actually run, not the configuration's (issue #14): one epoch, the decay epoch scaled along
    assert b.metadata["training"]["epochs_run"] == 1
    assert b.metadata["training"]["settings"]["epochs"] == 1 and b.metadata["training"]["settings"]["decay_epoch"] == 1
    from orbitai.tao.spec import TaoInputSpec

    assert b.metadata["input"] == TaoInputSpec().to_metadata()   # the input block prediction reads back
    assert not (tmp_path / ".tiny_b-training").exists()   # the work folder goes once the bundle is written
    from orbitai.classify.trust import Trust

    trust = Trust.of_bundle(b)            # fitted on the held-out split by the training command (issue 51)
    assert trust is not None and "4 held-out eyes" in trust.fitted_on and b.metadata["files"]["trust"]
    rep = tmp_path / "report"
    assert main(["tao", "evaluate", "--manifest", str(man), "--model", str(bundle), "--no-maps",
                 "--device", "cpu", "--out", str(rep)]) == 0
    metrics = json.loads((rep / "metrics.json").read_text())
    assert 0 <= metrics["auc"] <= 1 and (rep / "report.png").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,image\nx,missing.nrrd\n")
    assert main(["tao", "train", "--manifest", str(bad), "--out", str(tmp_path / "b2")]) == 2


@pytest.mark.slow   # trains five folds; the shared cross-validation is tested on the other tasks
def test_cross_validation_reports_mean_sd(tmp_path):
    man = write_cohort("tao", 8, 777070, tmp_path / "cohort", montage_cases=0)
    out = tmp_path / "cv"
    assert main(["tao", "cv", "--manifest", str(man), "--network", "B", "--folds", "2", "--runs", "2",
                 "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["per_fold"]) == 4 and {f["run"] for f in cv["per_fold"]} == {0, 1}
    aucs = [f["auc"] for f in cv["per_fold"]]
    assert cv["mean_sd"]["auc"][0] == pytest.approx(np.mean(aucs))
    assert cv["mean_sd"]["auc"][1] == pytest.approx(np.std(aucs, ddof=1))
