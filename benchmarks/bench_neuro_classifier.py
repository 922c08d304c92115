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

``python -m benchmarks.bench_neuro_classifier --part baselines|twoview18-demo|...`` runs one part
(results under ``$NEURO_CLASSIFIER_WORK/results``), ``--collect`` writes
``benchmarks/results/neuro_classifier.json``; without arguments every part runs, then collect.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result

TRAIN_SEED, TRAIN_N = 16000, 160
HELDOUT_SEED, HELDOUT_N = 17000, 80
MODELS = ("twoview18-demo", "twoview34-demo", "resnet3d18-demo", "resnet3d34-demo")
CACHE = Path(os.environ.get("NEURO_CLASSIFIER_CACHE", "/tmp/classifier/cache"))
WORK = Path(os.environ.get("NEURO_CLASSIFIER_WORK", "/tmp/classifier"))
KEYS = ("accuracy", "sensitivity", "specificity", "auc")


def _data():
    from orbitai.neuro.train import phantom_arrays

    return (phantom_arrays(TRAIN_SEED, TRAIN_N, CACHE, "lesion_mask"),
            phantom_arrays(HELDOUT_SEED, HELDOUT_N, CACHE, "lesion_mask"))


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


def train_one(name: str) -> dict:
    import torch

    from orbitai.bundle.core import sha256_file
    from orbitai.neuro.configs import get_config
    from orbitai.neuro.train import evaluate, predict, train_model

    torch.set_num_threads(1)
    tr, te = _data()
    cfg = get_config(name)
    work = WORK / "runs" / name
    t0 = time.perf_counter()
    log = lambda i, n, m: print(f"{name}: {m}", flush=True)  # noqa: E731
    model, summary = train_model(cfg, tr["x"], tr["y"], work, seed=0, progress=log)
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
    weights = WORK / "weights" / f"neuro_{name.replace('-', '_')}.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), str(weights) + ".part")
    os.replace(str(weights) + ".part", weights)
    doc = {"config": cfg.to_dict(), "recipe": summary["recipe"], "parameters": summary["parameters"],
           "init": summary["init"], "training_minutes": round(epoch_minutes, 2),
           "wall_minutes_this_run": round(wall, 2), "threads": 1, "n_train": int(len(tr["y"])),
           "heldout": {k: held[k] for k in KEYS}, "heldout_n": int(len(te["y"])),
           "predict_seconds_per_case": round((time.perf_counter() - t1) / len(te["y"]), 3),
           "weights": str(weights), "sha256": sha256_file(weights)}
    _save(name, doc)
    return doc


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
    for name, r in res.get("baselines", {}).items():
        for k in KEYS:
            metrics[f"{name}_heldout_{k}"] = float(r["heldout"][k])
            metrics[f"{name}_cv_{k}_mean"] = float(r["cv_mean"][k])
            metrics[f"{name}_cv_{k}_sd"] = float(r["cv_sd"][k])
    tv = [metrics[f"{a}_heldout_accuracy"] for a in ("twoview18", "twoview34") if f"{a}_heldout_accuracy" in metrics]
    r3 = [metrics[f"{a}_heldout_accuracy"] for a in ("resnet3d18", "resnet3d34") if f"{a}_heldout_accuracy" in metrics]
    if tv:
        metrics["best_twoview_heldout_accuracy"] = max(tv)
        targets["best_twoview_heldout_accuracy"] = ">= 0.80"
    if tv and r3:
        metrics["best_twoview_minus_best_resnet3d_accuracy"] = max(tv) - max(r3)
        targets["best_twoview_minus_best_resnet3d_accuracy"] = "> 0"
    notes = {"cohorts": f"train {TRAIN_N} phantoms seed {TRAIN_SEED}; held-out {HELDOUT_N} phantoms seed "
                        f"{HELDOUT_SEED}; input lesion_mask (truth masks), 100^3",
             "models": {k: {f: v for f, v in r.items() if f not in ("heldout",)} for k, r in res.items()
                        if k != "baselines"},
             "baselines": res.get("baselines", {})}
    return write_result("neuro_classifier", metrics, targets, notes)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", action="append", default=[], help="baselines or a demo configuration name")
    p.add_argument("--collect", action="store_true")
    p.add_argument("--repeats", type=int, default=15, help="CV repeats of the baselines")
    a = p.parse_args(argv if argv is not None else sys.argv[1:] if __name__ == "__main__" else [])
    parts = a.part or ([] if a.collect else ["baselines", *MODELS])
    for part in parts:
        print(json.dumps(baselines(a.repeats) if part == "baselines" else train_one(part), indent=1, default=float))
    if a.collect or not a.part:
        collect()


if __name__ == "__main__":
    main()
