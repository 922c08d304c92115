"""Segmentation nodes <-> label arrays, with segment names, colours and terminology.

A *label table* maps label values to segments. Accepted forms (mixed freely):
``orbitai.labels.Label`` objects (the default, :data:`orbitai.labels.ORBIT_LABELS`),
``orbitai.io.segfile.LabelInfo``-like objects (``name``, ``colour``, ``terminology``),
tuples ``(name, (r, g, b))`` or ``(name, (r, g, b), terminology)`` with colours 0-255, or a name.

Only module-logic calls are used (``ImportLabelmapToSegmentationNode``,
``ExportSegmentsToLabelmapNode``), so the same code runs in Slicer and headless. The label map made a slab at a
time from the segments' layers is `orbitai.mrml.label_slabs`; one segment's binary labelmap (voxels, volume,
geometry) is `orbitai.mrml.segment_labelmaps`; the ``.seg.nrrd`` file of a node is `orbitai.mrml.segmentation_files`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import slicer
import vtk

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS
from orbitai.mrml.scene import MRMLContext
from orbitai.mrml.volumes import (
    as_volume,
    geometry_of,
    label_array,
    volume_from_volume_node,
    volume_like_node,
    volume_node_from_volume,
)

__all__ = [
    "SegmentSpec", "label_table", "color_table_node_from_labels", "segmentation_node_from_labels",
    "labels_from_segmentation_node", "segment_info",
]

TERMINOLOGY_TAG = "TerminologyEntry"
_GREY = (128, 128, 128)


@dataclass(frozen=True)
class SegmentSpec:
    """One row of a normalised label table."""

    value: int
    name: str
    colour: tuple[int, int, int] = _GREY
    terminology: str = ""


def _spec(value: int, entry: Any) -> SegmentSpec:
    if isinstance(entry, SegmentSpec):
        return entry
    if isinstance(entry, str):
        return SegmentSpec(value, entry)
    if isinstance(entry, (tuple, list)):
        if not 1 <= len(entry) <= 3:
            raise InputError(f"Label {value}: expected (name, (r, g, b)[, terminology]), got {entry!r}.")
        name = entry[0]
        colour = entry[1] if len(entry) > 1 else _GREY
        term = entry[2] if len(entry) > 2 else ""
    elif hasattr(entry, "name"):
        name = entry.name
        colour = getattr(entry, "colour", _GREY)
        term = entry.slicer_terminology() if hasattr(entry, "slicer_terminology") else getattr(entry, "terminology", "")
    else:
        raise InputError(f"Label {value}: cannot read a name and colour from {entry!r}.")
    try:
        rgb = tuple(int(round(float(c))) for c in colour)
    except (TypeError, ValueError):
        rgb = ()
    if len(rgb) != 3 or any(not 0 <= c <= 255 for c in rgb):
        raise InputError(f"Label {value} ({name!r}): colour must be three integers 0-255, got {colour!r}.")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"Label {value}: the segment name must be a non-empty string, got {name!r}.")
    return SegmentSpec(value, name, rgb, str(term or ""))


def label_table(table: Optional[Mapping] = None) -> dict[int, SegmentSpec]:
    """Normalise a label table (default: the orbit scheme) to ``{value: SegmentSpec}``."""
    if table is None:
        table = ORBIT_LABELS
    out: dict[int, SegmentSpec] = {}
    for key, entry in dict(table).items():
        try:
            value = int(key)
        except (TypeError, ValueError):
            raise InputError(f"Label table keys must be integer label values, got {key!r}.") from None
        if value <= 0:
            raise InputError(f"Label value {value} is not allowed: 0 is the background; use values >= 1.")
        out[value] = _spec(value, entry)
    names = [s.name for s in out.values()]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"Segment names must be unique in a label table; repeated: {', '.join(dupes)}.")
    return out


def color_table_node_from_labels(ctx: MRMLContext, table: Optional[Mapping] = None,
                                 name: str = "OrbitAI labels", hidden: bool = False):
    """A user colour table node: entry ``value`` holds the segment's name and colour."""
    specs = label_table(table)
    node = ctx.scene.AddNewNodeByClass("vtkMRMLColorTableNode", ctx.scene.GenerateUniqueName(name))
    node.SetTypeToUser()
    node.SetHideFromEditors(hidden)
    n = max(specs, default=0) + 1
    node.SetNumberOfColors(n)
    node.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    for v in range(1, n):
        if v in specs:
            r, g, b = (c / 255.0 for c in specs[v].colour)
            node.SetColor(v, specs[v].name, r, g, b, 1.0)
        else:  # unused entries: names that no segment can match
            node.SetColor(v, f"(unused {v})", 0.0, 0.0, 0.0, 0.0)
    return node


def _validate_values(array: np.ndarray, specs: Mapping[int, SegmentSpec]) -> list[int]:
    values = [int(v) for v in np.unique(array) if v != 0]
    unknown = [v for v in values if v not in specs]
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InputError(
            f"Label values {shown} are not in the label table (known: {', '.join(map(str, sorted(specs)))}). "
            "Pass a table that names them (table={value: (name, (r, g, b))}) or set those voxels to 0."
        )
    return values


def segmentation_node_from_labels(ctx: MRMLContext, labels, reference_node=None, name: str = "Segmentation",
                                  table: Optional[Mapping] = None, include_empty: bool = False):
    """A segmentation node with one segment per label value in ``labels``.

    ``labels``: a `Volume`, or a [k, j, i] integer array on ``reference_node``'s grid.
    ``reference_node``: the volume the segmentation belongs to (sets its reference geometry).
    Segments get the table's name, colour, ``TerminologyEntry`` tag and keep their label value
    (``vtkSegment.GetLabelValue``); ``include_empty`` adds empty segments for absent table labels.
    Raises `VolumeError`/`ValueError` for wrong dimensionality, NaN, a shape or grid that differs
    from the reference, or values missing from the table.
    """
    specs = label_table(table)
    vol = as_volume(labels, reference_node, what="label array")
    array = label_array(vol.array)
    values = _validate_values(array, specs)
    vol = Volume(array, vol.spacing, vol.origin, vol.direction)

    scene = ctx.scene
    logic = ctx.segmentations or slicer.vtkSlicerSegmentationsModuleLogic
    temp = []
    seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    try:
        colours = color_table_node_from_labels(ctx, {v: specs[v] for v in values}, "orbitai-import", hidden=True)
        temp.append(colours)
        labelmap = volume_node_from_volume(ctx, vol, "orbitai-import", label=True, color_node=colours)
        labelmap.SetHideFromEditors(True)
        temp.append(labelmap)
        if reference_node is not None:
            seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
        else:
            seg_node.SetReferenceImageGeometryParameterFromVolumeNode(labelmap)
        seg_node.CreateDefaultDisplayNodes()
        if values and not logic.ImportLabelmapToSegmentationNode(labelmap, seg_node):
            raise RuntimeError("Importing the label map into the segmentation failed (see the log).")
        segmentation = seg_node.GetSegmentation()
        for i in range(segmentation.GetNumberOfSegments()):
            segment = segmentation.GetNthSegment(i)
            _apply_spec(segment, specs[int(segment.GetLabelValue())])
        if include_empty:
            for v, spec in specs.items():
                if v not in values:
                    sid = segmentation.AddEmptySegment("", spec.name)
                    _apply_spec(segmentation.GetSegment(sid), spec)  # value unused in the layer
    except BaseException:
        for i in range(seg_node.GetNumberOfDisplayNodes()):
            scene.RemoveNode(seg_node.GetNthDisplayNode(i))
        scene.RemoveNode(seg_node)
        raise
    finally:
        for node in temp:
            scene.RemoveNode(node)
    return seg_node


def _apply_spec(segment, spec: SegmentSpec) -> None:
    segment.SetName(spec.name)
    segment.SetColor(*(c / 255.0 for c in spec.colour))
    if spec.terminology:
        segment.SetTag(TERMINOLOGY_TAG, spec.terminology)
    segment.SetLabelValue(spec.value)


def _value_by_name(specs: Mapping[int, SegmentSpec]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v, s in specs.items():
        for key in (s.name, s.name.replace("_", " ")):
            out.setdefault(key.lower(), v)
    return out


def segments_by_value(segmentation_node, table: Optional[Mapping] = None) -> tuple[Any, dict[int, str]]:
    """The IDs (a ``vtkStringArray``) of ``segmentation_node``'s segments and their names by table value: each
    segment's name (``eyeball_left`` or ``eyeball left``, any case) must be in ``table`` (default: the orbit's), once.
    No voxel is read (a check on Slicer's main thread, e.g. "Mark finished"); one line otherwise."""
    if segmentation_node is None or not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        raise InputError("Select a segmentation node.")
    specs = label_table(table)
    lookup = _value_by_name(specs)
    segmentation = segmentation_node.GetSegmentation()
    ids, unknown = vtk.vtkStringArray(), []
    names_by_value: dict[int, str] = {}  # the export matches colour-table names to segment names
    for i in range(segmentation.GetNumberOfSegments()):
        seg_name = segmentation.GetNthSegment(i).GetName()
        v = lookup.get(seg_name.lower())
        if v is None:
            unknown.append(seg_name)
        elif v in names_by_value:
            raise InputError(f"Segments {names_by_value[v]!r} and {seg_name!r} both map to label value {v}; "
                             "merge or rename one of them.")
        else:
            ids.InsertNextValue(segmentation.GetNthSegmentID(i))
            names_by_value[v] = seg_name
    if unknown:
        raise InputError(
            f"Segments {', '.join(repr(u) for u in unknown)} are not in the label table. Rename them to "
            f"table names (e.g. {next(iter(specs.values())).name!r}) or pass a table that includes them."
        )
    return ids, names_by_value


def labels_from_segmentation_node(segmentation_node, reference, table: Optional[Mapping] = None,
                                  ctx: Optional[MRMLContext] = None) -> Volume:
    """A label-map `Volume` of ``segmentation_node`` on ``reference``'s grid (a volume node or
    `Volume`). Each segment gets the table value of its name (``eyeball_left`` or
    ``eyeball left``, any case); segments named outside the table raise `ValueError`."""
    ids, names_by_value = segments_by_value(segmentation_node, table)
    values = sorted(names_by_value)
    scene = segmentation_node.GetScene()
    ctx = ctx or MRMLContext(scene=scene, app_logic=None)  # only .scene is used below
    temp = []
    try:
        if isinstance(reference, Volume):
            ref_node = volume_like_node(ctx, reference)
            temp.append(ref_node)
            ref_vol = reference
        else:
            ref_node = reference
            ref_vol = geometry_of(reference)
        if ids.GetNumberOfValues() == 0:
            return ref_vol.with_array(np.zeros(ref_vol.shape, np.uint8))
        colours = color_table_node_from_labels(ctx, names_by_value, "orbitai-export", hidden=True)
        temp.append(colours)
        out = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "orbitai-export")
        out.SetHideFromEditors(True)
        temp.append(out)
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, ids, out, ref_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, colours)
        if not ok:
            raise RuntimeError("Exporting the segmentation to a label map failed (see the log).")
        vol = volume_from_volume_node(out)
    finally:
        for node in temp:
            scene.RemoveNode(node)
    top = max(values)
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32
    return Volume(vol.array.astype(dtype), vol.spacing, vol.origin, vol.direction)


def segment_tag(segment, name: str) -> str:
    """A segment's tag ``name`` ("" when it has none)."""
    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else ""


def segment_info(segmentation_node) -> list[dict]:
    """Per segment: id, name, colour (0-255), label value and terminology tag."""
    segmentation = segmentation_node.GetSegmentation()
    rows = []
    for i in range(segmentation.GetNumberOfSegments()):
        sid = segmentation.GetNthSegmentID(i)
        seg = segmentation.GetSegment(sid)
        term = segment_tag(seg, TERMINOLOGY_TAG)
        rows.append({
            "id": sid, "name": seg.GetName(), "label_value": int(seg.GetLabelValue()),
            "colour": tuple(int(round(c * 255)) for c in seg.GetColor()), "terminology": term,
        })
    return rows
