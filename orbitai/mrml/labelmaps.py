"""Labelmaps (``vtkOrientedImageData``) <-> numpy arrays [k, j, i], and the voxel arithmetic of the segment
editor: a RAS point's voxel, the image axis facing a slice view, a segment's mask on a reference extent,
superpixel borders. Used by the annotation effects' logic (`orbitai.app.annotation`)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import vtk
from vtk.util import numpy_support

from orbitai.errors import AnnotationError

__all__ = ["oriented_image_to_array", "fill_oriented_image", "ras_to_ijk", "slice_axis", "segment_extent_mask",
           "superpixel_edges"]


def _dims(image) -> tuple[int, int, int]:
    ext = image.GetExtent()
    return ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1


def oriented_image_to_array(image) -> tuple[np.ndarray, tuple[float, float, float]]:
    """(array [k, j, i] copy, spacing (x, y, z)) of a vtkOrientedImageData / vtkImageData."""
    if image is None or image.GetPointData() is None or image.GetPointData().GetScalars() is None:
        raise AnnotationError("The image has no voxels (no source volume selected?).")
    dims = _dims(image)
    if min(dims) <= 0:
        raise AnnotationError("The image is empty.")
    scalars = image.GetPointData().GetScalars()
    a = numpy_support.vtk_to_numpy(scalars)
    if scalars.GetNumberOfComponents() > 1:
        a = a.reshape(-1, scalars.GetNumberOfComponents())[:, 0]
    sx, sy, sz = image.GetSpacing()
    return np.array(a.reshape(dims)), (float(sx), float(sy), float(sz))


def _scalars_view(image) -> np.ndarray:
    """The first component of an image's scalars as an array [k, j, i] over its memory (no copy: valid while the
    image lives and is not changed)."""
    scalars = image.GetPointData().GetScalars()
    a = numpy_support.vtk_to_numpy(scalars)
    if scalars.GetNumberOfComponents() > 1:
        a = a.reshape(-1, scalars.GetNumberOfComponents())[:, 0]
    return a.reshape(_dims(image))


def fill_oriented_image(image, mask: np.ndarray) -> None:
    """Write a boolean mask (shape matching ``image``'s extent) into ``image`` as 0/1 uint8."""
    dims = _dims(image)
    if tuple(mask.shape) != dims:
        raise AnnotationError(f"Mask shape {mask.shape} does not match the labelmap extent {dims}.")
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    out = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    out[:] = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    image.Modified()


def ras_to_ijk(image, ras) -> tuple[int, int, int]:
    """Voxel (k, j, i) of a RAS point in an oriented image (its extent offset removed)."""
    m = vtk.vtkMatrix4x4()
    image.GetWorldToImageMatrix(m)
    p = m.MultiplyPoint((float(ras[0]), float(ras[1]), float(ras[2]), 1.0))
    ext = image.GetExtent()
    i, j, k = (int(round(p[0])) - ext[0], int(round(p[1])) - ext[2], int(round(p[2])) - ext[4])
    return k, j, i


def slice_axis(slice_to_ras, image) -> int:
    """Array axis (0 = k, 1 = j, 2 = i) of ``image`` most aligned with a slice view's normal
    (``slice_to_ras``: the slice node's SliceToRAS vtkMatrix4x4)."""
    normal = np.array([slice_to_ras.GetElement(r, 2) for r in range(3)])
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    axes = np.array([[m.GetElement(r, c) for r in range(3)] for c in range(3)])  # i, j, k directions
    best = int(np.argmax(np.abs(axes @ normal) / np.linalg.norm(axes, axis=1)))
    return 2 - best


def segment_extent_mask(labelmap, reference, value: Optional[int] = None) -> np.ndarray:
    """A segment labelmap (any extent, on the same grid as ``reference``) as a bool array of the
    reference's extent: voxels equal to ``value`` (shared labelmap layers), or non-zero."""
    ref_ext = reference.GetExtent()
    out = np.zeros(_dims(reference), bool)
    if labelmap is None or labelmap.GetPointData() is None or labelmap.GetPointData().GetScalars() is None:
        return out
    ext = labelmap.GetExtent()
    if ext[1] < ext[0] or ext[3] < ext[2] or ext[5] < ext[4]:
        return out
    arr = _scalars_view(labelmap)          # read only here: no copy of a whole labelmap for a box of it
    lo = [max(ext[2 * a], ref_ext[2 * a]) for a in range(3)]
    hi = [min(ext[2 * a + 1], ref_ext[2 * a + 1]) for a in range(3)]
    if any(h < low for low, h in zip(lo, hi)):
        return out
    src = tuple(slice(lo[a] - ext[2 * a], hi[a] - ext[2 * a] + 1) for a in (2, 1, 0))
    dst = tuple(slice(lo[a] - ref_ext[2 * a], hi[a] - ref_ext[2 * a] + 1) for a in (2, 1, 0))
    out[dst] = (arr[src] == value) if value is not None else (arr[src] != 0)
    return out


def superpixel_edges(superpixels, shape) -> np.ndarray:
    """Boundaries between superpixels as a bool array of the full image ``shape``."""
    lab = superpixels.labels
    edge = np.zeros(lab.shape, bool)
    for ax in range(3):
        if lab.shape[ax] > 1:
            d = np.diff(lab, axis=ax) != 0
            sl = [slice(None)] * 3
            sl[ax] = slice(0, -1)
            edge[tuple(sl)] |= d
    out = np.zeros(shape, bool)
    out[superpixels.region] = edge
    return out


