"""``orbitai ivgc train|predict|evaluate|configs`` end to end on a tiny phantom cohort, and bad input
(issue 15's list for predict: nothing is written on any failure)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from orbitai.bundle import load_bundle
from orbitai.cli import main
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.cohort.manifest import read_labels, read_manifest
from orbitai.io import Volume, read_volume, resample_spacing, write_volume
from orbitai.ivgc.result import IvgcResult
from orbitai.phantoms import write_cohort

SEED = 9200   # never used for the demo bundles (6000) nor the benchmark's held-out cohort (7000)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """12 phantoms, features of MR+LR and all four recti, a selection (loose thresholds: a tiny cohort)."""
    d = tmp_path_factory.mktemp("ivgc_cli")
    manifest = write_cohort("ivgc", 12, SEED, d / "c", montage_cases=0)
    feats, sel = d / "features.csv", d / "selection.json"
    assert main(["ivgc", "features", "--manifest", str(manifest), "--out", str(feats), "--strategies", "mrlr",
                 "--workers", "0"]) == 0
    assert main(["ivgc", "select", "--manifest", str(manifest), "--features", str(feats), "--out", str(sel),
                 "--strategies", "mrlr", "--workers", "0", "--alpha", "0.5", "--cv", "2"]) == 0
    svm = d / "svm_bundle"
    assert main(["ivgc", "train", "--manifest", str(manifest), "--features", str(feats), "--selection", str(sel),
                 "--model", "svm", "--strategy", "mrlr", "--out", str(svm)]) == 0
    return {"dir": d, "manifest": manifest, "features": feats, "selection": sel, "svm": svm,
            "cases": read_manifest(manifest)}


def _train(c, tmp_path, *extra):
    return main(["ivgc", "train", "--manifest", str(c["manifest"]), "--features", str(c["features"]),
                 "--selection", str(c["selection"]), *extra])


def test_radiomics_bundle_records_the_contract(cohort):
    b = load_bundle(cohort["svm"])
    m = b.metadata
    sel = json.loads(cohort["selection"].read_text())["strategies"]["mrlr"]
    assert m["task"] == "ivgc_response" and m["kind"] == "svm" and m["strategy"] == "mrlr"
    assert m["selection"]["features"] == sel["selected"] and m["clinical"] is False and m["threshold"] == 0.5
    assert m["selection"]["coefficients"] == [sel["coefficients"][n] for n in sel["selected"]]
    # trust (issue 51): its distance threshold on the training cases (calibrated out of fold when it can be)
    assert set(m["files"]) == {"classifier", "selection", "radiomics_protocol", "trust"} and "architecture" not in m
    assert "training cases" in m["trust"]["fitted_on"] and m["files"]["trust"]["format"] == "npz"
    assert m["training"]["cohort"]["cases"] == 12 and 0 <= m["metrics"]["training"]["auc"] <= 1
    assert not any(p.suffix == ".pkl" for p in cohort["svm"].iterdir())


def test_predict_svm_writes_result_and_features(cohort, tmp_path, capsys):
    case = cohort["cases"][0]
    out = tmp_path / "out"
    assert main(["ivgc", "predict", str(case.image), "--segmentation", str(case.segmentation), "--model",
                 str(cohort["svm"]), "--out", str(out)]) == 0
    res = json.loads((out / "result.json").read_text())
    assert res["task"] == "ivgc_response" and res["kind"] == "svm" and res["strategy"] == "mrlr"
    assert res["files"] == {"features": "features.csv"} and res["clinical_used"] is False
    assert res["call"] == ("responder" if res["probability"] >= res["threshold"] else "non-responder")
    back = IvgcResult.read(out, read_volume(case.image))
    names = load_bundle(cohort["svm"]).metadata["selection"]["features"]
    assert [f.name for f in back.features] == names and all(f.coefficient is not None for f in back.features)
    # the same values as the cohort's feature table (one extraction path)
    table = {r["case_id"]: r for r in csv.DictReader(cohort["features"].open())}[case.case_id]
    assert np.allclose([f.value for f in back.features], [float(table[n]) for n in names], rtol=1e-6)
    assert "P(responder)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_deep_train_resumes_and_predicts_with_clinical_and_gradcam(cohort, tmp_path):
    out = tmp_path / "rdc"
    assert _train(cohort, tmp_path, "--model", "rdinet_clinical", "--epochs", "1", "--holdout", "0.25",
                  "--device", "cpu", "--out", str(out)) == 0
    m = load_bundle(out).metadata
    assert m["kind"] == "rdinet_clinical" and m["clinical"] is True and m["architecture"]["args"]["n_clinical"] == 16
    assert m["training"]["train_cases"] == 9 and m["training"]["heldout_cases"] == 3
    assert m["metrics"]["heldout"]["n"] == 3 and m["input"]["shape"] == [128, 128, 32]
    assert "3 held-out cases" in m["trust"]["fitted_on"] and m["files"]["trust"]["format"] == "npz"
    # the work folder (checkpoint, input cache, epoch log) is gone once the bundle is written (issue 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rdc"]
    # a rerun into the earlier bundle replaces it
    assert _train(cohort, tmp_path, "--model", "rdinet_clinical", "--epochs", "2", "--holdout", "0.25",
                  "--device", "cpu", "--out", str(out)) == 0
    assert load_bundle(out).metadata["training"]["epochs_run"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rdc"]
    case = cohort["cases"][1]
    clin = tmp_path / "clinical.json"
    values = {n: float(case.row[n]) for n in IVGC_CLINICAL.names}
    del values["smoking"]                       # may be missing: filled with the training cohort's mode
    clin.write_text(json.dumps(values))
    res_dir = tmp_path / "pred"
    assert main(["ivgc", "predict", str(case.image), "--segmentation", str(case.segmentation), "--model", str(out),
                 "--clinical", str(clin), "--device", "cpu", "--out", str(res_dir)]) == 0
    image = read_volume(case.image)
    back = IvgcResult.read(res_dir, image)
    assert back.data["clinical_used"] is True and any("smoking" in w for w in back.warnings)
    assert back.gradcam is not None and back.gradcam.same_geometry(image)
    # a map of a two-epoch model may be empty (no region supports the class: gradcam.py); then a warning says so
    assert back.gradcam.array.max() > 0 or any("Grad-CAM map is empty" in w for w in back.warnings)
    assert 0 <= back.gradcam.array.min() and back.gradcam.array.max() <= 1
    # evaluate: the radiomics and the deep bundle on the same cohort, Table 2 and the figures
    ev = tmp_path / "ev"
    assert main(["ivgc", "evaluate", "--manifest", str(cohort["manifest"]), "--features", str(cohort["features"]),
                 "--model", str(cohort["svm"]), str(out), "--device", "cpu", "--out", str(ev)]) == 0
    table = list(csv.DictReader((ev / "table2.csv").open()))
    assert [r["model"] for r in table] == ["svm_bundle", "rdc"]
    assert {"AUC", "AUC_CI95_low", "AUC_CI95_high", "ACC", "SEN", "SPE", "PPV", "NPV"} <= set(table[0])
    for name in ("roc.png", "calibration.png", "decision_curve.png", "radar.png"):
        assert (ev / name).stat().st_size > 5000
    preds = list(csv.DictReader((ev / "predictions.csv").open()))
    assert len(preds) == 12 and set(preds[0]) == {"case_id", "y_true", "svm_bundle", "rdc"}


def test_train_bad_input_writes_nothing(cohort, tmp_path, capsys):
    out = tmp_path / "b"
    cases = [("--model", "svm", "--strategy", "sr"),                      # not in the selection
             ("--model", "resnet50", "--config", "demo-rdinet"),           # config of another model
             ("--model", "rdinet", "--config", "nope"),
             ("--model", "svm", "--strategy", "nope"),
             ("--model", "rf", "--holdout", "1.5")]
    for extra in cases:
        assert _train(cohort, tmp_path, *extra, "--out", str(out)) == 2, extra
    err = capsys.readouterr().err
    assert "ROI strategy 'sr'" in err and "trains rdinet, not --model resnet50" in err and "nope" in err
    assert main(["ivgc", "train", "--manifest", str(cohort["manifest"]), "--model", "rdinet", "--out", str(out)]) == 2
    assert "needs --features and --selection" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def _case_files(cohort, tmp_path, image_fn=None, labels_fn=None):
    case = cohort["cases"][2]
    img, lab = read_volume(case.image), read_labels(case.segmentation)
    if image_fn:
        img = image_fn(img)
    if labels_fn:
        lab = labels_fn(lab)
    return write_volume(img, tmp_path / "img.nrrd"), write_volume(lab, tmp_path / "lab.nrrd")


def _relabel(lab: Volume, old: int, new: int) -> Volume:
    a = np.asarray(lab.array).copy()
    a[a == old] = new
    return lab.with_array(a)


BAD_PREDICT = {
    "missing rectus": (None, lambda lab: _relabel(lab, 9, 0), [], "medial_rectus_muscle_left"),
    "label outside scheme": (None, lambda lab: _relabel(lab, 11, 40), [], "outside the orbit scheme"),
    "empty mask": (None, lambda lab: lab.with_array(np.zeros_like(lab.array)), [], "holds no rectus"),
    "2D image": (lambda v: Volume(v.array[:1].copy(), v.spacing, v.origin, v.direction),
                 lambda lab: Volume(lab.array[:1].copy(), lab.spacing, lab.origin, lab.direction), [], "2D"),
    "CT": (lambda v: v.with_array(np.where(np.asarray(v.array) < np.percentile(v.array, 30), -1000.0,
                                           40.0).astype(np.float32)), None, [], "looks like CT"),
    "NaN": (lambda v: v.with_array(np.where(np.arange(v.array.size).reshape(v.shape) == 7, np.nan,
                                            v.array).astype(np.float32)), None, [], "NaN"),
    "no overlap": (None, lambda lab: Volume(lab.array, lab.spacing, tuple(np.add(lab.origin, 500.0)), lab.direction),
                   [], "does not lie in the image's physical space: origin shifted by (500.0, 500.0, 500.0) mm"),
    "another grid": (None, lambda lab: resample_spacing(lab, (0.5, 0.5, 2.0), label=True), [],
                     "does not lie in the image's physical space: shape"),
    "overlapping, no longer resampled silently": (None, lambda lab: Volume(lab.array, lab.spacing,
                                                                           tuple(np.add(lab.origin, (30.0, 0, 0))),
                                                                           lab.direction), [],
                                                  "does not lie in the image's physical space: origin shifted by "
                                                  "(30.0, 0.0, 0.0) mm"),
    "strategy mismatch": (None, None, ["--strategy", "all"], "trained on ROI strategy 'mrlr'"),
    "not an IVGC model": (None, None, ["--model", "tao_network_b_demo"], "not an IVGC response model"),
}


@pytest.mark.parametrize("what", list(BAD_PREDICT))
def test_predict_bad_input_one_line_nothing_written(cohort, tmp_path, capsys, what):
    image_fn, labels_fn, extra, expected = BAD_PREDICT[what]
    inputs = tmp_path / "in"
    inputs.mkdir()
    img, lab = _case_files(cohort, inputs, image_fn, labels_fn)
    out = tmp_path / "out"
    args = ["ivgc", "predict", str(img), "--segmentation", str(lab), "--model", str(cohort["svm"]), *extra,
            "--out", str(out)]
    if "--model" in extra:
        args.remove("--model")
        args.remove(str(cohort["svm"]))
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_predict_resamples_an_overlapping_segmentation_on_request(cohort, tmp_path):
    img, lab = _case_files(cohort, tmp_path, labels_fn=lambda lab: resample_spacing(lab, (0.5, 0.5, 2.0), label=True))
    assert main(["ivgc", "predict", str(img), "--segmentation", str(lab), "--model", str(cohort["svm"]),
                 "--resample-masks", "--out", str(tmp_path / "out")]) == 0
    warnings = json.loads((tmp_path / "out" / "result.json").read_text())["warnings"]
    assert any("was not on the image's grid" in w for w in warnings), warnings


@pytest.mark.parametrize("change,expected", [
    ({"age_years": None}, "missing: age_years"),
    ({"age_years": 130}, "age_years': 130 is outside the valid range 0 to 120 years"),
    ({"cas_score": 2.5}, "whole number"),
    ({"nope": 1}, "unknown clinical feature(s) nope"),
])
def test_clinical_values_checked(cohort, tmp_path, capsys, change, expected):
    from orbitai.ivgc.predict import clinical_vector, read_clinical
    from orbitai.errors import InputError

    values = {n: float(cohort["cases"][0].row[n]) for n in IVGC_CLINICAL.names}
    for k, v in change.items():
        if v is None:
            values.pop(k)
        else:
            values[k] = v
    path = tmp_path / "c.json"
    path.write_text(json.dumps(values))
    with pytest.raises(InputError) as err:
        clinical_vector(read_clinical(path), {})
    assert expected in str(err.value)


def test_partial_clinical_values_for_a_model_without_clinical_features(cohort, tmp_path, capsys):
    """A model that does not use clinical values predicts with a partial --clinical file (a warning says they
    were ignored) but still refuses a value out of its range."""
    case = cohort["cases"][0]
    args = ["ivgc", "predict", str(case.image), "--segmentation", str(case.segmentation), "--model",
            str(cohort["svm"]), "--clinical"]
    partial, wrong = tmp_path / "partial.json", tmp_path / "wrong.json"
    partial.write_text(json.dumps({"age_years": 50}))
    wrong.write_text(json.dumps({"age_years": 500}))
    assert main([*args, str(partial), "--out", str(tmp_path / "ok")]) == 0
    assert any("does not use clinical features" in w
               for w in json.loads((tmp_path / "ok" / "result.json").read_text())["warnings"])
    assert main([*args, str(wrong), "--out", str(tmp_path / "bad")]) == 2
    assert "outside the valid range 0 to 120" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_clinical_model_without_clinical_file_names_the_missing(cohort, tmp_path, capsys):
    out = tmp_path / "rdc"
    assert _train(cohort, tmp_path, "--model", "rdinet_clinical", "--epochs", "1", "--holdout", "0",
                  "--device", "cpu", "--out", str(out)) == 0
    case = cohort["cases"][0]
    res = tmp_path / "res"
    assert main(["ivgc", "predict", str(case.image), "--segmentation", str(case.segmentation), "--model", str(out),
                 "--no-gradcam", "--device", "cpu", "--out", str(res)]) == 2
    err = capsys.readouterr().err
    assert "missing: age_years" in err and "sex_male" in err and "cas_score" in err and not res.exists()


def test_evaluate_bad_input_writes_nothing(cohort, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["ivgc", "evaluate", "--manifest", str(cohort["manifest"]), "--features", str(cohort["features"]),
                 "--model", str(cohort["svm"]), str(cohort["svm"]), "--out", str(out)]) == 2
    assert "named twice" in capsys.readouterr().err
    assert main(["ivgc", "evaluate", "--manifest", str(cohort["manifest"]), "--model", str(cohort["svm"]),
                 "--out", str(out)]) == 2
    assert "give --features" in capsys.readouterr().err
    assert not out.exists()


def test_cv_radiomics_and_deep(cohort, tmp_path):
    out = tmp_path / "cv"
    assert main(["ivgc", "cv", "--manifest", str(cohort["manifest"]), "--features", str(cohort["features"]),
                "--selection", str(cohort["selection"]), "--model", "logreg", "--folds", "3", "--out", str(out)]) == 0
    s = json.loads((out / "cv.json").read_text())
    assert [f["fold"] for f in s["per_fold"]] == [0, 1, 2] and sum(f["n"] for f in s["per_fold"]) == 12
    assert set(s["mean_sd"]) == {"auc", "accuracy", "sensitivity", "specificity", "ppv", "npv"}
    deep = tmp_path / "cvd"
    assert main(["ivgc", "cv", "--manifest", str(cohort["manifest"]), "--model", "resnet50", "--folds", "2",
                "--epochs", "1", "--device", "cpu", "--out", str(deep)]) == 0
    s = json.loads((deep / "cv.json").read_text())
    assert s["config"] == "demo-resnet50" and len(s["per_fold"]) == 2
    assert {p.name for p in deep.iterdir()} == {"cv.json", "fold0", "fold1"}
    assert main(["ivgc", "cv", "--manifest", str(cohort["manifest"]), "--model", "resnet50", "--folds", "7",
                "--out", str(tmp_path / "bad")]) == 2 and not (tmp_path / "bad").exists()


def test_train_never_empties_a_folder_that_is_not_its_bundle(cohort, tmp_path, capsys):
    """Issue 32: ``--out`` on a folder of the user's deleted everything in it and exited 0."""
    mine = tmp_path / "Documents"
    (mine / "scans").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    (mine / "scans" / "a.nrrd").write_text("mine")
    svm = ("--model", "svm", "--out")
    assert _train(cohort, tmp_path, *svm, str(mine)) == 2
    err = capsys.readouterr().err
    assert "is not a model bundle (it holds notes.txt, scans); choose a new folder name" in err
    assert (mine / "notes.txt").read_text() == "mine" and (mine / "scans" / "a.nrrd").read_text() == "mine"
    out = tmp_path / "svm"
    assert _train(cohort, tmp_path, *svm, str(out)) == 0
    assert _train(cohort, tmp_path, *svm, str(out)) == 0          # its own earlier bundle: replaced
    (out / "notes.txt").write_text("mine")
    assert _train(cohort, tmp_path, *svm, str(out)) == 2          # ... unless it holds other files too
    assert "add --overwrite" in capsys.readouterr().err
    assert _train(cohort, tmp_path, *svm, str(out), "--overwrite") == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("svm.old-")]
    assert len(aside) == 1 and (aside[0] / "notes.txt").read_text() == "mine"
    assert load_bundle(out).metadata["kind"] == "svm" and not (out / "notes.txt").exists()


def test_cv_keeps_the_folders_it_did_not_write(cohort, tmp_path):
    """An earlier run's ``fold<k>`` folders are replaced; a user's folder named fold-something never is."""
    out = tmp_path / "cv"
    (out / "folders of mine").mkdir(parents=True)
    (out / "folders of mine" / "a.txt").write_text("mine")
    argv = ["ivgc", "cv", "--manifest", str(cohort["manifest"]), "--features", str(cohort["features"]),
            "--selection", str(cohort["selection"]), "--model", "logreg", "--folds", "3", "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0
    assert (out / "folders of mine" / "a.txt").read_text() == "mine"


def test_configs_lists_demo_and_paper(capsys):
    assert main(["ivgc", "configs"]) == 0
    text = capsys.readouterr().out
    assert "demo-rdinet-clinical" in text and "paper-resnet50" in text
