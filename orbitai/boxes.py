"""Boxes of voxels: the bounding box of a mask, and running a mask operation on that box only.

Found from the mask's projections on each axis (three reductions), not from the coordinates of every
voxel (``np.argwhere`` allocates 3 x 8 bytes per voxel found: seconds on a whole CT)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np

#: A box of a 3D array: one slice per axis [k, j, i].
Region = tuple[slice, slice, slice]


def bbox(mask: np.ndarray, margin_vox: int | Sequence[int] | np.ndarray = 0) -> Region | None:
    """Bounding box of a mask grown by ``margin_vox`` (scalar or per axis), clipped; None if empty."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax))) for ax in range(mask.ndim)]
    if any(len(i) == 0 for i in idx):
        return None
    m = np.broadcast_to(np.asarray(margin_vox, int), (mask.ndim,))
    return cast(Region, tuple(slice(max(0, int(i[0] - g)), min(n, int(i[-1] + g + 1)))
                              for i, g, n in zip(idx, m, mask.shape)))


def on_bounding_box(mask: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` applied to the mask's bounding box (1-voxel border) only, zeros elsewhere: the same
    result as on the whole array for operations that keep the background outside the box."""
    out = np.zeros(mask.shape, bool)
    box = bbox(mask, 1)
    if box is not None:
        out[box] = fn(mask[box])
    return out
