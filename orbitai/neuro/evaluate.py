"""``orbitai neuro evaluate``: accuracy, sensitivity, specificity and AUC of NMOSD-vs-MS classifiers on a labelled
cohort (paper 003's metrics), with each case's P(NMOSD)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch

from orbitai.classify.train import predict_proba
from orbitai.cohort.manifest import Case
from orbitai.neuro.models import load_neuro_model
from orbitai.neuro.study import case_label, cohort_inputs
from orbitai.neuro.train import evaluate
from orbitai.progress import ProgressCallback

__all__ = ["evaluate_models"]


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
