"""IVGC response (paper 001) on 60 held-out phantom patients: Table 2, Figures 4-6, prediction time.

Training cohort: ``make ivgc-models`` (150 phantoms, seed 6000: features, selection and the demo bundles
in ``orbitai/resources/models``). Held-out cohort: 60 phantoms of seed 7000, a seed no training uses
(written once into ``build/cohorts/ivgc_heldout`` with its features, then reused).

* Figure 4: SVM, logistic regression and random forest trained (here, seconds each) on the selected
  features of each of the six ROI strategies; ROC per algorithm and strategy on the training and the
  held-out cohort (``benchmarks/results/ivgc/fig4_<algorithm>_<cohort>.png``).
* Table 2 and Figures 5-6: the four demo bundles (radiomics SVM MR+LR, ResNet-50, RDINet, RDINet
  clinical) through ``orbitai ivgc evaluate``'s code on the held-out cohort
  (``benchmarks/results/ivgc/table2.csv``, ``roc.png``, ``calibration.png``, ``decision_curve.png``,
  ``radar.png``).
* One patient's prediction (features + model + Grad-CAM), the median of three held-out patients, for
  the SVM and RDINet (clinical), one torch thread.
* 95 % intervals (``notes["ci95"]``, n = 60 cases): stratified bootstrap of each AUC and paired stratified
  bootstrap of the AUC differences (2000 resamples, seed 0), Wilson intervals of ACC, SEN, SPE, PPV and NPV
  (each over its own denominator), from the per-case probabilities the run keeps
  (``benchmarks/results/ivgc/predictions.csv``, ``fig4_heldout_predictions.csv``). DeLong's AUC interval of
  Table 2 stays in ``notes["auc_ci95"]``.

``python -m benchmarks ivgc`` -> ``benchmarks/results/ivgc.json``; ``python -m benchmarks.bench_ivgc intervals``
recomputes the intervals from the stored per-case probabilities alone (seconds; no cohort needed).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, record_interval, write_result

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "build" / "cohorts" / "ivgc_train"
HELDOUT = ROOT / "build" / "cohorts" / "ivgc_heldout"
HELDOUT_N, HELDOUT_SEED = 60, 7000
FIGURES = RESULTS / "ivgc"
DEMO = {"radiomics SVM (MR+LR)": "ivgc_svm_demo", "ResNet-50": "ivgc_resnet50_demo", "RDINet": "ivgc_rdinet_demo",
        "RDINet (clinical)": "ivgc_rdinet_clinical_demo"}
KEY = {"ivgc_svm_demo": "svm_mrlr", "ivgc_resnet50_demo": "resnet50", "ivgc_rdinet_demo": "rdinet",
       "ivgc_rdinet_clinical_demo": "rdinet_clinical"}
#: Per-case held-out probabilities of Figure 4's models (algorithm_strategy columns), kept for the intervals.
FIG4_PREDICTIONS = FIGURES / "fig4_heldout_predictions.csv"
BOOTSTRAP = "stratified percentile bootstrap over cases, 2000 resamples, seed 0"
PAIRED = "paired stratified percentile bootstrap over cases, 2000 resamples, seed 0"


def _cli(*args: str) -> None:
    from orbitai.cli import main

    code = main(list(args))
    if code != 0:
        raise RuntimeError(f"orbitai {' '.join(args)} -> exit {code}")


def heldout_cohort() -> Path:
    """The held-out manifest with its feature table (made once)."""
    manifest, feats = HELDOUT / "manifest.csv", HELDOUT / "features.csv"
    if not manifest.is_file():
        _cli("phantom", "ivgc", "--n", str(HELDOUT_N), "--seed", str(HELDOUT_SEED), "--out", str(HELDOUT),
             "--montage-cases", "0")
    if not feats.is_file():
        _cli("ivgc", "features", "--manifest", str(manifest), "--out", str(feats), "--workers", "0")
    return manifest


def figure4(metrics: dict, notes: dict) -> None:
    """SVM / LR / RF on every ROI strategy, trained on the training cohort, ROC on both cohorts."""
    from orbitai.ivgc.models import load_ivgc_model
    from orbitai.classify.tabular import TABULAR_KINDS
    from orbitai.cohort.manifest import read_manifest
    from orbitai.ivgc.evaluate import model_probabilities
    from orbitai.ivgc.features import WideTable
    from orbitai.ivgc.rois import STRATEGY_NAMES
    from orbitai.ivgc.select import read_selection
    from orbitai.ivgc.train import TrainingSet, case_labels, train_radiomics
    from orbitai.metrics.classification import binary_classification_metrics
    from orbitai.metrics.figures import roc_figure

    train_cases, test_cases = read_manifest(TRAIN / "manifest.csv"), read_manifest(HELDOUT / "manifest.csv")
    y_tr, y_te = case_labels(train_cases), case_labels(test_cases)
    tr_table, te_table = WideTable.from_csv(TRAIN / "features.csv"), WideTable.from_csv(HELDOUT / "features.csv")
    selection = read_selection(TRAIN / "selection.json")
    notes["selected_features"] = {s: len(selection["strategies"][s]["selected"]) for s in STRATEGY_NAMES}
    heldout: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as d:
        for kind in TABULAR_KINDS:
            curves: dict[str, dict] = {"training": {}, "held-out": {}}
            for s in STRATEGY_NAMES:
                if not selection["strategies"][s]["selected"]:   # nothing passed the selection: no model
                    notes.setdefault("strategies_without_features", sorted({*notes.get("strategies_without_features", []), s}))
                    continue
                path = train_radiomics(TrainingSet(train_cases, tr_table, selection), kind, s, Path(d) / f"{kind}_{s}")
                bundle, model = load_ivgc_model(str(path))
                p_tr = model_probabilities(bundle, model, train_cases, tr_table)
                p_te = model_probabilities(bundle, model, test_cases, te_table)
                curves["training"][s] = (y_tr, p_tr)
                curves["held-out"][s] = (y_te, p_te)
                heldout[f"{kind}_{s}"] = np.asarray(p_te, dtype=float)
                metrics[f"{kind}_{s}_auc"] = binary_classification_metrics(y_te, p_te)["auc"]
                metrics[f"{kind}_{s}_training_auc"] = binary_classification_metrics(y_tr, p_tr)["auc"]
            metrics[f"{kind}_mrlr_minus_all_auc"] = metrics[f"{kind}_mrlr_auc"] - metrics[f"{kind}_all_auc"]
            for cohort, c in curves.items():
                roc_figure(c, FIGURES / f"fig4_{kind}_{cohort.replace('-', '')}.png",
                           f"{kind.upper() if kind != 'logreg' else 'LR'} per ROI strategy, {cohort} cohort")
    with FIG4_PREDICTIONS.open("w") as f:
        f.write(",".join(["case_id", "y_true", *heldout]) + "\n")
        for i, c in enumerate(test_cases):
            f.write(",".join([c.case_id, str(int(y_te[i])), *(f"{p[i]:.6f}" for p in heldout.values())]) + "\n")
    figure4_intervals(notes)


def _read_predictions(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(labels, column -> probabilities) of a per-case CSV (``case_id,y_true,<model>...``)."""
    import csv

    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    cols = [c for c in rows[0] if c not in ("case_id", "y_true")]
    return (np.array([int(r["y_true"]) for r in rows]),
            {c: np.array([float(r[c]) for r in rows]) for c in cols})


def figure4_intervals(notes: dict) -> None:
    """Intervals of Figure 4's held-out AUCs and of MR+LR minus all four recti, from FIG4_PREDICTIONS."""
    from orbitai.metrics.intervals import auc_ci, auc_difference_ci

    if not FIG4_PREDICTIONS.is_file():
        notes["ci95_figure4"] = "not measured: per-case probabilities of Figure 4 not stored (run the figure4 part)"
        return
    y, probs = _read_predictions(FIG4_PREDICTIONS)
    for col, p in probs.items():
        record_interval(notes, f"{col}_auc", auc_ci(y, p), BOOTSTRAP)
    for kind in {c.split("_")[0] for c in probs}:
        if {f"{kind}_mrlr", f"{kind}_all"} <= set(probs):
            record_interval(notes, f"{kind}_mrlr_minus_all_auc",
                            auc_difference_ci(y, probs[f"{kind}_mrlr"], probs[f"{kind}_all"]), PAIRED)
    notes.pop("ci95_figure4", None)


def table2_intervals(notes: dict) -> None:
    """Intervals of Table 2 from the per-case probabilities ``evaluate_ivgc`` wrote (FIGURES/predictions.csv):
    each AUC (stratified bootstrap), the AUC differences the bars compare (paired), and the rates at each
    bundle's threshold (Wilson)."""
    from orbitai.bundle.core import find_bundle
    from orbitai.errors import BundleError
    from orbitai.metrics.intervals import auc_ci, auc_difference_ci, rate_cis

    y, probs = _read_predictions(FIGURES / "predictions.csv")
    for name, p in probs.items():
        key = KEY.get(name, name)
        try:
            threshold = float(find_bundle(name).metadata.get("threshold", 0.5))
        except BundleError:
            threshold = 0.5
        record_interval(notes, f"{key}_auc", auc_ci(y, p), BOOTSTRAP)
        rates = rate_cis(y, p, threshold)
        for col, rate in (("acc", "accuracy"), ("sen", "sensitivity"), ("spe", "specificity"), ("ppv", "ppv"),
                          ("npv", "npv")):
            record_interval(notes, f"{key}_{col}", rates[rate], f"Wilson score interval, threshold {threshold:g}")
    for a, b in (("ivgc_rdinet_clinical_demo", "ivgc_rdinet_demo"), ("ivgc_rdinet_demo", "ivgc_resnet50_demo"),
                 ("ivgc_svm_demo", "ivgc_rdinet_clinical_demo")):
        if {a, b} <= set(probs):
            record_interval(notes, f"{KEY[a]}_minus_{KEY[b]}_auc", auc_difference_ci(y, probs[a], probs[b]), PAIRED)


def table2(metrics: dict, notes: dict) -> None:
    """The demo bundles on the held-out cohort: Table 2, ROC, calibration, DCA, radar."""
    from orbitai.bundle.core import find_bundle
    from orbitai.errors import BundleError
    from orbitai.ivgc.evaluate import evaluate_ivgc

    present = []
    for name in DEMO.values():
        try:
            b = find_bundle(name)
        except BundleError:
            notes.setdefault("missing_bundles", []).append(name)
            continue
        present.append(name)
        training = b.metadata.get("training", {})
        # a resumed training's "minutes" counts its last run only; the per-epoch log covers all runs
        minutes = training.get("epoch_minutes_all_runs") or training.get("minutes")
        if minutes is not None:
            metrics[f"{KEY[name]}_training_minutes"] = float(minutes)
            notes.setdefault("training", {})[name] = {k: b.metadata["training"].get(k) for k in
                                                      ("minutes", "epoch_minutes_all_runs", "epochs_run",
                                                       "train_cases", "heldout_cases", "threads")}
    report = evaluate_ivgc(HELDOUT / "manifest.csv", present, FIGURES, HELDOUT / "features.csv", "cpu",
                           cohort="held-out phantoms")
    for row in report["table2"]:
        key = KEY[row["model"]]
        metrics[f"{key}_auc"] = row["AUC"]
        for col in ("ACC", "SEN", "SPE", "PPV", "NPV"):
            metrics[f"{key}_{col.lower()}"] = row[col]
        notes.setdefault("auc_ci95", {})[row["model"]] = [row["AUC_CI95_low"], row["AUC_CI95_high"]]
    if {"rdinet_clinical_auc", "rdinet_auc"} <= set(metrics):
        metrics["rdinet_clinical_minus_rdinet_auc"] = metrics["rdinet_clinical_auc"] - metrics["rdinet_auc"]
    if {"rdinet_auc", "resnet50_auc"} <= set(metrics):
        metrics["rdinet_minus_resnet50_auc"] = metrics["rdinet_auc"] - metrics["resnet50_auc"]
    notes["table2"] = report["table2"]
    table2_intervals(notes)


def intervals(metrics: dict, notes: dict) -> None:
    """The 95 % intervals alone, from the per-case probabilities a run of table2 / figure4 stored."""
    table2_intervals(notes)
    figure4_intervals(notes)


def predict_time(metrics: dict, notes: dict) -> None:
    """One patient: radiomics + model + Grad-CAM, median of three held-out patients, one torch thread."""
    import torch

    from orbitai.bundle.core import find_bundle
    from orbitai.cohort.clinical import IVGC_CLINICAL
    from orbitai.cohort.manifest import read_manifest
    from orbitai.errors import BundleError
    from orbitai.ivgc.predict import IvgcOptions, predict_ivgc

    torch.set_num_threads(1)
    cases = read_manifest(HELDOUT / "manifest.csv")[:3]
    for name in ("ivgc_svm_demo", "ivgc_rdinet_clinical_demo"):
        try:
            find_bundle(name)
        except BundleError:
            continue
        times = []
        for c in cases:
            clinical = {n: float(c.row[n]) for n in IVGC_CLINICAL.names}
            t0 = time.perf_counter()
            predict_ivgc(c.image, c.segmentation, name, clinical=clinical, options=IvgcOptions(gradcam=True))
            times.append(time.perf_counter() - t0)
        metrics[f"predict_s_{KEY[name]}"] = statistics.median(times)
    notes["predict"] = "predict_ivgc (reading, radiomics of the ROI, model, Grad-CAM for image models), 1 thread"


PARTS = {"figure4": figure4, "table2": table2, "predict": predict_time, "intervals": intervals}


def main(parts=tuple(PARTS)) -> None:
    if set(parts) - {"intervals"}:   # the intervals part reads the stored per-case probabilities only
        for need in ("manifest.csv", "features.csv", "selection.json"):
            if not (TRAIN / need).is_file():
                raise SystemExit(f"{TRAIN / need} is missing: run 'make ivgc-models' first.")
        heldout_cohort()
    FIGURES.mkdir(parents=True, exist_ok=True)
    metrics: dict = {}
    notes: dict = {"training_cohort": "150 phantoms, seed 6000 (make ivgc-models)",
                   "heldout_cohort": f"{HELDOUT_N} phantoms, seed {HELDOUT_SEED}", "figures": str(FIGURES.relative_to(ROOT))}
    previous = RESULTS / "ivgc.json"
    old: dict | None = None
    if set(parts) != set(PARTS) and previous.exists():   # a partial run keeps the rest
        old = json.loads(previous.read_text())
        metrics, notes = old.get("metrics", {}), {**old.get("notes", {}), **notes}
    for part in parts:
        PARTS[part](metrics, notes)
    targets = {"svm_mrlr_auc": ">= 0.85", "rdinet_clinical_auc": ">= 0.90",
               "rdinet_clinical_minus_rdinet_auc": "> 0", "rdinet_minus_resnet50_auc": "> 0",
               "svm_mrlr_minus_all_auc": ">= 0", "logreg_mrlr_minus_all_auc": ">= 0", "rf_mrlr_minus_all_auc": ">= 0",
               "predict_s_svm_mrlr": "<= 20", "predict_s_rdinet_clinical": "<= 20",
               **{f"{k}_training_minutes": "<= 30" for k in KEY.values()}}
    write_result("ivgc", {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating))},
                 {k: v for k, v in targets.items() if k in metrics}, notes,
                 measured=old if old is not None and set(parts) == {"intervals"} else None)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or tuple(PARTS))
