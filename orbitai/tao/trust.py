"""``orbitai tao trust``: fit a TAO bundle's out-of-distribution statistics and calibration (issue 51).

The training manifest's eyes give the class means and covariance of the penultimate features, the validation
manifest's the threshold and the temperature (:mod:`orbitai.classify.trust`); a test manifest, when given, the
figures of the report (flagged share, expected calibration error before and after). The ``trust`` block is written
into the bundle's ``metadata.json`` (atomically; the weights are unchanged).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.classify.trust import (FLAG_SHARE, Trust, expected_calibration_error, features_and_logits, fit_trust,
                                    softmax)
from orbitai.cohort.manifest import Case
from orbitai.tao.data import centre_crop, prepare_eyes
from orbitai.tao.models import load_tao_model


def _eyes(model: Any, cases: list[Case], device: Any, cache: Optional[Path] = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    samples = prepare_eyes(cases, cache=cache)
    feats, logits = features_and_logits(model, centre_crop(samples.x), device)
    return feats, logits, samples.y


def fit_tao_trust(model_name: str, train: list[Case], validation: list[Case], test: Optional[list[Case]] = None,
                  device: Any = "cpu", write: bool = True, cache: Optional[Path] = None) -> dict[str, Any]:
    """Fit and (``write``) store the bundle's trust block; the report (with the test figures when ``test``).
    ``cache``: a folder keeping the preprocessed eyes of each manifest (reused for another bundle)."""
    bundle, model = load_tao_model(model_name, device)
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
    where = (lambda name: Path(cache) / f"{name}_eyes.npz") if cache else (lambda name: None)
    f_tr, _, y_tr = _eyes(model, train, device, where("train"))
    f_va, l_va, y_va = _eyes(model, validation, device, where("validation"))
    trust = fit_trust(f_tr, y_tr, f_va, l_va, y_va,
                      f"{len(train)} training and {len(validation)} validation cases ({len(y_tr)} + {len(y_va)} eyes)")
    report: dict[str, Any] = {"bundle": bundle.name, "temperature": trust.temperature, "threshold": trust.threshold,
                              "validation": {"ece_uncalibrated": trust.ece_before, "ece_calibrated": trust.ece_after,
                                             "flagged_share": FLAG_SHARE}}
    if test:
        f_te, l_te, y_te = _eyes(model, test, device, where("test"))
        report["test"] = {"eyes": int(len(y_te)), "flagged_share": float(np.mean(trust.distance(f_te) > trust.threshold)),
                          "ece_uncalibrated": expected_calibration_error(softmax(l_te), y_te),
                          "ece_calibrated": expected_calibration_error(trust.probabilities(l_te), y_te),
                          "accuracy": float(np.mean(softmax(l_te).argmax(1) == y_te))}
    if write:
        write_trust(bundle.path, trust)
    return report


def write_trust(bundle_dir: Path, trust: Trust) -> None:
    """Put ``trust`` into the bundle's metadata.json (written beside it, then moved over it)."""
    path = Path(bundle_dir) / "metadata.json"
    meta = json.loads(path.read_text())
    meta["trust"] = trust.to_json()
    tmp = path.with_name(f".metadata.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(path)
