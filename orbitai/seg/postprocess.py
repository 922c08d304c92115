"""Generic mask post-processing (SimpleITK's multi-threaded filters, run on the mask's bounding
box only): hole filling and the largest connected component. The orbit's per-side rules that
use them are in :mod:`orbitai.orbit.rules`."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import SimpleITK as sitk


def _on_bounding_box(mask: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``fn`` to the mask's bounding box (1-voxel border) only: same result, far less work."""
    out = np.zeros(mask.shape, bool)
    idx = np.argwhere(mask)
    if not len(idx):
        return out
    lo = np.maximum(idx.min(0) - 1, 0)
    hi = np.minimum(idx.max(0) + 2, mask.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    out[box] = fn(mask[box])
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The boolean mask with its enclosed holes filled (face connectivity)."""
    def fill(m: np.ndarray) -> np.ndarray:
        img = sitk.GetImageFromArray(m.astype(np.uint8))
        return sitk.GetArrayFromImage(sitk.BinaryFillhole(img, fullyConnected=False, foregroundValue=1)).astype(bool)

    return _on_bounding_box(mask, fill)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of the boolean mask."""
    def largest(m: np.ndarray) -> np.ndarray:
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(m.astype(np.uint8))),
                                   sortByObjectSize=True)
        return sitk.GetArrayFromImage(cc) == 1

    return _on_bounding_box(mask, largest)
