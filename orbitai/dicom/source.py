"""A volume file (NRRD, NIfTI, ...) as a DICOM series with the patient and study a user gives, so that a
DICOM SEG and SR can reference real image instances when the input was not DICOM (``--dicom-attributes``).

The series is a derived image (ImageType ``DERIVED\\SECONDARY``) of the CT or MR Image Storage class with the
volume's geometry (one slice per plane: position, orientation, spacing) and its values exactly when they are
integers in the int16 range, otherwise scaled into int16 with a rescale slope and intercept (the largest error
is half a step, said in the series' DerivationDescription). Written with pydicom: SimpleITK's DICOM writer
cannot set the patient and study modules from a dictionary in one go, and GDCM would store floats unscaled."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds, validate_value

from orbitai.errors import UserError
from orbitai.io.dicom_folder import shown
from orbitai.io.volume import Volume

#: The predict commands' option naming the patient and study of a volume file turned into a DICOM series.
ATTRIBUTES_OPTION = "--dicom-attributes"

__all__ = ["ATTRIBUTES", "parse_attributes", "write_derived_series", "ATTRIBUTES_OPTION"]

#: The patient and study attributes a user may give (keywords of the DICOM dictionary); PatientID is required.
ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
              "StudyDate", "StudyTime", "StudyDescription", "AccessionNumber", "ReferringPhysicianName",
              "SeriesDescription")
_SEX = {"M", "F", "O", ""}
_CT = "1.2.840.10008.5.1.4.1.1.2"
_MR = "1.2.840.10008.5.1.4.1.1.4"


def parse_attributes(text: str) -> dict[str, str]:
    """The attributes of ``text``: a JSON object, or the path of a file holding one. One-line errors for an
    unknown keyword, a value that is not valid for its DICOM value representation, or no PatientID."""
    where = "the JSON given"
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UserError(f"{ATTRIBUTES_OPTION} {text}: neither a JSON object nor a file; give e.g. "
                            "'{\"PatientID\": \"123\", \"PatientName\": \"Doe^Jane\"}' or a .json file holding it.")
        where, source = str(path), path.read_text(encoding="utf-8")
    try:
        given = json.loads(source)
    except json.JSONDecodeError as exc:
        raise UserError(f"{ATTRIBUTES_OPTION}: {where} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if not isinstance(given, dict):
        raise UserError(f"{ATTRIBUTES_OPTION}: {where} must be a JSON object of DICOM keywords and values.")
    unknown = sorted(set(given) - set(ATTRIBUTES))
    if unknown:
        raise UserError(f"{ATTRIBUTES_OPTION}: unknown attribute(s) {', '.join(shown(k, quote=False) for k in unknown[:5])}"
                        f"; give any of {', '.join(ATTRIBUTES)}.")
    out: dict[str, str] = {}
    for key, value in given.items():
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise UserError(f"{ATTRIBUTES_OPTION}: {key} must be a string, got {shown(json.dumps(value), quote=False)}.")
        value = str(value)
        if "\\" in value:        # the value delimiter of every VR: "A\\B" would become two values
            raise UserError(f"{ATTRIBUTES_OPTION}: {key} {shown(value)} contains a backslash, which DICOM reserves "
                            "to separate values; give it without one.")
        vr = dictionary_VR(key)
        try:
            validate_value(vr, value, config.RAISE)
        except ValueError:
            hint = {"DA": " (a date: YYYYMMDD)", "TM": " (a time: HHMMSS)", "UI": " (a UID: digits and dots)",
                    "PN": " (a person name: Family^Given, at most 64 characters a group)"}.get(vr, "")
            raise UserError(f"{ATTRIBUTES_OPTION}: {key} {shown(value)} is not a valid DICOM {vr} value{hint}."
                            ) from None
        if key == "PatientSex" and value not in _SEX:
            raise UserError(f"{ATTRIBUTES_OPTION}: PatientSex must be M, F or O, got {shown(value)}.")
        out[key] = value
    if not out.get("PatientID"):
        raise UserError(f"{ATTRIBUTES_OPTION}: give at least PatientID (the PACS files the results under it).")
    return out


def _int16_scaling(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(stored int16, slope, intercept)`` with stored * slope + intercept ~ values (exact for integers)."""
    lo, hi = float(values.min()), float(values.max())
    if np.all(np.mod(values, 1) == 0) and lo >= -32768 and hi <= 32767:
        return values.astype(np.int16), 1.0, 0.0
    slope = (hi - lo) / 65534.0 if hi > lo else 1.0
    intercept = lo + 32767.0 * slope                  # stored -32767 .. 32767 spans lo .. hi
    stored = np.clip(np.rint((values - intercept) / slope), -32767, 32767).astype(np.int16)
    return stored, slope, intercept


def write_derived_series(vol: Volume, folder: str | os.PathLike, attributes: dict[str, Any], modality: str,
                         source_name: str = "") -> Path:
    """Write ``vol`` into the new ``folder`` as a derived CT or MR series (``modality``) with ``attributes``
    (see :func:`parse_attributes`); new series and frame-of-reference UIDs, a new study unless given."""
    modality = modality.upper()
    if modality not in ("CT", "MR"):
        raise UserError(f"A derived DICOM series is CT or MR, not {modality}.")
    folder = Path(folder)
    folder.mkdir(parents=True)
    stored, slope, intercept = _int16_scaling(np.asarray(vol.array, dtype=np.float64))
    study = attributes.get("StudyInstanceUID") or generate_uid()
    series, frame = generate_uid(), generate_uid()
    d = vol.direction
    sx, sy, sz = (float(s) for s in vol.spacing)
    sop_class = _CT if modality == "CT" else _MR
    derivation = f"Converted by OrbitAI from {source_name or 'a volume file'}"
    if slope != 1.0 or intercept != 0.0:
        derivation += f"; values scaled into int16 (largest error {slope / 2:.3g})"
    # text beyond ASCII (a name in kanji, a source file "眼窩.nrrd") is written in UTF-8 and says so, instead of
    # as "?": every text the series holds (the attributes and the derivation description) decides
    texts = [*map(str, attributes.values()), derivation]
    charset = "ISO_IR 192" if any(not t.isascii() for t in texts) else None
    for k in range(stored.shape[0]):
        ds = pydicom.Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, ds.file_meta.MediaStorageSOPInstanceUID
        for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate",
                    "StudyTime", "AccessionNumber", "ReferringPhysicianName"):
            setattr(ds, key, attributes.get(key, ""))                      # type 2: present, empty if not given
        if attributes.get("StudyDescription"):
            ds.StudyDescription = attributes["StudyDescription"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, 901, k + 1
        ds.SeriesDescription = attributes.get("SeriesDescription") or "OrbitAI source image"
        ds.Manufacturer, ds.PositionReferenceIndicator = "OrbitAI", ""
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if modality == "CT" else "OTHER"]
        ds.Laterality, ds.PatientPosition = "", ""                          # type 2C: not known for a file
        ds.DerivationDescription = derivation[:1024]
        ds.ImagePositionPatient = [_ds(v) for v in vol.index_to_physical((0, 0, k))]
        ds.ImageOrientationPatient = [_ds(v) for v in (*d[:, 0], *d[:, 1])]
        ds.PixelSpacing = [_ds(sy), _ds(sx)]                               # row spacing, column spacing
        ds.SliceThickness = _ds(sz)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope = _ds(intercept), _ds(slope)
            ds.KVP, ds.AcquisitionNumber = "", ""
        else:
            if slope != 1.0 or intercept != 0.0:    # not in the MR IOD (a standard extended SOP class), as vendors do
                ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = _ds(intercept), _ds(slope), "US"
            ds.ScanningSequence, ds.SequenceVariant = "RM", "NONE"         # research mode: not acquired here
            ds.ScanOptions, ds.MRAcquisitionType, ds.EchoTime, ds.EchoTrainLength = "", "", "", ""
            ds.RepetitionTime = ""
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds.save_as(folder / f"{k + 1:05d}.dcm", enforce_file_format=True)
    return folder


def _ds(value: float) -> str:
    text = format_number_as_ds(float(value))
    return re.sub(r"^-0$", "0", text)
