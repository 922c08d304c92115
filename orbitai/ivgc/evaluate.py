"""Cohort evaluation of IVGC-response bundles (paper 001's Table 2 and Figures 5-6 on one cohort).

Each model predicts every case of a labelled manifest from the same inputs it was trained on: the
radiomics models from the cohort's feature table (``orbitai ivgc features``), the deep models from
the MRI and segmentation (plus the table's selected features and the manifest's clinical columns).
Written to OUT (staged beside it, moved in whole, ``table2.json`` last):

* ``predictions.csv``: case_id, y_true, then one probability column per model;
* ``table2.csv`` / ``table2.json``: AUC with its 95 % DeLong CI, ACC, SEN, SPE, PPV, NPV per model
  (:func:`orbitai.metrics.classification.table2_row`);
* ``roc.png``, ``calibration.png``, ``decision_curve.png``, ``radar.png``
  (:func:`orbitai.metrics.figures.write_figures`).
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from orbitai.bundle.core import Bundle
from orbitai.classify.train import predict_proba
from orbitai.cohort.manifest import Case, read_manifest
from orbitai.errors import InputError
from orbitai.ivgc.data import deep_dataset
from orbitai.ivgc.features import WideTable, check_table_files, cohort_inputs
from orbitai.ivgc.models import IVGC_MODELS, Selected, load_ivgc_model
from orbitai.ivgc.train import case_labels, feature_matrix
from orbitai.metrics.classification import binary_classification_metrics, table2_row
from orbitai.metrics.figures import write_figures
from orbitai.progress import ProgressCallback
from orbitai.result import check_outputs
from orbitai.staging import staged_folder, strict_json

#: Files of the report.
REPORT_FILES = ("predictions.csv", "table2.csv", "table2.json", "roc.png", "calibration.png",
                "decision_curve.png", "radar.png")


def model_probabilities(bundle: Bundle, model: Any, cases: Sequence[Case], table: Optional[Any], device: Any = "cpu",
                        num_workers: int = 0) -> np.ndarray:
    """P(responder) of every case under one loaded bundle (:func:`orbitai.ivgc.models.load_ivgc_model`)."""
    meta = bundle.metadata
    ids = [c.case_id for c in cases]
    sel = Selected.from_metadata(meta["selection"]) if meta.get("selection") else None
    radiomics = None
    if sel is not None and (meta.get("uses_radiomics", True) or not bundle.architecture):
        if table is None:
            raise InputError(f"Model {bundle.name} takes the selected radiomics features; give --features.")
        radiomics = feature_matrix(table, ids, sel.names, "--features")
    if not bundle.architecture:
        if radiomics is None:
            raise InputError(f"Bundle {bundle.name} holds a radiomics model without a feature selection.")
        return np.asarray(model.predict_proba(radiomics)[:, 1], dtype=float)
    return _deep_probabilities(bundle, model, cases, radiomics, device, num_workers)


def _deep_probabilities(bundle: Bundle, net: Any, cases: Sequence[Case], radiomics: Optional[np.ndarray], device: Any,
                        num_workers: int) -> np.ndarray:
    ds = deep_dataset(bundle, net, cases, radiomics)
    return np.asarray(predict_proba(net, ds, device, batch_size=8, num_workers=num_workers)[:, 1], dtype=float)


def evaluate_ivgc(manifest: str | Path, models: Sequence[str], out: Path, features: Optional[str | Path] = None,
                  device: Any = "cpu", cohort: str = "", progress: Optional[ProgressCallback] = None) -> dict[str, Any]:
    """Evaluate ``models`` (kinds or bundle names/folders) on the labelled ``manifest`` and write the
    report (:data:`REPORT_FILES`) into ``out``. Everything is checked before the first prediction; a
    failure or a cancel leaves no partial report."""
    if not models:
        raise InputError("Give at least one --model.")
    cases = read_manifest(manifest)
    y = case_labels(cases, "evaluation (AUC, sensitivity, specificity)")
    out = check_outputs(out, [manifest, features, *(p for c in cases for p in (c.image, c.segmentation))], REPORT_FILES)
    bundles = [IVGC_MODELS.find(m) for m in models]
    names = [b.name for b in bundles]
    if len(set(names)) != len(names):
        raise InputError(f"A model is named twice: {', '.join(names)}.")
    table = WideTable.from_csv(features) if features else None
    if table is not None:     # rows of other images than the manifest's are refused, case ids alone would match
        check_table_files(table, cohort_inputs(manifest)[0], f"--features {features}")
    probs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for n, b in enumerate(bundles):
        if progress:
            progress(n, len(bundles), f"predicting with {b.name}")
        t0 = time.perf_counter()
        _, model = load_ivgc_model(str(b.path), device)
        probs[b.name] = model_probabilities(b, model, cases, table, device)
        seconds[b.name] = (time.perf_counter() - t0) / len(cases)
    metrics = {name: binary_classification_metrics(y, p, float(b.metadata.get("threshold", 0.5)))
               for (name, p), b in zip(probs.items(), bundles)}
    rows = [{**table2_row(name, m, cohort), "kind": b.metadata.get("kind"), "strategy": b.metadata.get("strategy")}
            for (name, m), b in zip(metrics.items(), bundles)]
    with staged_folder(out, replaces=REPORT_FILES, last=["table2.json"]) as work:
        _write_predictions(work / "predictions.csv", cases, y, probs)
        _write_table(work / "table2.csv", rows)
        write_figures({name: (y, p) for name, p in probs.items()}, work, title=cohort or Path(manifest).stem)
        report = {"manifest": str(manifest), "cases": len(cases), "responders": int(y.sum()), "table2": rows,
                  "metrics": metrics, "seconds_per_case": seconds}
        (work / "table2.json").write_text(strict_json(report, default=float))
    if progress:
        progress(len(bundles), len(bundles), "done")
    return report


def _write_predictions(path: Path, cases: Sequence[Case], y: np.ndarray, probs: dict[str, np.ndarray]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["case_id", "y_true", *probs])
    for i, c in enumerate(cases):
        w.writerow([c.case_id, int(y[i]), *(f"{p[i]:.6f}" for p in probs.values())])
    path.write_text(buf.getvalue())


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
