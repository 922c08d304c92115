"""``orbitai ivgc trust``: fit an IVGC bundle's out-of-distribution statistics and calibration (issue 51).

What a model's features are (:mod:`orbitai.classify.trust` measures the distance in them):

* the radiomics SVM: its selected radiomics features, standardised as the LASSO saw them, and its logits are those
  of its (Platt-scaled) probability, :func:`orbitai.classify.calibration.binary_logits`;
* ResNet-50 and RDINet: the pooled channels of the last residual stage (the Grad-CAM layer), the image input cropped
  as in training and, for RDINet, its radiomics (and clinical) inputs.

The radiomics are computed here from the bundle's own protocol (no feature table needed), for the bundle's strategy
only; ``cache`` keeps each manifest's inputs for the next bundle. The ``trust`` block goes into the bundle's
``metadata.json`` (atomically; the weights are unchanged).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from orbitai.bundle.core import Bundle
from orbitai.classify.calibration import binary_logits
from orbitai.classify.trust import fit_and_report, write_trust
from orbitai.classify.trust_features import features_and_logits
from orbitai.cohort.manifest import Case
from orbitai.ivgc.data import IvgcImageDataset, case_label, deep_dataset
from orbitai.ivgc.features import case_features
from orbitai.ivgc.models import Selected, load_ivgc_model


def standardised(bundle: Bundle, radiomics: np.ndarray) -> np.ndarray:
    """The selected radiomics of ``radiomics`` (N, features) standardised (:meth:`Selected.standardise`)."""
    return Selected.from_metadata(bundle.metadata["selection"]).standardise(radiomics)


def cohort_radiomics(bundle: Bundle, cases: Sequence[Case], cache: Optional[Path] = None) -> np.ndarray:
    """The bundle's selected radiomics of every case (N, features), from its protocol; kept in ``cache`` (an .npy
    beside a list of the case ids and files, recomputed when they differ)."""
    sel = Selected.from_metadata(bundle.metadata["selection"])
    key = [sel.strategy, *sel.names, *[f"{c.case_id}|{c.image}|{c.segmentation}" for c in cases]]
    if cache is not None and cache.with_suffix(".npy").is_file() and cache.with_suffix(".txt").is_file() \
            and cache.with_suffix(".txt").read_text().splitlines() == key:
        return np.load(cache.with_suffix(".npy"))
    protocol = bundle.load_file("radiomics_protocol")
    rows = []
    for c in cases:
        values = case_features(c.case_id, str(c.image), str(c.segmentation), [sel.strategy], protocol)
        rows.append([values[n] for n in sel.names])
    out = np.asarray(rows, np.float64)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache.with_suffix(".npy"), out)
        cache.with_suffix(".txt").write_text("\n".join(key) + "\n")
    return out


def case_inputs(bundle: Bundle, net: Any, cases: Sequence[Case], radiomics: Optional[np.ndarray],
                cache: Optional[Path] = None) -> dict[str, np.ndarray]:
    """A deep bundle's named inputs of every case, as in training (`orbitai.ivgc.data.deep_dataset`), stacked."""
    ds = deep_dataset(bundle, net, cases, radiomics, cache)
    return {"image": np.stack([ds.load(i)[0] for i in range(len(ds))]),
            **({} if ds.vectors is None else {n: np.asarray(a, np.float32) for n, a in ds.vectors.inputs.items()})}


def dataset_inputs(ds: IvgcImageDataset, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named network inputs of every case of ``ds`` (read through its cache), stacked."""
    items = [ds[i] for i in range(len(ds))]
    return {n: np.stack([np.asarray(it[n], np.float32) for it in items]) for n in names}


def features_logits(bundle: Bundle, net: Any, cases: Sequence[Case], device: Any = "cpu",
                    cache: Optional[Path] = None, name: str = "cases") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, logits, labels) of ``cases`` under the bundle (see the module docstring)."""
    y = np.asarray([case_label(c) for c in cases], int)
    uses_radiomics = bool(bundle.metadata.get("selection")) and (not bundle.architecture
                                                                 or "radiomics" in net.input_names)
    radiomics = cohort_radiomics(bundle, cases, cache / f"{name}_radiomics" if cache else None) \
        if uses_radiomics else None
    if not bundle.architecture:
        assert radiomics is not None
        return standardised(bundle, radiomics), binary_logits(net.predict_proba(radiomics)[:, 1]), y
    inputs = case_inputs(bundle, net, cases, radiomics, cache / "crops" if cache else None)
    feats, logits = features_and_logits(net, inputs, device, batch=8)
    return feats, logits, y


def fit_ivgc_trust(model_name: str, train: list[Case], validation: list[Case], test: Optional[list[Case]] = None,
                   device: Any = "cpu", write: bool = True, cache: Optional[Path] = None) -> dict[str, Any]:
    """Fit and (``write``) store the bundle's trust block; the report (with the test figures when ``test``)."""
    bundle, net = load_ivgc_model(model_name, device)
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
    f_tr, _, y_tr = features_logits(bundle, net, train, device, cache, "train")
    val = features_logits(bundle, net, validation, device, cache, "validation")
    tst = features_logits(bundle, net, test, device, cache, "test") if test else None
    trust, report = fit_and_report((f_tr, y_tr), val, tst,
                                   f"{len(train)} training and {len(validation)} validation cases")
    if write:
        write_trust(bundle.path, trust)
    return {"bundle": bundle.name, **report}
