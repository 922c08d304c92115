"""What a DICOM folder holds: its image series and the DICOM objects that are not images (a SEG, a
Structured Report, an RTSTRUCT, ...), so that a folder of several series, or a result object given as the
image, is refused in one line that says what was found and what to give instead.

Headers are read with ``pydicom`` (GDCM, behind SimpleITK, cannot open a Structured Report and reads a
DICOM SEG as if it were an image)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from orbitai.io.dicom_lengths import refuse_damaged
from orbitai.io.volume import VolumeError

__all__ = ["DicomObject", "SeriesInfo", "FolderSurvey", "survey_folder", "non_image_kind", "refuse_non_image_file",
           "SERIES_OPTION", "shown"]

#: The command-line option that chooses one series in a folder of several (named in the errors here).
SERIES_OPTION = "--series"

#: SOP classes that are not images to run a model on, by UID prefix, with what to call them.
_NON_IMAGE_SOP_CLASSES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.66.4", "DICOM Segmentation (SEG)"),
    ("1.2.840.10008.5.1.4.1.1.66", "DICOM spatial registration or fiducials object"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "DICOM Key Object Selection"),
    ("1.2.840.10008.5.1.4.1.1.88.", "DICOM Structured Report (SR)"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "DICOM RT Structure Set (RTSTRUCT)"),
    ("1.2.840.10008.5.1.4.1.1.481.", "DICOM RT object"),
    ("1.2.840.10008.5.1.4.1.1.11.", "DICOM Presentation State"),
    ("1.2.840.10008.5.1.4.1.1.30", "DICOM Parametric Map"),
    ("1.2.840.10008.5.1.4.1.1.104.", "DICOM encapsulated document"),
)
#: The same by Modality, for objects whose SOP class is missing or unusual.
_NON_IMAGE_MODALITIES = {"SEG": "DICOM Segmentation (SEG)", "SR": "DICOM Structured Report (SR)",
                         "RTSTRUCT": "DICOM RT Structure Set (RTSTRUCT)", "KO": "DICOM Key Object Selection",
                         "PR": "DICOM Presentation State", "DOC": "DICOM encapsulated document",
                         "RTPLAN": "DICOM RT plan"}
#: The most characters of a header or user-given string echoed in a message (DICOM's LO holds 64).
SHOWN_CHARS = 64


def shown(value: object, limit: int = SHOWN_CHARS, quote: bool = True) -> str:
    """``value`` quoted for a one-line message: ``repr`` of its first ``limit`` characters, ``...`` and the
    total length when it is longer (a 10 000-character PatientName is not echoed whole). ``quote=False``: the
    same without the quotes (control characters still escaped), for text already set off in a message."""
    text = str(value)
    head = repr(text[:limit])
    if not quote:
        head = head[1:-1]
    return head if len(text) <= limit else f"{head}... ({len(text)} characters)"


_TAGS = ["SOPClassUID", "Modality", "SeriesInstanceUID", "SeriesDescription", "SeriesNumber", "NumberOfFrames"]


@dataclass
class DicomObject:
    """One file's identity: where it is, its SOP class and series."""

    path: Path
    sop_class: str
    modality: str
    series_uid: str
    description: str
    frames: int = 1

    @property
    def kind(self) -> str | None:
        """What it is when it is not an image (e.g. "DICOM Segmentation (SEG)"); None for an image."""
        return non_image_kind(self.sop_class, self.modality)


@dataclass
class SeriesInfo:
    """One image series of a folder: its UID, modality, description and files."""

    uid: str
    modality: str
    description: str
    files: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        """One line (the header's texts shown, control characters escaped: a damaged UID held a newline)."""
        what = ", ".join(x for x in (shown(self.modality, 16, quote=False) if self.modality else "",
                                     shown(self.description) if self.description else "") if x)
        uid = shown(self.uid, quote=False)
        return f"{uid} ({what + ', ' if what else ''}{len(self.files)} file{'s' if len(self.files) != 1 else ''})"


@dataclass
class FolderSurvey:
    """A folder's image series (in the order of their first file's name) and its non-image objects."""

    folder: Path
    series: list[SeriesInfo]
    others: list[DicomObject]

    def listing(self) -> str:
        return "; ".join(s.describe() for s in self.series)

    def refuse_non_images_only(self) -> None:
        """Refuse a folder that holds result objects (SEG, SR, ...) and no image series."""
        if not self.series and self.others:
            kinds = sorted({o.kind or "" for o in self.others})
            raise VolumeError(f"{self.folder} holds {' and '.join(kinds)} but no image series; give the folder of the "
                              "image series it was made from.")

    def choose(self, series_uid: str | None) -> SeriesInfo | None:
        """The image series to read: ``series_uid``, or the only one; None when the folder holds no image series
        that this survey could read (the caller's reader then says why). Several series without a choice, or a
        UID not among them, are refused listing the series found."""
        self.refuse_non_images_only()
        if series_uid is not None:
            for s in self.series:
                if s.uid == series_uid:
                    return s
            found = self.listing() or "none"
            raise VolumeError(f"Series {series_uid} is not in {self.folder}; image series found: {found}.")
        if len(self.series) > 1:
            raise VolumeError(f"{self.folder} holds {len(self.series)} image series; choose one with "
                              f"{SERIES_OPTION} UID: {self.listing()}.")
        return self.series[0] if self.series else None


def non_image_kind(sop_class: str, modality: str = "") -> str | None:
    """What a DICOM object of this SOP class / modality is when it is not an image to run a model on."""
    for prefix, kind in _NON_IMAGE_SOP_CLASSES:
        if sop_class == prefix or (prefix.endswith(".") and sop_class.startswith(prefix)):
            return kind
    return _NON_IMAGE_MODALITIES.get(modality.upper())


def _read_header(path: Path) -> DicomObject | None:
    """The identity of one DICOM file, or None if it is not a DICOM file pydicom can parse."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_TAGS)
        sop = str(getattr(ds, "SOPClassUID", "") or "")
        series = str(getattr(ds, "SeriesInstanceUID", "") or "")
        modality = str(getattr(ds, "Modality", "") or "")
        description = str(getattr(ds, "SeriesDescription", "") or "").strip()
        frames_value = getattr(ds, "NumberOfFrames", 1)
    except Exception:  # noqa: BLE001 - a damaged header raises many kinds in pydicom (BytesLengthException, found by fuzzing, struct.error, ...): not a DICOM object here; the series reader names damaged files
        return None
    if not sop and not series:
        return None
    try:
        frames = int(frames_value or 1)
    except (TypeError, ValueError, OverflowError):
        frames = 1
    return DicomObject(path, sop, modality, series, description, frames)


def looks_like_dicom(path: Path) -> bool:
    """A DICOM preamble, or a .dcm / .ima suffix."""
    if path.suffix.lower() in (".dcm", ".ima", ".dicom"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def survey_folder(folder: str | os.PathLike) -> FolderSurvey:
    """The image series and non-image DICOM objects of the files directly in ``folder`` (not its sub-folders,
    as GDCM reads a series). Files that are not DICOM, or that pydicom cannot parse, are left out here (the
    series reader names damaged ones)."""
    folder = Path(folder)
    series: dict[str, SeriesInfo] = {}
    others: list[DicomObject] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith(".") or path.name.upper() == "DICOMDIR":
            continue
        if not looks_like_dicom(path):
            continue
        obj = _read_header(path)
        if obj is None:
            continue
        if obj.kind is not None:
            others.append(obj)
            continue
        info = series.setdefault(obj.series_uid, SeriesInfo(obj.series_uid, obj.modality, obj.description))
        info.files.append(path)
    return FolderSurvey(folder, list(series.values()), others)


def refuse_non_image_file(path: str | os.PathLike) -> None:
    """Refuse a single DICOM file given as an image when it is a result object (SEG, SR, RTSTRUCT, ...) or one
    slice of a series (the folder is what to give); an enhanced multi-frame image passes."""
    p = Path(path)
    if not looks_like_dicom(p):
        return
    refuse_damaged([p], p.parent)        # before GDCM (SimpleITK) reads its header for the decoded size
    obj = _read_header(p)
    if obj is None:
        return
    if obj.kind == _NON_IMAGE_MODALITIES["SEG"]:       # read where an image or a label map is expected
        raise VolumeError(f"{p} is a {obj.kind}, not an image nor a label map OrbitAI reads: as the image, give the image "
                          "series it was made from (its folder); as a segmentation (--segmentation), give a label "
                          "map: load the SEG in 3D Slicer and save it as .seg.nrrd, or convert it with dcmqi's "
                          "segimage2itkimage.")
    if obj.kind is not None:
        raise VolumeError(f"{p} is a {obj.kind}, not an image; give the image series it was made from (its folder).")
    if obj.frames <= 1:
        raise VolumeError(f"{p} is one DICOM slice; give the folder that holds its series.")


def files_of(survey: FolderSurvey, uids: Sequence[str]) -> list[Path]:
    """Every file of the image series with these UIDs."""
    return [f for s in survey.series if s.uid in uids for f in s.files]
