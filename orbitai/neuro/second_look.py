"""A learned second look at every lesion candidate (issue 79): detection split from delineation.

One network and one threshold could not buy recall without losing precision (issue 79: the blob-loss recipe found
more lesions and more false specks). As detection systems do, the lesion network's probability is read twice:

1. **Candidates, tuned for recall**: the components (26-connected, >= :data:`MIN_CANDIDATE_MM3`) of the mirrored
   probability at a low ``candidate_threshold``.
2. **A second look at each candidate**: a random forest (scikit-learn; a small tabular problem where forests are the
   field's plain, robust choice, and skops stores them without pickle) keeps or drops each component from its
   :data:`FEATURES` (size, the network's mean and peak probability and its confident core, contrast to the brain and to
   its own 2 mm shell, thickness, distance to the ventricles and to the outer surface, midline, height, extent, the
   scan's slice thickness and the case's total candidate load; `orbitai.neuro.lesion_rules.describe`).
3. **Delineation**: a kept component's voxels at the bundle's own threshold (its whole candidate where none reach it).

The forest, its keep threshold and the candidate threshold live in the lesion bundle (``files["second_look"]``,
``metadata["second_look"]``), fitted by :mod:`orbitai.neuro.second_look_fit` on the validation split's phantoms
only; a bundle without them keeps the single-threshold path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from orbitai.io import Volume
from orbitai.metrics.segmentation import lesion_components
from orbitai.neuro.lesion_rules import Component, describe

#: the features of a candidate, in the forest's column order
FEATURES = ("log_mm3", "mean_prob", "peak_prob", "core_fraction", "contrast", "ring_contrast", "thickness_mm",
            "ventricle_mm", "outer_mm", "midline_mm", "height", "extent_mm", "slice_mm", "log_load_ml")
#: smallest candidate (mm3): a 3-voxel speck at 1 mm is not a lesion that a reader marks
MIN_CANDIDATE_MM3 = 3.0
#: the metadata and files key in a lesion bundle
KEY = "second_look"
#: `orbitai.io.Volume.metadata` key of a lesion mask: what the second look dropped (JSON, :func:`dropped_json`)
DROPPED_KEY = "second_look_dropped"


def candidate_mask(prob: Volume, threshold: float) -> np.ndarray:
    """Components of ``prob >= threshold`` of at least :data:`MIN_CANDIDATE_MM3` (bool, the probability's grid)."""
    least = max(1, int(np.ceil(MIN_CANDIDATE_MM3 / prob.voxel_volume_mm3() - 1e-9)))
    return lesion_components(np.asarray(prob.array) >= threshold, least)[0] > 0


def feature_rows(comps: Sequence[Component], slice_mm: float) -> np.ndarray:
    """The :data:`FEATURES` of each candidate (rows), ``slice_mm`` the scan's thickest voxel side."""
    load = float(sum(c.mm3 for c in comps)) / 1000.0
    rows = [[np.log10(max(c.mm3, 1e-3)), c.mean_prob, c.peak_prob, c.core_fraction, c.contrast, c.ring_contrast,
             c.thickness_mm, c.ventricle_mm, c.outer_mm, c.midline_mm, c.height, c.extent_mm, slice_mm,
             np.log10(load + 1e-3)] for c in comps]
    return np.asarray(rows, np.float64).reshape(len(rows), len(FEATURES))


@dataclass(frozen=True)
class Candidates:
    """A case's candidates: their label image, descriptions and feature rows."""

    labels: np.ndarray
    comps: list[Component]
    rows: np.ndarray


def find_candidates(prob: Volume, image: Volume, brain: np.ndarray, threshold: float) -> Candidates:
    """The candidates of ``prob`` (on ``image``'s grid) at ``threshold``, described."""
    mask = candidate_mask(prob, threshold)
    labels, comps = describe(mask, prob.array, image.array, brain, image.spacing, image.direction)
    return Candidates(labels, comps, feature_rows(comps, float(max(image.spacing))))


def lesion_scores(forest: Any, rows: np.ndarray) -> np.ndarray:
    """The fitted classifier's probability of the lesion class (1) for each row (0 where it only saw non-lesions)."""
    if not len(rows):
        return np.zeros(0)
    classes = list(forest.classes_)
    if 1 not in classes:
        return np.zeros(len(rows))
    return np.asarray(forest.predict_proba(rows)[:, classes.index(1)], float)


@dataclass(frozen=True)
class SecondLook:
    """The fitted second look of a lesion bundle."""

    forest: Any                   # a fitted scikit-learn classifier with predict_proba
    candidate_threshold: float
    keep_at: float                # a candidate is kept when the forest's probability is >= this
    voxel_threshold: float        # the bundle's own threshold: a kept candidate's voxels

    def scores(self, cands: Candidates) -> np.ndarray:
        """The forest's probability that each candidate is a lesion."""
        return lesion_scores(self.forest, cands.rows)

    def mask(self, prob: Volume, cands: Candidates, keep: np.ndarray) -> np.ndarray:
        """The lesion mask of the kept candidates (bool): voxels >= :attr:`voxel_threshold`, the whole candidate
        where none reach it."""
        p = np.asarray(prob.array)
        kept = np.zeros(len(cands.comps) + 1, bool)
        kept[1:] = keep
        sel = kept[cands.labels]
        core = sel & (p >= self.voxel_threshold)
        labelled_core = np.zeros(len(cands.comps) + 1, bool)
        labelled_core[np.unique(cands.labels[core])] = True
        return core | (sel & ~labelled_core[cands.labels])

    def apply(self, prob: Volume, image: Volume, brain: np.ndarray) -> tuple[np.ndarray, list[Component]]:
        """The lesion mask after the second look, and the candidates it dropped. The probability is read at float16
        precision (`fit_precision`), as the forest was fitted."""
        prob = fit_precision(prob)
        cands = find_candidates(prob, image, brain, self.candidate_threshold)
        keep = self.scores(cands) >= self.keep_at
        return self.mask(prob, cands, keep), [c for c, k in zip(cands.comps, keep) if not k]

    @classmethod
    def of_bundle(cls, bundle: Any) -> "SecondLook | None":
        """The bundle's second look (None when it has none); the forest checksum-verified and read with skops."""
        meta = bundle.metadata.get(KEY)
        if not meta or KEY not in (bundle.metadata.get("files") or {}):
            return None
        forest = bundle.load_file(KEY)
        return cls(forest, float(meta["candidate_threshold"]), float(meta["keep_at"]),
                   float(meta["voxel_threshold"]))


def fit_precision(prob: Volume) -> Volume:
    """``prob`` rounded to float16 and back: the precision of the probability cache that ``neuro second-look`` fits
    on (`orbitai.neuro.lesionseg_eval.cached_probability`). Its features (peak and mean probability, core size) near
    1.0 move across the forest's splits with the rounding: patient26's lesion F1 read 0.482 from a float32
    probability and 0.362 from its float16 copy with the same forest; reading both the same way keeps what a user
    gets equal to what was fitted and measured."""
    return prob.with_array(np.asarray(prob.array).astype(np.float16).astype(np.float32))


def dropped_json(dropped: Sequence[Component]) -> str:
    """What the second look dropped, by kind and how many were under 10 mm3 (JSON for the mask's metadata)."""
    kinds: dict[str, int] = {}
    for c in dropped:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    return json.dumps({"kinds": kinds, "under_10_mm3": sum(1 for c in dropped if c.mm3 < 10.0)}, sort_keys=True)


def dropped_note(mask: Volume) -> list[str]:
    """One note for result.json naming what the second look dropped, by location and size (none: no note)."""
    text = mask.metadata.get(DROPPED_KEY) if isinstance(mask, Volume) else None
    if not text:
        return []
    d = json.loads(text)
    n = sum(int(v) for v in d["kinds"].values())
    if not n:
        return []
    what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(d["kinds"].items()))
    return [f"The learned second look (issue 79) dropped {n} lesion candidates ({d['under_10_mm3']} under 10 mm3): "
            f"{what}."]
