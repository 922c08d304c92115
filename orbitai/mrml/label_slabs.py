"""A segmentation's label map made a k-slab at a time from its binary-labelmap layers (`LabelSlabs`), with the
same voxels as the whole export (`orbitai.mrml.segmentations.labels_from_segmentation_node`), so that no GUI tick
holds Slicer's main thread for a whole scan (issue 63)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.mrml.segment_labelmaps import binary_labelmap
from orbitai.mrml.segmentations import segments_by_value

__all__ = ["LabelSlabs", "label_slabs_from_segmentation_node"]


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
    a job's input file is written across a GUI timer's ticks (`orbitai.jobs.inputs.JobInputWriter`), not in one
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
