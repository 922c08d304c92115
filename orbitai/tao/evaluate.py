"""Cohort evaluation of a TAO bundle: per-eye predictions, the paper's Table 2 metrics with AUC 95 % CI,
a report (CSV, JSON, PNG), and where the occlusion maps put their mass (extraocular muscles)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.cohort.manifest import naming_case, read_labels, read_manifest
from orbitai.errors import InputError
from orbitai.io import read_volume
from orbitai.metrics.figures import write_cohort_report
from orbitai.predictor import Case
from orbitai.progress import ProgressCallback
from orbitai.result import check_outputs
from orbitai.staging import staged_folder
from orbitai.tao.data import case_label
from orbitai.tao.figure import EOM_VALUES
from orbitai.tao.models import TAO_MODELS
from orbitai.tao.predict import EyeResult
from orbitai.tao.predictor import TaoOptions, TaoPredictor

#: Files of the cohort report written into ``out``.
REPORT_FILES = ("predictions.csv", "metrics.json", "report.png")


def occlusion_mass_on(eye: EyeResult, labels, values=EOM_VALUES) -> float:
    """Fraction of the eye's positive occlusion map lying on voxels labelled ``values`` (central
    slice of the network input, where the 2D map applies to all five slices alike)."""
    if eye.occlusion is None:
        raise InputError("The eye was predicted without maps (--no-maps); predict it with maps to measure its occlusion map.")
    lab = eye.crop.network_view(labels, label=True)
    on = np.isin(np.rint(lab).astype(int), values)
    w = np.broadcast_to(np.clip(eye.occlusion, 0, None), lab.shape)
    total = float(w.sum())
    return float(w[on].sum() / total) if total > 0 else float("nan")


def evaluate_tao(manifest: str | Path, model: str, out: Path, device="cpu", use_segmentation: bool = True,
                 maps: bool = True, progress: Optional[ProgressCallback] = None, resample_masks: bool = False) -> dict:
    """Predict every case of ``manifest`` (one row per eye) and write the cohort report
    (:data:`REPORT_FILES`) to ``out``. The manifest (each case once, every label 0 or 1) and the
    output folder (never over an input) and the model are checked before any prediction; the report is
    written whole or, on a failure or a cancel, not at all. ``resample_masks``: a segmentation off its
    MRI's grid is resampled onto it (a warning per case) instead of refused."""
    cases = read_manifest(manifest, need_segmentation=False)
    truth = [case_label(case) for case in cases]
    if len(set(truth)) < 2:
        raise InputError(f"All {len(cases)} cases of {Path(manifest).name} have label {truth[0]}; the evaluation "
                         "needs both active (1) and inactive (0) cases.")
    out = check_outputs(out, [manifest, *(p for c in cases for p in (c.image, c.segmentation))], REPORT_FILES)
    TAO_MODELS.find(model)   # a wrong --model before any case is read (the names load_tao_model takes)
    predictor = TaoPredictor(model, device)   # the task's predictor: its networks loaded once for the cohort
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for n, (case, y) in enumerate(zip(cases, truth), start=1):
        with naming_case(case.case_id):
            labels = read_labels(case.segmentation) if case.segmentation is not None else None
            options = TaoOptions(maps, resample_masks=resample_masks, given=f"Case {case.case_id}: the segmentation "
                                                                             f"{Path(case.segmentation or '').name}")
            pred = predictor.run(Case(read_volume(case.image), given=case.image, scan=case.image,
                                      inputs={"labels": labels if use_segmentation else None}), options,
                                 predictor.device)
        for w in pred.warnings:     # a segmentation resampled as --resample-masks asked (other warnings: per eye)
            if w.startswith(f"Case {case.case_id}:"):
                print(f"warning: {w}", file=sys.stderr)
        for e in pred.eyes:
            row = {"case_id": case.case_id, "side": e.crop.side, "y_true": y, "prob": e.probability_active,
                   "call": int(e.probability_active >= pred.threshold), "seconds": round(pred.seconds, 3)}
            if maps and labels is not None:
                row["occlusion_mass_on_eom"] = round(occlusion_mass_on(e, labels), 4)
            rows.append(row)
        if progress:
            progress(n, len(cases), f"{case.case_id}")
    # written beside OUT and moved in when complete (metrics.json last): a failure leaves no partial report
    with staged_folder(out, replaces=REPORT_FILES, last=["metrics.json"]) as work:
        metrics = write_cohort_report(rows, work, title=f"TAO activity - {model}")
    act = [r["occlusion_mass_on_eom"] for r in rows if r["y_true"] == 1 and "occlusion_mass_on_eom" in r]
    if act:
        metrics["occlusion_mass_on_eom_active_mean"] = float(np.nanmean(act))
        metrics["occlusion_mass_on_eom_active_median"] = float(np.nanmedian(act))
    metrics["seconds_per_case"] = (time.perf_counter() - t0) / max(len(cases), 1)
    return metrics
