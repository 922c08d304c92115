"""Segmented structures that lie where the acquired slices are too far apart for them.

:func:`structure_gap_warnings` names each structure whose extent along the slice normal holds a gap between
acquired slices wider than its :data:`GAP_LIMITS_MM` limit (its shape there is interpolated, not measured).
Putting tilted or unevenly spaced slices onto a regular grid is part of reading the series:
:func:`orbitai.io.regrid.regular_grid`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from orbitai.boxes import bbox

#: Largest distance (mm) between acquired slices through a structure that still samples it: about its
#: thickness across the slices (optic nerve ~3-4 mm, recti bellies ~3.5-5 mm, globe ~24 mm across).
#: A wider gap can hold the whole structure's cross-section between two slices, so its volume is guessed.
GAP_LIMITS_MM = {"optic_nerve": 4.0, "superior_rectus_muscle": 4.0, "inferior_rectus_muscle": 4.0,
                 "medial_rectus_muscle": 4.0, "lateral_rectus_muscle": 4.0, "eyeball": 12.0}


def structure_gap_warnings(labels: np.ndarray, lps_of_index: np.ndarray, names: dict[int, str],
                           positions: Sequence[float] | np.ndarray, normal: Sequence[float] | np.ndarray) -> list[str]:
    """One warning per structure whose extent along ``normal`` contains a gap between acquired slices
    (``positions`` along ``normal``, mm) wider than its :data:`GAP_LIMITS_MM` limit.

    ``labels`` is a [k, j, i] label map, ``lps_of_index`` its 4x4 voxel-to-LPS matrix, ``names`` maps
    label values to structure names (keys of GAP_LIMITS_MM; e.g. 'optic_nerve' for left and right)."""
    pos = np.sort(np.asarray(positions, float))
    limits = [GAP_LIMITS_MM[n] for n in names.values() if n in GAP_LIMITS_MM]
    if len(pos) < 2 or not limits or np.diff(pos).max() <= min(limits):
        return []                                   # no gap wide enough for any structure: the usual scan
    box = bbox(labels > 0)
    if box is None:
        return []
    labels = labels[box]                            # index offsets added back below
    start = np.array([box[2].start, box[1].start, box[0].start], float)
    nrm = np.asarray(normal, float)
    along = lps_of_index[:3, :3].T @ nrm             # position along the normal per unit of i, j, k
    off = float(lps_of_index[:3, 3] @ nrm)
    worst: dict[str, tuple[float, float, float]] = {}
    for value, name in names.items():
        limit = GAP_LIMITS_MM.get(name)
        if limit is None:
            continue
        idx = np.argwhere(labels == value)
        if not len(idx):
            continue
        t = (idx[:, ::-1] + start) @ along + off
        lo, hi = float(t.min()), float(t.max())
        first = max(0, int(np.searchsorted(pos, lo, side="right")) - 1)
        last = min(len(pos) - 1, int(np.searchsorted(pos, hi, side="left")))
        gaps = np.diff(pos[first:last + 1])
        if len(gaps) and gaps.max() > limit:
            g = int(np.argmax(gaps)) + first
            if name not in worst or gaps.max() > worst[name][0]:
                worst[name] = (float(gaps.max()), float(pos[g]), float(pos[g + 1]))
    return [f"{name.replace('_', ' ')}: the acquired slices through it are up to {gap:.1f} mm apart (between "
            f"{a:.1f} and {b:.1f} mm along the slice normal), more than its {GAP_LIMITS_MM[name]:.0f} mm limit; "
            "its shape and volume between the slices are interpolated, not measured"
            for name, (gap, a, b) in worst.items()]
