"""One segment's binary labelmap: read (`segment_labelmap`, `binary_labelmap`), its geometry compared
(`geometry_key`), its voxels counted and its volume summed, and a labelmap made a node's one segment
(`set_single_segment`). Segments may share a labelmap layer: a segment is the voxels holding its label value."""
from __future__ import annotations

from typing import Any

import numpy as np
import slicer
from vtk.util import numpy_support

__all__ = [
    "segment_labelmap", "binary_labelmap", "geometry_key", "segment_voxel_count", "segment_voxel_counts",
    "segments_volume_mm3", "set_single_segment",
]


def segment_labelmap(segmentation_node, segment_id: str):
    """A segment's binary labelmap (a ``vtkOrientedImageData`` in its own geometry). Segments may share one
    labelmap layer: the segment is the voxels holding its label value."""
    image = slicer.vtkOrientedImageData()
    slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(
        segmentation_node, segment_id, image, False)
    return image


def binary_labelmap(segment):
    """The binary labelmap representation a segment holds (None when it has none)."""
    return segment.GetRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName())


def geometry_key(image) -> str:
    """The geometry of a labelmap (origin, spacing, directions, extent) as text: equal texts, equal grids."""
    return slicer.vtkSegmentationConverter.SerializeImageGeometry(image)


def _segment_voxels(segmentation_node, segment_id: str) -> tuple[int, Any]:
    """(voxels of one segment, its binary labelmap)."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    image = segment_labelmap(segmentation_node, segment_id)
    scalars = image.GetPointData().GetScalars() if image.GetPointData() else None
    if scalars is None:
        return 0, image
    return int(np.count_nonzero(numpy_support.vtk_to_numpy(scalars) == segment.GetLabelValue())), image


def segment_voxel_count(segmentation_node, segment_id: str) -> int:
    """Voxels of one segment, read from its own binary labelmap representation."""
    return _segment_voxels(segmentation_node, segment_id)[0]


def segments_volume_mm3(segmentation_node) -> float:
    """Sum over the segments of their labelled volume (mm3), each in its own binary-labelmap geometry."""
    segmentation = segmentation_node.GetSegmentation()
    total = 0.0
    for i in range(segmentation.GetNumberOfSegments()):
        voxels, image = _segment_voxels(segmentation_node, segmentation.GetNthSegmentID(i))
        total += voxels * float(np.prod(image.GetSpacing()))
    return total


def set_single_segment(segmentation_node, image, name: str, color, like=None) -> None:
    """Make ``image`` (a binary labelmap) the one segment of ``segmentation_node``, named ``name`` in ``color``; with
    ``like`` (another segmentation node), on that node's reference geometry."""
    segmentation = segmentation_node.GetSegmentation()
    if like is not None:
        parameter = slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
        segmentation.SetConversionParameter(parameter, like.GetSegmentation().GetConversionParameter(parameter))
    segmentation.RemoveAllSegments()
    segment = slicer.vtkSegment()
    segment.SetName(name)
    segment.SetColor(*color)
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName(), image)
    segmentation.AddSegment(segment, name)


def segment_voxel_counts(segmentation_node) -> dict[str, int]:
    """Voxels per segment name (`segment_voxel_count` of each segment)."""
    segmentation = segmentation_node.GetSegmentation()
    return {segmentation.GetNthSegment(i).GetName(): segment_voxel_count(segmentation_node,
                                                                          segmentation.GetNthSegmentID(i))
            for i in range(segmentation.GetNumberOfSegments())}
