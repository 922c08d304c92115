"""Train a TAO activity classifier (paper 000 recipe) and write a model bundle."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import torch

from orbitai.bundle import save_bundle
from orbitai.training.checkpoint import SIDECAR_SUFFIX
from orbitai.classify.train import BundleWriting, TrainHooks, TrainSettings, predict_proba, train_classifier
from orbitai.classify.trust import fit_on_split, write_trust
from orbitai.cohort.manifest import Case
from orbitai.cohort.splits import check_stratified_folds, stratified_holdout, stratified_kfold
from orbitai.errors import ConfigError, InputError
from orbitai.metrics.classification import binary_classification_metrics, mean_sd
from orbitai.models import build_model, count_parameters
from orbitai.progress import ProgressCallback, emit
from orbitai.staging import staged_folder, strict_json, training_folder, training_work_folder
from orbitai.tao.configs import TaoConfig
from orbitai.tao.data import EyeSamples, augment, case_label, centre_crop, prepare_eyes
from orbitai.tao.spec import TaoInputSpec

log = logging.getLogger(__name__)

#: Files that :func:`cross_validate` writes into its output folder (beside one folder per run and fold).
CV_FILES = ("cv.json", "eyes.npz", "eyes.npz" + SIDECAR_SUFFIX)


def _is_fold(name: str) -> bool:
    run, _, fold = name.partition("_")
    return run[:3] == "run" and run[3:].isdigit() and fold[:4] == "fold" and fold[4:].isdigit()


def cv_entries(folds: int, runs: int) -> tuple[str, ...]:
    """What :func:`cross_validate` writes into OUT: `CV_FILES` and one ``run<r>_fold<k>`` folder per run and fold."""
    return (*CV_FILES, *(f"run{r}_fold{k}" for r in range(max(0, runs)) for k in range(max(0, folds))))


def check_epochs(epochs: Optional[int]) -> None:
    """Refuse an epoch override below 1 (None keeps the configuration's schedule)."""
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise InputError(f"epochs must be a whole number of at least 1, got {epochs!r}.")


def schedule(cfg: TaoConfig, epochs: Optional[int]) -> TrainSettings:
    """The configuration's training settings with ``epochs`` overridden (the decay epoch scales along)."""
    check_epochs(epochs)
    if epochs is None:
        return cfg.settings
    return replace(cfg.settings, epochs=epochs,
                   decay_epoch=max(1, round(cfg.settings.decay_epoch * epochs / cfg.settings.epochs)))


def _fit(samples: EyeSamples, val: Optional[EyeSamples], cfg: TaoConfig, work: Path, seed: int,
         epochs: Optional[int], device, progress) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = build_model(cfg.arch, base_channels=cfg.base_channels)
    settings = schedule(cfg, epochs)
    summary = train_classifier(model, samples.x, samples.y, settings, work, augment=augment,
                               val=None if val is None else (centre_crop(val.x), val.y), seed=seed, device=device,
                               hooks=TrainHooks(progress))
    return model, summary


def epochs_run(summary: dict) -> int:
    """How many epochs the trained model has run, from :func:`train_classifier`'s summary."""
    last = summary.get("last_epoch") or {}
    if "epoch" in last:
        return int(last["epoch"]) + 1
    return int(summary["settings"]["epochs"]) if summary.get("finished") else 0


def _scores(model, s: EyeSamples, device) -> dict:
    p = predict_proba(model, centre_crop(s.x), device)[:, 1]
    return binary_classification_metrics(s.y, p)


def train_tao(cases: list[Case], cfg: TaoConfig, out: Path, seed: int = 0, holdout: float = 0.2,
              epochs: Optional[int] = None, device="cpu", progress: Optional[ProgressCallback] = None,
              training_data: str = "", overwrite: bool = False) -> Path:
    """Paper protocol: ``holdout`` of the cases set aside as a test split (whole patients, each class on
    both sides), the network trained on the rest; its held-out metrics go into the bundle's metadata, with
    the schedule actually run (``epochs`` >= 1 overrides the configuration's). Every option, label and the
    split are checked before any work; a failure or a cancel before the first checkpoint leaves no work
    folder, nor does a success (`orbitai.staging.training_folder`); ``overwrite``: see
    `orbitai.bundle.core.write_bundle`."""
    check_epochs(epochs)
    held = heldout_cases(cases, holdout, seed)
    out = Path(out)
    work = training_work_folder(out)
    progress = progress or (lambda d, t, m: emit(d, t, m))
    t0 = time.perf_counter()
    with training_folder(work):
        return _train_tao(cases, cfg, work, held, seed, epochs, device, progress,
                          BundleWriting(out, training_data, overwrite, t0))


def heldout_cases(cases: list[Case], holdout: float, seed: int) -> set[str]:
    """The case ids of the test split (`stratified_holdout`; none for ``holdout`` 0), every label read
    (`case_label`); `ConfigError` with the numbers when the cohort cannot be split so."""
    labels = [case_label(c) for c in cases]
    if holdout == 0:
        if len(set(labels)) < 2:
            raise ConfigError(f"All {len(cases)} cases have label {labels[0] if labels else '?'}; training needs "
                              "both active (1) and inactive (0) cases.")
        return set()
    _, te = stratified_holdout(labels, holdout, seed)
    return {cases[i].case_id for i in te}


def _train_tao(cases: list[Case], cfg: TaoConfig, work: Path, held: set[str], seed: int, epochs: Optional[int],
               device, progress: ProgressCallback, writing: BundleWriting) -> Path:
    out, training_data, overwrite, t0 = writing.out, writing.training_data, writing.overwrite, writing.t0
    data = prepare_eyes(cases, progress=lambda d, t, m: progress(d, t, f"preprocessing: {m}"),
                        cache=work / "eyes.npz")
    tr = [i for i, c in enumerate(data.case_ids) if c not in held]
    te = [i for i, c in enumerate(data.case_ids) if c in held]
    train_set, test_set = data.subset(tr), (data.subset(te) if te else None)
    log.info("%d training eyes, %d held-out eyes", len(tr), len(te))
    model, summary = _fit(train_set, test_set, cfg, work, seed, epochs, device, progress)
    meta = {"name": out.name, "version": "1", "task": "tao_activity", "architecture": {"name": cfg.arch, "args": {"base_channels": cfg.base_channels}}, "network": cfg.network, "config": cfg.name,
            "classes": ["inactive", "active"], "input": TaoInputSpec().to_metadata(),
            "parameters": count_parameters(model), "training": {
                "settings": asdict(schedule(cfg, epochs)), "epochs_run": epochs_run(summary), "seed": seed,
                "processes": summary["processes"], "history": summary["history"],
                "data": training_data, "train_eyes": len(tr), "heldout_eyes": len(te),
                "minutes": round((time.perf_counter() - t0) / 60, 2), "device": str(device),
                "threads": torch.get_num_threads()},
            "intended_use": "Demonstration only: trained on synthetic phantoms, not for clinical use."}
    trust = None
    if test_set is not None:
        meta["heldout_metrics"] = _scores(model, test_set, device)
        # how far to trust a call (issue 51): features of the training eyes, threshold and calibration on the held-out
        trust = fit_on_split(model, centre_crop(train_set.x), train_set.y, centre_crop(test_set.x), test_set.y,
                             device, "eyes")
    else:
        log.warning("No held-out cases (--holdout 0): the bundle has no out-of-distribution statistics or "
                    "calibration; fit them with 'orbitai tao trust'.")
    save_bundle(model.cpu(), out, meta, overwrite)
    if trust is not None:
        write_trust(out, trust)
    return out


def cross_validate(cases: list[Case], cfg: TaoConfig, out: Path, folds: int = 5, runs: int = 1, seed: int = 0,
                   epochs: Optional[int] = None, device="cpu") -> dict:
    """Stratified k-fold cross-validation over whole cases (every fold trains and validates on both
    classes), repeated ``runs`` times with different seeds; writes ``cv.json`` with per-fold metrics and
    mean +- SD, with the eye cache and one work folder per run and fold, into ``out``. Options and labels are
    checked before any work; everything is written beside ``out`` and moved in when complete, so a failure
    or a cancel leaves nothing (`orbitai.staging.staged_folder`)."""
    check_epochs(epochs)
    labels = [case_label(c) for c in cases]
    check_stratified_folds(labels, folds)
    if runs < 1:
        raise ConfigError(f"--runs must be at least 1, got {runs}.")
    out = Path(out)
    # an earlier run's folds (beside its cv.json) are replaced too; nothing else in OUT is touched
    earlier = [p.name for p in out.glob("run*_fold*") if p.is_dir() and _is_fold(p.name)] \
        if (out / CV_FILES[0]).is_file() else []
    with staged_folder(out, replaces=[*CV_FILES, *earlier], last=[CV_FILES[0]]) as work:
        summary = _cross_validate(cases, labels, cfg, work, folds, runs, seed, epochs, device)
    return summary


def _cross_validate(cases: list[Case], labels: list[int], cfg: TaoConfig, out: Path, folds: int, runs: int,
                    seed: int, epochs: Optional[int], device) -> dict:
    data = prepare_eyes(cases, cache=out / CV_FILES[1])
    ids = [c.case_id for c in cases]
    per_fold = []
    for run in range(runs):
        for fold in range(folds):
            tr_c, _ = stratified_kfold(labels, folds, fold, seed + run)
            trs = {ids[i] for i in tr_c}
            tr = [i for i, c in enumerate(data.case_ids) if c in trs]
            va = [i for i, c in enumerate(data.case_ids) if c not in trs]
            model, _ = _fit(data.subset(tr), data.subset(va), cfg, out / f"run{run}_fold{fold}", seed + run, epochs,
                            device, None)
            m = _scores(model, data.subset(va), device)
            m.update(run=run, fold=fold)
            per_fold.append(m)
            emit(len(per_fold), runs * folds, f"run {run} fold {fold} AUC {m['auc']:.3f}")
    keys = ["accuracy", "precision", "sensitivity", "specificity", "f1", "auc"]
    summary = {"config": cfg.name, "folds": folds, "runs": runs, "per_fold": per_fold,
               "mean_sd": {k: list(v) for k, v in mean_sd([{k: f[k] for k in keys} for f in per_fold]).items()}}
    (out / CV_FILES[0]).write_text(strict_json(summary, default=float))
    return summary
