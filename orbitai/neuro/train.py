"""NeuroDifferential training (paper 003): phantom input arrays, the paper's recipe on the shared
trainer (:func:`orbitai.classify.train.train_classifier`), held-out evaluation and repeated stratified
k-fold cross-validation with mean +- SD (:mod:`orbitai.metrics.classification`), and the
interpretable baseline: logistic regression on lesion-table features (counts and volumes per
location).

The shared trainer has Adam and a one-drop learning rate only; the paper's SGD with lr x 0.9 every
ten epochs is used as soon as :class:`~orbitai.classify.train.TrainSettings` has the fields
``optimizer``, ``momentum``, ``lr_step`` and ``lr_gamma`` (:func:`settings_for`); until then a
configuration trains with Adam (lr 1e-3, constant) and the summary says so (``recipe``).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from sklearn.model_selection import RepeatedStratifiedKFold

from orbitai.classify.tabular import tabular_classifier
from orbitai.classify.train import TrainHooks, TrainSettings, predict_proba, train_classifier
from orbitai.errors import InputError
from orbitai.metrics.classification import binary_classification_metrics, mean_sd
from orbitai.models import build_model, count_parameters
from orbitai.neuro.configs import NeuroConfig
from orbitai.neuro.data import DEFAULT_MODE, augment, classifier_input
from orbitai.neuro.nets import TwoViewNet, load_imagenet
from orbitai.phantoms.cohort import cohort_labels, make_case
from orbitai.progress import ProgressCallback
from orbitai.staging import write_json_atomic

#: Metrics reported per fold and as mean +- SD (the paper's Table 2).
CV_METRICS = ("accuracy", "sensitivity", "specificity", "auc")
#: Lesion-table location classes (orbitai.neuro.anatomy.REGIONS).
LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter", "callosal")
#: Brain-phantom lesion kinds -> the lesion table's location class of where they lie (the phantom's
#: disease-specific kinds are hidden class variables; a lesion table only sees locations).
PHANTOM_KIND_LOCATION = {"periventricular": "periventricular", "juxtacortical": "juxtacortical",
                         "infratentorial": "infratentorial", "deep_white_matter": "deep_white_matter",
                         "callosal": "callosal", "callosal_long": "callosal",
                         "third_ventricle_hypothalamus": "periventricular", "fourth_ventricle": "infratentorial",
                         "area_postrema": "infratentorial", "periaqueductal": "infratentorial"}
_SGD_FIELDS = {"optimizer", "momentum", "lr_step", "lr_gamma"}


def settings_for(cfg: NeuroConfig, epochs: Optional[int] = None) -> tuple[TrainSettings, str]:
    """The shared trainer's settings for ``cfg`` and a one-line description of the recipe used."""
    n = int(epochs if epochs is not None else cfg.epochs)
    have = {f.name for f in fields(TrainSettings)}
    if cfg.optimizer == "sgd" and _SGD_FIELDS <= have:
        sgd: dict[str, Any] = {"optimizer": "sgd", "momentum": cfg.momentum, "lr_step": cfg.lr_step,
                               "lr_gamma": cfg.lr_gamma}
        s = TrainSettings(epochs=n, lr=cfg.lr, lr_after=cfg.lr, decay_epoch=n, batch_size=cfg.batch_size,
                          conv_weight_decay=cfg.weight_decay, fc_weight_decay=cfg.weight_decay, **sgd)
        return s, (f"SGD lr {cfg.lr} x {cfg.lr_gamma} every {cfg.lr_step} {cfg.lr_step_unit}s (paper 003)")
    s = TrainSettings(epochs=n, lr=1e-3, lr_after=1e-3, decay_epoch=n, batch_size=cfg.batch_size,
                      conv_weight_decay=cfg.weight_decay, fc_weight_decay=cfg.weight_decay)
    return s, ("Adam lr 1e-3 constant: the shared trainer has no SGD/step decay yet (paper 003: SGD lr 0.01 "
               "x 0.9 every 10 steps)")


def _channel(x: np.ndarray) -> np.ndarray:
    """(N, D, H, W) -> (N, 1, D, H, W) without a copy (memory maps stay on disk)."""
    return np.asarray(x)[:, None]


def _augment_channel(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return augment(np.asarray(a, dtype=np.float32), rng)


def build(cfg: NeuroConfig) -> torch.nn.Module:
    """The configuration's network (ImageNet initialisation is :func:`orbitai.neuro.nets.load_imagenet`)."""
    return build_model(cfg.arch, **cfg.kwargs)


def train_model(cfg: NeuroConfig, x: np.ndarray, y: np.ndarray, workdir: str | os.PathLike, seed: int = 0,
                epochs: Optional[int] = None, imagenet: Optional[tuple[str, str]] = None,
                progress: Optional[ProgressCallback] = None,
                should_stop: Optional[Callable[[], bool]] = None) -> tuple[torch.nn.Module, dict]:
    """Train ``cfg`` on classifier inputs ``x`` (N, size, size, size) with labels ``y`` (1 = NMOSD);
    resumable in ``workdir``. ``imagenet`` = (path, sha256) of a local torchvision file for the
    two-view models. Returns the model and a summary (recipe, parameters, minutes, init note)."""
    x = np.asarray(x)
    y = np.asarray(y).astype(int)
    if x.ndim != 4 or x.shape[1:] != (cfg.size,) * 3:
        raise InputError(f"Classifier inputs must be (N, {cfg.size}, {cfg.size}, {cfg.size}); got {x.shape}.")
    torch.manual_seed(seed)
    model = build(cfg)
    init = {"pretrained": False, "note": "trained from scratch"}
    if cfg.arch == "neuro_twoview" and (cfg.imagenet or imagenet):
        path, sha = imagenet if imagenet else (None, None)
        init = load_imagenet(model if isinstance(model, TwoViewNet) else None, path, sha)  # type: ignore[arg-type]
    settings, recipe = settings_for(cfg, epochs)
    t0 = time.perf_counter()
    summary = train_classifier(model, _channel(x), y, settings, Path(workdir), augment=_augment_channel,
                               seed=seed, hooks=TrainHooks(progress, should_stop))
    minutes = (time.perf_counter() - t0) / 60
    summary.update({"config": cfg.to_dict(), "recipe": recipe, "parameters": count_parameters(model),
                    "minutes_this_run": round(minutes, 2), "init": init, "n_train": int(len(y)),
                    "threads": torch.get_num_threads()})
    write_json_atomic(Path(workdir) / "summary.json", summary, default=str)
    return model, summary


def predict(model: torch.nn.Module, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """P(NMOSD) per case of ``x`` (N, size, size, size)."""
    return predict_proba(model, _channel(x), batch_size=batch_size)[:, 1]


def evaluate(prob: np.ndarray, y: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, sensitivity, specificity, AUC, ... of probabilities against labels (1 = NMOSD)."""
    return binary_classification_metrics(np.asarray(y).astype(int), prob, threshold)


def check_folds(y: Sequence[int] | np.ndarray, folds: int) -> None:
    """Refuse labels that cannot make ``folds`` stratified folds (InputError with the counts per class)."""
    if folds < 2:
        raise InputError(f"--folds must be at least 2, got {folds}.")
    counts = np.bincount(np.asarray(y).astype(int), minlength=2)
    if counts.min() < folds:
        raise InputError(f"{folds}-fold stratified CV needs at least {folds} cases per class; got {counts.tolist()}.")


def cross_validate(fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray], y: Sequence[int] | np.ndarray,
                   folds: int = 5, repeats: int = 15, seed: int = 0,
                   progress: Optional[ProgressCallback] = None) -> dict:
    """Repeated stratified k-fold CV (paper: 5 folds x 15 repeats). ``fit_predict(train_idx, test_idx)``
    trains on the first indices and returns P(NMOSD) of the second. Returns per-fold metrics and
    their mean +- SD over all folds and repeats."""
    y = np.asarray(y).astype(int)
    check_folds(y, folds)
    rskf = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    rows = []
    total = folds * repeats
    for k, (tr, te) in enumerate(rskf.split(np.zeros(len(y)), y)):
        p = np.asarray(fit_predict(tr, te), float)
        m = evaluate(p, y[te])
        rows.append({"repeat": k // folds, "fold": k % folds, "n_test": int(len(te)),
                     **{key: float(m[key]) for key in CV_METRICS}})
        if progress:
            progress(k + 1, total, f"fold {k % folds + 1}/{folds} of repeat {k // folds + 1}/{repeats}: "
                                   f"acc {m['accuracy']:.3f}")
    ms = mean_sd([{key: r[key] for key in CV_METRICS} for r in rows])
    return {"folds": folds, "repeats": repeats, "seed": seed, "per_fold": rows,
            "mean": {k: ms[k][0] for k in CV_METRICS}, "sd": {k: ms[k][1] for k in CV_METRICS}}


def lesion_features(summary: Mapping) -> dict[str, float]:
    """Baseline features from a lesion table's ``summary()`` (count, total mL, % ICV, counts and
    volumes per location; missing entries are 0) in a fixed order."""
    counts = summary.get("counts", summary.get("location_counts", {})) or {}
    vols = summary.get("volumes_ml", summary.get("location_volumes_ml", {})) or {}
    out = {"count": float(summary.get("count", 0)), "total_ml": float(summary.get("total_ml", 0.0))}
    if "percent_icv" in summary:
        out["percent_icv"] = float(summary["percent_icv"])
    for loc in LOCATIONS:
        out[f"count_{loc}"] = float(counts.get(loc, 0))
    if vols:
        for loc in LOCATIONS:
            out[f"ml_{loc}"] = float(vols.get(loc, 0.0))
    return out


def phantom_lesion_summary(info: Mapping) -> dict:
    """A lesion-table-like summary of a brain phantom from its truth (``info``): count, total mL and
    counts per location class (the phantom's lesion kinds mapped by :data:`PHANTOM_KIND_LOCATION`;
    the phantom records no per-kind volumes, so no volumes per location)."""
    counts = {loc: 0 for loc in LOCATIONS}
    for kind, n in dict(info.get("lesion_counts", {})).items():
        counts[PHANTOM_KIND_LOCATION.get(kind, "deep_white_matter")] += int(n)
    return {"count": int(info.get("n_lesions", sum(counts.values()))),
            "total_ml": float(info.get("lesion_volume_ml", 0.0)), "counts": counts}


def oracle_features(info: Mapping, kinds: Sequence[str]) -> dict[str, float]:
    """The phantom's hidden class variables: lesion count per generating kind and total volume."""
    c = dict(info.get("lesion_counts", {}))
    return {**{f"kind_{k}": float(c.get(k, 0)) for k in kinds}, "total_ml": float(info.get("lesion_volume_ml", 0))}


def feature_matrix(rows: Sequence[Mapping[str, float]]) -> tuple[np.ndarray, list[str]]:
    names = sorted({k for r in rows for k in r})
    return np.array([[float(r.get(k, 0.0)) for k in names] for r in rows], float), names


def logistic_baseline(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """Standardised L2 logistic regression (:func:`orbitai.classify.tabular.tabular_classifier`)."""
    return tabular_classifier("logreg", seed).fit(np.asarray(x, float), np.asarray(y).astype(int))


def phantom_arrays(seed: int, n: int, cache_dir: str | os.PathLike, mode: str = DEFAULT_MODE, size: int = 100,
                   progress: Optional[ProgressCallback] = None, atypical: float = 0.0) -> dict:
    """Classifier inputs of ``n`` brain-flair phantoms (cohort ``seed``, balanced labels, truth lesion
    masks as the lesion input), cached as ``<cache_dir>/brain-flair_s<seed>_n<n>_<mode>_<size>.npy`` with
    a JSON side file (labels, lesion counts per kind, lesion volume). Returns ``{"x", "y", "info"}``.
    ``atypical`` > 0: the cohort with that share of atypical cases (``..._atypical<percent>`` in the name)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / (f"brain-flair_s{seed}_n{n}_{mode}_{size}" + (f"_atypical{round(atypical * 100)}" if atypical else ""))
    npy, side = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.exists() and side.exists():
        meta = json.loads(side.read_text())
        return {"x": np.load(npy, mmap_mode="r"), "y": np.asarray(meta["labels"], int), "info": meta["info"]}
    labels = cohort_labels("brain-flair", n, seed)
    x = np.lib.format.open_memmap(str(npy) + ".part", mode="w+", dtype=np.float32, shape=(n, size, size, size))
    infos = []
    for i, lab in enumerate(labels):
        case = make_case("brain-flair", seed, i, lab, atypical)
        x[i], _ = classifier_input(case.image, case.labels, mode, size)
        infos.append({k: case.info[k] for k in ("seed", "disease", "lesion_counts", "n_lesions",
                                                  "lesion_volume_ml", "atypical")})
        if progress:
            progress(i + 1, n, f"phantom {i + 1}/{n}")
    x.flush()
    del x
    os.replace(str(npy) + ".part", npy)
    write_json_atomic(side, {"labels": labels, "info": infos}, indent=None)
    return phantom_arrays(seed, n, cache_dir, mode, size, atypical=atypical)


def _cli_cache(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Cache classifier inputs of brain-flair phantoms.")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--mode", default=DEFAULT_MODE)
    a = p.parse_args(argv)
    log: Callable[[int, int, str], None] = lambda i, n, m: print(m, flush=True)  # noqa: E731
    phantom_arrays(a.seed, a.n, a.cache, a.mode, progress=log)


if __name__ == "__main__":
    _cli_cache()
