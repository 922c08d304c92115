"""Model grids: an axis-aligned grid at a model's spacing covering a scan (:func:`model_grid`, the
segmentation engine's), a grid of any spacing and axes covering a box of a scan plus a margin
(:func:`box_grid`, lesion segmentation's), and resampling onto them."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.boxes import Region
from orbitai.io import Volume


def model_grid(vol: Volume, spacing: Sequence[float]) -> sitk.Image:
    """An axis-aligned (LPS) grid at ``spacing`` covering the input's physical bounding box: an empty (byte) image,
    a resampling target (a float one cost 0.09 s to allocate on a 1 mm head's 0.8 mm grid)."""
    corners = np.array([[i, j, k] for i in (0, vol.size_xyz[0] - 1) for j in (0, vol.size_xyz[1] - 1)
                        for k in (0, vol.size_xyz[2] - 1)], float)
    pts = np.array([vol.index_to_physical(c) for c in corners])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    step = np.asarray(spacing, float)
    size = np.maximum(1, np.floor((hi - lo) / step + 1e-6).astype(int) + 1)
    ref = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
    ref.SetSpacing(tuple(step))
    ref.SetOrigin(tuple(lo))
    ref.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return ref


def box_grid(vol: Volume, region: Region, spacing: float | Sequence[float], direction: np.ndarray,
             margin_mm: float = 0.0) -> sitk.Image:
    """A grid at ``spacing`` (mm, one or per axis) whose axes are the columns of ``direction``, covering
    the voxel centres of the box ``region`` of ``vol`` (three slices [k, j, i]) plus ``margin_mm`` on
    every side: its first voxel lies at the box's lowest corner less the margin (along those axes), so a
    grid of ``vol``'s own axes and spacing keeps its lattice (no interpolation blur), and it ends at or
    just past the highest corner plus the margin. An empty (byte) image: a resampling target."""
    lo = [r.start for r in region]
    hi = [r.stop - 1 for r in region]
    corners = np.array([[i, j, k] for k in (lo[0], hi[0]) for j in (lo[1], hi[1]) for i in (lo[2], hi[2])])
    axes = np.asarray(direction, float)
    local = np.array([vol.index_to_physical(c) for c in corners]) @ axes   # coordinates along the grid's axes
    a = local.min(0) - margin_mm
    b = local.max(0) + margin_mm
    step = np.broadcast_to(np.asarray(spacing, float), (3,))
    size = [int(np.ceil((y - x) / s - 1e-6)) + 1 for x, y, s in zip(a, b, step)]
    ref = sitk.Image(size, sitk.sitkUInt8)
    ref.SetSpacing([float(s) for s in step])
    ref.SetDirection(tuple(axes.ravel()))
    ref.SetOrigin(tuple(axes @ a))
    return ref


def resample_onto(vol: Volume, ref: sitk.Image, label: bool = False) -> np.ndarray:
    """``vol`` on the grid ``ref`` as a [k, j, i] array: images linearly as float32 with the
    image's minimum outside it, label maps by nearest neighbour with 0 outside."""
    if label:
        return sitk.GetArrayFromImage(sitk.Resample(vol.to_sitk(), ref, sitk.Transform(),
                                                    sitk.sitkNearestNeighbor, 0))
    fill = float(np.min(vol.array))       # interpolated in double precision whatever the input type
    return sitk.GetArrayFromImage(sitk.Resample(vol.to_sitk(), ref, sitk.Transform(), sitk.sitkLinear, fill,
                                                sitk.sitkFloat32))


def empty_image(shape_kji, spacing, direction, origin) -> sitk.Image:
    """A (byte) image of ``shape_kji`` with this geometry: a resampling target, no data copied."""
    ref = sitk.Image([int(n) for n in shape_kji[::-1]], sitk.sitkUInt8)
    ref.SetSpacing(tuple(float(v) for v in spacing))
    ref.SetDirection(tuple(float(v) for v in np.asarray(direction, float).ravel()))
    ref.SetOrigin(tuple(float(v) for v in origin))
    return ref


def subgrid(grid: sitk.Image, region: Region) -> sitk.Image:
    """An empty image on the part ``region`` ([k, j, i] slices) of ``grid``, with its geometry."""
    return empty_image([r.stop - r.start for r in region], grid.GetSpacing(), grid.GetDirection(),
                       grid.TransformIndexToPhysicalPoint([r.start for r in region[::-1]]))
