"""Slicer's "Grow from seeds" on arrays with spacing: the baseline SmartFill is measured against (issue #18).

`grow_from_seeds` runs Slicer's own grow-cut filter (``vtkImageGrowCutSegment``, from 3D Slicer's
Python or the PyPI package slicer-core) the way the Segment Editor effect "Grow from seeds" runs it
with its defaults: seed label image 1 = object, 2 = background, 0 = unlabelled; seed locality
(distance penalty) 0; editable everywhere (the effect's all-zero edit mask, which excludes
nothing); on the effect's working region, the seeds' bounding box grown by 10 % of its size per
axis, at least 3 voxels (`effect_region`: the margin of the effect's first preview). SmartFill's
working region (`orbitai.annotate.smartfill.working_region`) can be passed instead, so both tools
see the same neighbourhood. The simulated user's background seeds are in `orbitai.testing.growcut`.

Arrays are indexed [k, j, i] and spacing is (x, y, z) in mm, as in `orbitai.io.Volume`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import slicer  # vtkImageGrowCutSegment; vtkImageData comes with slicer-core's VTK
import vtk
from vtk.util import numpy_support

from orbitai.annotate import AnnotationError
from orbitai.annotate._common import Region, bbox, check_image, check_mask, normalize_region

__all__ = ["grow_from_seeds", "effect_region"]

OBJECT, BACKGROUND = 1, 2


def effect_region(seeds: np.ndarray, ratio: float = 0.1, min_margin: int = 3) -> Region:
    """The working region of Slicer's auto-complete effects for these seeds: their bounding box
    grown on each side by ``ratio`` of its extent along that axis (at least ``min_margin`` voxels),
    clipped to the image."""
    box = bbox(np.asarray(seeds, bool))
    if box is None:
        raise AnnotationError("No seeds were painted: nothing to grow from.")
    out = []
    for s, n in zip(box, seeds.shape):
        m = int(max(min_margin, ratio * (s.stop - 1 - s.start)))
        out.append(slice(max(0, s.start - m), min(n, s.stop + m)))
    return normalize_region(tuple(out), seeds.shape)


def _vtk_image(array: np.ndarray, spacing_xyz: Sequence[float]):
    img = vtk.vtkImageData()
    img.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    img.SetSpacing(*(float(s) for s in spacing_xyz))
    img.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    return img


def grow_from_seeds(image: np.ndarray, spacing: tuple[float, float, float], fg: np.ndarray,
                    bg: np.ndarray | None, *, region: Region | None = None) -> np.ndarray:
    """Object mask (bool, image shape) from Slicer's Grow from seeds with object seeds ``fg`` and
    background seeds ``bg``. ``region``: working region (slices k, j, i); default `effect_region`
    of all seeds, as the effect does (`orbitai.annotate.smartfill.working_region` gives SmartFill's).
    Voxels outside the region are background."""
    a, sp = check_image(image, spacing)
    f = check_mask(fg, a.shape, "object seeds")
    if not f.any():
        raise AnnotationError("Grow from seeds needs object seeds: paint at least one stroke inside the structure.")
    b = None if bg is None else check_mask(bg, a.shape, "background seeds")
    if b is None or not b.any():
        raise AnnotationError("Grow from seeds needs background seeds: paint a second segment around the structure "
                              "(it grows every painted segment; with the object alone it fills the whole region).")
    if np.any(f & b):
        raise AnnotationError("Object and background seeds overlap; erase one of them where they cross.")
    reg = effect_region(f | b) if region is None else normalize_region(region, a.shape)
    if min(s.stop - s.start for s in reg) < 3:
        raise AnnotationError(f"Grow from seeds needs a working region of at least 3 voxels along each axis; got "
                              f"{'x'.join(str(s.stop - s.start) for s in reg[::-1])} (i x j x k).")
    seeds = np.zeros(a[reg].shape, np.uint8)
    seeds[f[reg]] = OBJECT
    seeds[b[reg]] = BACKGROUND
    grow = slicer.vtkImageGrowCutSegment()
    grow.SetIntensityVolume(_vtk_image(np.asarray(a[reg], np.float32), sp))
    grow.SetSeedLabelVolume(_vtk_image(seeds, sp))
    grow.SetDistancePenalty(0.0)          # the effect's default "Seed locality" (SeedLocalityFactor)
    grow.Update()
    scalars = grow.GetOutput().GetPointData().GetScalars()
    if scalars is None:
        raise AnnotationError("Grow from seeds produced no result (vtkImageGrowCutSegment failed on this input).")
    out = np.zeros(a.shape, bool)
    out[reg] = numpy_support.vtk_to_numpy(scalars).reshape(seeds.shape) == OBJECT
    return out
