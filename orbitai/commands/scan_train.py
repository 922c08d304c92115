"""Training and held-out test of the scan classifier on renderings of the 20 real heads (`orbitai.phantoms.heads`).

The 16 training heads give the training renderings; the 4 held-out heads (never seen) give the test set, on which
every figure of ``benchmarks/results/scan_classifier.json`` is measured. About 15 minutes on 2 CPU cores.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from orbitai.phantoms.brain import brain_flair_case
from orbitai.phantoms.heads import HELD_OUT, TRAINING, render_scan, store_values
from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case
from orbitai.scan import DEFAULT_SURE
from orbitai.scan.classifier import QUESTIONS, Ensemble, ScanClassifier, save
from orbitai.scan.features import describe
from orbitai.staging import strict_json

log = logging.getLogger(__name__)

#: Ensemble members per question and their hidden layer.
MEMBERS = 5
HIDDEN = (64,)
#: The members' L2 penalty.
ALPHA = 0.1


def _one(args: tuple[int, int]) -> tuple[np.ndarray, dict]:
    template, seed = args
    r = render_scan(template, np.random.default_rng(seed))
    return describe(r.volume), r.truth()


def renderings(templates: tuple[int, ...], per_template: int, seed: int, workers: int = 2
               ) -> tuple[np.ndarray, list[dict]]:
    """Feature rows and truths of ``per_template`` random renderings of each template."""
    jobs = [(t, seed * 1_000_003 + t * 1000 + i) for t in templates for i in range(per_template)]
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(_one, jobs, chunksize=4))
    return np.stack([x for x, _ in done]), [t for _, t in done]


#: The project's own phantoms (the SPL/NAC atlas's orbits, patient 26's brain): what each rendering is.
#: name -> (orbit_case modality, contrast table or None, weighting, fat suppressed).
ATLAS_KINDS = {"ct": ("ct", None, None, None), "t1": ("t1", None, "T1", False), "t2_spir": ("t2", None, "T2", True),
               "t2": ("t2", "t2_no_fat_suppression", "T2", False), "flair": ("t2", "flair", "FLAIR", False),
               "flair_iso_globe": ("t2", "flair_iso_globe", "FLAIR", False),
               "t2_iso_globe": ("t2", "t2_iso_globe", "T2", False)}


def _phantom(args: tuple[str, int]) -> tuple[np.ndarray, dict]:
    """One of the project's phantoms ("brain" or an :data:`ATLAS_KINDS` name), stored as given or re-stored."""
    kind, seed = args
    rng = np.random.default_rng(seed)
    if kind == "brain":
        vol = brain_flair_case(seed).image
        truth = {"modality": "MR", "weighting": "FLAIR", "fat_suppressed": None, "view": "brain_extracted",
                 "orbits_in_view": False, "brain_in_view": True}
    else:
        modality, contrast, weighting, fs = ATLAS_KINDS[kind]
        vol = orbit_case(seed, modality, rendering=Rendering(contrast=CONTRASTS[contrast] if contrast else None)).image
        truth = {"modality": "CT" if modality == "ct" else "MR", "weighting": weighting, "fat_suppressed": fs,
                 "view": "atlas_orbits", "orbits_in_view": True, "brain_in_view": False}
    storage = "as phantom"
    if rng.random() < 0.5:
        values, storage = store_values(vol.array.astype(np.float64), str(truth["modality"]), rng)
        vol = vol.with_array(values)
    return describe(vol), dict(truth, storage=storage, template=kind)


def phantom_renderings(per_kind: int, seed: int, workers: int = 2, brains: int = 0) -> tuple[np.ndarray, list[dict]]:
    """Feature rows and truths of the project's own phantoms: ``per_kind`` of each atlas kind, ``brains`` brains."""
    jobs = [(k, seed * 1_000_003 + 50_000 + i) for k in ATLAS_KINDS for i in range(per_kind)]
    jobs += [("brain", seed * 1_000_003 + 90_000 + i) for i in range(brains)]
    with ProcessPoolExecutor(workers) as pool:
        done = list(pool.map(_phantom, jobs, chunksize=2))
    return np.stack([x for x, _ in done]), [t for _, t in done]


def _targets(truths: list[dict], question: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows that answer ``question`` (MR only for weighting and fat suppression) and their class indices."""
    answers = QUESTIONS[question]
    rows, y = [], []
    for i, t in enumerate(truths):
        if question in ("weighting", "fat_suppressed") and t["modality"] != "MR":
            continue
        rows.append(i)
        y.append(answers.index(t[question]))
    return np.array(rows), np.array(y)


def fit(x: np.ndarray, truths: list[dict], seed: int = 0) -> dict[str, Ensemble]:
    """One MLP ensemble per question."""
    out = {}
    for q in QUESTIONS:
        rows, y = _targets(truths, q)
        scaler = StandardScaler().fit(x[rows])
        scale = np.where(scaler.scale_ > 1e-9, scaler.scale_, 1.0)
        z = (x[rows] - scaler.mean_) / scale
        members = []
        for m in range(MEMBERS):
            net = MLPClassifier(HIDDEN, alpha=ALPHA, max_iter=600, random_state=seed + m, early_stopping=False)
            net.fit(z, y)
            members.append(tuple((w.astype(np.float64), b.astype(np.float64))
                                 for w, b in zip(net.coefs_, net.intercepts_)))
        out[q] = Ensemble(scaler.mean_, scale, tuple(members))
    return out


def evaluate(clf: ScanClassifier, x: np.ndarray, truths: list[dict], sure: dict[str, float]) -> dict:
    """Accuracy of each question on ``x``, and how sure the wrong answers were."""
    report = {}
    for q in QUESTIONS:
        rows, y = _targets(truths, q)
        if not len(rows):
            continue
        p = clf.ensembles[q].probabilities(x[rows])
        pred, conf = p.argmax(1), p.max(1)
        wrong = pred != y
        confident = conf >= sure[q]
        report[q] = {"n": int(len(rows)), "accuracy": round(float(np.mean(~wrong)), 4),
                     "wrong": int(wrong.sum()), "wrong_confident": int((wrong & confident).sum()),
                     "max_confidence_when_wrong": round(float(conf[wrong].max()), 3) if wrong.any() else None,
                     "accuracy_when_confident": round(float(np.mean(~wrong[confident])), 4) if confident.any() else None,
                     "unsure_share": round(float(np.mean(~confident)), 4), "sure_at": sure[q]}
    return report


#: Folds of the training heads for choosing each answer's "sure" probability on heads the fit did not see.
FOLDS = tuple(TRAINING[i::4] for i in range(4))
#: An answer counts as sure from the lowest probability at which at most this share of the out-of-fold answers is
#: wrong and sure (the CT-or-MR answer never below DEFAULT_SURE's 0.9).
WRONG_AND_SURE = 0.01


def choose_thresholds(x: np.ndarray, truths: list[dict], seed: int = 0) -> tuple[dict[str, float], dict]:
    """Each question's sure-from probability, from out-of-fold answers over :data:`FOLDS` of the training heads
    (the project's phantoms stay in every fold's training), and the out-of-fold figures."""
    conf: dict[str, list[float]] = {q: [] for q in QUESTIONS}
    right: dict[str, list[bool]] = {q: [] for q in QUESTIONS}
    for fold in FOLDS:
        inside = np.array([t["template"] not in fold for t in truths])
        clf = ScanClassifier(fit(x[inside], [t for t, k in zip(truths, inside) if k], seed), {})
        held = [i for i, k in enumerate(inside) if not k]
        for q in QUESTIONS:
            rows, y = _targets([truths[i] for i in held], q)
            if not len(rows):
                continue
            p = clf.ensembles[q].probabilities(x[np.array(held)[rows]])
            conf[q] += p.max(1).tolist()
            right[q] += (p.argmax(1) == y).tolist()
    sure, figures = {}, {}
    for q in QUESTIONS:
        c, ok = np.array(conf[q]), np.array(right[q])
        floor = DEFAULT_SURE[q] if q == "modality" else 0.5
        t = next((float(v) for v in np.round(np.arange(floor, 0.995, 0.01), 2)
                  if np.mean(~ok & (c >= v)) <= WRONG_AND_SURE), 0.99)
        sure[q] = t
        figures[q] = {"n": int(len(c)), "accuracy": round(float(ok.mean()), 4), "sure_at": t,
                      "unsure_share": round(float(np.mean(c < t)), 4)}
    return sure, figures


def train(out: Path, per_template: int = 75, test_per_template: int = 50, seed: int = 0, workers: int = 2,
          results: Path | None = None, phantoms_per_kind: int = 30, brains: int = 12) -> dict:
    """Render, choose the sure-from probabilities out of fold, fit on every training rendering, test on the
    held-out heads (and unseen phantoms), save the classifier in ``out``; the report (also written to ``results``
    when given)."""
    t0 = time.time()
    x, truths = renderings(TRAINING, per_template, seed, workers)
    xp, tp = phantom_renderings(phantoms_per_kind, seed, workers, brains)
    xt, tt = renderings(HELD_OUT, test_per_template, seed + 1, workers)
    xpt, tpt = phantom_renderings(max(2, phantoms_per_kind // 4), seed + 1, workers, max(1, brains // 3))
    t_render = time.time() - t0
    x_all, t_all = np.concatenate([x, xp]), truths + tp
    sure, out_of_fold = choose_thresholds(x_all, t_all, seed)
    ensembles = fit(x_all, t_all, seed)
    meta = {"trained_on": f"{len(truths)} renderings of SynthSeg heads {list(TRAINING)} and {len(tp)} of the "
                          "project's atlas orbit and patient-26 brain phantoms",
            "held_out": list(HELD_OUT), "sure": sure, "seconds": round(time.time() - t0, 1)}
    save(ensembles, meta, out)
    clf = ScanClassifier(ensembles, meta)
    report = {"train": {"renderings": len(truths), "phantoms": len(tp), "templates": list(TRAINING),
                        "out_of_fold": out_of_fold, "sure": sure},
              "test": {"renderings": len(tt), "templates": list(HELD_OUT),
                       "questions": evaluate(clf, xt, tt, sure),
                       "by_storage": _by(clf, xt, tt, "storage"), "by_view": _by(clf, xt, tt, "view")},
              "test_phantoms": {"cases": len(tpt), "questions": evaluate(clf, xpt, tpt, sure)},
              "seconds": {"render_and_describe": round(t_render, 1), "total": round(time.time() - t0, 1)}}
    if results:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(strict_json(report, indent=1))
    return report


def _by(clf: ScanClassifier, x: np.ndarray, truths: list[dict], key: str) -> dict:
    """CT-or-MR accuracy for each value of ``key`` (storage or view)."""
    out = {}
    for value in sorted({t[key] for t in truths}):
        rows = [i for i, t in enumerate(truths) if t[key] == value]
        p = clf.ensembles["modality"].probabilities(x[rows])
        y = np.array([QUESTIONS["modality"].index(truths[i]["modality"]) for i in rows])
        out[value] = {"n": len(rows), "modality_accuracy": round(float(np.mean(p.argmax(1) == y)), 4)}
    return out
