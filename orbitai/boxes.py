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


def split_boxes(mask: np.ndarray, max_depth: int = 4) -> list[Region]:
    """Tight boxes together covering every True voxel of ``mask``: its bounding box cut wherever a whole
    slab across it is empty (e.g. one box per orbit for a structure found on both sides), recursively
    up to ``max_depth`` cuts deep. Work done box by box then skips the empty space between the parts."""
    def split(box: Region, depth: int) -> list[Region]:
        sub = mask[box]
        tight = bbox(sub)
        if tight is None:
            return []
        box = cast(Region, tuple(slice(b.start + t.start, b.start + t.stop) for b, t in zip(box, tight)))
        if depth < max_depth:
            sub = mask[box]
            for ax in range(sub.ndim):
                used = sub.any(axis=tuple(a for a in range(sub.ndim) if a != ax))
                empty = np.flatnonzero(~used)
                if len(empty):                  # cut at the first empty slab: both sides are boxes again
                    cut = box[ax].start + int(empty[0])
                    lo = tuple(slice(b.start, cut) if a == ax else b for a, b in enumerate(box))
                    hi = tuple(slice(cut + 1, b.stop) if a == ax else b for a, b in enumerate(box))
                    return split(cast(Region, lo), depth + 1) + split(cast(Region, hi), depth + 1)
        return [box]

    return split(cast(Region, tuple(slice(0, n) for n in mask.shape)), 0)


def grow(box: Region, margin: int, shape: tuple[int, ...]) -> Region:
    """``box`` grown by ``margin`` voxels on every side, clipped to ``shape``."""
    return cast(Region, tuple(slice(max(0, b.start - margin), min(n, b.stop + margin)) for b, n in zip(box, shape)))
