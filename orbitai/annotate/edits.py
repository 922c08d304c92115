"""The segment editor's basic edits on arrays (no Slicer), with the semantics of Slicer's own effects.

* `threshold_mask`: Slicer's Threshold effect: the voxels with ``minimum <= value <= maximum``.
* `keep_largest_island` / `remove_small_islands`: Slicer's Islands effect: islands are face-connected (6-connectivity,
  ``vtkITKIslandMath`` with ``FullyConnected`` off), sizes in voxels.
* `smooth_mask`: Slicer's Smoothing effect's median, opening and closing: a kernel given in mm becomes an odd number of
  voxels per axis (``SegmentEditorSmoothingEffect.getKernelSizePixel``), a box for the median and a ball for opening
  and closing.
* `fill_between_slices`: Slicer's "Fill between slices": morphological contour interpolation (ITK's
  ``MorphologicalContourInterpolator``, which Slicer's effect runs through vtkITK) between the slices drawn along
  one axis.

Arrays are indexed [k, j, i] and spacing is (x, y, z) in mm, as in `orbitai.io.Volume`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from ._common import AnnotationError, bbox, check_image, check_mask

#: Smoothing methods (Slicer's Smoothing effect names): median, morphological opening and closing.
SMOOTHING_METHODS = ("MEDIAN", "MORPHOLOGICAL_OPENING", "MORPHOLOGICAL_CLOSING")


def threshold_mask(image: np.ndarray, minimum: float, maximum: float) -> np.ndarray:
    """The voxels whose value lies in [minimum, maximum] (both included)."""
    a, _ = check_image(image)
    lo, hi = float(minimum), float(maximum)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise AnnotationError(f"The threshold range must be two numbers, got {minimum} and {maximum}.")
    if lo > hi:
        raise AnnotationError(f"The threshold minimum ({lo:g}) is above the maximum ({hi:g}): swap them.")
    return (a >= lo) & (a <= hi)


def keep_largest_island(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected island of ``mask`` (an empty mask stays empty)."""
    m = check_mask(mask, np.shape(mask))
    if not m.any():
        return m.copy()
    img = sitk.GetImageFromArray(m.astype(np.uint8))
    return sitk.GetArrayFromImage(sitk.RelabelComponent(sitk.ConnectedComponent(img, False),
                                                            sortByObjectSize=True)) == 1


def remove_small_islands(mask: np.ndarray, minimum_voxels: int) -> np.ndarray:
    """``mask`` without its face-connected islands of fewer than ``minimum_voxels`` voxels."""
    m = check_mask(mask, np.shape(mask))
    n = int(minimum_voxels)
    if n < 0:
        raise AnnotationError(f"The minimum island size must be 0 or more voxels, got {minimum_voxels}.")
    if not m.any():
        return m.copy()
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(m.astype(np.uint8)), False),
                                   minimumObjectSize=n)
    return sitk.GetArrayFromImage(labels) > 0


def kernel_voxels(kernel_mm: float, spacing: Sequence[float]) -> tuple[int, int, int]:
    """Slicer's Smoothing kernel in voxels per axis (x, y, z): odd, at least 1."""
    k = float(kernel_mm)
    if not (np.isfinite(k) and k > 0):
        raise AnnotationError(f"The smoothing kernel must be a positive size in mm, got {kernel_mm}.")
    return tuple(max(1, int(round((k / float(s) + 1) / 2)) * 2 - 1) for s in spacing)  # type: ignore[return-value]


def smooth_mask(mask: np.ndarray, spacing: Sequence[float], method: str = "MEDIAN",
                kernel_mm: float = 3.0) -> np.ndarray:
    """``mask`` smoothed by ``method`` (`SMOOTHING_METHODS`) with a kernel of ``kernel_mm``."""
    m = check_mask(mask, np.shape(mask))
    _, sp = check_image(m, spacing, "segment")
    method = str(method).upper()
    if method not in SMOOTHING_METHODS:
        raise AnnotationError(f"Unknown smoothing method '{method}': use one of {', '.join(SMOOTHING_METHODS)}.")
    radius = [(n - 1) // 2 for n in kernel_voxels(kernel_mm, sp)]
    if not m.any() or not any(radius):
        return m.copy()
    img = sitk.GetImageFromArray(m.astype(np.uint8))
    if method == "MEDIAN":
        out = sitk.BinaryMedian(img, radius=radius, foregroundValue=1, backgroundValue=0)
        return sitk.GetArrayFromImage(out) > 0
    # opening: erode then dilate; closing: dilate then erode (Slicer's vtkImageOpenClose3D), with a ball, on an image
    # padded by the radius so that a segment at the border is smoothed as if the image went on
    pad = [int(r) for r in radius]
    padded = sitk.ConstantPad(img, pad, pad, 0)
    steps = (sitk.BinaryErode, sitk.BinaryDilate)
    for step in steps if method == "MORPHOLOGICAL_OPENING" else steps[::-1]:
        padded = step(padded, kernelRadius=radius, kernelType=sitk.sitkBall, backgroundValue=0, foregroundValue=1)
    return sitk.GetArrayFromImage(sitk.Crop(padded, pad, pad)) > 0


def drawn_axis(mask: np.ndarray) -> int | None:
    """The axis [k, j, i] along which ``mask`` is drawn on separate slices (empty slices between drawn ones), the
    one with most such gaps; None when no axis has a gap."""
    m = check_mask(mask, np.shape(mask))
    best, gaps_best = None, 0
    for ax in range(3):
        used = np.flatnonzero(m.any(axis=tuple(a for a in range(3) if a != ax)))
        gaps = 0 if len(used) < 2 else int(used[-1] - used[0] + 1 - len(used))
        if gaps > gaps_best:
            best, gaps_best = ax, gaps
    return best


#: A morphological contour interpolation: (uint8 mask [k, j, i], ITK axis: 0 = i, 1 = j, 2 = k) -> uint8 mask.
Interpolator = Callable[[np.ndarray, int], np.ndarray]


def sitk_contour_interpolation(sub: np.ndarray, axis_xyz: int) -> np.ndarray:
    """SimpleITK's ``MorphologicalContourInterpolator`` (in SimpleITK builds with ITK's MorphologicalContourInterpolation
    module; the PyPI wheels lack it: `fill_between_slices` then needs Slicer's, passed by the Slicer-side logic)."""
    mci = getattr(sitk, "MorphologicalContourInterpolator", None)
    if mci is None:
        raise AnnotationError("Fill between slices needs morphological contour interpolation: run it in 3D Slicer or "
                              "the browser app (Slicer's vtkITK filter), or install a SimpleITK built with "
                              "MorphologicalContourInterpolator.")
    return sitk.GetArrayFromImage(mci(sitk.GetImageFromArray(sub), label=1, axis=axis_xyz))


def fill_between_slices(mask: np.ndarray, axis: int | None = None,
                        interpolate: Interpolator | None = None) -> np.ndarray:
    """``mask`` with the slices between its drawn slices filled by morphological contour interpolation along
    ``axis`` ([k, j, i]; None: `drawn_axis`). The drawn slices stay as they are. ``interpolate``: the interpolation
    (default `sitk_contour_interpolation`; the Slicer side passes Slicer's own, what its Fill between slices runs)."""
    m = check_mask(mask, np.shape(mask))
    ax = drawn_axis(m) if axis is None else int(axis)
    if ax is None:
        raise AnnotationError("Fill between slices needs a segment drawn on at least two slices with empty slices "
                              "between them.")
    if ax not in (0, 1, 2):
        raise AnnotationError(f"The slice axis must be 0, 1 or 2 (k, j, i), got {axis}.")
    box = bbox(m, 1)
    if box is None:
        return m.copy()
    sub = np.ascontiguousarray(m[box], np.uint8)
    out = (interpolate or sitk_contour_interpolation)(sub, 2 - ax)      # ITK's axes are (x, y, z) = (i, j, k)
    filled = m.copy()
    filled[box] |= np.asarray(out).reshape(sub.shape) > 0
    return filled
