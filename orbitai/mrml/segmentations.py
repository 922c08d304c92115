"""Segmentation nodes <-> label arrays, with segment names, colours and terminology.

A *label table* maps label values to segments. Accepted forms (mixed freely):
``orbitai.labels.Label`` objects (the default, :data:`orbitai.labels.ORBIT_LABELS`),
``orbitai.io.segfile.LabelInfo``-like objects (``name``, ``colour``, ``terminology``),
tuples ``(name, (r, g, b))`` or ``(name, (r, g, b), terminology)`` with colours 0-255, or a name.

Only module-logic calls are used (``ImportLabelmapToSegmentationNode``,
``ExportSegmentsToLabelmapNode``), so the same code runs in Slicer and headless.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from orbitai.errors import InputError
from orbitai.io import Volume
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
    "labels_from_segmentation_node", "LabelSlabs", "label_slabs_from_segmentation_node", "segment_voxel_count", "segment_voxel_counts", "segments_volume_mm3",
    "segment_labelmap", "binary_labelmap", "geometry_key", "set_single_segment", "segment_info",
    "save_segmentation_node", "segmentation_file_bytes",
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
        from orbitai.labels import ORBIT_LABELS

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


#: Slicer's tolerance for "the same geometry" of two labelmaps (``vtkOrientedImageDataResample::IsEqual`` of their
#: image-to-world matrices, element by element; v5.8.1, v5.10.0): within it a layer's voxels are merged as they are.
_SAME_GEOMETRY = 1e-4


@dataclass(frozen=True)
class _LayerRun:
    """Consecutive exported segments that share one binary-labelmap layer (no two overlap within a layer)."""

    array: np.ndarray                       # the layer's voxels [k, j, i]: a view of its VTK array, no copy
    start: tuple[int, int, int]             # the index (k, j, i) of its first voxel on the reference grid
    values: tuple[tuple[int, int], ...]     # (the segment's value in the layer, its label value), export order
    image: Any = None                       # the layer (a vtkOrientedImageData) and its modification time then:
    mtime: int = 0                          # an edit while the map is made is refused, not half taken


class LabelSlabs:
    """`labels_from_segmentation_node`'s label map, made a k-slab at a time (`slab`) from the segmentation's
    binary-labelmap layers (views of their voxels) instead of one export of the whole map: the same voxels, so that
    a job's input file is written across a GUI timer's ticks (`orbitai.jobs.child.JobInputWriter`), not in one
    (0.5-0.9 s at 512x512x300, issue 63). Made by `label_slabs_from_segmentation_node`; geometry as
    `geometry_of(reference)`, voxel type ``dtype``."""

    metadata: dict[str, Any] = {}

    def __init__(self, geometry: Volume, dtype: Any, runs: Sequence[_LayerRun] = (), name: str = "") -> None:
        self.geometry, self.name = geometry, name
        self.shape: tuple[int, int, int] = tuple(geometry.shape)  # type: ignore[assignment]
        self.spacing, self.origin, self.direction = geometry.spacing, geometry.origin, geometry.direction
        self.dtype = np.dtype(dtype)
        self.runs = tuple(runs)

    def slab(self, k0: int, k1: int) -> np.ndarray:
        """The label map's slices ``k0:k1`` ([k, j, i]), as Slicer merges the segments
        (``vtkSegmentation::GenerateMergedLabelmap``): background 0, then each segment's voxels (its layer holding its
        value) set to its label value, in the export's order, a later segment over an earlier one."""
        return self._merged((int(k0), 0, 0), (int(k1), *self.shape[1:]))

    def as_mask(self) -> "LabelSlabs":
        """The same map as a 0/1 mask (``uint8``): every segment's voxels 1."""
        return LabelSlabs(self.geometry, np.uint8, [replace(run, values=tuple((v, 1) for v, _ in run.values))
                                                    for run in self.runs], self.name)

    def present_values(self) -> list[int]:
        """The label values the label map holds (0 excluded), from the part of the grid the layers cover (Slicer
        crops a layer to its segments: a few MB for the orbit's structures), not from the whole map."""
        return sorted(self.label_counts())

    def label_counts(self) -> dict[int, int]:
        """Voxels per label value the label map holds (0 excluded), read as `present_values`."""
        boxes = [(run.start, [s + n for s, n in zip(run.start, run.array.shape)]) for run in self.runs]
        if not boxes:
            return {}
        lo = [max(min(b[0][d] for b in boxes), 0) for d in range(3)]
        hi = [min(max(b[1][d] for b in boxes), size) for d, size in enumerate(self.shape)]
        if any(a >= b for a, b in zip(lo, hi)):
            return {}
        if len(self.runs) == 1:          # one layer (the usual case): its segments cannot overlap, count it as it is
            run = self.runs[0]
            inside = run.array[tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, run.start))]
            counts = _counts(inside)
            found = {label: _count_of(counts, inside.dtype, value) for value, label in run.values}
            return {label: n for label, n in found.items() if n}
        counts = _counts(self._merged(lo, hi))
        return {int(v): int(counts[v]) for v in np.flatnonzero(counts) if v != 0}

    def _merged(self, lo: Sequence[int], hi: Sequence[int]) -> np.ndarray:
        """The label map in the box ``lo:hi`` (k, j, i; clipped to the grid); one line when a layer was edited since
        the map was asked for (its voxels would be half old, half new)."""
        if any(run.image is not None and _modified(run.image) != run.mtime for run in self.runs):
            raise InputError(f"The segmentation '{self.name}' was edited while the job's copy of it was written; "
                             "nothing was started: Apply again.")
        lo = [max(a, 0) for a in lo]
        hi = [max(min(b, size), a) for a, b, size in zip(lo, hi, self.shape)]
        out = np.zeros([b - a for a, b in zip(lo, hi)], self.dtype)
        for run in self.runs:
            a = [max(x, s) for x, s in zip(lo, run.start)]
            b = [min(x, s + n) for x, s, n in zip(hi, run.start, run.array.shape)]
            if any(x >= y for x, y in zip(a, b)):
                continue
            src = run.array[tuple(slice(x - s, y - s) for x, y, s in zip(a, b, run.start))]
            dst = out[tuple(slice(x - o, y - o) for x, y, o in zip(a, b, lo))]
            for layer_value, label in run.values:
                dst[src == layer_value] = label
        return out

    def volume(self) -> Volume:
        """The whole label map (scripts and tests; a GUI writes it a slab per tick)."""
        return Volume(self.slab(0, self.shape[0]), self.spacing, self.origin, self.direction)


def _counts(array: np.ndarray) -> np.ndarray:
    """Voxels per value of an integer array (one pass, no sort): index ``v`` for an unsigned value, ``v % 2**bits``
    for a signed one of 8 or 16 bits (read as unsigned); other types through `np.unique`."""
    a = np.ascontiguousarray(array).reshape(-1)
    if a.dtype.kind in "iu" and a.dtype.itemsize <= 2:
        return np.bincount(a.view(f"u{a.dtype.itemsize}"), minlength=2 ** (8 * a.dtype.itemsize))
    values, n = np.unique(a, return_counts=True)
    return dict(zip(values.tolist(), n.tolist()))  # type: ignore[return-value]


def _count_of(counts: Any, dtype: np.dtype, value: int) -> int:
    """Voxels of ``value`` in `_counts`'s answer for an array of type ``dtype`` (0 for a value it cannot hold)."""
    if isinstance(counts, dict):
        return int(counts.get(value, 0))
    info = np.iinfo(dtype)
    return int(counts[value % len(counts)]) if info.min <= value <= info.max else 0


def _modified(image) -> int:
    """The latest modification time of a layer: the image (an edit calls its ``Modified``) or its voxels."""
    scalars = image.GetPointData().GetScalars() if image.GetPointData() is not None else None
    return max(image.GetMTime(), scalars.GetMTime() if scalars is not None else 0)


def _matrix(get) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    get(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def label_slabs_from_segmentation_node(segmentation_node, reference, table: Optional[Mapping] = None
                                       ) -> Optional[LabelSlabs]:
    """`labels_from_segmentation_node` as `LabelSlabs` (no voxel is read now: the segment names are checked, one line
    otherwise), or None where only the whole export gives that map, which then stays the way:

    * a layer on another grid than the reference (``vtkOrientedImageDataResample::DoGeometriesMatch`` false: other
      spacing, directions or an origin off the grid): Slicer resamples the whole layer onto the reference
      (``ResampleOrientedImageToReferenceGeometry``, nearest neighbour through a VTK reslice of the whole extent), and a
      k-slab of the result depends on an oblique part of the layer, not on a k-slab of it;
    * the segmentation under another transform than the reference (the merged map is resampled through it,
      ``GenerateMergedLabelmapInReferenceGeometry``), or no binary-labelmap representation yet (the export converts
      the whole segmentation first);
    * a reference given as a `Volume` or with an extent not starting at 0, a layer of several components, or a label
      value over 32767 (the merged map is ``short``: Slicer clips it)."""
    ids, names_by_value = segments_by_value(segmentation_node, table)
    if not _is_volume_node(reference) or any(reference.GetImageData().GetExtent()[::2]):
        return None
    if reference.GetParentTransformNode() is not segmentation_node.GetParentTransformNode():
        return None
    segmentation = segmentation_node.GetSegmentation()
    binary = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    value_by_name = {name: v for v, name in names_by_value.items()}
    if names_by_value and (max(names_by_value) > 32767 or not segmentation.ContainsRepresentation(binary)):
        return None
    top = max(names_by_value, default=0)
    dtype = np.uint8 if top < 256 else np.uint16
    grid = _matrix(reference.GetIJKToRASMatrix)
    runs: list[_LayerRun] = []
    last = None
    for n in range(ids.GetNumberOfValues()):
        segment = segmentation.GetSegment(ids.GetValue(n))
        layer = binary_labelmap(segment)
        if layer is None:
            return None
        if layer.IsEmpty() or layer.GetPointData() is None or layer.GetPointData().GetScalars() is None:
            continue                                 # Slicer skips an empty layer too
        if layer.GetNumberOfScalarComponents() != 1 or \
                not np.all(np.abs(_matrix(layer.GetImageToWorldMatrix) - grid) < _SAME_GEOMETRY):
            return None
        values = ((int(segment.GetLabelValue()), value_by_name[segment.GetName()]),)
        if last is not None and layer is last:
            runs[-1] = replace(runs[-1], values=runs[-1].values + values)
            continue
        ext = layer.GetExtent()
        dims = (ext[5] - ext[4] + 1, ext[3] - ext[2] + 1, ext[1] - ext[0] + 1)
        array = numpy_support.vtk_to_numpy(layer.GetPointData().GetScalars()).reshape(dims)
        runs.append(_LayerRun(array, (ext[4], ext[2], ext[0]), values, layer, _modified(layer)))
        last = layer
    ijk_to_ras = _export_ijk_to_ras(reference)
    if ijk_to_ras is None:
        return None
    shape = tuple(reversed(reference.GetImageData().GetDimensions()))
    return LabelSlabs(Volume.from_ijk_to_ras(np.broadcast_to(np.zeros((), np.uint8), shape), ijk_to_ras), dtype, runs,
                      segmentation_node.GetName())


def _export_ijk_to_ras(reference) -> Optional[np.ndarray]:
    """The IJKToRAS (world) of the label-map node the whole export makes on ``reference``'s grid: the reference's
    matrix through the same VTK objects as ``ExportSegmentsToLabelmapNode`` (two ``vtkOrientedImageData`` and a
    volume node, each storing spacing, directions and origin: the last bits may change), then the reference's linear
    parent transform (`volume_from_volume_node`'s); None under a non-linear one."""
    m = vtk.vtkMatrix4x4()
    reference.GetIJKToRASMatrix(m)
    for _ in range(2):                # the reference geometry, then the merged labelmap (GenerateMergedLabelmap)
        image = slicer.vtkOrientedImageData()
        image.SetImageToWorldMatrix(m)
        image.GetImageToWorldMatrix(m)
    node = slicer.vtkMRMLLabelMapVolumeNode()    # CopyOrientedImageDataToVolumeNode
    node.SetIJKToRASMatrix(m)
    node.GetIJKToRASMatrix(m)
    local = slicer.util.arrayFromVTKMatrix(m)
    parent = reference.GetParentTransformNode()
    if parent is None:
        return local
    if not parent.IsTransformToWorldLinear():
        return None
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return slicer.util.arrayFromVTKMatrix(to_world) @ local


def _is_volume_node(node) -> bool:
    return hasattr(node, "IsA") and node.IsA("vtkMRMLVolumeNode") and node.GetImageData() is not None


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


def save_segmentation_node(segmentation_node, path) -> None:
    """Write a segmentation node as Slicer writes it (``vtkMRMLSegmentationStorageNode``: a ``.seg.nrrd`` with its
    segments' names, colours and terminology), through a temporary file, so a failure leaves no partial file."""
    path = os.fspath(path)
    if not path.endswith(".seg.nrrd"):
        raise InputError(f"{path}: a segmentation is saved as a .seg.nrrd file.")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".seg.nrrd", dir=folder)
    os.close(fd)
    try:
        storage = slicer.vtkMRMLSegmentationStorageNode()
        storage.SetFileName(tmp)
        storage.SetUseCompression(True)
        if not storage.WriteData(segmentation_node):
            raise OSError(f"could not write the segmentation '{segmentation_node.GetName()}' to {path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def segmentation_file_bytes(segmentation_node) -> bytes:
    """The ``.seg.nrrd`` file of a segmentation node (`save_segmentation_node`), as bytes (a download)."""
    with tempfile.TemporaryDirectory(prefix="orbitai-seg-") as tmp:
        path = os.path.join(tmp, "segmentation.seg.nrrd")
        save_segmentation_node(segmentation_node, path)
        with open(path, "rb") as f:
            return f.read()
