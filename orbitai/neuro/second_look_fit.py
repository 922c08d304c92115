"""Fitting the lesion bundle's second look (issue 79) on the validation split's phantoms, never the test split.

Cases (:func:`fit_cases`): `orbitai.neuro.lesionseg_eval`'s real-map ``validation`` set and its 2D 5-8 mm
acquisitions, and :data:`EXTRA_LIGHT` more light loads per validation brain (seeds :data:`EXTRA_SEED`+, every other
one acquired at 3-5 mm): the validation lesion maps on SynthSeg brains 17-18, which the network never saw in
training. Each case's mirrored probability is computed once and kept in ``cache_folder("lesion-probs")`` under the
digest of the weights and the case.

A candidate is a lesion when it touches a true lesion (as `orbitai.metrics.segmentation.LesionDetection` counts a
predicted component). The forest is scored out of fold (cases grouped, :data:`FOLDS` folds); the candidate threshold
and the keep threshold are the pair that maximises `orbitai.neuro.lesionseg_eval.objective` (voxel Dice and lesion
F1 together) on those out-of-fold scores; the forest is then refitted on every case.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GroupKFold

from orbitai.bundle.core import WEIGHTS, refuse_package_folder, write_bundle
from orbitai.bundle.formats import save_sklearn
from orbitai.io import Volume
from orbitai.metrics.segmentation import lesion_components
from orbitai.neuro.lesionseg import bundle_postprocess, lesion_bundle
from orbitai.neuro.lesionseg_eval import (PhantomCase, _real_case, cached_probability, objective,
                                          real_phantom_set, summary,
                                          thick_2d_set)
from orbitai.neuro.second_look import FEATURES, KEY, Candidates, find_candidates, lesion_scores
from orbitai.phantoms import lesion_maps

log = logging.getLogger(__name__)

EXTRA_SEED = 48000
EXTRA_LIGHT = 8
FOLDS = 5
CANDIDATE_THRESHOLDS = (0.2, 0.3, 0.4, 0.5)
KEEP_AT = tuple(np.round(np.arange(0.2, 0.85, 0.05), 2))


def forest() -> RandomForestClassifier:
    """The second look's classifier before fitting (fixed seed: the same forest on every machine)."""
    return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, class_weight="balanced_subsample",
                                  max_features=0.5, random_state=0, n_jobs=1)


def fit_cases(regional: bool = False) -> tuple[PhantomCase, ...]:
    """The validation split's phantoms that the second look is fitted on (deterministic; ``regional``: their brains
    with a normal FLAIR's regional brightness, `orbitai.phantoms.lesion_maps.render_case`)."""
    extra: list[PhantomCase] = []
    seed = EXTRA_SEED
    for brain in lesion_maps.BRAINS["validation"]:
        kept = 0
        while kept < EXTRA_LIGHT:
            c = _real_case(seed, "validation", brain, load="light", regional=regional)
            seed += 1
            if c.load == "light":
                extra.append(c)
                kept += 1
    return real_phantom_set("validation", regional) + thick_2d_set("validation", regional) + tuple(extra)


def touches(cands: Candidates, truth: np.ndarray) -> np.ndarray:
    """Whether each candidate touches a true lesion voxel."""
    hit = np.zeros(len(cands.comps) + 1, bool)
    hit[np.unique(cands.labels[truth & (cands.labels > 0)])] = True
    return hit[1:]


@dataclass(frozen=True)
class Tally:
    """What a case's candidates add to its figures once drawn (`SecondLook.mask`), so that each keep threshold is
    scored without drawing the mask again: per candidate its drawn voxels, the true voxels among them and the true
    lesions they touch. Lesion-wise counts take each kept candidate as one predicted component (its drawn voxels
    can split in two where its core does; `bench_lesion_second_look` measures the masks themselves)."""

    drawn: np.ndarray
    true_voxels: np.ndarray
    touched: list[set[int]]
    n_true: int
    truth_voxels: int
    voxel_mm3: float

    @classmethod
    def of(cls, cands: Candidates, prob: Volume, truth: np.ndarray, voxel_threshold: float) -> "Tally":
        n = len(cands.comps)
        lab = cands.labels
        core = np.bincount(lab[(lab > 0) & (np.asarray(prob.array) >= voxel_threshold)], minlength=n + 1)
        drawn_mask = (lab > 0) & ((np.asarray(prob.array) >= voxel_threshold) | (core[lab] == 0))
        lt, nt = lesion_components(truth)
        hits = drawn_mask & truth
        touched: list[set[int]] = [set() for _ in range(n)]
        if hits.any():
            for a, t in np.unique(np.stack([lab[hits], lt[hits]]), axis=1).T:
                touched[int(a) - 1].add(int(t))
        return cls(np.bincount(lab[drawn_mask], minlength=n + 1)[1:], np.bincount(lab[hits], minlength=n + 1)[1:],
                   touched, nt, int(truth.sum()), float(prob.voxel_volume_mm3()))

    def figures(self, keep: np.ndarray) -> dict[str, float]:
        """Dice, lesion F1 and the volume error of the kept candidates (`lesion_metrics`' names)."""
        keep = np.asarray(keep, bool)
        n_pred = int(keep.sum())
        tpp = sum(1 for k, t in zip(keep, self.touched) if k and t)
        detected = len(set().union(*[t for k, t in zip(keep, self.touched) if k])) if n_pred else 0
        p = tpp / n_pred if n_pred else 1.0
        r = detected / self.n_true if self.n_true else 1.0
        f1 = 1.0 if not n_pred and not self.n_true else (2 * p * r / (p + r) if p + r else 0.0)
        vox = int(self.drawn[keep].sum())
        tp = int(self.true_voxels[keep].sum())
        dice = 2 * tp / (vox + self.truth_voxels) if vox + self.truth_voxels else 1.0
        vp, vt = vox * self.voxel_mm3 / 1000.0, self.truth_voxels * self.voxel_mm3 / 1000.0
        return {"dice": dice, "lesion_f1": f1, "avd_ml": abs(vp - vt),
                "avd_percent": abs(vp - vt) / vt * 100.0 if vt > 0 else float("nan")}


def _choose(cases: Sequence[PhantomCase], probs: Sequence[Volume], voxel_threshold: float) -> dict[str, Any]:
    best: dict[str, Any] = {}
    for t in CANDIDATE_THRESHOLDS:
        cands = [find_candidates(p, c.image, np.asarray(c.brain.array) > 0, t) for c, p in zip(cases, probs)]
        rows = [k.rows for k in cands]
        y = np.concatenate([touches(k, np.asarray(c.truth.array) > 0) for k, c in zip(cands, cases)])
        groups = np.concatenate([np.full(len(k.comps), i) for i, k in enumerate(cands)])
        x = np.concatenate(rows) if rows else np.zeros((0, 0))
        oof = np.zeros(len(y))
        for tr, te in GroupKFold(FOLDS).split(x, y, groups):
            oof[te] = lesion_scores(forest().fit(x[tr], y[tr]), x[te])
        tallies = [Tally.of(k, p, np.asarray(c.truth.array) > 0, voxel_threshold)
                   for c, p, k in zip(cases, probs, cands)]
        for keep_at in KEEP_AT:
            rows_at = [tally.figures(oof[groups == i] >= keep_at) for i, tally in enumerate(tallies)]
            s = summary(cases, [{**r, "lesion_f1_counted": r["lesion_f1"], "small_n": 0.0} for r in rows_at])
            o = objective(s)
            if not best or o > best["objective"] + 1e-9:
                best = {"candidate_threshold": float(t), "keep_at": float(keep_at), "objective": round(o, 4),
                        "validation_out_of_fold": {k: round(float(v), 4) for k, v in s.items()
                                                   if "counted" not in k and "small" not in k},
                        "candidates": int(len(y)), "true_candidates": int(y.sum()), "x": x, "y": y}
        log.info("second look: candidate threshold %.2f, best objective so far %.4f", t, best["objective"])
    return best


def fit_second_look(bundle: str, regional: bool = False) -> dict[str, Any]:
    """Fit the second look of a lesion bundle on :func:`fit_cases` (``regional``: see there) and write it into the
    bundle (weights kept)."""
    b = lesion_bundle(bundle)
    refuse_package_folder(b.path, "--bundle")
    model = b.load_model("cpu")
    cases = fit_cases(regional)
    probs = [cached_probability(c, b, model) for c in cases]
    voxel_threshold = bundle_postprocess(b).threshold
    best = _choose(cases, probs, voxel_threshold)
    x, y = best.pop("x"), best.pop("y")
    fitted = forest().fit(x, y)
    meta = {**best, "voxel_threshold": voxel_threshold,
            "model": "RandomForestClassifier (scikit-learn), 100 trees, at least 5 candidates a leaf",
            "features": list(FEATURES),
            "fitted_on": f"{len(cases)} validation-split phantoms (real lesion maps "
                         f"{list(lesion_maps.map_split()['validation'])} on SynthSeg brains "
                         f"{list(lesion_maps.BRAINS['validation'])}: the real-map validation set, its 2D 5-8 mm "
                         f"acquisitions, {EXTRA_LIGHT} more light loads per brain from seed {EXTRA_SEED}"
                         + ("; the brains with a normal FLAIR's regional brightness" if regional else "")
                         + "); never the test split or a real case", "regional": regional}
    files = dict(b.metadata.get("files") or {})

    def write(tmp: Path) -> dict[str, Any]:
        shutil.copy2(b.path / WEIGHTS, tmp / WEIGHTS)
        for role, entry in files.items():
            if role != KEY:
                shutil.copy2(b.path / entry["path"], tmp / entry["path"])
        return {"files": {**files, KEY: save_sklearn(fitted, tmp / f"{KEY}.skops")}}

    write_bundle(b.path, {**b.metadata, KEY: meta}, write)
    log.info("second look of %s: candidates >= %.2f, kept at >= %.2f (out-of-fold objective %.4f)", b.name,
             meta["candidate_threshold"], meta["keep_at"], meta["objective"])
    return meta
