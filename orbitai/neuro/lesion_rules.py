"""False-positive rules of the lesion network's mask (issue #65): each predicted component is described (size,
mean probability, contrast, thickness, where it lies) and removed when a rule for its kind fires.

Where a component lies is read from the FLAIR itself, so the rules run on any input without registration:

* dark fluid: brain voxels below :data:`DARK_FRACTION` of the brain's median (CSF is dark on FLAIR);
* ventricles: dark fluid deeper than :data:`VENTRICLE_DEPTH_MM` inside the brain mask; the outer surface: outside
  the brain mask, or dark fluid nearer the edge (sulci);
* midline: the sagittal plane through the brain's centroid along the patient left-right axis;
* inferior: the lowest :data:`INFERIOR_FRACTION` of the brain's superior-inferior extent (cerebellum, brainstem;
  a crude stand-in for infratentorial, which is how it is named).

Kinds (the first that matches): ``septum_midline`` (centroid within :data:`MIDLINE_MM` of the midline and within
:data:`RIM_MM` of a ventricle), ``ventricle_rim`` (within :data:`RIM_MM` of a ventricle), ``juxtacortical``
(within :data:`CORTEX_MM` of the outer surface), ``infratentorial`` (inferior), ``deep_white_matter``.

:class:`Rules`: a component is removed when it is a speck (smaller than ``speck_mm3`` with a mean probability
below ``speck_prob``), a thin ventricle rim or septum (thickness <= ``rim_thickness_mm``), or a juxtacortical
component smaller than ``juxtacortical_mm3``, an infratentorial one smaller than ``infratentorial_mm3``. Zeros switch a rule off. :data:`DEFAULT_RULES` were chosen on the
selection phantoms by ``benchmarks/bench_lesion_false_positives.py`` (figures there and in lesionseg.py).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.io import Volume
from orbitai.neuro.seg_configs import brain_stats

KINDS = ("septum_midline", "ventricle_rim", "juxtacortical", "infratentorial", "deep_white_matter")
DARK_FRACTION = 0.5
VENTRICLE_DEPTH_MM = 10.0
RIM_MM = 1.5
MIDLINE_MM = 4.0
CORTEX_MM = 3.0
INFERIOR_FRACTION = 0.3
#: distances beyond this are recorded as this (a component far from any ventricle)
FAR_MM = 40.0
#: shell around a component whose intensity is its background (``ring_contrast``)
RING_MM = 2.0


@dataclass(frozen=True)
class Component:
    """One predicted component: label in ``labels``, voxels, mm3, mean probability, contrast (mean intensity over
    the brain's median), thickness (largest distance inside it to its edge, mm) and kind (:data:`KINDS`)."""

    label: int
    voxels: int
    mm3: float
    mean_prob: float
    contrast: float
    thickness_mm: float
    kind: str
    # issue 79's second look (orbitai.neuro.second_look) reads these as well
    peak_prob: float = 0.0
    ring_contrast: float = 1.0       # mean intensity over that of its 2 mm shell of brain outside every component
    ventricle_mm: float = 0.0        # nearest ventricle voxel (capped at FAR_MM)
    outer_mm: float = 0.0            # nearest outer-surface voxel (outside the brain or sulcal fluid; capped)
    midline_mm: float = 0.0          # centroid's distance to the midline plane
    height: float = 0.5              # centroid's place along the brain's inferior (0) to superior (1) extent
    extent_mm: float = 0.0           # longest side of its bounding box
    core_fraction: float = 0.0       # share of its voxels with probability >= 0.5


@dataclass(frozen=True)
class Rules:
    """Which components are false specks; a zero switches that rule off."""

    speck_mm3: float = 0.0
    speck_prob: float = 0.0
    rim_thickness_mm: float = 0.0
    juxtacortical_mm3: float = 0.0
    infratentorial_mm3: float = 0.0

    def removes(self, c: Component) -> str | None:
        """The rule that removes ``c`` (``speck``, ``rim``, ``juxtacortical``), None when none fires."""
        if c.mm3 < self.speck_mm3 and c.mean_prob < self.speck_prob:
            return "speck"
        if c.kind in ("ventricle_rim", "septum_midline") and c.thickness_mm <= self.rim_thickness_mm:
            return "rim"
        if c.kind == "juxtacortical" and c.mm3 < self.juxtacortical_mm3:
            return "juxtacortical"
        if c.kind == "infratentorial" and c.mm3 < self.infratentorial_mm3:
            return "infratentorial"
        return None

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: Chosen on the selection phantoms (benchmarks/bench_lesion_false_positives.py: the 8 light real-map validation
#: phantoms, brains 17-18; the best mean lesion F1 losing <= 2 % of the true lesions found): only the speck rule,
#: components < 20 mm3 with a mean probability < 0.8. Measured on the 6 held-out light phantoms (brains 19-20):
#: false components per case median 15.5 -> 15.5 (3 of 88 removed), lesion F1 0.382 -> 0.385, Dice 0.400 -> 0.400,
#: no true lesion lost; patient26: nothing fires (F1 0.31, Dice 0.76 unchanged). Each kind's own rule (rim,
#: juxtacortical, infratentorial size) lost as many true small lesions as false ones on the selection phantoms,
#: so none was chosen (its figures: benchmarks/results/lesion_false_positives.json, ``each_rule_alone``).
DEFAULT_RULES = Rules(speck_mm3=20.0, speck_prob=0.8)


def _distance_to(region: np.ndarray, spacing_zyx: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) of every voxel to the nearest voxel of ``region`` (0 inside it): ITK's Maurer map, the values
    of ``scipy.ndimage.distance_transform_edt(~region, sampling)`` at a fraction of the time."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(region, dtype=np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing_zyx[::-1]))
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True,
                                     backgroundValue=0)
    return np.clip(sitk.GetArrayFromImage(d), 0, None).astype(np.float32)


def _lr_si_axes(direction: np.ndarray) -> tuple[int, float, int, float]:
    """Array axes (z, y, x order) most along patient left-right and superior-inferior, with the signs."""
    d = np.asarray(direction, float)          # columns: physical direction of index axes i, j, k (x, y, z)
    lr_col = int(np.argmax(np.abs(d[0])))
    si_col = int(np.argmax(np.abs(d[2])))
    return 2 - lr_col, float(np.sign(d[0, lr_col])), 2 - si_col, float(np.sign(d[2, si_col]))


def describe(mask: np.ndarray, prob: np.ndarray, image: np.ndarray, brain: np.ndarray, spacing: Sequence[float],
             direction: np.ndarray | None = None) -> tuple[np.ndarray, list[Component]]:
    """26-connected components of ``mask`` (arrays z, y, x; ``spacing`` x, y, z in mm as `orbitai.io.Volume`)
    and their :class:`Component` descriptions."""
    mask = np.asarray(mask, bool)
    b = np.asarray(brain, bool)
    labels, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    if n == 0:
        return labels, []
    # the distance maps are the cost: work in the box of the brain and the mask, one voxel of margin
    nz = np.argwhere(b | mask)
    box = tuple(slice(max(int(lo_) - 1, 0), int(hi_) + 2) for lo_, hi_ in zip(nz.min(0), nz.max(0)))
    comps = _describe_box(mask[box], labels[box], n, np.asarray(prob)[box], np.asarray(image)[box], b[box],
                          spacing, direction)
    return labels, comps


def _describe_box(mask: np.ndarray, labels: np.ndarray, n: int, prob: np.ndarray, image: np.ndarray,
                  b: np.ndarray, spacing: Sequence[float], direction: np.ndarray | None) -> list[Component]:
    sp = tuple(float(s) for s in spacing)[::-1]          # z, y, x
    a = np.asarray(image, np.float32)
    med, _ = brain_stats(a[b]) if b.any() else (float(np.median(a)), 0.0)
    med = med if med > 0 else 1.0
    depth = _distance_to(~b, sp)
    dark = b & (a < DARK_FRACTION * med)
    vent = dark & (depth > VENTRICLE_DEPTH_MM)
    outer = ~b | (dark & ~vent)
    d_vent = _distance_to(vent, sp) if vent.any() else np.full(a.shape, np.inf, np.float32)
    d_outer = _distance_to(outer, sp)
    thick = np.zeros(a.shape, np.float32)
    nz = np.argwhere(mask)
    mbox = tuple(slice(max(int(lo_) - 1, 0), int(hi_) + 2) for lo_, hi_ in zip(nz.min(0), nz.max(0)))
    thick[mbox] = _distance_to(~mask[mbox], sp)
    # per-component statistics over the components' own voxels (scipy.ndimage's labelled minimum and maximum sort
    # the whole box for every call: minutes for a case with hundreds of candidates)
    inside = labels > 0
    lab = labels[inside]
    p = np.asarray(prob, np.float32)[inside]
    size = np.bincount(lab, minlength=n + 1)[1:]
    per = np.maximum(size, 1)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(lab, weights=np.asarray(values, np.float64), minlength=n + 1)[1:]

    def extreme(values: np.ndarray, ufunc: np.ufunc, start: float) -> np.ndarray:
        out = np.full(n + 1, start, np.float64)
        ufunc.at(out, lab, np.asarray(values, np.float64))
        return out[1:]

    mean_prob = total(p) / per
    contrast = total(a[inside]) / per / med
    near_v = extreme(d_vent[inside], np.minimum, np.inf)
    near_o = extreme(d_outer[inside], np.minimum, np.inf)
    thickness = extreme(thick[inside], np.maximum, -np.inf)
    peak = extreme(p, np.maximum, -np.inf)
    core = total(p >= 0.5) / per
    component_means = total(a[inside]) / per
    ring = _ring_means(a, labels, mask, b, sp, n)
    boxes = ndi.find_objects(labels, n)
    cent = np.stack([total(c) for c in np.nonzero(inside)], axis=1) / per[:, None]
    lr_ax, _, si_ax, si_sign = _lr_si_axes(np.eye(3) if direction is None else direction)
    bc = np.array(ndi.center_of_mass(b)) if b.any() else np.array(a.shape) / 2.0
    ext = np.nonzero(b.any(axis=tuple(k for k in range(3) if k != si_ax)))[0] if b.any() else np.array([0, 1])
    lo, hi = float(ext.min()), float(ext.max())
    vox = float(np.prod(sp))
    out = []
    for k in range(n):
        mid = abs(cent[k, lr_ax] - bc[lr_ax]) * sp[lr_ax]
        frac = (cent[k, si_ax] - lo) / max(hi - lo, 1.0)
        height = float(np.clip(frac if si_sign > 0 else 1.0 - frac, 0.0, 1.0))
        inferior = height < INFERIOR_FRACTION
        if near_v[k] <= RIM_MM:
            kind = "septum_midline" if mid <= MIDLINE_MM else "ventricle_rim"
        elif near_o[k] <= CORTEX_MM:
            kind = "juxtacortical"
        elif inferior:
            kind = "infratentorial"
        else:
            kind = "deep_white_matter"
        span = max((sl.stop - sl.start) * d for sl, d in zip(boxes[k], sp)) if boxes[k] else 0.0
        out.append(Component(k + 1, int(size[k]), float(size[k]) * vox, float(mean_prob[k]), float(contrast[k]),
                             float(thickness[k]), kind, float(peak[k]),
                             float(component_means[k] / ring[k]) if ring[k] > 0 else 1.0,
                             float(min(near_v[k], FAR_MM)), float(min(near_o[k], FAR_MM)), float(mid), height,
                             float(span), float(core[k])))
    return out


def _ring_means(a: np.ndarray, labels: np.ndarray, mask: np.ndarray, b: np.ndarray, sp: tuple[float, ...],
                n: int) -> np.ndarray:
    """Mean intensity of each component's :data:`RING_MM` shell of brain outside every component (0: no shell);
    a shell voxel belongs to its nearest component (scipy's exact distance transform with the nearest indices)."""
    nz = np.argwhere(mask)
    pad = [int(np.ceil(RING_MM / d)) + 1 for d in sp]
    box = tuple(slice(max(int(lo) - p, 0), int(hi) + p + 1) for lo, hi, p in zip(nz.min(0), nz.max(0), pad))
    dist, idx = ndi.distance_transform_edt(labels[box] == 0, sampling=sp, return_indices=True)
    near = labels[box][tuple(idx)]
    shell = (dist <= RING_MM) & ~mask[box] & b[box]
    if not shell.any():
        return np.zeros(n)
    return np.nan_to_num(np.asarray(ndi.mean(a[box], np.where(shell, near, 0), np.arange(1, n + 1)), float))


def _any_speck(mask: np.ndarray, prob: np.ndarray, spacing: Sequence[float], rules: Rules) -> bool:
    labels, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    mm3 = np.bincount(labels.ravel(), minlength=n + 1)[1:] * float(np.prod(spacing))
    mean = ndi.mean(np.asarray(prob, np.float32), labels, np.arange(1, n + 1))
    return bool(np.any((mm3 < rules.speck_mm3) & (np.asarray(mean) < rules.speck_prob)))


def apply_rules(mask: np.ndarray, prob: np.ndarray, image: np.ndarray, brain: np.ndarray, spacing: Sequence[float],
                rules: Rules = DEFAULT_RULES, direction: np.ndarray | None = None
                ) -> tuple[np.ndarray, dict[str, int]]:
    """``mask`` (bool) without the components a rule removes, and how many each kind lost
    (``{kind: count}``, kinds with none left out). A mask where no rule fires comes back unchanged."""
    mask = np.asarray(mask, bool)
    if rules == Rules() or not mask.any():
        return mask, {}
    if rules == Rules(rules.speck_mm3, rules.speck_prob) and not _any_speck(mask, prob, spacing, rules):
        return mask, {}                  # only the speck rule, and no speck: no distance maps needed
    labels, comps = describe(mask, prob, image, brain, spacing, direction)
    gone = [c for c in comps if rules.removes(c)]
    if not gone:
        return mask, {}
    counts: dict[str, int] = {}
    for c in gone:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    drop = np.zeros(len(comps) + 1, bool)
    drop[[c.label for c in gone]] = True
    return mask & ~drop[labels], counts


#: `orbitai.io.Volume.metadata` key of a lesion mask: the components the rules removed, by kind (JSON)
REMOVED_KEY = "false_positive_rules_removed"


def removed_counts(mask: Volume) -> dict[str, int]:
    """What the rules removed from a lesion mask made by `orbitai.neuro.lesionseg.segment_with`, by kind."""
    text = mask.metadata.get(REMOVED_KEY) if isinstance(mask, Volume) else None
    return {str(k): int(v) for k, v in json.loads(text).items()} if text else {}


def removed_note(mask: Volume) -> list[str]:
    """One note for result.json naming the components the rules removed (none: no note)."""
    counts = removed_counts(mask)
    if not counts:
        return []
    what = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
    return [f"False-positive rules (issue #65) removed {sum(counts.values())} lesion components: {what}."]
