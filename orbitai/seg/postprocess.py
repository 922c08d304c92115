"""Post-processing of orbit segmentations (SV-net section 2.D, done per orbit).

Per structure class: hole filling, then the largest connected component on each side of
the patient's midline, so each orbit keeps one region per structure. SimpleITK's
multi-threaded filters do the work.
"""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from orbitai.io import Volume


def _on_bounding_box(mask: np.ndarray, fn) -> np.ndarray:
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
    def fill(m: np.ndarray) -> np.ndarray:
        img = sitk.GetImageFromArray(m.astype(np.uint8))
        return sitk.GetArrayFromImage(sitk.BinaryFillhole(img, fullyConnected=False, foregroundValue=1)).astype(bool)

    return _on_bounding_box(mask, fill)


def largest_component(mask: np.ndarray) -> np.ndarray:
    def largest(m: np.ndarray) -> np.ndarray:
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(m.astype(np.uint8))),
                                   sortByObjectSize=True)
        return sitk.GetArrayFromImage(cc) == 1

    return _on_bounding_box(mask, largest)


def midline_split(classes: Volume, eyeball_class: int = 1) -> np.ndarray:
    """Boolean array, True on the patient's left (LPS +x) of the midline.

    The midline is the plane through the midpoint of the two eyeball centroids (found as the
    two largest eyeball components), perpendicular to the line joining them; without two
    eyeballs it falls back to the LPS x coordinate of the volume centre.
    """
    arr = classes.array
    k, j, i = np.indices(arr.shape, sparse=True)
    lin = classes.ijk_to_lps()
    # LPS x of every voxel (broadcast over the sparse index grids).
    x = lin[0, 0] * i + lin[0, 1] * j + lin[0, 2] * k + lin[0, 3]
    eye = arr == eyeball_class
    centre_x = None
    if eye.any():
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(eye.astype(np.uint8))),
                                   sortByObjectSize=True)
        cca = sitk.GetArrayFromImage(cc)
        cents = []
        for lab in (1, 2):
            idx = np.argwhere(cca == lab)
            if len(idx):
                kk, jj, ii = idx.mean(axis=0)
                cents.append(classes.index_to_physical((ii, jj, kk))[0])
        if len(cents) == 2:
            centre_x = 0.5 * (cents[0] + cents[1])
    if centre_x is None:
        ctr = (np.array(classes.size_xyz) - 1) / 2.0
        centre_x = classes.index_to_physical(ctr)[0]
    return np.broadcast_to(x > centre_x, arr.shape)


def classes_to_orbit_labels(classes: Volume, structure_values: dict[int, tuple[int, int]],
                            clean: bool = True, eyeball_class: int = 1) -> Volume:
    """Turn a side-agnostic class map into orbit-scheme labels (left/right values per class).

    ``structure_values`` maps class index -> (left value, right value). With ``clean`` each
    class is hole-filled and reduced to its largest component on each side.
    """
    left = midline_split(classes, eyeball_class)
    out = np.zeros(classes.shape, np.uint8)
    for c, (lv, rv) in structure_values.items():
        m = classes.array == c
        if not m.any():
            continue
        for side_mask, value in ((left, lv), (~left, rv)):
            part = m & side_mask
            if clean and part.any():
                part = largest_component(fill_holes(part)) & side_mask
            out[part & (out == 0)] = value
    return classes.with_array(out)
