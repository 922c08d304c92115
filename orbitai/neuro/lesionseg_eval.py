"""Held-out phantom sets for the lesion network, and the choice of its post-processing on them.

Two disjoint phantom sets (seeds never used in training, 16000-16199), each with a light and a
heavy lesion load, as issue #30 asks:

* ``validation`` (seeds 17400+ light, 17500+ heavy): the post-processing (probability threshold,
  smallest lesion) of a bundle is chosen here, by :func:`choose_postprocess`, and written into the
  bundle's metadata (``postprocess``) that :func:`orbitai.neuro.lesionseg.segment_lesions` reads.
* ``test`` (seeds 17000+ light, 17200+ heavy): reported only (``benchmarks/bench_neuro_lesions.py``).

Light: default MS and NMOSD phantoms with < 5 mL of lesions; heavy: MS phantoms drawn with
``heavy=1`` that hold > 30 mL. Seeds are walked in order and the first ones that qualify are kept,
so a set is the same on every machine. The one real labelled case (Lesjak et al. cs_patient26) is
never used for a choice.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from orbitai.io import Volume
from orbitai.metrics.segmentation import lesion_metrics
from orbitai.neuro.lesionseg import lesion_bundle, lesion_probability, postprocess
from orbitai.neuro.lesionseg_train import record_metadata
from orbitai.phantoms.brain import brain_flair_case

log = logging.getLogger(__name__)

LIGHT_MAX_ML = 5.0
HEAVY_MIN_ML = 30.0
#: first seed of each (set, load, disease) series
SEEDS = {("validation", "light", "ms"): 17400, ("validation", "light", "nmosd"): 17450,
         ("validation", "heavy", "ms"): 17500,
         ("test", "light", "ms"): 17000, ("test", "light", "nmosd"): 17100, ("test", "heavy", "ms"): 17200}
#: cases per (set, load): light sets mix MS and NMOSD two to one
SIZES = {"validation": {"light": (4, 2), "heavy": (4, 0)}, "test": {"light": (4, 2), "heavy": (6, 0)}}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
#: up to 14 mm^3, a sphere of 3 mm: the smallest lesion the MAGNIMS criteria count (larger minima, chosen on
#: phantoms, would drop the real small lesions that a light load is made of)
MIN_SIZES_MM3 = (3.0, 6.0, 10.0, 14.0)


@dataclass(frozen=True)
class PhantomCase:
    name: str          # e.g. "heavy ms 17203"
    load: str          # "light" | "heavy"
    image: Volume      # FLAIR with scanner noise
    brain: Volume      # brain mask (the noise-free phantom's image > 0)
    truth: Volume      # lesion mask


def _make(seed: int, disease: str, load: str) -> tuple[PhantomCase, float]:
    heavy = 1.0 if load == "heavy" else 0.0
    clean = brain_flair_case(seed, disease, noise=False, heavy=heavy)
    noisy = brain_flair_case(seed, disease, noise=True, heavy=heavy)
    brain = clean.image.with_array((clean.image.array > 0).astype(np.uint8))
    case = PhantomCase(f"{load} {disease} {seed}", load, noisy.image, brain, noisy.labels)
    return case, float(noisy.info["lesion_volume_ml"])


@functools.lru_cache(maxsize=2)
def phantom_set(which: str) -> tuple[PhantomCase, ...]:
    """The ``validation`` or ``test`` cases (light ones first), generated deterministically."""
    if which not in SIZES:
        raise ValueError(f"phantom set must be one of {sorted(SIZES)}, got {which!r}")
    out: list[PhantomCase] = []
    for load, (n_ms, n_nmosd) in SIZES[which].items():
        for disease, n in (("ms", n_ms), ("nmosd", n_nmosd)):
            seed, kept = SEEDS.get((which, load, disease), 0), 0
            while kept < n:
                case, ml = _make(seed, disease, load)
                if (ml < LIGHT_MAX_ML) if load == "light" else (ml > HEAVY_MIN_ML):
                    out.append(case)
                    kept += 1
                seed += 1
    return tuple(out)


def probabilities(cases: Sequence[PhantomCase], model: Any, device: str = "cpu") -> list[Volume]:
    """The network's lesion probability of each case (mirrored test-time augmentation as in use)."""
    return [lesion_probability(c.image, c.brain, model, device) for c in cases]


def score(cases: Sequence[PhantomCase], probs: Sequence[Volume], threshold: float,
          min_size_mm3: float) -> list[dict[str, float]]:
    """`orbitai.metrics.segmentation.lesion_metrics` of each case at one post-processing."""
    return [lesion_metrics(postprocess(p, threshold, min_size_mm3).array, c.truth.array, c.image.spacing)
            for c, p in zip(cases, probs)]


def summary(cases: Sequence[PhantomCase], rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean Dice, lesion F1, |volume difference| (mL, %) per load; ``worst_volume_error`` over heavy cases."""
    out: dict[str, float] = {}
    for load in ("light", "heavy"):
        rs = [r for c, r in zip(cases, rows) if c.load == load]
        if not rs:
            continue
        for k in ("dice", "lesion_f1", "avd_ml", "avd_percent"):
            out[f"{load}_{k}"] = float(np.mean([r[k] for r in rs]))
        out[f"{load}_n"] = len(rs)
        out[f"{load}_avd_percent_max"] = float(np.max([r["avd_percent"] for r in rs]))
    return out


def objective(s: dict[str, float]) -> float:
    """What the choice maximises: the mean of the issue's two phantom measures (heavy-load Dice,
    light-load lesion F1), less the heavy volume error beyond 20 % (the third bar)."""
    return 0.5 * (s["heavy_dice"] + s["light_lesion_f1"]) - max(0.0, s["heavy_avd_percent"] - 20.0) / 100.0


def choose_postprocess(model: Any, device: str = "cpu") -> dict[str, Any]:
    """Sweep threshold x smallest lesion on the validation set; the best by :func:`objective`."""
    cases = phantom_set("validation")
    probs = probabilities(cases, model, device)
    best: dict[str, Any] | None = None
    for t in THRESHOLDS:
        for m in MIN_SIZES_MM3:
            s = summary(cases, score(cases, probs, t, m))
            if best is None or objective(s) > best["objective"] + 1e-9:
                best = {"threshold": t, "min_size_mm3": m, "objective": round(objective(s), 4),
                        "validation": {k: round(v, 4) for k, v in s.items()}}
    assert best is not None
    best["chosen_on"] = (f"validation phantoms ({len(cases)}: seeds 17400+ light, 17500+ heavy; "
                         "orbitai.neuro.lesionseg_eval), never the real case")
    return best


def tune_bundle(bundle: str, device: str = "cpu") -> dict[str, Any]:
    """Choose the post-processing of a lesion bundle and write it into its metadata (weights untouched)."""
    b = lesion_bundle(bundle)      # found once, architecture checked, weights checksum-verified on load
    choice = choose_postprocess(b.load_model(device), device)
    record_metadata(b.path, {"postprocess": choice})
    log.info("post-processing of %s: threshold %.2f, smallest lesion %.0f mm3 (validation objective %.3f)",
             b.name, choice["threshold"], choice["min_size_mm3"], choice["objective"])
    return choice
