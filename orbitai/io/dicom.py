"""DICOM series: reading one (slice geometry, gantry tilt and uneven spacing regularised, values in Hounsfield
units) and saying how (:class:`Acquisition`), and writing one (for exchange, tests and phantoms)."""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io.dicom_folder import looks_like_dicom, survey_folder
from orbitai.io.dicom_folder import shown as shown_text
from orbitai.io.dicom_lengths import refuse_damaged
from orbitai.io.headers import check_decoded_size, image_bytes
from orbitai.io.regrid import Planes, regular_grid
from orbitai.io.values import offset_ct_evidence
from orbitai.io.volume import Volume, VolumeError
from orbitai.progress import interruptible

log = logging.getLogger("orbitai.io")


@contextlib.contextmanager
def itk_warnings_off() -> Iterator[None]:
    """Silence ITK's multi-line warnings on stderr (e.g. GDCM's "No Series were found") inside the
    block, where the caller reports the problem itself in one line; the setting is restored after."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


#: Orientations may vary between slices only by a rotation about the common row direction (a gantry
#: tilt that changes during the series), within this many degrees of each other; anything else is
#: another series (a localizer) mixed in.
MAX_TILT_SPREAD_DEG = 30.0
#: A gap wider than this many median spacings is refused (slices missing), never interpolated.
MAX_GAP_FACTOR = 2.0


@dataclass
class Acquisition:
    """How a scan was acquired and what reading it corrected (printed and written to result.json).

    ``positions`` are the acquired slices' positions (mm) along ``normal`` (LPS), sorted; for a file
    they are its slices along the axis with the largest spacing."""

    source: str                                   # "dicom" or "file"
    modality: str | None = None                   # DICOM Modality (e.g. "CT"), None for files
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    tilt_deg: tuple[float, float] = (0.0, 0.0)    # smallest and largest gantry tilt of the slices
    gaps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)   # smallest, median, largest slice gap
    resampled: dict[str, Any] | None = None       # the regular grid the slices were resampled onto
    values: str | None = None                     # how stored values became Hounsfield units
    notes: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)   # the first slice's ACQUISITION_TAGS (what the scan is)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "modality": self.modality, "slices": int(len(self.positions)),
                "tilt_deg": [round(t, 2) for t in self.tilt_deg],
                "slice_gap_mm": {"min": round(self.gaps_mm[0], 3), "median": round(self.gaps_mm[1], 3),
                                 "max": round(self.gaps_mm[2], 3)},
                "resampled": self.resampled, "values": self.values, "notes": list(self.notes)}


def read_dicom_series(folder: str | os.PathLike, series_id: str | None = None, max_bytes: int | None = None,
                      limit_name: str = "") -> Volume:
    """Read one DICOM series from a folder (the first, or ``series_id``) in Hounsfield units for CT;
    see :func:`read_dicom_scan` (its notes are logged as warnings here)."""
    vol, acq = read_dicom_scan(folder, series_id, max_bytes, limit_name)
    for note in acq.notes:
        log.warning(note)
    return vol


def read_dicom_scan(folder: str | os.PathLike, series_id: str | None = None, max_bytes: int | None = None,
                    limit_name: str = "") -> tuple[Volume, Acquisition]:
    """Read one DICOM series and say how: the volume and its :class:`Acquisition`.

    Geometry comes from every slice's ImagePositionPatient/ImageOrientationPatient: a series with
    gantry tilt (constant or varying), uneven spacing or gaps up to :data:`MAX_GAP_FACTOR` median
    spacings is resampled onto a regular orthogonal grid (:func:`orbitai.io.regrid.regular_grid`);
    the files are never changed. Values: rescale slope/intercept are applied (by GDCM); CT stored
    as 8-bit windowed values with WindowCenter/WindowWidth, or offset by +1024 without an intercept,
    is converted to Hounsfield units (see :func:`hounsfield_units`). Refused with a
    :class:`VolumeError` naming the slices: damaged files, slices of another orientation, missing
    slices (see :meth:`SliceGeometry.problem`), slices of different size or pixel spacing. ``max_bytes``: the most
    bytes the decoded series may take (`orbitai.io.headers.check_decoded_size`; from the slices' headers, before
    any pixel is decoded).
    """
    folder = Path(folder)
    survey = survey_folder(folder)
    chosen = survey.choose(series_id)        # refuses several series without a choice, or only SEG/SR/...
    # a damaged file's element of gigabytes: GDCM would allocate it while it looks for the series
    refuse_damaged([p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
                    and looks_like_dicom(p)], folder)
    with itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if chosen is not None:
        series_id = chosen.uid
    else:
        ids = tuple(i for i in ids if i not in {o.series_uid for o in survey.others})
        if not ids:
            raise VolumeError(f"No DICOM series found in {folder}.")
        series_id = ids[0] if series_id is None else series_id
    if series_id not in ids:
        raise VolumeError(f"Series {shown_text(series_id, quote=False)} not in {folder}; found: "
                          f"{', '.join(shown_text(i, quote=False) for i in ids) or 'none'}")
    with itk_warnings_off():
        files = [Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)]
    elsewhere = {f for s in survey.series if s is not chosen for f in s.files} | {o.path for o in survey.others}
    bad = _unreadable_dicom_files(folder, set(files) | elsewhere)
    if bad:
        shown = ", ".join(p.name for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise VolumeError(f"{folder}: {shown} cannot be read as DICOM (truncated or damaged). "
                          "Re-copy or re-export the series.")
    geometry = dicom_slice_geometry(files)
    problem = geometry.problem()
    if problem:
        raise VolumeError(f"{folder}: {problem}. Re-export or re-copy the complete series.")
    check_decoded_size(folder, geometry.decoded_bytes,
                       f"{len(geometry.files)} slices of {geometry.size[0]}x{geometry.size[1]}", max_bytes, limit_name)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in geometry.files])      # sorted along the normal
    try:
        with itk_warnings_off():
            img = interruptible(reader.Execute)
    except RuntimeError as exc:
        raise VolumeError(f"{folder}: the slices cannot be read as one series ({_last_line(exc)}).") from None
    acq = Acquisition("dicom", geometry.header.get("0008|0060", "").strip() or None, geometry.positions.copy(),
                      geometry.normal.copy(), tags={k: v for k, v in geometry.header.items()
                                                    if k in ACQUISITION_TAGS.values()})
    if len(geometry.files) > 1:
        gaps = geometry.gaps
        acq.gaps_mm = (float(gaps.min()), geometry.median_spacing, float(gaps.max()))
    tilt = geometry.tilt_deg()
    acq.tilt_deg = (float(tilt.min()), float(tilt.max())) if len(tilt) else (0.0, 0.0)
    vol = hounsfield_units(Volume.from_sitk(img), geometry.header, acq)   # on the stored slices (integers)
    if not geometry.regular():
        vol = _regularised(vol.array, geometry, acq)
    if acq.modality:
        vol.metadata["Modality"] = acq.modality
    return vol, acq


def _regularised(stack: np.ndarray, geometry: "SliceGeometry", acq: Acquisition) -> Volume:
    """The stack resampled onto a regular grid, with a note saying what was corrected."""
    gaps = geometry.gaps
    step = max(float(gaps.min()), 0.5 * geometry.median_spacing)
    try:
        grid = regular_grid(stack, geometry.planes(), step, float(stack.min()))
    except ValueError as exc:
        raise VolumeError(f"{geometry.files[0].parent}: {exc}; the series cannot be put on a regular grid. "
                          "Export it without gantry tilt (or resliced by the scanner).") from None
    vol = Volume(grid.array, grid.spacing, grid.origin, grid.direction)
    lo, hi = acq.tilt_deg
    what = []
    if hi > TILT_TOLERANCE_DEG:
        what.append(f"gantry tilt {lo:.1f} degrees" if hi - lo < 0.1 else f"gantry tilt varying from {lo:.1f} to {hi:.1f} degrees")
    if geometry.uneven():
        what.append(f"uneven slice spacing {acq.gaps_mm[0]:.2f}-{acq.gaps_mm[2]:.2f} mm "
                    f"(median {acq.gaps_mm[1]:.2f} mm)")
    size = "x".join(str(n) for n in vol.size_xyz)
    sp = "x".join(f"{s:.3g}" for s in vol.spacing)
    acq.resampled = {"size": list(vol.size_xyz), "spacing": [round(s, 4) for s in vol.spacing],
                     "origin": [round(o, 4) for o in vol.origin],
                     "direction": [round(float(d), 6) for d in vol.direction.ravel()]}
    acq.notes.append(f"{len(geometry.files)} DICOM slices with {' and '.join(what) or 'an irregular grid'}: "
                     f"resampled onto a regular {size} grid of {sp} mm along the slice normal (files unchanged)")
    return vol


#: Below this the slices count as untilted (in-plane drift < 0.1 mm over 100 mm of slices).
TILT_TOLERANCE_DEG = 0.05


@dataclass(frozen=True)
class SliceGeometry:
    """Where the slices of a DICOM series lie, sorted along the slice normal.

    ``positions[i]`` is the centre of slice ``files[i]`` projected on ``normal`` (the slices' mean
    normal), in mm; ``orientation`` is the most common ImageOrientationPatient (row and column direction
    cosines), ``orientations``/``origins`` those of every slice, ``header`` the first slice's
    DICOM tags (value-related ones: Modality, rescale, window, bits)."""

    files: tuple[Path, ...]
    positions: np.ndarray
    orientation: np.ndarray
    normal: np.ndarray
    origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    orientations: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    pixel: tuple[float, float] = (1.0, 1.0)
    size: tuple[int, int] = (1, 1)
    header: dict[str, str] = field(default_factory=dict)
    decoded_bytes: int = 0          # what the slices' pixels take once decoded (every frame, every component)

    @property
    def gaps(self) -> np.ndarray:
        """Distances (mm) between neighbouring slices along the normal."""
        return np.diff(self.positions)

    @property
    def median_spacing(self) -> float:
        return float(np.median(self.gaps)) if len(self.files) > 1 else 0.0

    def planes(self) -> Planes:
        """The slices as :class:`orbitai.io.regrid.Planes`."""
        return Planes(self.origins, self.orientations[:, :3], self.orientations[:, 3:], self.pixel, self.size)

    def centres(self) -> np.ndarray:
        """LPS centre of every slice (K, 3)."""
        w, h = (self.size[0] - 1) * self.pixel[0] / 2, (self.size[1] - 1) * self.pixel[1] / 2
        return self.origins + w * self.orientations[:, :3] + h * self.orientations[:, 3:]

    def tilt_deg(self) -> np.ndarray:
        """Each slice's gantry tilt: the angle (degrees) between its normal and the line along which the
        slices were acquired (first to last centre); 0 for a series stacked along its normal."""
        if len(self.files) < 2:
            return np.zeros(len(self.files))
        c = self.centres()
        line = c[-1] - c[0]
        line /= np.linalg.norm(line)
        n = np.cross(self.orientations[:, :3], self.orientations[:, 3:])
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return np.degrees(np.arccos(np.clip(np.abs(n @ line), 0.0, 1.0)))

    def uneven(self, tolerance: float = 0.01) -> bool:
        """True when a gap is off the median by more than ``tolerance`` x the median (and 0.01 mm)."""
        gaps = self.gaps
        return bool(len(gaps)) and bool(np.max(np.abs(gaps - self.median_spacing)) >
                                        max(tolerance * self.median_spacing, 0.01))

    def regular(self) -> bool:
        """True when the slices already form a regular grid (ITK's series reader reads it exactly)."""
        same = len(self.orientations) == 0 or np.allclose(self.orientations, self.orientations[0], atol=1e-5)
        tilt = self.tilt_deg()
        return bool(same) and not self.uneven() and not (len(tilt) and tilt.max() > TILT_TOLERANCE_DEG)

    def problem(self, missing_factor: float = MAX_GAP_FACTOR, tolerance: float = 0.05) -> str | None:
        """One sentence on why the slices cannot be put on a regular grid, or None when they can.

        Refused: slices at the same position; a gap over ``missing_factor`` x the median spacing (+ 0.01 mm); in a
        series otherwise evenly spaced (every other gap within ``tolerance`` x the median), a gap of
        1.5 median spacings or more (one or more slices missing). Other uneven spacing is resampled.
        """
        if len(self.files) < 2:
            return None
        gaps, median = self.gaps, self.median_spacing
        names = [f.name for f in self.files]
        same = np.flatnonzero(gaps < 1e-3)
        if len(same) or median <= 0:
            i = int(same[0]) if len(same) else 0
            return (f"slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) lie at the same position "
                    f"{self.positions[i]:.2f} mm: the folder mixes series or time points")
        i = int(np.argmax(gaps))
        others = np.delete(gaps, i)
        even_elsewhere = len(others) and np.max(np.abs(others - median)) <= max(tolerance * median, 0.01)
        if gaps[i] > missing_factor * median + 0.01 or (even_elsewhere and gaps[i] >= 1.5 * median):
            lost = max(1, int(round(gaps[i] / median)) - 1)
            return (f"slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) are {gaps[i]:.1f} mm apart, "
                    f"the median spacing is {median:.2f} mm: {lost} slice{'s are' if lost > 1 else ' is'} missing "
                    f"between {self.positions[i]:.2f} and {self.positions[i + 1]:.2f} mm along the slice normal")
        return None


def dicom_slice_geometry(files: Sequence[str | os.PathLike]) -> SliceGeometry:
    """Read each file's header (not its pixels) and return the series' :class:`SliceGeometry`.

    Raises :class:`VolumeError` naming the file when a header cannot be read or lacks
    ImagePositionPatient/ImageOrientationPatient, and naming the slices whose orientation is not the
    series' own (up to a gantry tilt varying by :data:`MAX_TILT_SPREAD_DEG` about the row direction)
    or whose size or pixel spacing differs.
    """
    if not files:
        raise VolumeError("No DICOM files given.")
    reader = sitk.ImageFileReader()
    pos, orient, pixel, size = [], [], [], []
    header: dict[str, str] = {}
    decoded = 0
    paths = [Path(f) for f in files]
    for path in paths:
        reader.SetFileName(str(path))
        try:
            with itk_warnings_off():
                reader.ReadImageInformation()
            pos.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
            orient.append([float(v) for v in reader.GetMetaData("0020|0037").split("\\")])
        except (RuntimeError, ValueError) as exc:
            raise VolumeError(f"{path} is not a readable DICOM slice with ImagePositionPatient and "
                              f"ImageOrientationPatient ({_last_line(exc)}). Re-copy or re-export the series."
                              ) from None
        if len(pos[-1]) != 3 or len(orient[-1]) != 6:      # one slice's count unlike the others' (found by fuzzing)
            raise VolumeError(f"{path}: ImagePositionPatient/ImageOrientationPatient must have 3 and 6 values, not "
                              f"{len(pos[-1])} and {len(orient[-1])}. Re-export the series.")
        pixel.append(tuple(round(s, 6) for s in reader.GetSpacing()[:2]))
        size.append(tuple(reader.GetSize()[:2]))
        decoded += image_bytes(reader.GetSize(), reader.GetNumberOfComponents(), reader.GetPixelID())
        if not header:
            header = {k: reader.GetMetaData(k) for k in (*_VALUE_TAGS, *ACQUISITION_TAGS.values())
                      if reader.HasMetaDataKey(k)}
    orientation = np.asarray(orient)
    if orientation.shape[1:] != (6,) or np.asarray(pos).shape[1:] != (3,):
        raise VolumeError(f"{paths[0].parent}: ImagePositionPatient/ImageOrientationPatient must have 3 and 6 "
                          "values. Re-export the series.")
    keys = [tuple(np.round(o, 3)) for o in orientation]
    common = max(set(keys), key=keys.count)
    ref = orientation[keys.index(common)]
    ref_name = min(p.name for p, key in zip(paths, keys) if key == common)
    ref_normal = np.cross(ref[:3], ref[3:])
    normals = np.cross(orientation[:, :3], orientation[:, 3:])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(normals @ ref_normal / np.linalg.norm(ref_normal), -1, 1)))
    same_row = np.all(np.abs(orientation[:, :3] - ref[:3]) < 1e-3, axis=1)
    odd = sorted(p.name for p, ok in zip(paths, same_row & (angle <= MAX_TILT_SPREAD_DEG)) if not ok)
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise VolumeError(f"{paths[0].parent}: {shown} {'have' if len(odd) > 1 else 'has'} another slice "
                          f"orientation than {ref_name} (a localizer or another series mixed in?). "
                          "Keep only the slices of one series in the folder.")
    for what, values in (("size", size), ("pixel spacing", pixel)):
        other = [p.name for p, v in zip(paths, values) if v != values[keys.index(common)]]
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise VolumeError(f"{paths[0].parent}: {shown} {'have' if len(other) > 1 else 'has'} another slice "
                              f"{what} than {ref_name}. Keep only the slices of one series in the folder.")
    normal = normals.mean(0)
    normal /= np.linalg.norm(normal)
    px, sz = pixel[0], size[0]
    origins = np.asarray(pos)
    centres = (origins + (sz[0] - 1) * px[0] / 2 * orientation[:, :3]
               + (sz[1] - 1) * px[1] / 2 * orientation[:, 3:])
    along = centres @ normal
    order = np.argsort(along, kind="stable")
    return SliceGeometry(tuple(paths[i] for i in order), along[order], ref.copy(), normal, origins[order],
                         orientation[order], (float(px[0]), float(px[1])), (int(sz[0]), int(sz[1])), header,
                         decoded)


#: DICOM tags that say how stored values map to Hounsfield units.
_VALUE_TAGS = ("0008|0060", "0028|0100", "0028|0101", "0028|0103", "0028|1050", "0028|1051", "0028|1052",
               "0028|1053", "0018|1120")

#: DICOM tags (keyword -> number as GDCM writes it) that say what the scan is (read by :mod:`orbitai.scan`).
ACQUISITION_TAGS = {"Modality": "0008|0060", "SeriesDescription": "0008|103e", "ProtocolName": "0018|1030",
                    "ScanningSequence": "0018|0020", "SequenceVariant": "0018|0021", "ScanOptions": "0018|0022",
                    "SequenceName": "0018|0024", "RepetitionTime": "0018|0080", "EchoTime": "0018|0081",
                    "InversionTime": "0018|0082", "SliceThickness": "0018|0050", "ImageType": "0008|0008"}


def acquisition_tags(path: str | os.PathLike) -> dict[str, str]:
    """The :data:`ACQUISITION_TAGS` of a DICOM folder's first series (its first slice's header); {} for a file or
    a folder without DICOM (what a command that reads the image on its own passes to :mod:`orbitai.scan`)."""
    p = Path(path)
    if not p.is_dir():
        return {}
    with itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(p))
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), ids[0]) if ids else ()
    if not files:
        return {}
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(files[0]))
    try:
        with itk_warnings_off():
            reader.ReadImageInformation()
    except RuntimeError:
        return {}
    return {k: reader.GetMetaData(k) for k in ACQUISITION_TAGS.values() if reader.HasMetaDataKey(k)}


def _tag_number(header: dict[str, str], tag: str) -> float | None:
    """The first value of a numeric DICOM tag (multi-valued tags hold e.g. '40\\400'), or None."""
    text = header.get(tag, "").strip()
    if not text:
        return None
    try:
        return float(text.split("\\")[0])
    except ValueError:
        return None


def hounsfield_units(vol: Volume, header: dict[str, str], acq: Acquisition) -> Volume:
    """CT values in Hounsfield units when the DICOM header makes the mapping certain, else unchanged.

    * 8-bit windowed (values 0-255, BitsStored <= 8, WindowCenter/WindowWidth given and not the 0-255
      display window itself): the inverse of DICOM's linear VOI function (PS3.3 C.11.2.1.2),
      ``HU = c - 0.5 + (v / 255 - 0.5) (w - 1)``; voxels at 0 and 255 were clipped, so they read as the
      window's ends.
    * offset by +1024 (Modality CT, no rescale intercept, and
      :func:`orbitai.io.values.offset_ct_evidence`: no negative value, air near 0, soft tissue
      near 1024, bone above 1700): ``HU = v - 1024``.

    A note saying so is added to ``acq``. Other CT not in Hounsfield units is left for
    :func:`orbitai.scan.values.image_is_ct` to refuse."""
    if (acq.modality or "").upper() != "CT":
        return vol
    a = vol.array
    bits = _tag_number(header, "0028|0101")
    centre, width = _tag_number(header, "0028|1050"), _tag_number(header, "0028|1051")
    intercept, slope = _tag_number(header, "0028|1052") or 0.0, _tag_number(header, "0028|1053") or 1.0
    lo, hi = float(a.min()), float(a.max())
    if bits is not None and bits <= 8 and lo >= 0 and hi <= 255 and intercept == 0 and slope == 1:
        trivial = centre is not None and width is not None and abs(centre - 127.5) <= 1 and abs(width - 256) <= 1
        if centre is None or width is None or width <= 1 or trivial:
            return vol                                      # not certain: image_is_ct refuses it
        hu = (centre - 0.5 + (a.astype(np.float32) / 255.0 - 0.5) * (width - 1)).astype(np.float32)
        out = vol.with_array(hu)
        acq.values = f"8-bit window {centre:g}/{width:g}"
        acq.notes.append(f"CT stored as 8-bit values with window centre {centre:g} / width {width:g}: converted to "
                         f"Hounsfield units {centre - width / 2:g} to {centre + width / 2:g} (values outside the "
                         "window were clipped by the export and stay at its ends)")
        return out
    if intercept == 0 and slope == 1:
        evidence = offset_ct_evidence(vol)
        if evidence:
            acq.values = "offset 1024"
            acq.notes.append(f"CT stored without its rescale intercept ({evidence}): converted to Hounsfield "
                             "units by subtracting 1024")
            return vol.with_array(a.astype(np.int32) - 1024)
    return vol


def _last_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


def _unreadable_dicom_files(folder: Path, series_files: set[Path]) -> list[Path]:
    """Files in ``folder`` that look like DICOM (preamble or .dcm/.ima suffix) but belong to no
    series GDCM could parse: truncated or damaged slices."""
    bad = []
    reader = sitk.ImageFileReader()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path in series_files or path.name.startswith(".") or path.name.upper() == "DICOMDIR":
            continue
        with open(path, "rb") as f:
            head = f.read(132)
        if head[128:132] != b"DICM" and path.suffix.lower() not in (".dcm", ".ima"):
            continue
        reader.SetFileName(str(path))
        try:
            with itk_warnings_off():
                reader.ReadImageInformation()
        except RuntimeError:
            bad.append(path)
    return bad


def write_dicom_series(vol: Volume, folder: str | os.PathLike, modality: str = "CT", study_uid: str | None = None,
                       series_uid: str | None = None) -> Path:
    """Write a scalar volume as a DICOM series (one file per slice) with its geometry.

    Values are stored as int16 with rescale slope 1 (HU for CT); this is for exchange and
    tests, not a full DICOM authoring tool. Every call writes the same study and series UIDs unless
    ``study_uid`` / ``series_uid`` are given (so that slices written apart make one series, as tests compose
    them); give them, e.g. :func:`new_uid`, for series that must differ in a PACS.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = vol.direction
    arr = vol.array.astype(np.int16)
    uids = {"0020|000d": study_uid or _UID + ".1", "0020|000e": series_uid or _UID + ".2",
            "0020|0052": study_uid + ".0" if study_uid and len(study_uid) < 62 else _UID + ".3"}
    for k in range(arr.shape[0]):
        write_dicom_slice(arr[k], folder / f"slice{k:04d}.dcm", vol.index_to_physical((0, 0, k)), d[:, 0], d[:, 1],
                          (vol.spacing[0], vol.spacing[1]), k + 1,
                          {"0008|0060": modality, "0018|0050": f"{vol.spacing[2]:.10f}", **uids})
    return folder


def new_uid() -> str:
    """A new UID under the 2.25 root (a UUID as a decimal integer, PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


#: Study and series UIDs of the series written here (tests and phantoms; one series per folder).
_UID = "1.2.826.0.1.3680043.2.1125.1"


def write_dicom_slice(pixels: np.ndarray, path: str | os.PathLike, position: Sequence[float] | np.ndarray,
                      row: Sequence[float] | np.ndarray,
                      col: Sequence[float] | np.ndarray, pixel: tuple[float, float], number: int,
                      tags: dict[str, str] | None = None) -> Path:
    """Write one 2D slice [row, column] as a DICOM file at ``position`` (ImagePositionPatient, LPS mm) with
    row/column directions ``row``/``col`` and ``pixel`` = (column, row) spacing; ``tags`` add or override
    DICOM tags ("gggg|eeee": value), e.g. Modality, RescaleIntercept or WindowCenter. GDCM stores integer
    pixels as given (with a rescale intercept/slope it stores ``(value - intercept) / slope``)."""
    sl = sitk.GetImageFromArray(np.ascontiguousarray(pixels))
    sl.SetSpacing((float(pixel[0]), float(pixel[1])))
    values = {
        "0008|0060": "CT",
        "0020|000d": _UID + ".1",
        "0020|000e": _UID + ".2",
        "0020|0052": _UID + ".3",          # FrameOfReferenceUID (a DICOM SEG/SR shares it)
        "0020|0037": "\\".join(f"{v:.10f}" for v in (*row, *col)),
        "0020|0032": "\\".join(f"{v:.10f}" for v in position),
        "0020|0013": str(number),
        "0028|0030": f"{pixel[1]:.10f}\\{pixel[0]:.10f}",
        **(tags or {}),
    }
    for tag, val in values.items():
        sl.SetMetaData(tag, val)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(sl)
    return Path(path)
