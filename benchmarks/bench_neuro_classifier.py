"""NeuroDifferential classifiers (paper 003) on held-out brain phantoms.

Training cohort: 160 brain-flair phantoms of seed 16000 (balanced, label 1 = NMOSD); held-out: 80
phantoms of seed 17000, a seed no training uses. Input: the truth lesion mask (mode ``lesion_mask``,
the paper's default) cropped with the FLAIR's crop kernel and resized to 100^3, cached once as
.npy under ``$NEURO_CLASSIFIER_CACHE`` (default /tmp/classifier/cache).

* the demo configurations of twoview18, twoview34, resnet3d18, resnet3d34 (orbitai.neuro.configs),
  each trained on the whole training cohort, one torch thread, then scored on the held-out cohort:
  accuracy, sensitivity, specificity, AUC, parameters, training minutes; the state dict is saved
  under ``$NEURO_CLASSIFIER_WORK/weights`` with its SHA-256;
* the interpretable baseline: logistic regression on lesion-table features (count, volume, counts
  per location class) and the oracle: logistic regression on the phantom's hidden class variables
  (lesion count per generating kind, volume) -- the ceiling; both also as 5-fold CV x 15 repeats
  on the training cohort (mean +- SD).

* ``--n-train 70`` with a demo configuration: the same training on a balanced subset of the
  paper's training-fold size (88 patients x 4/5 = 70), where the paper saw 3D ResNets generalise
  worse (results tagged ``<name>@n70``);
* ``cv:<demo configuration>``: the paper's protocol for a deep model, stratified 5-fold CV on the
  training cohort (``--deep-repeats`` repeats; the paper's 15 are out of reach on two CPU cores).

``python -m benchmarks.bench_neuro_classifier --part baselines|twoview18-demo|cv:twoview18-demo|...`` runs one part
(results under ``$NEURO_CLASSIFIER_WORK/results``), ``--collect`` writes
``benchmarks/results/neuro_classifier.json``; without arguments every part runs, then collect.

95 % intervals (``notes["ci95"]``): Wilson intervals of every held-out accuracy (n = 80 phantoms) and of a deep
model's CV accuracy when it ran one repeat (n = the 160 out-of-fold predictions; the baselines' 15-repeat CV
means have none); a stratified bootstrap of the held-out AUC (2000 resamples, seed 0) from the per-case
probabilities a training run keeps (``heldout_prob``). ``--intervals`` adds the accuracy intervals to the
existing result file alone (the counts follow from accuracy x n).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, record_interval, write_result

TRAIN_SEED, TRAIN_N = 16000, 160
HELDOUT_SEED, HELDOUT_N = 17000, 80
MODELS = ("twoview18-demo", "twoview34-demo", "resnet3d18-demo", "resnet3d34-demo")
CACHE = Path(os.environ.get("NEURO_CLASSIFIER_CACHE", "/tmp/classifier/cache"))
WORK = Path(os.environ.get("NEURO_CLASSIFIER_WORK", "/tmp/classifier"))
KEYS = ("accuracy", "sensitivity", "specificity", "auc")
#: ``--atypical A``: both cohorts with that share of atypical, other-disease-like phantoms (classes that
#: overlap, so that the architectures can be compared below the ceiling); results under WORK/atypical<A>
#: and in benchmarks/results/neuro_classifier_atypical.json.
ATYPICAL = 0.0


def _data():
    from orbitai.neuro.train import phantom_arrays

    return (phantom_arrays(TRAIN_SEED, TRAIN_N, CACHE, "lesion_mask", atypical=ATYPICAL),
            phantom_arrays(HELDOUT_SEED, HELDOUT_N, CACHE, "lesion_mask", atypical=ATYPICAL))


def _save(name: str, doc: dict) -> None:
    from orbitai.staging import write_text_atomic

    (WORK / "results").mkdir(parents=True, exist_ok=True)
    write_text_atomic(WORK / "results" / f"{name}.json", json.dumps(doc, indent=2, default=float))


def baselines(repeats: int = 15) -> dict:
    from orbitai.neuro.train import (cross_validate, evaluate, feature_matrix, lesion_features, logistic_baseline,
                                     oracle_features, phantom_lesion_summary)

    tr, te = _data()
    kinds = sorted({k for i in tr["info"] + te["info"] for k in i["lesion_counts"]})
    out: dict = {}
    for name, feats in (("logreg_lesion_table", lambda i: lesion_features(phantom_lesion_summary(i))),
                        ("oracle_hidden_variables", lambda i: oracle_features(i, kinds))):
        xtr, cols = feature_matrix([feats(i) for i in tr["info"]])
        xte = np.array([[feats(i).get(c, 0.0) for c in cols] for i in te["info"]])
        t0 = time.perf_counter()
        model = logistic_baseline(xtr, tr["y"])
        held = evaluate(model.predict_proba(xte)[:, 1], te["y"])
        def fit_predict(a: np.ndarray, b: np.ndarray, xs: np.ndarray = xtr) -> np.ndarray:
            return logistic_baseline(xs[a], tr["y"][a]).predict_proba(xs[b])[:, 1]

        cv = cross_validate(fit_predict, tr["y"], 5, repeats, seed=0)
        out[name] = {"features": cols, "heldout": {k: held[k] for k in KEYS},
                     "cv_mean": cv["mean"], "cv_sd": cv["sd"], "cv_repeats": repeats,
                     "seconds": round(time.perf_counter() - t0, 2)}
    _save("baselines", out)
    return out


def _subset(y: np.ndarray, n: int) -> np.ndarray:
    """The first n // 2 cases of each class (a cohort is shuffled, so these are a random balanced subset)."""
    return np.sort(np.concatenate([np.flatnonzero(y == c)[: n // 2] for c in (0, 1)]))


def train_one(name: str, n_train: int = 0) -> dict:
    import torch

    from orbitai.bundle.core import sha256_file
    from orbitai.neuro.configs import get_config
    from orbitai.neuro.train import evaluate, predict, train_model

    torch.set_num_threads(1)
    tr, te = _data()
    cfg = get_config(name)
    tag = f"{name}@n{n_train}" if n_train else name
    work = WORK / "runs" / tag
    xtr, ytr = tr["x"], tr["y"]
    if n_train:
        keep = _subset(ytr, n_train)
        xtr, ytr = np.asarray(xtr)[keep], ytr[keep]
    t0 = time.perf_counter()
    log = lambda i, n, m: print(f"{name}: {m}", flush=True)  # noqa: E731
    model, summary = train_model(cfg, xtr, ytr, work, seed=0, progress=log)
    wall = (time.perf_counter() - t0) / 60
    epoch_minutes = 0.0
    csv = work / "epochs.csv"
    if csv.exists():
        import csv as _csv
        with csv.open() as f:
            epoch_minutes = sum(float(r["seconds"]) for r in _csv.DictReader(f)) / 60
    t1 = time.perf_counter()
    prob = predict(model, te["x"])
    held = evaluate(prob, te["y"])
    weights = WORK / "weights" / f"neuro_{tag.replace('-', '_').replace('@', '_')}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), str(weights) + ".part")
    os.replace(str(weights) + ".part", weights)
    doc = {"config": cfg.to_dict(), "recipe": summary["recipe"], "parameters": summary["parameters"],
           "init": summary["init"], "training_minutes": round(epoch_minutes, 2),
           "wall_minutes_this_run": round(wall, 2), "threads": 1, "n_train": int(len(ytr)),
           "heldout": {k: held[k] for k in KEYS}, "heldout_n": int(len(te["y"])),
           "heldout_y": [int(v) for v in te["y"]], "heldout_prob": [round(float(v), 6) for v in prob],
           "predict_seconds_per_case": round((time.perf_counter() - t1) / len(te["y"]), 3),
           "weights": str(weights), "sha256": sha256_file(weights)}
    _save(tag, doc)
    return doc


def cv_one(name: str, repeats: int = 1, folds: int = 5) -> dict:
    """Repeated stratified k-fold CV of one demo configuration on the training cohort (the paper's
    protocol; 15 repeats in the paper, ``repeats`` here for CPU time)."""
    import torch

    from orbitai.neuro.configs import get_config
    from orbitai.neuro.train import cross_validate, predict, train_model

    torch.set_num_threads(1)
    tr, _ = _data()
    cfg = get_config(name)
    x, y = np.asarray(tr["x"]), tr["y"]
    k = [0]

    def fit_predict(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        model, _ = train_model(cfg, x[a], y[a], WORK / "cv" / name / f"split{k[0]}", seed=k[0])
        k[0] += 1
        return predict(model, x[b])

    t0 = time.perf_counter()
    log = lambda i, n, m: print(f"cv {name}: {m}", flush=True)  # noqa: E731
    cv = cross_validate(fit_predict, y, folds, repeats, seed=0, progress=log)
    doc = {**cv, "config": cfg.to_dict(), "minutes": round((time.perf_counter() - t0) / 60, 2)}
    _save(f"cv_{name}", doc)
    return doc


def _count(rate: float, n: int) -> int | None:
    """The number of successes behind ``rate`` of ``n`` cases (None unless the rate fixes it)."""
    k = round(rate * n)
    return k if abs(k / n - rate) < 1e-6 else None


def accuracy_intervals(metrics: dict, notes: dict) -> None:
    """Wilson intervals of the held-out accuracies (HELDOUT_N) and of single-repeat deep CV accuracies (TRAIN_N
    out-of-fold predictions), from the accuracies and their n."""
    from orbitai.metrics.intervals import wilson_ci

    for key, value in metrics.items():
        n = None
        if key.endswith("_heldout_accuracy") and key != "best_twoview_heldout_accuracy":
            n = HELDOUT_N
        elif key.endswith("_cv_accuracy_mean"):
            model = key[: -len("_cv_accuracy_mean")]
            cv = notes.get("cv", {}).get(f"cv_{model}-demo")
            n = TRAIN_N if cv and cv.get("repeats") == 1 else None
        k = _count(float(value), n) if n else None
        if k is not None:
            record_interval(notes, key, wilson_ci(k, n),
                            "Wilson score interval" + (" over the out-of-fold predictions" if "_cv_" in key else ""))


def auc_intervals(res: dict, notes: dict) -> None:
    """Stratified bootstrap intervals of the held-out AUCs whose per-case probabilities a run kept."""
    from orbitai.metrics.intervals import auc_ci

    for tag, r in res.items():
        if isinstance(r, dict) and r.get("heldout_prob"):
            key = tag.replace("-demo", "").replace("@", "_")
            record_interval(notes, f"{key}_heldout_auc", auc_ci(r["heldout_y"], r["heldout_prob"]),
                            "stratified percentile bootstrap over cases, 2000 resamples, seed 0")


def intervals_only() -> Path:
    """Add the accuracy intervals to the existing result file (no training, no WORK folder needed)."""
    path = RESULTS / f"{'neuro_classifier_atypical' if ATYPICAL else 'neuro_classifier'}.json"
    doc = json.loads(path.read_text())
    accuracy_intervals(doc["metrics"], doc["notes"])
    return write_result(doc["area"], doc["metrics"], doc["targets"], doc["notes"], measured=doc)


def collect() -> Path:
    res = {p.stem: json.loads(p.read_text()) for p in sorted((WORK / "results").glob("*.json"))}
    metrics: dict[str, float] = {}
    targets: dict[str, str] = {}
    for name in MODELS:
        if name not in res:
            continue
        r = res[name]
        key = name.replace("-demo", "")
        for k in KEYS:
            metrics[f"{key}_heldout_{k}"] = float(r["heldout"][k])
        metrics[f"{key}_parameters"] = float(r["parameters"])
        metrics[f"{key}_training_minutes"] = float(r["training_minutes"])
        targets[f"{key}_training_minutes"] = "<= 30"
    for name in MODELS:
        if f"cv_{name}" in res:
            r = res[f"cv_{name}"]
            key = name.replace("-demo", "")
            for k in KEYS:
                metrics[f"{key}_cv_{k}_mean"] = float(r["mean"][k])
                metrics[f"{key}_cv_{k}_sd"] = float(r["sd"][k])
    for name, r in res.get("baselines", {}).items():
        for k in KEYS:
            metrics[f"{name}_heldout_{k}"] = float(r["heldout"][k])
            metrics[f"{name}_cv_{k}_mean"] = float(r["cv_mean"][k])
            metrics[f"{name}_cv_{k}_sd"] = float(r["cv_sd"][k])
    for tag, r in res.items():
        if "@n" in tag:
            key = tag.replace("-demo", "").replace("@", "_")
            metrics[f"{key}_heldout_accuracy"] = float(r["heldout"]["accuracy"])
            metrics[f"{key}_heldout_auc"] = float(r["heldout"]["auc"])
    tv = [metrics[f"{a}_heldout_accuracy"] for a in ("twoview18", "twoview34") if f"{a}_heldout_accuracy" in metrics]
    r3 = [metrics[f"{a}_heldout_accuracy"] for a in ("resnet3d18", "resnet3d34") if f"{a}_heldout_accuracy" in metrics]
    if tv:
        metrics["best_twoview_heldout_accuracy"] = max(tv)
        targets["best_twoview_heldout_accuracy"] = ">= 0.80"
    if tv and r3:
        metrics["best_twoview_minus_best_resnet3d_accuracy"] = max(tv) - max(r3)
        targets["best_twoview_minus_best_resnet3d_accuracy"] = "> 0"
    notes = {"cohorts": f"train {TRAIN_N} phantoms seed {TRAIN_SEED}; held-out {HELDOUT_N} phantoms seed "
                        f"{HELDOUT_SEED}; input lesion_mask (truth masks), 100^3"
                        + (f"; atypical share {ATYPICAL:g} (orbitai phantom brain-flair --atypical)" if ATYPICAL else ""),
             "models": {k: {f: v for f, v in r.items() if f not in ("heldout", "heldout_y", "heldout_prob")}
                        for k, r in res.items() if k != "baselines" and not k.startswith("cv_")},
             "cv": {k: {f: v for f, v in r.items() if f != "per_fold"} for k, r in res.items() if k.startswith("cv_")},
             "baselines": res.get("baselines", {})}
    accuracy_intervals(metrics, notes)
    auc_intervals(res, notes)
    notes["per_case"] = {k.replace("-demo", "").replace("@", "_"): {"y": r["heldout_y"], "prob": r["heldout_prob"]}
                         for k, r in res.items() if isinstance(r, dict) and r.get("heldout_prob")}
    return write_result("neuro_classifier_atypical" if ATYPICAL else "neuro_classifier", metrics, targets, notes)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", action="append", default=[],
                   help="baselines, a demo configuration name, or cv:<demo configuration name>")
    p.add_argument("--collect", action="store_true")
    p.add_argument("--intervals", action="store_true",
                   help="only add the accuracy intervals to the existing benchmarks/results file")
    p.add_argument("--repeats", type=int, default=15, help="CV repeats of the baselines")
    p.add_argument("--n-train", type=int, default=0,
                   help="train a demo configuration on a balanced subset of this many training cases")
    p.add_argument("--deep-repeats", type=int, default=1, help="CV repeats of a deep model (cv:<name>)")
    p.add_argument("--atypical", type=float, default=0.0,
                   help="share of atypical brain-flair phantoms in both cohorts (overlapping classes)")
    a = p.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    global ATYPICAL, WORK
    if a.atypical:
        ATYPICAL, WORK = a.atypical, WORK / f"atypical{a.atypical:g}"
    if a.intervals:
        intervals_only()
        return
    parts = a.part or ([] if a.collect else ["baselines", *MODELS])
    for part in parts:
        if part == "baselines":
            doc = baselines(a.repeats)
        elif part.startswith("cv:"):
            doc = cv_one(part[3:], a.deep_repeats)
        else:
            doc = train_one(part, a.n_train)
        print(json.dumps({k: v for k, v in doc.items() if k != "per_fold"}, indent=1, default=float))
    if a.collect or not a.part:
        collect()


if __name__ == "__main__":
    main()
