"""``orbitai neuro train|predict|lesions|evaluate|cv|configs`` end to end on brain phantoms (issue #16):
a bundle trained for one epoch, its prediction folder read back through the result contract, the
no-lesion case, and bad input refused in one line with nothing written."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from orbitai.io import Volume, read_volume, write_volume
from orbitai.io.segfile import lesion_table, write_segmentation
from orbitai.testing.cli import run_cli


def orbitai(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The command in this process (no interpreter of its own importing torch: the tests are not about the
    process)."""
    return run_cli(args, cwd=cwd)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """Six brain-flair phantoms (three MS, three NMOSD) and a two-view bundle trained on them for one epoch."""
    d = tmp_path_factory.mktemp("neuro_cli")
    r = orbitai("phantom", "brain-flair", "--n", "6", "--seed", "161", "--out", "cohort", "--montage-cases", "0", cwd=d)
    assert r.returncode == 0, r.stderr
    r = orbitai("neuro", "train", "--manifest", "cohort/manifest.csv", "--config", "twoview18-demo", "--epochs", "1",
                "--holdout", "0", "--out", "models/tv18", cwd=d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.slow  # the default suite's 20-minute budget; ~25 s of training
def test_train_writes_a_loadable_bundle_with_the_papers_recipe(cohort):
    from orbitai.neuro.models import load_neuro_model

    bundle, net = load_neuro_model(str(cohort / "models" / "tv18"))
    meta = bundle.metadata
    assert meta["network"] == "twoview18" and meta["classes"] == ["MS", "NMOSD"]
    assert meta["input"] == {"mode": "lesion_mask", "size": 100}
    assert meta["training"]["recipe"].startswith("SGD lr 0.01 x 0.9 every 10 epochs")
    assert meta["training"]["init"]["pretrained"] is False and meta["training"]["train_cases"] == 6
    assert not (cohort / "models" / ".tv18-training").exists()   # as every training: removed once the bundle is written
    assert not net.training


def test_predict_with_given_lesions_follows_the_result_contract(cohort):
    from orbitai.neuro.result import NeuroResult

    flair = cohort / "cohort" / "images" / "brain_flair_0000.nrrd"
    seg = cohort / "cohort" / "segmentations" / "brain_flair_0000.seg.nrrd"
    r = orbitai("neuro", "predict", str(flair), "--lesions", str(seg), "--model", "models/tv18", "--out", "p0",
                cwd=cohort)
    assert r.returncode == 0, r.stderr
    assert "P(NMOSD) = " in r.stdout
    res = NeuroResult.read(cohort / "p0", read_volume(flair))
    assert res.applies and res.call in ("MS", "NMOSD") and 0.0 <= (res.probability or -1) <= 1.0
    assert res.data["architecture"] == "twoview18" and res.data["lesion_source"] == "given"
    assert res.heatmap is not None and res.heatmap.array.max() <= 1.0
    assert res.brain is not None and 1.0e6 < float(res.brain.array.sum()) < 1.9e6     # 1 mm voxels: 1.0-1.9 L
    assert res.summary["count"] == len(res.lesion_rows) > 0


def test_no_lesion_means_the_classifier_does_not_apply(cohort, tmp_path):
    from orbitai.neuro.result import NeuroResult

    flair = read_volume(cohort / "cohort" / "images" / "brain_flair_0001.nrrd")
    empty = tmp_path / "empty.seg.nrrd"
    write_segmentation(flair.with_array(np.zeros(flair.shape, np.uint8)), empty, lesion_table())
    r = orbitai("neuro", "predict", str(cohort / "cohort" / "images" / "brain_flair_0001.nrrd"), "--lesions",
                str(empty), "--model", "models/tv18", "--out", str(tmp_path / "p"), cwd=cohort)
    assert r.returncode == 0, r.stderr
    assert "does not apply" in r.stdout
    res = NeuroResult.read(tmp_path / "p")
    assert not res.applies and res.probability is None and res.call is None and res.heatmap is None
    assert "no white-matter lesion" in res.data["reason"]


@pytest.mark.slow   # over 30 s; the CLI property tests draw bad neuro inputs by default
def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(cohort, tmp_path):
    flair_path = cohort / "cohort" / "images" / "brain_flair_0000.nrrd"
    flair = read_volume(flair_path)
    far = Volume(np.ones((20, 20, 20), np.uint8), (1.0, 1.0, 1.0), (5000.0, 5000.0, 5000.0))
    write_segmentation(far, tmp_path / "far.seg.nrrd", lesion_table())
    flat = Volume(np.ones((1, 64, 64), np.float32))
    write_volume(flat, tmp_path / "flat.nrrd")
    nan = flair.with_array(np.where(np.arange(flair.array.size).reshape(flair.shape) == 5, np.nan,
                                    flair.array).astype(np.float32))
    write_volume(nan, tmp_path / "nan.nrrd")
    cases = {
        "does not lie in the FLAIR's physical space": [str(flair_path), "--lesions", str(tmp_path / "far.seg.nrrd")],
        "2D": [str(tmp_path / "flat.nrrd")],
        "NaN": [str(tmp_path / "nan.nrrd")],
        "does not exist": [str(tmp_path / "missing.nrrd")],
    }
    for expected, args in cases.items():
        out = tmp_path / f"out-{len(expected)}"
        r = orbitai("neuro", "predict", *args, "--model", "models/tv18", "--out", str(out), cwd=cohort)
        lines = r.stderr.strip().splitlines()
        assert r.returncode in (1, 2) and len(lines) == 1 and "Traceback" not in r.stderr, (expected, r.stderr)
        assert expected.lower() in lines[0].lower(), (expected, lines[0])
        assert not out.exists()


@pytest.mark.slow   # over 30 s; the CLI property tests draw bad neuro inputs by default
def test_evaluate_and_cv_report_the_papers_measures(cohort, tmp_path):
    r = orbitai("neuro", "evaluate", "--manifest", "cohort/manifest.csv", "--model", "models/tv18", "--out",
                str(tmp_path / "eval.json"), cwd=cohort)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "eval.json").read_text())
    m = rep["models"]["tv18"]
    assert set(m["metrics"]) == {"accuracy", "sensitivity", "specificity", "auc"} and len(m["probabilities"]) == 6
    acc = np.mean((np.array(m["probabilities"]) >= 0.5).astype(int) == np.array(rep["labels"]))
    assert m["metrics"]["accuracy"] == pytest.approx(acc)
    r = orbitai("neuro", "cv", "--manifest", "cohort/manifest.csv", "--folds", "3", "--repeats", "1", "--epochs", "1",
                "--out", str(tmp_path / "cv"), cwd=cohort)
    assert r.returncode == 0, r.stderr
    cv = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert len(cv["network_cv"]["per_fold"]) == 3
    base = cv["lesion_table_logistic_regression"]
    assert len(base["per_fold"]) == 3 and "count_periventricular" in base["features"]
    assert set(cv["network_cv"]["mean"]) == {"accuracy", "sensitivity", "specificity", "auc"}


def test_evaluate_reports_lesion_wise_figures_of_a_lesion_model(cohort, tmp_path):
    """Issue 79: ``neuro evaluate`` with a lesion bundle reports per case Dice, lesion precision, recall, F1 and the
    recall of lesions >= and < 10 mm3 as `neuro lesions` finds them, and their means; a classifier beside it is
    refused in one line."""
    from orbitai.metrics.segmentation import lesion_metrics
    from orbitai.neuro.predict import find_lesions

    rows = (cohort / "cohort" / "manifest.csv").read_text().splitlines()
    r = orbitai("neuro", "evaluate", "--manifest", "cohort/manifest.csv", "--model", "neuro_lesion_unet_demo",
                "models/tv18", "--out", str(tmp_path / "mixed.json"), cwd=cohort)
    assert r.returncode != 0 and "mixes lesion segmentation bundles and classifiers" in r.stderr
    assert not (tmp_path / "mixed.json").exists()
    sub = cohort / "cohort" / "one.csv"            # the first case; paths are relative to the manifest
    sub.write_text("\n".join(rows[:2]) + "\n")
    r = orbitai("neuro", "evaluate", "--manifest", "cohort/one.csv", "--model", "neuro_lesion_unet_demo", "--out",
                str(tmp_path / "les.json"), cwd=cohort)
    assert r.returncode == 0, r.stderr
    assert "lesion P" in r.stdout and "R<10mm3" in r.stdout
    rep = json.loads((tmp_path / "les.json").read_text())
    m = rep["models"]["neuro_lesion_unet_demo"]
    assert [row["case"] for row in m["per_case"]] == rep["cases"] and len(rep["cases"]) == 1
    flair = cohort / "cohort" / "images" / "brain_flair_0000.nrrd"
    found = find_lesions(flair, lesion_model="neuro_lesion_unet_demo")
    truth = read_volume(cohort / "cohort" / "segmentations" / "brain_flair_0000.seg.nrrd")
    want = lesion_metrics(found.lesions.array, truth.array > 0, found.flair.spacing)
    got = m["per_case"][0]
    for k in ("dice", "lesion_precision", "lesion_recall", "lesion_f1", "recall_ge_10mm3"):
        assert got[k] == pytest.approx(want[k], abs=1e-6, nan_ok=True)
    assert m["metrics"]["lesion_f1"] == pytest.approx(got["lesion_f1"])


def test_configs_lists_paper_and_demo_configurations(tmp_path):
    r = orbitai("neuro", "configs", cwd=tmp_path)
    assert r.returncode == 0
    names = {line.split()[0] for line in r.stdout.splitlines()}
    assert {"twoview18", "twoview34", "resnet3d18", "resnet3d34", "twoview18-demo", "resnet3d34-demo"} <= names


def test_a_checkpoint_of_another_training_is_never_resumed(tmp_path):
    """The work folder records what it trains: other cases (or settings) set the old checkpoint aside."""
    from orbitai.cohort.manifest import Case
    from orbitai.neuro.configs import get_config
    from orbitai.neuro.study import _same_training

    for name in ("a.nrrd", "b.nrrd"):
        (tmp_path / name).write_bytes(b"x")
    cfg = get_config("twoview18-demo")
    work = tmp_path / "work"
    first = [Case("c0", tmp_path / "a.nrrd", tmp_path / "a.nrrd", {})]
    _same_training(work, first, cfg, 0, 0.2)
    (work / "checkpoint.pt").write_bytes(b"epoch 3")
    _same_training(work, first, cfg, 0, 0.2)                      # the same training: resumed
    assert (work / "checkpoint.pt").read_bytes() == b"epoch 3"
    other = [Case("c0", tmp_path / "b.nrrd", tmp_path / "b.nrrd", {})]
    _same_training(work, other, cfg, 0, 0.2)
    assert not (work / "checkpoint.pt").exists()
    assert len(list(work.glob("checkpoint-other-training-*.pt"))) == 1
