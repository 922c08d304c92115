"""``orbitai tao trust``: fit a TAO bundle's out-of-distribution statistics and calibration (issue 51).

The training manifest's eyes give the class means and covariance of the features, the validation manifest's the
threshold and the calibration (:mod:`orbitai.classify.trust`); a test manifest, when given, the figures of the
report (flagged share, expected calibration error before and after). The ``trust`` block is written into the
bundle's ``metadata.json`` (atomically; the weights are unchanged).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.classify.trust import fit_and_report, write_trust
from orbitai.classify.trust_features import features_and_logits
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
    val = _eyes(model, validation, device, where("validation"))
    tst = _eyes(model, test, device, where("test")) if test else None
    trust, report = fit_and_report((f_tr, y_tr), val, tst, f"{len(train)} training and {len(validation)} validation "
                                   f"cases ({len(y_tr)} + {len(val[2])} eyes)")
    if write:
        write_trust(bundle.path, trust)
    return {"bundle": bundle.name, **report}
