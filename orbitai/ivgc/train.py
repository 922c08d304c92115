"""Train an IVGC-response model (paper 001) and write a bundle (task ``ivgc_response``).

Two families share one bundle layout (``metadata.json`` + files listed under ``files``, never pickle):

* radiomics models (``svm``, ``logreg``, ``rf``): :func:`orbitai.classify.tabular_classifier` fitted on
  the selected features of one ROI strategy (``orbitai ivgc select``), stored with skops;
* deep models (``resnet50``, ``rdinet``, ``rdinet_clinical``): a configuration of
  :mod:`orbitai.ivgc.configs` trained by :func:`orbitai.classify.fit` (checkpoint after every epoch;
  rerunning the same command resumes) with a 4:1 stratified holdout of the training cohort
  (:func:`orbitai.cohort.splits.stratified_holdout`) whose metrics go into the metadata.

Every bundle keeps the ROI strategy, the selection (names, standardisation, LASSO coefficients), the
radiomics protocol that computed the features, whether the 16 clinical features are needed (with the
training cohort's fill values for the ones allowed to be missing) and the decision threshold, so that
:mod:`orbitai.ivgc.predict` recomputes exactly the model's inputs for one patient.
"""
from __future__ import annotations

import csv
import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence, cast

import numpy as np
import torch
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from orbitai.bundle.core import WEIGHTS, sha256_file, write_bundle
from orbitai.bundle.formats import save_json, save_sklearn
from orbitai.classify.tabular import TABULAR_KINDS, TabularKind, tabular_classifier
from orbitai.classify.train import BundleWriting, TrainHooks, fit, predict_proba
from orbitai.classify.calibration import binary_logits
from orbitai.classify.trust import fit_on_split, fit_trust, write_trust
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.cohort.manifest import Case
from orbitai.cohort.splits import check_stratified_folds, stratified_holdout, stratified_kfold
from orbitai.errors import ConfigError, InputError
from orbitai.ivgc.configs import IvgcConfig, get_config
from orbitai.ivgc.data import MARGIN_MM, ImageAugment, IvgcImageDataset, case_label
from orbitai.ivgc.kinds import DEEP_KINDS, KINDS
from orbitai.ivgc.models import Selected
from orbitai.ivgc.trust import dataset_inputs
from orbitai.metrics.classification import binary_classification_metrics, mean_sd
from orbitai.models import count_parameters
from orbitai.progress import ProgressCallback, emit
from orbitai.radiomics.protocol import RadiomicsProtocol
from orbitai.staging import staged_folder, strict_json, training_folder, training_work_folder

log = logging.getLogger(__name__)

#: Every model kind ``orbitai ivgc train --model`` takes, radiomics first.
TASK = "ivgc_response"
#: Bundle file roles.
CLASSIFIER_FILE, SELECTION_FILE, PROTOCOL_FILE = "classifier.skops", "selection.json", "radiomics_protocol.json"
DEFAULT_THRESHOLD = 0.5
#: Folds of the SVM's Platt scaling (`orbitai.classify.tabular`: CalibratedClassifierCV(cv=5)).
PLATT_FOLDS = 5
INTENDED_USE = "Demonstration only: trained on synthetic phantoms, not for clinical use."


# --------------------------------------------------------------------------------------------- inputs
def feature_matrix(table: Any, case_ids: Sequence[str], names: Sequence[str], source: str = "The feature table") -> np.ndarray:
    """(cases, features) of ``table`` (:class:`orbitai.ivgc.features.WideTable`), refusing missing cases,
    missing columns and non-finite values by name."""
    absent = [n for n in names if n not in table.names]
    if absent:
        raise InputError(f"{source} lacks the selected feature(s) {absent[:4]}{' ...' if len(absent) > 4 else ''}; "
                         "extract it with the same protocol and ROI strategies as the selection.")
    missing = [c for c in case_ids if c not in set(table.case_ids)]
    if missing:
        raise InputError(f"{source} has no row for case(s) {', '.join(missing[:6])}"
                         f"{' ...' if len(missing) > 6 else ''}; run 'orbitai ivgc features' on this manifest.")
    cols = [table.names.index(n) for n in names]
    X = np.asarray(table.rows(list(case_ids)), dtype=float)[:, cols]
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(f"{source}: case {case_ids[r]} has a non-finite {names[c]}.")
    return X


def clinical_matrix(cases: Sequence[Case]) -> tuple[np.ndarray, dict[str, float]]:
    """The 16 clinical features of ``cases`` (:data:`orbitai.cohort.clinical.IVGC_CLINICAL`, validated;
    missing values allowed to be filled get the training cases' median or mode) and the fill values."""
    raw = IVGC_CLINICAL.parse_rows([c.row for c in cases], [c.case_id for c in cases])
    fill = IVGC_CLINICAL.fill_values(raw)
    return IVGC_CLINICAL.impute(raw, fill), fill


def case_labels(cases: Sequence[Case], purpose: str = "training") -> np.ndarray:
    """Every case's 0/1 label (checked, named) and both classes present (``purpose`` names what needs
    them: training, evaluation)."""
    y = np.array([case_label(c) for c in cases], dtype=int)
    if len(set(y.tolist())) < 2:
        raise ConfigError(f"All {len(cases)} cases have label {int(y[0]) if len(y) else '?'}; {purpose} needs "
                          "responders (1) and non-responders (0).")
    return y


def check_epochs(epochs: Optional[int]) -> None:
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise InputError(f"--epochs must be a whole number of at least 1, got {epochs!r}.")


def _cohort(cases: Sequence[Case], y: np.ndarray, data: str) -> dict[str, Any]:
    return {"cases": len(cases), "responders": int(y.sum()), "non_responders": int(len(y) - y.sum()), "data": data}


def _protocol() -> dict[str, Any]:
    return RadiomicsProtocol.load("ivgc").to_dict()


@dataclass(frozen=True)
class TrainingSet:
    """What a model trains on: the ``cases`` (with their labels), the radiomics feature ``table`` (None for a model
    without radiomics) and the feature ``selection`` (``orbitai ivgc select``'s; None without radiomics)."""

    cases: Sequence[Case]
    table: Any = None
    selection: Optional[dict[str, Any]] = None


# --------------------------------------------------------------------------------------------- radiomics
def train_radiomics(data: TrainingSet, kind: str, strategy: str, out: Path, seed: int = 0, training_data: str = "",
                    protocol: Optional[dict] = None, cv_folds: int = 5, overwrite: bool = False) -> Path:
    """Fit a ``kind`` pipeline (svm, logreg, rf) on the selected features of ``strategy`` over all
    ``data.cases`` and write the bundle ``out`` (`orbitai.bundle.core.write_bundle`, ``overwrite``); its stratified
    ``cv_folds``-fold CV AUC goes into the metadata."""
    cases, table, selection = data.cases, data.table, data.selection
    assert selection is not None    # a radiomics model takes the selected features (the command refuses none)
    if kind not in TABULAR_KINDS:
        raise ConfigError(f"{kind!r} is not a radiomics model; use one of {', '.join(TABULAR_KINDS)}.")
    t0 = time.perf_counter()
    y = case_labels(cases)
    sel = Selected.from_selection(selection, strategy)
    ids = [c.case_id for c in cases]
    X = feature_matrix(table, ids, sel.names)
    model = tabular_classifier(kind, seed)  # type: ignore[arg-type]
    smallest = int(np.bincount(y).min())
    inner = PLATT_FOLDS if kind == "svm" else 1     # the SVM's Platt scaling cross-validates inside the fit
    if smallest < inner:
        raise ConfigError(f"The SVM's Platt scaling uses {inner}-fold cross-validation: it needs at least {inner} "
                          f"cases of each class; the manifest has {smallest} of the rarer class.")
    metrics: dict[str, Any] = {}
    # outer CV folds whose training part still holds ``inner`` cases of each class
    folds = max([k for k in range(2, max(2, cv_folds) + 1) if k <= smallest and smallest * (k - 1) // k >= inner],
                default=0)
    p_oof = None
    if folds >= 2:
        p_oof = cross_val_predict(clone(model), X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                                  method="predict_proba")[:, 1]
        metrics["cv"] = {"folds": folds, **_rounded(binary_classification_metrics(y, p_oof))}
    model.fit(X, y)
    p_train = model.predict_proba(X)[:, 1]
    # how far to trust a call (issue 51): the standardised features of all cases and the threshold on their
    # distances; the calibration on the out-of-fold probabilities (each case seen by a model not fitted on it), none
    # without cross-validation
    z = (X - np.asarray(sel.mean)) / np.where(np.asarray(sel.scale) > 0, np.asarray(sel.scale), 1.0)
    if p_oof is not None:
        trust = fit_trust(z, y, z, binary_logits(p_oof), y, f"{len(y)} training cases, calibrated out of fold "
                                                            f"({folds} folds); threshold on the training cases")
    else:
        trust = replace(fit_trust(z, y, z, binary_logits(p_train), y, f"{len(y)} training cases; threshold on them; "
                                  "not calibrated (too few cases of a class to cross-validate)"),
                        temperature=1.0, bias=0.0, calibration="none")
        trust = replace(trust, ece_after=trust.ece_before)
    metrics["training"] = _rounded(binary_classification_metrics(y, p_train))
    meta = _metadata(out.name, kind, strategy, sel, clinical=False, data=training_data, cohort=_cohort(cases, y, training_data))
    meta["training"].update({"seed": seed, "minutes": round((time.perf_counter() - t0) / 60, 3)})
    meta["metrics"] = metrics

    def write(tmp: Path) -> dict[str, Any]:
        return {"files": {"classifier": save_sklearn(model, tmp / CLASSIFIER_FILE),
                          "selection": save_json(sel.to_metadata(), tmp / SELECTION_FILE),
                          "radiomics_protocol": save_json(protocol or _protocol(), tmp / PROTOCOL_FILE)}}

    path = write_bundle(out, meta, write, overwrite).path
    if trust is not None:
        write_trust(path, trust)
    return path


def _rounded(m: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "n_pos", "accuracy", "sensitivity", "specificity", "ppv", "npv", "auc", "auc_ci95")
    return {k: (round(v, 4) if isinstance(v, float) else [round(float(x), 4) for x in v] if isinstance(v, list) else v)
            for k, v in m.items() if k in keep}


def _metadata(name: str, kind: str, strategy: str, sel: Optional[Selected], clinical: bool, data: str,
              cohort: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name, "version": "1", "task": TASK, "kind": kind,
        "strategy": strategy,
        "description": f"IVGC response ({kind}, ROI strategy {strategy}), paper 001",
        "selection": None if sel is None else sel.to_metadata(),
        "uses_radiomics": kind != "resnet50",
        "clinical": clinical, "clinical_features": IVGC_CLINICAL.names if clinical else [],
        "threshold": DEFAULT_THRESHOLD, "classes": ["non-responder", "responder"],
        "training": {"cohort": cohort}, "training_data": data, "intended_use": INTENDED_USE}
    return meta


# --------------------------------------------------------------------------------------------- deep
@dataclass(frozen=True)
class _Cohort:
    """The cases a deep model trains on, as its runs read them: labels, ROI strategy, the selection and the
    per-case radiomics and clinical vectors (None: the model takes none), with the clinical fill values."""

    cases: Sequence[Case]
    y: np.ndarray
    strategy: str
    sel: Optional[Selected]
    radiomics: Optional[np.ndarray]
    clinical: Optional[np.ndarray]
    fill: dict[str, float] = field(default_factory=dict)


def train_deep(data: TrainingSet, config: IvgcConfig | str, strategy: str, out: Path, device: Any = "cpu",
               progress: Optional[ProgressCallback] = None, training_data: str = "", num_workers: int = 0,
               overwrite: bool = False) -> Path:
    """Train the deep recipe ``config`` (a name of :data:`orbitai.ivgc.configs.CONFIGS`, or one with its run's seed,
    epochs and holdout: ``get_config(name).for_run(seed, epochs, holdout)``) on ``data.cases`` with ``test_fraction``
    of them (stratified, whole patients) set aside for the metadata's held-out metrics;
    checkpoints in ``.<out name>-training`` beside ``out`` (rerun to resume; removed when the bundle is
    written, or when a failure or a cancel comes before the first checkpoint, `orbitai.staging.training_folder`);
    ``overwrite``: see `orbitai.bundle.core.write_bundle`."""
    cases, table, selection = data.cases, data.table, data.selection
    cfg = get_config(config) if isinstance(config, str) else config
    check_epochs(cfg.settings.epochs)
    seed, holdout = cfg.seed, cfg.test_fraction
    y = case_labels(cases)
    sel = Selected.from_selection(selection, strategy) if selection is not None else None
    if cfg.uses_radiomics and sel is None:
        raise InputError(f"Model {cfg.model} takes the selected radiomics features; give --features and --selection.")
    ids = [c.case_id for c in cases]
    radiomics = feature_matrix(table, ids, sel.names) if cfg.uses_radiomics and sel is not None else None
    clinical, fill = clinical_matrix(cases) if cfg.uses_clinical else (None, {})
    if holdout:
        tr, te = stratified_holdout(y.tolist(), holdout, seed)
    else:
        tr, te = list(range(len(cases))), []
    out = Path(out)
    work = training_work_folder(out)
    progress = progress or emit
    t0 = time.perf_counter()
    with training_folder(work):
        return _train_deep(_Cohort(cases, y, strategy, sel, radiomics, clinical, fill), cfg, tr, te, work, device,
                           progress, num_workers, BundleWriting(out, training_data, overwrite, t0))


def _vectors(radiomics: Optional[np.ndarray], clinical: Optional[np.ndarray], idx: Sequence[int]) -> Optional[dict]:
    v = {}
    if radiomics is not None:
        v["radiomics"] = radiomics[list(idx)].astype(np.float32)
    if clinical is not None:
        v["clinical"] = clinical[list(idx)].astype(np.float32)
    return v or None


def _fit_deep(cohort: _Cohort, cfg: IvgcConfig, tr: Sequence[int], te: Sequence[int], work: Path, device,
              progress: Optional[ProgressCallback], num_workers: int = 0):
    """Train ``cfg``'s network (its settings and seed) on cases ``tr`` (validated on ``te``) in ``work``; (model,
    summary, held-out dataset or None, settings run)."""
    cases, strategy, sel, radiomics, clinical = cohort.cases, cohort.strategy, cohort.sel, cohort.radiomics, \
        cohort.clinical
    settings, seed = cfg.settings, cfg.seed

    def dataset(idx: Sequence[int]) -> IvgcImageDataset:
        return IvgcImageDataset.from_cases([cases[i] for i in idx], strategy, vectors=_vectors(radiomics, clinical, idx),
                                           shape=cfg.shape, roi_only=cfg.roi_only, cache_dir=work / "inputs")

    train_set, test_set = dataset(tr), (dataset(te) if len(te) else None)
    torch.manual_seed(seed)
    model: Any = cfg.build(len(sel.names) if cfg.uses_radiomics and sel is not None else 0)
    if cfg.uses_radiomics:
        assert radiomics is not None    # train_deep and cross_validate refuse a radiomics model without features
        parts = [radiomics[list(tr)]] + ([clinical[list(tr)]] if clinical is not None else [])
        model.set_medical_scaling(np.concatenate(parts, 1))
    log.info("%s: %d training cases, %d held out", cfg.name, len(tr), len(te))
    summary = fit(model, train_set, settings, work, val=test_set, augment=ImageAugment(cfg.augment), seed=seed,
                  device=device, num_workers=num_workers, hooks=TrainHooks(progress))
    return model, summary, test_set, settings


def _train_deep(cohort: _Cohort, cfg: IvgcConfig, tr: Sequence[int], te: Sequence[int], work: Path, device,
                progress: ProgressCallback, num_workers: int, writing: BundleWriting) -> Path:
    out, training_data, overwrite, t0 = writing.out, writing.training_data, writing.overwrite, writing.t0
    cases, y, strategy, sel, radiomics, clinical, fill = (cohort.cases, cohort.y, cohort.strategy, cohort.sel,
                                                          cohort.radiomics, cohort.clinical, cohort.fill)
    seed = cfg.seed
    model, summary, test_set, settings = _fit_deep(cohort, cfg, tr, te, work, device, progress, num_workers)
    meta = _metadata(out.name, cfg.model, strategy, sel, cfg.uses_clinical, training_data,
                     _cohort(cases, y, training_data))
    meta["architecture"] = cfg.architecture(len(sel.names) if cfg.uses_radiomics and sel is not None else 0)
    meta["config"] = cfg.name
    meta["parameters"] = count_parameters(model)
    meta["input"] = {"roi_only": cfg.roi_only, "shape": [cfg.shape[2], cfg.shape[1], cfg.shape[0]],
                     "shape_array": list(cfg.shape), "margin_mm": _margin(), "normalisation": "z-score over the box"}
    if clinical is not None:
        meta["clinical_fill"] = fill
    last = summary.get("last_epoch") or {}
    meta["training"].update({"settings": asdict(settings), "seed": seed, "train_cases": len(tr),
                             "heldout_cases": len(te), "epochs_run": int(last["epoch"]) + 1 if "epoch" in last
                             else (settings.epochs if summary.get("finished") else 0),
                             "minutes": round((time.perf_counter() - t0) / 60, 2),
                             "epoch_minutes_all_runs": _epoch_minutes(work / "epochs.csv"), "device": str(device),
                             "threads": torch.get_num_threads(), "processes": summary["processes"],
                             "history": summary["history"]})
    trust = None
    if test_set is not None:
        p = predict_proba(model, test_set, device)[:, 1]
        meta["metrics"] = {"heldout": _rounded(binary_classification_metrics(y[te], p))}
        # how far to trust a call (issue 51): training features; threshold and calibration on the held-out split
        train_set = IvgcImageDataset.from_cases([cases[i] for i in tr], strategy, vectors=_vectors(radiomics, clinical, tr),
                                                shape=cfg.shape, roi_only=cfg.roi_only, cache_dir=work / "inputs")
        names = model.input_names
        trust = fit_on_split(model, dataset_inputs(train_set, names), y[tr], dataset_inputs(test_set, names), y[te],
                             device)
    model = model.cpu()

    def write(tmp: Path) -> dict[str, Any]:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS)
        files = {"radiomics_protocol": save_json(_protocol(), tmp / PROTOCOL_FILE)}
        if sel is not None:
            files["selection"] = save_json(sel.to_metadata(), tmp / SELECTION_FILE)
        return {"weights_sha256": sha256_file(tmp / WEIGHTS), "files": files}

    path = write_bundle(out, meta, write, overwrite).path
    if trust is not None:
        write_trust(path, trust)
    return path


def _epoch_minutes(path: Path) -> float:
    """Minutes of every epoch in the training's ``epochs.csv``, over all runs (a resumed training's
    ``minutes`` counts only its last run)."""
    if not path.is_file():
        return 0.0
    with path.open(newline="") as f:
        return round(sum(float(r.get("seconds") or 0) for r in csv.DictReader(f)) / 60, 2)


def _margin() -> float:
    return MARGIN_MM


# --------------------------------------------------------------------------------------------- cross-validation
#: Files that :func:`cross_validate` writes into its output folder (beside one work folder per deep fold).
CV_FILE = "cv.json"


def cv_entries(folds: int) -> tuple[str, ...]:
    """What :func:`cross_validate` writes into OUT with ``folds`` folds: ``cv.json`` and ``fold<k>`` folders."""
    return (CV_FILE, *(f"fold{k}" for k in range(max(0, folds))))


def cross_validate(data: TrainingSet, kind: str, strategy: str, out: Path, folds: int = 5, seed: int = 0,
                   config: str = "", epochs: Optional[int] = None, device: Any = "cpu",
                   progress: Optional[ProgressCallback] = None) -> dict[str, Any]:
    """Stratified ``folds``-fold cross-validation of one model kind in the training cohort ``data`` (paper 001):
    per fold the model trained on the other folds (radiomics: the pipeline; deep: ``config``, a work folder
    ``fold<k>`` with checkpoints) and its metrics on the fold; ``cv.json`` with the folds and mean +- SD.
    Everything is checked first, written beside ``out`` and moved in whole (`orbitai.staging.staged_folder`)."""
    cases, table, selection = data.cases, data.table, data.selection
    check_epochs(epochs)
    y = case_labels(cases)
    check_stratified_folds(y.tolist(), folds)
    if kind not in KINDS:
        raise ConfigError(f"Unknown model {kind!r}; use one of {', '.join(KINDS)}.")
    deep = kind in DEEP_KINDS
    sel = Selected.from_selection(selection, strategy) if selection is not None else None
    if sel is None and kind != "resnet50":
        raise InputError(f"Model {kind} takes the selected radiomics features; give --features and --selection.")
    ids = [c.case_id for c in cases]
    X = feature_matrix(table, ids, sel.names) if sel is not None and kind != "resnet50" else None
    clinical = clinical_matrix(cases)[0] if kind == "rdinet_clinical" else None
    out = Path(out)
    # an earlier run's fold folders (beside its cv.json) are replaced; nothing else in OUT is touched
    earlier = [p.name for p in out.glob("fold*") if p.is_dir() and p.name[4:].isdigit()] \
        if (out / CV_FILE).is_file() else []
    cfg = get_config(config).for_run(seed, epochs) if deep else None
    with staged_folder(out, replaces=[CV_FILE, *earlier], last=[CV_FILE]) as work:
        return _cross_validate(_Cohort(cases, y, strategy, sel, X, clinical), kind, work, folds, seed, cfg, device,
                               progress or emit)


def _cross_validate(cohort: _Cohort, kind: str, work: Path, folds: int, seed: int, cfg: Optional[IvgcConfig],
                    device, progress: ProgressCallback) -> dict[str, Any]:
    """The folds of :func:`cross_validate` (``cfg``: the deep recipe as run, None for a radiomics model)."""
    cases, y, X, strategy = cohort.cases, cohort.y, cohort.radiomics, cohort.strategy
    per_fold = []
    for k in range(folds):
        tr, va = stratified_kfold(y.tolist(), folds, k, seed)
        if cfg is not None:
            model, _, val_set, _ = _fit_deep(cohort, cfg, tr, va, work / f"fold{k}", device, None)
            p = predict_proba(model, val_set, device)[:, 1]
        else:
            assert X is not None        # cross_validate refuses a radiomics model without features
            pipe = tabular_classifier(cast(TabularKind, kind), seed)
            pipe.fit(X[tr], y[tr])
            p = pipe.predict_proba(X[va])[:, 1]
        m = {"fold": k, **_rounded(binary_classification_metrics(y[va], p))}
        per_fold.append(m)
        progress(k + 1, folds, f"fold {k + 1}/{folds} AUC {m['auc']:.3f}")
    keys = ["auc", "accuracy", "sensitivity", "specificity", "ppv", "npv"]
    summary = {"model": kind, "strategy": strategy, "config": cfg.name if cfg else None, "folds": folds, "seed": seed,
               "cases": len(cases), "per_fold": per_fold,
               "mean_sd": {k: [round(v, 4) for v in ms] for k, ms in
                           mean_sd([{k: f[k] for k in keys} for f in per_fold]).items()}}
    (work / CV_FILE).write_text(strict_json(summary))
    return summary
