"""IVGC ROI strategies (paper 001): which recti of both orbits form one radiomics ROI.

Each strategy is bilateral: the named recti of the left and the right orbit together are one ROI,
as the paper's feature names (``all_original_shape_MajorAxisLength``) show. Feature names are
``<strategy>_<pyradiomics name>``:

========  =====================================================  ==================================
prefix    muscles (both orbits)                                  example
========  =====================================================  ==================================
``sr``    superior rectus                                        ``sr_original_shape_Elongation``
``lr``    lateral rectus                                         ``lr_square_firstorder_Skewness``
``mr``    medial rectus                                          ``mr_wavelet-LLH_firstorder_Median``
``ir``    inferior rectus                                        ``ir_wavelet-HHL_glcm_Correlation``
``mrlr``  medial + lateral rectus (the paper's best)             ``mrlr_original_firstorder_Kurtosis``
``all``   all four recti (the paper's "four EOMs")               ``all_original_shape_MajorAxisLength``
========  =====================================================  ==================================

Prefixes are one token without ``_`` so that a name splits back into strategy and pyradiomics name.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from orbitai.errors import InputError
from orbitai.labels import ORBIT_LABELS, RECTI, values_for


@dataclass(frozen=True)
class RoiStrategy:
    name: str                      # feature-name prefix
    recti: tuple[str, ...]         # structures of orbitai.labels (both sides each)
    description: str

    @property
    def values(self) -> tuple[int, ...]:
        """Orbit-scheme label values forming the ROI (left and right of each rectus)."""
        return tuple(v for s in self.recti for v in values_for(s))


SR, LR, MR, IR = RECTI[0], RECTI[1], RECTI[2], RECTI[3]
STRATEGIES: dict[str, RoiStrategy] = {s.name: s for s in (
    RoiStrategy("sr", (SR,), "superior rectus, both orbits"),
    RoiStrategy("lr", (LR,), "lateral rectus, both orbits"),
    RoiStrategy("mr", (MR,), "medial rectus, both orbits"),
    RoiStrategy("ir", (IR,), "inferior rectus, both orbits"),
    RoiStrategy("mrlr", (MR, LR), "medial + lateral rectus, both orbits"),
    RoiStrategy("all", (SR, LR, MR, IR), "all four recti, both orbits"),
)}
#: The paper's six strategies, in the order tables list them.
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)
#: Label values of every rectus, both sides.
RECTI_VALUES: frozenset[int] = frozenset(v for s in RECTI for v in values_for(s))


def parse_strategies(names: Iterable[str] | str | None) -> list[RoiStrategy]:
    """Strategies by prefix (a list or a comma-separated string; None: all six), duplicates dropped."""
    if names is None:
        return list(STRATEGIES.values())
    if isinstance(names, str):
        names = [n for n in names.replace(",", " ").split()]
    out: list[RoiStrategy] = []
    for n in names:
        key = n.strip().lower()
        if key not in STRATEGIES:
            raise InputError(f"Unknown ROI strategy {n!r}; choose from {', '.join(STRATEGY_NAMES)}.")
        if STRATEGIES[key] not in out:
            out.append(STRATEGIES[key])
    if not out:
        raise InputError(f"No ROI strategy given; choose from {', '.join(STRATEGY_NAMES)}.")
    return out


def check_label_values(labels: np.ndarray, what: str = "The segmentation") -> list[int]:
    """The label values present (0 excluded); InputError for values outside the orbit label scheme."""
    values = np.unique(labels)
    if labels.dtype.kind == "f":
        fractional = values[(values != np.round(values)) | ~np.isfinite(values)]
        if fractional.size:
            raise InputError(f"{what} holds non-integer label values ({', '.join(f'{v:g}' for v in fractional[:5])}); "
                             "give a label map of the orbit scheme (1-16).")
    present = [int(v) for v in values if v != 0]
    outside = [v for v in present if v not in ORBIT_LABELS]
    if outside:
        raise InputError(f"{what} holds label values outside the orbit scheme ({', '.join(map(str, outside[:8]))}); "
                         "the scheme has 1-16 (recti: superior 5/6, inferior 7/8, medial 9/10, lateral 11/12, "
                         "left/right).")
    return present


def strategy_masks(labels: np.ndarray, strategies: Sequence[RoiStrategy],
                   what: str = "The segmentation") -> dict[str, np.ndarray]:
    """strategy name -> boolean ROI mask of a [z, y, x] orbit label map; one-line InputErrors for
    values outside the scheme, no rectus at all, or a rectus (either side) a strategy needs missing."""
    present = set(check_label_values(labels, what))
    if not present & RECTI_VALUES:
        raise InputError(f"{what} holds no rectus muscle (labels 5-12 of the orbit scheme); the IVGC ROIs are the "
                         "recti of both orbits.")
    for s in strategies:
        missing = [ORBIT_LABELS[v] for v in s.values if v not in present]
        if missing:
            names = ", ".join(f"{lab.name} (label {lab.value})" for lab in missing)
            raise InputError(f"{what} lacks {names}, which ROI strategy {s.name!r} ({s.description}) needs.")
    return {s.name: np.isin(labels, s.values) for s in strategies}


#: The documented stand-in for a second rater (see :func:`perturb_labels`).
PERTURBATION = ("each rectus label, independently, eroded or dilated (chance 1/2 each) by one voxel within the "
                "coronal slice (the two axes of finest spacing; cross-shaped neighbourhood); dilation only into "
                "unlabelled voxels; an erosion that would remove more than half of a muscle becomes a dilation; "
                "random choices seeded by the case id")


def perturb_labels(labels: np.ndarray, spacing_zyx: Sequence[float], case_id: str) -> np.ndarray:
    """A second segmentation for the reproducibility (ICC) analysis when no second rater's exists:
    the first with every rectus contour moved by one voxel in-plane (:data:`PERTURBATION`).
    Deterministic per case id, so a rerun (and the serial and Dask runs) give the same mask."""
    from scipy import ndimage

    seed = int.from_bytes(hashlib.sha256(case_id.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    slice_axis = int(np.argmax(spacing_zyx))
    cross = ndimage.generate_binary_structure(3, 1)
    cross = np.take(cross, [1], axis=slice_axis)      # no reach across slices
    out = labels.copy()
    for v in sorted(RECTI_VALUES):
        m = labels == v
        n = int(m.sum())
        if not n:
            continue
        if rng.random() < 0.5:
            eroded = ndimage.binary_erosion(m, cross)
            if eroded.sum() * 2 >= n:
                out[m & ~eroded] = 0
                continue
        grown = ndimage.binary_dilation(m, cross) & (out == 0) & (labels == 0)
        out[grown] = v
    return out
