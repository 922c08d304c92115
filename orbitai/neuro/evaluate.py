"""``orbitai neuro evaluate``: accuracy, sensitivity, specificity and AUC of NMOSD-vs-MS classifiers on a labelled
cohort (paper 003's metrics), with each case's P(NMOSD); for lesion segmentation bundles, lesion-wise figures per
case against the manifest's lesion masks (issue 79: voxel Dice, lesion precision, recall and F1, the recall of
lesions >= and < 10 mm3, volumes), as ``orbitai neuro lesions`` finds them (brain extraction included)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from orbitai.bundle.core import find_bundle
from orbitai.classify.train import predict_proba
from orbitai.cohort.manifest import Case
from orbitai.errors import UserError
from orbitai.metrics.segmentation import lesion_metrics
from orbitai.neuro.models import load_neuro_model
from orbitai.neuro.predict import find_lesions, read_lesions
from orbitai.neuro.study import case_label, cohort_inputs
from orbitai.neuro.train import evaluate
from orbitai.progress import ProgressCallback

__all__ = ["evaluate_models", "evaluate_lesion_models", "lesion_task"]


def evaluate_models(cases: Sequence[Case], models: Sequence[str], device: Any = "cpu",
                    progress: Optional[ProgressCallback] = None) -> dict:
    """Accuracy, sensitivity, specificity, AUC of each classifier bundle on the labelled cases, with each
    case's P(NMOSD)."""
    labels = np.array([case_label(c) for c in cases])
    report: dict[str, Any] = {"cases": [c.case_id for c in cases], "labels": labels.tolist(), "models": {}}
    inputs: dict[tuple[str, int], np.ndarray] = {}      # models sharing an input specification share its arrays
    for name in models:
        bundle, net = load_neuro_model(name, device)
        spec = bundle.metadata.get("input") or {}
        key = (str(spec.get("mode")), int(spec.get("size", 100)))
        if key not in inputs:
            inputs[key] = cohort_inputs(cases, key[0], key[1], None, progress)
        x = inputs[key]
        with torch.no_grad():
            p = predict_proba(net, x[:, None], device=device)[:, 1]
        m = evaluate(p, labels, float(bundle.metadata.get("threshold", 0.5)))
        report["models"][bundle.name] = {"metrics": {k: float(m[k]) for k in ("accuracy", "sensitivity", "specificity",
                                                                              "auc")},
                                         "probabilities": [round(float(v), 6) for v in p]}
    return report


#: the per-case lesion-wise figures a report keeps (`orbitai.metrics.segmentation.lesion_metrics`' names)
LESION_FIGURES = ("dice", "lesion_precision", "lesion_recall", "lesion_f1", "recall_ge_10mm3", "recall_lt_10mm3",
                  "n_true", "n_pred", "false_positive", "n_true_ge_10mm3", "n_true_lt_10mm3", "volume_pred_ml",
                  "volume_true_ml")


def lesion_task(models: Sequence[str]) -> bool:
    """True when every bundle named is a lesion segmentation one, False when none is; a mix is refused."""
    tasks = {find_bundle(m).metadata.get("task") == "lesion_segmentation" for m in models}
    if len(tasks) > 1:
        raise UserError("--model mixes lesion segmentation bundles and classifiers; evaluate each kind on its own "
                        "manifest (lesions: case_id,image,segmentation; classifiers: with the diagnosis column).")
    return tasks == {True}


def evaluate_lesion_models(cases: Sequence[Case], models: Sequence[str], device: Any = "cpu",
                           progress: Optional[ProgressCallback] = None) -> dict:
    """Each lesion bundle's lesion-wise figures on every case (its FLAIR ``image`` and lesion mask
    ``segmentation``) and their means over the cases (a figure that is nan on a case, e.g. no lesion under 10 mm3,
    is left out of its mean)."""
    report: dict[str, Any] = {"cases": [c.case_id for c in cases], "models": {}}
    for name in models:
        figures: list[dict[str, float]] = []
        for k, c in enumerate(cases):
            if c.segmentation is None:
                raise UserError(f"Case {c.case_id}: the manifest gives no lesion mask (column segmentation).")
            found = find_lesions(c.image, lesion_model=name, device=device)
            truth = read_lesions(c.segmentation, found.flair)
            m = lesion_metrics(found.lesions.array, truth.array, found.flair.spacing)
            figures.append({f: round(float(m[f]), 6) for f in LESION_FIGURES})
            if progress is not None:
                progress(k + 1, len(cases), f"lesions {c.case_id}")
        means = {f: float(np.nanmean([r[f] for r in figures])) if any(np.isfinite(r[f]) for r in figures)
                 else float("nan") for f in LESION_FIGURES[:6]}
        report["models"][find_bundle(name).name] = {
            "metrics": means, "per_case": [{"case": c.case_id, **r} for c, r in zip(cases, figures)]}
    return report
