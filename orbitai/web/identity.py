"""Whose scan is shown: the patient and series a loaded scan came from, as Slicer shows them (issue 61 item 3).

A DICOM series (a folder, an upload of its files, a DICOMweb fetch) is named as Slicer's DICOM browser names the volume
it loads, ``<SeriesNumber>: <SeriesDescription>``, and keeps the patient's name and ID, the study date, the series
description and the modality from its first image's header; any other file is known by its file name. The identity is
kept on the volume node (attributes `ATTRIBUTE_PREFIX` + field), so that it goes with the scan; the page shows it over
the views (`identity_lines`, as Slicer's slice-view corner annotations) and in the scan list (`scan_title`).

No trame import here: the rules are tested on their own.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import pydicom

from orbitai.io.dicom_folder import looks_like_dicom, survey_folder
from orbitai.mrml.scan_identity import ATTRIBUTE_PREFIX, FIELDS, identity_of, patient_line, patient_name, set_identity

__all__ = ["FIELDS", "ATTRIBUTE_PREFIX", "read_identity", "series_name", "set_identity", "identity_of",
           "identity_lines", "scan_title", "patient_name"]

#: The longest value kept of a field (a 10,000-character description is not echoed whole).
MAX_FIELD_CHARS = 64


def _clean(value: Any) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS - 1] + "…"


def _first_image_file(path: Path) -> Optional[Path]:
    """The first image file of the DICOM series at ``path`` (a folder of one series, or one DICOM file), or None."""
    if path.is_file():
        return path if looks_like_dicom(path) else None
    if not path.is_dir():
        return None
    survey = survey_folder(path)
    return survey.series[0].files[0] if survey.series and survey.series[0].files else None


def read_identity(path: str | os.PathLike, file_name: Optional[str] = None,
                  first_file: Optional[Path] = None) -> dict[str, str]:
    """The identity of the scan read from ``path``: the DICOM fields (`FIELDS`) of its first image when it is DICOM,
    else ``{"File": file_name or its name}``. ``first_file``: that image when the series was read already
    (`orbitai.io.dicom.Acquisition.first_file`: the folder is not surveyed again)."""
    p = Path(path)
    first = first_file if first_file is not None else _first_image_file(p)
    if first is not None:
        try:
            ds = pydicom.dcmread(first, stop_before_pixels=True,
                                 specific_tags=[f for f in FIELDS if f != "File"])
        except Exception:  # noqa: BLE001 - a header pydicom cannot read: the scan is known by its name
            ds = None
        if ds is not None:
            found = {f: _clean(getattr(ds, f, "") or "") for f in FIELDS if f != "File"}
            found = {k: v for k, v in found.items() if v}
            if found:
                return found
    return {"File": _clean(file_name or p.name)}


def series_name(identity: dict[str, str]) -> str:
    """The volume's name as Slicer's DICOM browser gives it (``3: T2 TSE AX``; the number or the description alone
    when the other is missing); "" when the scan has neither (the caller names it by its file)."""
    number, description = identity.get("SeriesNumber", ""), identity.get("SeriesDescription", "")
    if number and description:
        return f"{number}: {description}"
    if description:
        return description
    if number:
        return f"{number}: {identity.get('Modality') or 'series'}"
    return ""


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value


def identity_lines(node: Any) -> list[str]:
    """What the page shows over the views for the scan ``node``, as Slicer's corner annotations: the patient's name
    and ID, the study date, the series (description, modality); the file's name for a scan that is not DICOM; the
    node's name when nothing else is known."""
    identity = identity_of(node)
    if not identity:
        return [node.GetName()] if node is not None else []
    if "File" in identity:
        return [identity["File"]]
    lines = [patient_line(node)] if patient_line(node) else []
    if identity.get("StudyDate"):
        lines.append(f"Study date {_date(identity['StudyDate'])}")
    series = series_name(identity) or node.GetName()
    modality = identity.get("Modality", "")
    lines.append(f"{series} ({modality})" if modality and modality not in series else series)
    return lines


def scan_title(node: Any) -> str:
    """The scan list's entry of ``node``: its name, and for a DICOM series the patient (name, ID) and study date."""
    identity = identity_of(node)
    extra = [patient_name(identity.get("PatientName", "")), identity.get("PatientID", ""),
             _date(identity.get("StudyDate", ""))]
    extra = [x for x in extra if x]
    return f"{node.GetName()} — {', '.join(extra)}" if extra else node.GetName()
