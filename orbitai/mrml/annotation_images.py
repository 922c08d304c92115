"""The images the annotation logic reads and runs through Slicer's own filters (the MRML bridge for
`orbitai.app.annotation.logic`): a volume node's voxels as an oriented image, as a segmentation made on its own grid
sees them, and Slicer's morphological contour interpolation (what its Fill between slices runs)."""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

__all__ = ["volume_oriented_image", "slicer_contour_interpolation"]


def volume_oriented_image(volume_node: Any) -> Any:
    """``volume_node``'s image as a ``vtkOrientedImageData`` (its voxels and geometry, shared, not copied)."""
    return slicer.vtkSlicerSegmentationsModuleLogic.CreateOrientedImageDataFromVolumeNode(volume_node)


def slicer_contour_interpolation(sub: np.ndarray, axis_xyz: int) -> np.ndarray:
    """Slicer's morphological contour interpolation (``vtkITKMorphologicalContourInterpolator``, what its Fill between
    slices runs) of a uint8 mask [k, j, i] along the ITK axis ``axis_xyz`` (0 = i, 1 = j, 2 = k)."""
    image = vtk.vtkImageData()
    image.SetDimensions(*sub.shape[::-1])
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(np.ascontiguousarray(sub, np.uint8).ravel(), deep=True,
                                                               array_type=vtk.VTK_UNSIGNED_CHAR))
    interpolator = slicer.vtkITKMorphologicalContourInterpolator()
    interpolator.SetInputData(image)
    interpolator.SetLabel(1)
    interpolator.SetAxis(int(axis_xyz))
    interpolator.Update()
    out = interpolator.GetOutput().GetPointData().GetScalars()
    return numpy_support.vtk_to_numpy(out).reshape(sub.shape).copy()
