"""Paper 003's study on a cohort manifest: classifier inputs of every case, a bundle trained by a
configuration's recipe, repeated stratified k-fold cross-validation with the
interpretable lesion-table baseline beside the network.

Manifest: ``case_id,image,segmentation,label`` -- the FLAIR, its white-matter lesion segmentation
(every non-zero voxel is lesion; ``orbitai neuro lesions`` makes one) and the class (1 = NMOSD,
0 = MS). The classifier inputs of a cohort are computed once and cached in the work folder, keyed by
the files' contents and the input specification, so a rerun or a resumed training does not redo them.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from orbitai.bundle.core import save_bundle, sha256_input
from orbitai.classify.trust import fit_on_split, write_trust
from orbitai.cohort.manifest import Case, binary_label, naming_case
from orbitai.cohort.splits import stratified_holdout
from orbitai.errors import ConfigError
from orbitai.io import read_volume
from orbitai.neuro.anatomy import extract_brain
from orbitai.neuro.configs import get_config
from orbitai.neuro.data import classifier_input
from orbitai.neuro.lesion_table import lesion_table
from orbitai.neuro.predict import read_lesions
from orbitai.neuro.train import (
    check_folds,
    cross_validate,
    evaluate,
    feature_matrix,
    lesion_features,
    logistic_baseline,
    predict,
    train_model,
)
from orbitai.progress import ProgressCallback, emit
from orbitai.staging import staged_folder, training_folder, training_work_folder, write_json_atomic, write_text_atomic

#: Class names of labels 0 and 1 (the manifests' ``label`` column; P(NMOSD) is output 1).
CLASSES = ("MS", "NMOSD")
CV_FILE = "cv.json"


def case_label(case: Case) -> int:
    """1 = NMOSD, 0 = MS (one-line error naming the case otherwise)."""
    return binary_label(case, negative=CLASSES[0], positive=CLASSES[1])


def _digest(cases: Sequence[Case], mode: str, size: int) -> str:
    """What a cohort's classifier inputs are computed from: the input specification and each case's id,
    files and their SHA-256 (:func:`orbitai.bundle.core.sha256_input`), so a cache is never used for other images."""
    h = hashlib.sha256(f"{mode}|{size}".encode())
    for c in cases:
        for p in (c.image, c.segmentation):
            h.update(f"{c.case_id}|{p}|{sha256_input(p) if p is not None else ''}".encode())
    return h.hexdigest()[:16]


def cohort_inputs(cases: Sequence[Case], mode: str, size: int, cache_dir: Optional[Path] = None,
                  progress: Optional[ProgressCallback] = None) -> np.ndarray:
    """(N, size, size, size) float32 classifier inputs of the cases (FLAIR + lesion segmentation), cached
    in ``cache_dir`` when given (a cache of other files or another specification is not used)."""
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"inputs-{_digest(cases, mode, size)}.npy"
        if cache.is_file():
            x = np.load(cache, mmap_mode="r")
            if x.shape == (len(cases), size, size, size):
                return x
    x = np.zeros((len(cases), size, size, size), np.float32)
    for i, c in enumerate(cases):
        if c.segmentation is None:
            raise ConfigError(f"Case {c.case_id}: the manifest gives no lesion segmentation; make one with "
                              "'orbitai neuro lesions' and list it in the 'segmentation' column.")
        with naming_case(c.case_id):
            flair = read_volume(c.image)
            x[i], _ = classifier_input(flair, read_lesions(c.segmentation, flair, case_id=c.case_id), mode, size)
        if progress:
            progress(i + 1, len(cases), f"classifier input of {c.case_id}")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".part.npy")
        np.save(tmp, x)
        os.replace(tmp, cache)
    return x


def train_bundle(cases: Sequence[Case], config: str, out: Path, seed: int = 0, holdout: float = 0.2,
                 epochs: Optional[int] = None, imagenet: Optional[tuple[str, str]] = None,
                 progress: Optional[ProgressCallback] = None, training_data: str = "", overwrite: bool = False) -> Path:
    """Train configuration ``config`` (``orbitai neuro configs``) on the cases with ``holdout`` of them set
    aside (stratified) for the metadata's held-out metrics; write the bundle ``out`` (`orbitai.bundle.core.write_bundle`:
    an earlier bundle of this task is replaced, any other folder refused; ``overwrite`` moves one aside).
    The work folder ``.<out>-training`` beside it keeps the input cache and the checkpoints: the same
    command resumes; it is removed when the bundle is written (`orbitai.staging.training_folder`)."""
    cfg = get_config(config)
    labels = np.array([case_label(c) for c in cases])
    if len(set(labels.tolist())) < 2:   # said as such, whatever --holdout (not as a split problem)
        raise ConfigError(f"All {len(cases)} cases have label {int(labels[0])}; training needs MS (0) and NMOSD (1).")
    if holdout:
        tr, te = stratified_holdout(labels.tolist(), holdout, seed)
    else:
        tr, te = list(range(len(cases))), []
    out = Path(out)
    work = training_work_folder(out)
    report = progress or emit
    t0 = time.perf_counter()
    with training_folder(work):
        _same_training(work, cases, cfg, seed, holdout)
        x = cohort_inputs(cases, cfg.input_mode, cfg.size, work, lambda d, t, m: report(d, t, f"inputs: {m}"))
        model, summary = train_model(cfg, x[tr], labels[tr], work, seed=seed, epochs=epochs,
                                     imagenet=imagenet, progress=report)
        meta: dict[str, Any] = {
            "name": out.name, "version": "1", "task": "neuro_differential",
            "architecture": {"name": cfg.arch, "args": dict(cfg.kwargs)}, "network": cfg.architecture,
            "config": cfg.name, "classes": list(CLASSES), "threshold": 0.5,
            "input": {"mode": cfg.input_mode, "size": cfg.size},
            "parameters": int(summary["parameters"]),
            "training": {"recipe": summary["recipe"], "init": summary["init"], "seed": seed,
                         "epochs": int(epochs or cfg.epochs), "data": training_data, "train_cases": len(tr),
                         "heldout_cases": len(te), "minutes": round((time.perf_counter() - t0) / 60, 2),
                         "threads": summary.get("threads"), "processes": summary["processes"],
                         "history": summary["history"]},
            "intended_use": "Demonstration only: trained on synthetic brain phantoms, not for clinical use."}
        trust = None
        if te:
            # how far to trust a call (issue 51): training features; threshold and calibration on the held-out split
            channel = np.asarray(x, np.float32)[:, None]
            trust = fit_on_split(model, channel[tr], labels[tr], channel[te], labels[te], what="cases")
            m = evaluate(predict(model, x[te]), labels[te])
            meta["heldout_metrics"] = {k: round(float(m[k]), 4) for k in ("accuracy", "sensitivity", "specificity",
                                                                          "auc")}
        save_bundle(model.cpu(), out, meta, overwrite)
        if trust is not None:
            write_trust(out, trust)
    return out


def _same_training(work: Path, cases: Sequence[Case], cfg: Any, seed: int, holdout: float) -> None:
    """Resume only a training of the same cases, files, configuration and split: the work folder records
    what it trains; a checkpoint of another training there is set aside (renamed), never resumed."""
    key = json.dumps({"inputs": _digest(cases, cfg.input_mode, cfg.size), "config": cfg.to_dict(), "seed": seed,
                      "holdout": holdout}, sort_keys=True)
    record = work / "training.json"
    if record.is_file() and record.read_text() != key and (work / "checkpoint.pt").is_file():
        stale = work / f"checkpoint-other-training-{int(time.time())}.pt"
        os.replace(work / "checkpoint.pt", stale)
        (work / "checkpoint.pt.sha256").unlink(missing_ok=True)
        print(f"the work folder {work} held a training of other cases or settings; its checkpoint was moved to "
              f"{stale.name} and this training starts over", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record, key)


def cross_validate_config(cases: Sequence[Case], config: str, out: Path, folds: int = 5, repeats: int = 15,
                          seed: int = 0, epochs: Optional[int] = None,
                          progress: Optional[ProgressCallback] = None) -> dict:
    """Paper 003's repeated stratified k-fold CV of configuration ``config`` on the cases, with the
    logistic-regression baseline on the lesion table's location counts and volumes on the same folds;
    writes ``out/cv.json`` (per fold, mean +- SD) and returns it."""
    cfg = get_config(config)
    labels = np.array([case_label(c) for c in cases])
    check_folds(labels, folds)       # before the classifier inputs and the lesion tables (the slow steps)
    missing = [c.case_id for c in cases if c.segmentation is None]
    if missing:
        raise ConfigError(f"Case {missing[0]}: the manifest gives no lesion segmentation; make one with "
                          "'orbitai neuro lesions' and list it in the 'segmentation' column.")
    report = progress or emit
    with staged_folder(Path(out), replaces=[CV_FILE, "work"], last=[CV_FILE]) as work:
        x = cohort_inputs(cases, cfg.input_mode, cfg.size, work / "work", lambda d, t, m: report(d, t, f"inputs: {m}"))
        feats, names = feature_matrix([lesion_features(s) for s in lesion_summaries(cases, report)])
        counter = {"k": 0}

        def fit_net(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            counter["k"] += 1
            model, _ = train_model(cfg, x[tr], labels[tr], work / "work" / f"fold{counter['k']:03d}", seed=seed,
                                   epochs=epochs)
            return predict(model, x[te])

        def fit_lr(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            return logistic_baseline(feats[tr], labels[tr], seed).predict_proba(feats[te])[:, 1]

        net = cross_validate(fit_net, labels, folds, repeats, seed, report)
        base = cross_validate(fit_lr, labels, folds, repeats, seed)
        result = {"config": cfg.name, "network": cfg.architecture, "cases": len(cases), "network_cv": net,
                  "lesion_table_logistic_regression": {**base, "features": names}}
        write_json_atomic(work / CV_FILE, result)
    return result


def lesion_summaries(cases: Sequence[Case], progress: Optional[ProgressCallback] = None) -> list[dict]:
    """The lesion table summary of every case (its FLAIR's brain extraction, its lesion segmentation)."""
    out = []
    for i, c in enumerate(cases):
        flair = read_volume(c.image)
        assert c.segmentation is not None
        out.append(lesion_table(read_lesions(c.segmentation, flair, case_id=c.case_id), extract_brain(flair)).summary())
        if progress:
            progress(i + 1, len(cases), f"lesion table of {c.case_id}")
    return out
