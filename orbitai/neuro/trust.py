"""``orbitai neuro trust``: fit an NMOSD-vs-MS bundle's out-of-distribution statistics and calibration (issue 51).

The classifier input of every case (FLAIR + lesion segmentation, as in training: :func:`orbitai.neuro.study.
cohort_inputs`) goes through the network; the features are the pooled channels of its last residual stage
(:mod:`orbitai.classify.trust`). Training manifest: class means and covariance; validation manifest: threshold and
calibration; test manifest (optional): the report's figures. The ``trust`` block goes into the bundle's
``metadata.json`` (atomically; the weights are unchanged).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from orbitai.classify.trust import fit_and_report, write_trust
from orbitai.classify.trust_features import features_and_logits
from orbitai.cohort.manifest import Case
from orbitai.neuro.models import load_neuro_model
from orbitai.neuro.study import case_label, cohort_inputs
from orbitai.progress import ProgressCallback


def features_logits(net: Any, x: np.ndarray, device: Any = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) of classifier inputs ``x`` (N, size, size, size)."""
    return features_and_logits(net, np.asarray(x, np.float32)[:, None], device, batch=8)


def fit_neuro_trust(model_name: str, train: Sequence[Case], validation: Sequence[Case],
                    test: Optional[Sequence[Case]] = None, device: Any = "cpu", write: bool = True,
                    cache: Optional[Path] = None, progress: Optional[ProgressCallback] = None) -> dict[str, Any]:
    """Fit and (``write``) store the bundle's trust block; the report (with the test figures when ``test``).
    ``cache``: a folder keeping the classifier inputs of each manifest (reused for another bundle of that input)."""
    bundle, net = load_neuro_model(model_name, device)
    spec = bundle.metadata.get("input") or {}
    mode, size = str(spec.get("mode")), int(spec.get("size", 100))

    def run(cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = cohort_inputs(cases, mode, size, cache, progress)
        return (*features_logits(net, x, device), np.asarray([case_label(c) for c in cases], int))

    f_tr, _, y_tr = run(train)
    val = run(validation)
    tst = run(test) if test else None
    trust, report = fit_and_report((f_tr, y_tr), val, tst,
                                   f"{len(train)} training and {len(validation)} validation cases")
    if write:
        write_trust(bundle.path, trust)
    return {"bundle": bundle.name, **report}
