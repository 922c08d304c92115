"""What a viewer of one scan at a time (the browser app) shows besides the scan: its controls' helpers on MRML.

The point a result is best seen at (`result_focus`: inside a segment, on its fullest slice), the shown scan's segments
with their colour, visibility and 2D opacity (`segment_rows`, `set_segment_display`), the left-drag window/level mouse
mode (`set_window_level_mode`), the scan's value under the pointer (`probe`: Slicer's Data Probe) and rulers of the
shown scan (`new_ruler`, `ruler_rows`). Which scan a result belongs to, and showing only that scan's results, is
`orbitai.mrml.results`.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy

from orbitai.mrml.results import mark_results, results_of

__all__ = ["result_focus", "segment_rows", "set_segment_display", "set_window_level_mode", "probe", "new_ruler",
           "ruler_rows"]


def _segment_voxels(seg_node: Any, segment_id: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(voxel indices k, j, i of the segment, its labelmap's IJK-to-RAS matrix), or None when it holds none."""
    segment = seg_node.GetSegmentation().GetSegment(segment_id)
    image = segment.GetRepresentation("Binary labelmap") if segment is not None else None
    if image is None or image.GetPointData().GetScalars() is None:
        return None
    dims = image.GetDimensions()
    array = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])
    idx = np.argwhere(array == segment.GetLabelValue())
    if not len(idx):
        return None
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    ijk_to_ras = np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    extent = image.GetExtent()
    return idx + np.array([extent[4], extent[2], extent[0]]), ijk_to_ras


def result_focus(seg_node: Any) -> Optional[list[float]]:
    """A RAS point inside the first segment that holds voxels: on its slice (of its labelmap's slowest axis, the
    axial one for an axial scan) with the most voxels, the voxel nearest their centre (a centre of bounds may fall
    outside a curved or scattered segment, such as lesions)."""
    if seg_node is None:
        return None
    segmentation = seg_node.GetSegmentation()
    for n in range(segmentation.GetNumberOfSegments()):
        found = _segment_voxels(seg_node, segmentation.GetNthSegmentID(n))
        if found is None:
            continue
        idx, ijk_to_ras = found
        ks, counts = np.unique(idx[:, 0], return_counts=True)
        on = idx[idx[:, 0] == ks[int(np.argmax(counts))]]
        k, j, i = on[int(np.argmin(((on - on.mean(axis=0)) ** 2).sum(axis=1)))]
        return [float(x) for x in (ijk_to_ras @ np.array([i, j, k, 1.0]))[:3]]
    return None


def segment_rows(seg_nodes: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per segment of ``seg_nodes``: key (``node ID|segment ID``), the node's and segment's names, colour
    (``#rrggbb``), visibility (the node's and the segment's), the segment's 2D fill opacity (``opacity``) and the node's
    factors for the 2D fill (``fill_2d``: its opacity times its 2D fill opacity, Slicer's 0.5 by default; 0 with the
    fill hidden) and outline (``outline_2d``: the same for the outline times the segment's outline opacity, 1 by
    default), as Slicer's slice views blend them."""
    rows = []
    for node in seg_nodes:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        segmentation = node.GetSegmentation()
        for n in range(segmentation.GetNumberOfSegments()):
            sid = segmentation.GetNthSegmentID(n)
            segment = segmentation.GetSegment(sid)
            r, g, b = (int(round(255 * c)) for c in segment.GetColor())
            rows.append({"key": f"{node.GetID()}|{sid}", "node": node.GetName(), "name": segment.GetName(),
                         "color": f"#{r:02x}{g:02x}{b:02x}",
                         "visible": bool(display.GetVisibility() and display.GetSegmentVisibility(sid)),
                         "opacity": round(float(display.GetSegmentOpacity2DFill(sid)), 2),
                         "fill_2d": round(_shown_2d(display, "Fill", sid), 3),
                         "outline_2d": round(_shown_2d(display, "Outline", sid)
                                             * float(display.GetSegmentOpacity2DOutline(sid)), 3)})
    return rows


def _shown_2d(display: Any, part: str, sid: str) -> float:
    """The node-level opacity of a segment's 2D ``part`` ("Fill" or "Outline"): the display node's opacity times its
    2D part's opacity, 0 when that part is hidden (the node's or the segment's switch)."""
    shown = getattr(display, f"GetVisibility2D{part}")() and getattr(display, f"GetSegmentVisibility2D{part}")(sid)
    return float(display.GetOpacity()) * float(getattr(display, f"GetOpacity2D{part}")()) if shown else 0.0


def set_segment_display(scene: Any, key: str, visible: Optional[bool] = None, opacity: Optional[float] = None) -> bool:
    """Show or hide one segment (``key`` from `segment_rows`) and/or set its 2D fill opacity (0-1); False when the
    key names no segment of the scene (a stale or forged key: nothing changes)."""
    node_id, _, sid = str(key).partition("|")
    node = scene.GetNodeByID(node_id)
    if node is None or not node.IsA("vtkMRMLSegmentationNode") or node.GetSegmentation().GetSegment(sid) is None:
        return False
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if visible is not None:
        if visible:
            display.SetVisibility(True)
        display.SetSegmentVisibility(sid, bool(visible))
    if opacity is not None:
        display.SetSegmentOpacity2DFill(sid, float(min(max(opacity, 0.0), 1.0)))
    return True


def set_window_level_mode(app_logic: Any, on: bool) -> None:
    """Left-drag in the slice views adjusts window/level (Slicer's ``AdjustWindowLevel`` mouse mode, which drives its
    own `vtkMRMLWindowLevelWidget`) when ``on``, else Slicer's view-transform mode."""
    node = app_logic.GetInteractionNode() if app_logic is not None else None
    if node is None:
        return
    mode = node.AdjustWindowLevel if on else node.ViewTransform
    if node.GetCurrentInteractionMode() != mode:
        node.SetCurrentInteractionMode(mode)


def probe(volume_node: Any, ras: Any) -> Optional[float]:
    """The scan's value at a RAS point (its nearest voxel; None outside the scan, however far: a point at 1e308 or
    one that is not a number is outside, never an error): Slicer's Data Probe."""
    if volume_node is None or volume_node.GetImageData() is None:
        return None
    m = vtk.vtkMatrix4x4()
    volume_node.GetRASToIJKMatrix(m)
    ijk = m.MultiplyPoint([float(ras[0]), float(ras[1]), float(ras[2]), 1.0])[:3]
    dims = volume_node.GetImageData().GetDimensions()
    # compared as floats first: rounding an infinite index (a far point's) to an int raises OverflowError
    if not all(-0.5 <= c < n - 0.5 for c, n in zip(ijk, dims)):
        return None
    i, j, k = (min(max(int(round(c)), 0), n - 1) for c, n in zip(ijk, dims))
    return float(volume_node.GetImageData().GetScalarComponentAsDouble(i, j, k, 0))


def new_ruler(scene: Any, input_node: Any) -> Any:
    """A new, empty markups line (Slicer's ruler) of ``input_node``'s results, named "Ruler N"."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", scene.GenerateUniqueName("Ruler"))
    mark_results([node], input_node)
    return node


def ruler_rows(scene: Any, input_node: Any) -> list[dict[str, Any]]:
    """The shown scan's rulers with both ends placed: name and length (mm)."""
    rows = []
    for node in results_of(scene, input_node, "vtkMRMLMarkupsLineNode"):
        if node.GetNumberOfDefinedControlPoints() == 2:
            a, b = (np.array(node.GetNthControlPointPositionWorld(i)) for i in range(2))
            rows.append({"id": node.GetID(), "name": node.GetName(), "length_mm": round(float(np.linalg.norm(a - b)), 1)})
    return rows
