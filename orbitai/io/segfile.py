"""Segmentation files: Slicer's ``.seg.nrrd`` and a plain label map + JSON name table.

A ``.seg.nrrd`` written here is a 3D NRRD label map (one layer, every segment on it) whose
header carries Slicer's segmentation keys, so 3D Slicer, ``slicerio`` and any NRRD reader
(``pynrrd``, SimpleITK) load it with names, colours, label values and terminology::

    Segment0_ID:=eyeball_left            Segment0_Name:=eyeball_left
    Segment0_Color:=0.8 0.6 0.5          Segment0_LabelValue:=1
    Segment0_Layer:=0                    Segment0_Extent:=i0 i1 j0 j1 k0 k1
    Segment0_Tags:=TerminologyEntry:...|Segmentation.Status:inprogress|
    Segmentation_MasterRepresentation:=Binary labelmap
    Segmentation_ContainedRepresentationNames:=Binary labelmap|
    Segmentation_ConversionParameters:=...   Segmentation_ReferenceImageExtentOffset:=0 0 0

A *label table* is a ``{value: LabelInfo}`` mapping; the orbit scheme
(:data:`orbitai.labels.ORBIT_LABELS`) is the default, :func:`lesion_table` gives the one-label
table of lesion masks. Writes are atomic (temporary file + rename).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, cast

import numpy as np
import SimpleITK as sitk

from orbitai.boxes import bbox
from orbitai.io.files import read_volume, write_image, write_volume
from orbitai.io.headers import check_image_file
from orbitai.io.volume import Volume, VolumeError
from orbitai.labels import ORBIT_LABELS
from orbitai.progress import interruptible
from orbitai.staging import strict_json

__all__ = ["LabelInfo", "orbit_table", "lesion_table", "write_segmentation", "read_segmentation",
           "write_labelmap_json", "read_labelmap_json"]

_GENERIC_TERMINOLOGY = ("Segmentation category and type - 3D Slicer General Anatomy list"
                        "~SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion~^^~"
                        "Anatomic codes - DICOM master list~^^~^^")


@dataclass(frozen=True)
class LabelInfo:
    """One segment: label value, name, colour (RGB 0-255) and Slicer terminology string."""

    value: int
    name: str
    colour: tuple[int, int, int] = (128, 128, 128)
    terminology: str = ""


def orbit_table() -> dict[int, LabelInfo]:
    """The orbit label scheme 1..16 of DESIGN.md as a label table."""
    return {v: LabelInfo(v, lab.name, lab.colour, lab.slicer_terminology())
            for v, lab in ORBIT_LABELS.items()}


def lesion_table(name: str = "white_matter_lesion") -> dict[int, LabelInfo]:
    """A one-segment table (value 1) for white-matter lesion masks."""
    return {1: LabelInfo(1, name, (255, 200, 40), _GENERIC_TERMINOLOGY)}


def _as_table(table) -> dict[int, LabelInfo]:
    if table is None:
        return orbit_table()
    out = {}
    for k, v in dict(table).items():
        if isinstance(v, LabelInfo):
            out[int(k)] = v
        elif isinstance(v, str):
            out[int(k)] = LabelInfo(int(k), v)
        else:  # e.g. orbitai.labels.Label
            out[int(k)] = LabelInfo(int(k), v.name, tuple(v.colour), v.slicer_terminology())
    return out


def _tmp_write(img: sitk.Image, path: Path, compress: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nrrd", dir=path.parent, prefix=".tmp-")
    os.close(fd)
    try:
        write_image(img, tmp, path, compress)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_segmentation(labels: Volume, path: str | os.PathLike,
                       table: Mapping | None = None, compress: bool = True,
                       include_empty: bool = True) -> Path:
    """Write a label map as a Slicer ``.seg.nrrd`` (one layer; see the module docstring).

    ``table`` maps label values to :class:`LabelInfo` (or names, or ``orbitai.labels.Label``);
    default: the orbit scheme. Values in the array that the table lacks raise an error.
    ``include_empty=False`` leaves out segments with no voxel.
    """
    path = Path(path)
    if not path.name.endswith(".seg.nrrd"):
        raise VolumeError(f"A segmentation file must end in .seg.nrrd, got {path.name}.")
    arr = np.asarray(labels.array)
    if arr.dtype.kind not in "biu":
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise VolumeError("A label map must hold integer values.")
    tab = _as_table(table)
    box = bbox(arr != 0)                   # every segment lies in here: the work below is done on it only
    sub = arr[box] if box is not None else arr[:0, :0, :0]
    present = set(int(v) for v in np.unique(sub)) - {0}
    unknown = sorted(present - set(tab))
    if unknown:
        raise VolumeError(f"Label values {unknown} are not in the label table ({sorted(tab)}).")
    dtype = np.uint8 if max(tab, default=0) < 256 and (sub.size == 0 or sub.min() >= 0) else np.int16
    vol = Volume(arr.astype(dtype, copy=False), labels.spacing, labels.origin, labels.direction)
    img = vol.to_sitk()
    meta: dict[str, str] = {}
    n = 0
    for value in sorted(tab):
        info = tab[value]
        found = bbox(sub == value) if value in present else None
        if found is None:
            if not include_empty:
                continue
            extent = "0 -1 0 -1 0 -1"
        else:
            assert box is not None
            # Slicer's extent: first and last i, j, k of the segment in the whole image
            extent = " ".join(f"{b.start + f.start} {b.start + f.stop - 1}" for f, b in zip(found[::-1], box[::-1]))
        r, g, b = (c / 255.0 for c in info.colour)
        p = f"Segment{n}_"
        meta[p + "ID"] = info.name
        meta[p + "Name"] = info.name
        meta[p + "NameAutoGenerated"] = "0"
        meta[p + "Color"] = f"{r:.6g} {g:.6g} {b:.6g}"
        meta[p + "ColorAutoGenerated"] = "0"
        meta[p + "LabelValue"] = str(int(value))
        meta[p + "Layer"] = "0"
        meta[p + "Extent"] = extent
        tags = ""
        if info.terminology:
            tags += f"TerminologyEntry:{info.terminology}|"
        tags += "Segmentation.Status:inprogress|"
        meta[p + "Tags"] = tags
        n += 1
    meta["Segmentation_MasterRepresentation"] = "Binary labelmap"
    meta["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
    meta["Segmentation_ConversionParameters"] = (
        "Collapse labelmaps|1|Merge the labelmaps into as few shared labelmaps as possible"
        "&Compute surface normals|1|Compute surface normals. 1 (default) = surface normals are computed."
        "&Crop to reference image geometry|0|Crop the model to the extent of reference geometry."
        "&Decimation factor|0.0|Desired reduction in the total number of polygons."
        "&Default slice thickness|0.0|Default thickness for contours if slice spacing cannot be calculated."
        "&End capping|1|Create a closed surface by triangulating contour ends."
        "&Fractional labelmap oversampling factor|1|Determines the oversampling of the reference image geometry."
        "&Joint smoothing|0|Perform joint smoothing."
        "&Oversampling factor|1|Determines the oversampling of the reference image geometry."
        "&Reference image geometry||Image geometry description string determining the geometry of the labelmap."
        "&Smoothing factor|0.5|Smoothing factor."
        "&Threshold fraction|0.5|Determines the threshold that the closed surface is created at.")
    meta["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    for k, v in meta.items():
        img.SetMetaData(k, v)
    return _tmp_write(img, path, compress)


def read_segmentation(path: str | os.PathLike, max_bytes: int | None = None, limit_name: str = ""
                      ) -> tuple[Volume, dict[int, LabelInfo]]:
    """Read a ``.seg.nrrd`` (single layer, as written by Slicer or :func:`write_segmentation`).

    Returns the label map (values as in ``SegmentN_LabelValue``) and its label table.
    Multi-layer (4D) files from Slicer's overlapping segments are refused with a clear message. The header is
    checked first (`orbitai.io.headers.check_image_file`; ``max_bytes``, ``limit_name``: the decoded size's limit).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such segmentation file: {path}")
    check_image_file(path, max_bytes, limit_name)
    try:
        img = interruptible(sitk.ReadImage, str(path))
    except RuntimeError as exc:
        raise VolumeError(f"Could not read {path} as a NRRD segmentation: "
                          f"{str(exc).strip().splitlines()[-1]}") from exc
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(f"{path.name} holds overlapping segments in several layers; export it from "
                          "Slicer as a single-layer segmentation (or a label map) first.")
    keys = set(img.GetMetaDataKeys())
    table: dict[int, LabelInfo] = {}
    n = 0
    while f"Segment{n}_ID" in keys:
        p = f"Segment{n}_"

        def get(k: str, d: str = "", p: str = p) -> str:
            return img.GetMetaData(p + k) if (p + k) in keys else d

        try:
            layer = int(get("Layer", "0") or 0)
            value = int(get("LabelValue", str(n + 1)))
            rgb = [min(max(float(c), 0.0), 1.0) for c in get("Color", "0.5 0.5 0.5").split()[:3]]
            colour = cast("tuple[int, int, int]", tuple(int(round(c * 255)) for c in rgb))   # three in Slicer's files
        except (ValueError, OverflowError):          # a word where a number goes; nan ends at int()
            raise VolumeError(f"{path.name}: segment {n}'s layer, label value or colour in its header is not a number "
                              f"(Layer {get('Layer')[:20]!r}, LabelValue {get('LabelValue')[:20]!r}, Color "
                              f"{get('Color')[:40]!r}); save the segmentation again from Slicer.") from None
        if layer != 0:
            raise VolumeError(f"{path.name}: segment {n} lies on layer {layer}; only single-layer files are read.")
        term = ""
        for tag in get("Tags").split("|"):
            if tag.startswith("TerminologyEntry:"):
                term = tag[len("TerminologyEntry:"):]
        table[value] = LabelInfo(value, get("Name", get("ID")), colour, term)
        n += 1
    vol = Volume.from_sitk(img)
    if vol.array.dtype.kind == "f":
        vol = vol.with_array(np.rint(vol.array).astype(np.int16))
    return vol, table


def write_labelmap_json(labels: Volume, path: str | os.PathLike, table: Mapping | None = None) -> tuple[Path, Path]:
    """Export a plain label map (any volume format, e.g. ``.nii.gz``) plus ``<stem>.json``
    with ``{"labels": [{"value", "name", "colour", "terminology"}]}``. Returns both paths."""
    path = Path(path)
    tab = _as_table(table)
    arr = labels.array
    dtype = np.uint8 if arr.min() >= 0 and arr.max() < 256 else np.int16
    write_volume(Volume(arr.astype(dtype), labels.spacing, labels.origin, labels.direction), path)
    name = path.name
    for suf in (".nii.gz", ".nrrd", ".nii", ".mha", ".nhdr", ".mhd"):
        if name.endswith(suf):
            name = name[: -len(suf)]
            break
    jpath = path.with_name(name + ".json")
    doc = {"labels": [{"value": v, "name": t.name, "colour": list(t.colour), "terminology": t.terminology}
                      for v, t in sorted(tab.items())]}
    fd, tmp = tempfile.mkstemp(suffix=".json", dir=jpath.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(strict_json(doc, indent=1))
    os.replace(tmp, jpath)
    return path, jpath


def read_labelmap_json(path: str | os.PathLike) -> tuple[Volume, dict[int, LabelInfo]]:
    """Read a label map and its ``<stem>.json`` table written by :func:`write_labelmap_json`."""
    path = Path(path)
    vol = read_volume(path)
    name = path.name
    for suf in (".nii.gz", ".nrrd", ".nii", ".mha", ".nhdr", ".mhd"):
        if name.endswith(suf):
            name = name[: -len(suf)]
            break
    doc = json.loads(path.with_name(name + ".json").read_text())
    table = {int(d["value"]): LabelInfo(int(d["value"]), d["name"], tuple(d.get("colour", (128, 128, 128))),
                                        d.get("terminology", "")) for d in doc["labels"]}
    return vol, table
