"""A label map as a DICOM Segmentation (SEG, binary segments) written with ``highdicom``.

One segment per :class:`SegmentDef` a task declares (for the orbit: each structure and side, coded with the
SNOMED CT property category and type of :mod:`orbitai.labels` and the side as the segmented property type
modifier), with the model as the algorithm (name and version from its bundle). The SEG shares the source
series' study, patient and frame of reference and references its instances.

Geometry: the SEG frames are the label map's own planes (its positions, orientation and spacing). For a
series read as it was acquired these are the source slices, so each frame also references its source
image. For a series that reading resampled (gantry tilt, uneven spacing: ``Acquisition.resampled``) the
frames lie on the resampled regular grid, in the same frame of reference, referencing the source series
as a whole but no source slice per frame; :data:`RESAMPLED_NOTE` says so in result.json.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import SimpleITK as sitk
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.sr.codedict import codes
from pydicom.valuerep import format_number_as_ds, validate_value

from orbitai.dicom import DicomExportError, require_highdicom
from orbitai.io.dicom_tags import itk_warnings_off
from orbitai.io.volume import Volume
from orbitai.labels import ANATOMICAL_STRUCTURE, LABEL_BY_NAME, Code

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported only to write
    from pydicom import Dataset

__all__ = ["RESAMPLED_NOTE", "MANUFACTURER", "SegmentDef", "complete_type2", "orbit_segments",
           "read_source_series", "segment_numbers", "write_seg", "TYPE2_COPIED"]

MANUFACTURER = "OrbitAI"
#: What result.json's acquisition notes say when the SEG lies on a resampled grid.
RESAMPLED_NOTE = ("segmentation.dcm lies on the resampled regular grid (its own plane positions, same frame of "
                  "reference), not on the acquired slices; it references the source series as a whole.")


def read_source_series(folder: str | os.PathLike) -> list[Dataset]:
    """The headers (no pixel data) of the DICOM series in ``folder`` that :func:`orbitai.io.read_scan` reads
    (the first series GDCM finds)."""
    pydicom, _hd = require_highdicom()
    with itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0]) if ids else ()
    if not files:
        raise DicomExportError(f"No DICOM series found in {folder} to reference from the DICOM SEG.")
    return [complete_type2(pydicom.dcmread(f, stop_before_pixels=True)) for f in files]


#: Patient and study attributes of type 2 (present, may be empty) that a SEG and an SR copy from their source;
#: an anonymiser often removes them (PS3.15 E.1), and the derived objects then carry them empty.
TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate", "StudyTime",
                "AccessionNumber", "ReferringPhysicianName")


def complete_type2(ds: Dataset) -> Dataset:
    """``ds`` (a source header, in memory) with each of :data:`TYPE2_COPIED` present: an absent one, or one whose
    value is not valid for its VR (e.g. PatientSex ``U``, a date ``2020-01-01``), becomes empty, as type 2
    allows. The file is not changed."""
    for key in TYPE2_COPIED:
        value = ds.get(key)
        if value is None:
            setattr(ds, key, "")
            continue
        text = str(value)
        if key == "PatientSex":
            if text not in ("", "M", "F", "O"):
                ds.PatientSex = ""
            continue
        try:
            validate_value(dictionary_VR(key), text, config.RAISE)
        except ValueError:
            if dictionary_VR(key) in ("DA", "TM"):
                setattr(ds, key, "")
    return ds


@dataclass(frozen=True)
class SegmentDef:
    """One segment of a SEG: the label value it takes from the label map, its label and codes."""

    value: int
    label: str
    category: Code
    type: Code
    modifier: Code | None = None                 # e.g. the side (Left / Right) of a paired structure
    colour: tuple[int, int, int] = (128, 174, 128)


def segment_numbers(segments: Sequence[SegmentDef]) -> dict[int, int]:
    """Label value -> SEG segment number (1, 2, ... in the order of ``segments``)."""
    return {s.value: n for n, s in enumerate(segments, start=1)}


def orbit_segments(rows: Sequence[dict[str, Any]]) -> list[SegmentDef]:
    """The segments of an orbit result's structure rows (label, name) in the orbit label scheme."""
    out = []
    for r in rows:
        lab = LABEL_BY_NAME.get(str(r["name"]))
        if lab is None:
            raise DicomExportError(f"Structure {r['name']!r} is not in the orbit label scheme; no DICOM SEG code.")
        out.append(SegmentDef(int(r["label"]), lab.name, ANATOMICAL_STRUCTURE, lab.code, lab.laterality, lab.colour))
    return out


def _coded(hd: Any, code: Code) -> Any:
    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def algorithm_identification(hd: Any, model: str, version: str) -> Any:
    """The model as the SEG's algorithm (family: artificial intelligence)."""
    return hd.AlgorithmIdentificationSequence(name=model, family=codes.cid7162.ArtificialIntelligence,
                                              version=version or "unknown")


def write_seg(labels: Volume, segments: Sequence[SegmentDef], sources: Sequence[Dataset], model: str,
              version: str, path: str | os.PathLike, description: str = "OrbitAI orbit segmentation",
              content_label: str = "ORBIT", masks: Sequence[np.ndarray] | None = None) -> Dataset:
    """Write ``labels`` (values as in ``segments``) as a binary DICOM SEG at ``path`` referencing ``sources``
    (see the module's note on geometry); returns the SEG. Segments that overlap (e.g. lesions inside the
    intracranial mask) come as ``masks``, one boolean array per segment on ``labels``' grid."""
    pydicom, hd = require_highdicom()
    numbers = segment_numbers(segments)
    algorithm = algorithm_identification(hd, model, version)
    descriptions = []
    for seg_def in segments:
        desc = hd.seg.SegmentDescription(numbers[seg_def.value], seg_def.label, _coded(hd, seg_def.category),
                                         _coded(hd, seg_def.type), hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                         algorithm_identification=algorithm,
                                         display_color=hd.color.CIELabColor.from_rgb(*seg_def.colour))
        if seg_def.modifier is not None:   # qualifies the property type (nested in its code item, as the IOD has it)
            desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                _coded(hd, seg_def.modifier)]
        descriptions.append(desc)
    if masks is not None:
        if len(masks) != len(segments) or any(m.shape != labels.shape for m in masks):
            raise DicomExportError("One mask per segment on the label map's grid is needed for a DICOM SEG.")
        pixels = np.stack([np.asarray(m, dtype=bool) for m in masks], axis=-1).astype(np.uint8)
    else:
        lut = np.zeros(max(int(labels.array.max()), max(numbers)) + 1, dtype=np.uint8)
        for value, number in numbers.items():
            lut[value] = number
        pixels = lut[labels.array.astype(np.intp)]              # (slices, rows, columns) of segment numbers
    d = labels.direction
    sp = labels.spacing
    positions = [hd.PlanePositionSequence("PATIENT", [float(v) for v in labels.index_to_physical((0, 0, k))])
                 for k in range(pixels.shape[0])]
    series_number = int(getattr(sources[0], "SeriesNumber", None) or 0) + 1000    # beside the source's
    try:
        seg = hd.seg.Segmentation(
            source_images=list(sources), pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
            sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer=MANUFACTURER, manufacturer_model_name=model, software_versions=_software_version(),
            device_serial_number="0", series_description=description[:64],
            content_label=content_label[:16], content_description=f"{description} by {model}"[:64],
            pixel_measures=hd.PixelMeasuresSequence((float(sp[1]), float(sp[0])), float(sp[2]), float(sp[2])),
            plane_orientation=hd.PlaneOrientationSequence("PATIENT", [float(v) for v in (*d[:, 0], *d[:, 1])]),
            plane_positions=positions)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomExportError(f"The DICOM SEG cannot be made from this series: {exc}") from None
    # highdicom copies the source's pixel measures when the pixel spacing matches: the slice spacing is ours
    # (a resampled grid's), which readers such as dcmqi use to stack the frames
    seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SpacingBetweenSlices = _ds(float(sp[2]))
    seg.save_as(Path(path), enforce_file_format=True)
    return seg


def _ds(value: float) -> str:
    """``value`` as a DICOM decimal string (16 characters at most)."""
    return format_number_as_ds(value)


def _software_version() -> str:
    try:
        return f"orbitai {version('orbitai')}"
    except PackageNotFoundError:
        return "orbitai"
