"""DICOM series: reading one (slice geometry, gantry tilt and uneven spacing regularised, values in Hounsfield
units) and saying how (:class:`Acquisition`). Where the slices lie is `orbitai.io.dicom_geometry`; the headers and
tags read are `orbitai.io.dicom_tags`; writing a series is `orbitai.io.dicom_write`."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io.dicom_folder import looks_like_dicom, survey_folder
from orbitai.io.dicom_folder import shown as shown_text
from orbitai.io.dicom_geometry import TILT_TOLERANCE_DEG, SliceGeometry, dicom_slice_geometry
from orbitai.io.dicom_lengths import gdcm_may_read, refuse_damaged
from orbitai.io.dicom_tags import ACQUISITION_TAGS, itk_warnings_off, last_line
from orbitai.io.headers import check_decoded_size
from orbitai.io.regrid import grid_shape, regular_grid
from orbitai.io.values import offset_ct_evidence
from orbitai.io.volume import Volume, VolumeError
from orbitai.progress import interruptible

log = logging.getLogger("orbitai.io")


@dataclass
class Acquisition:
    """How a scan was acquired and what reading it corrected (printed and written to result.json).

    ``positions`` are the acquired slices' positions (mm) along ``normal`` (LPS), sorted; for a file
    they are its slices along the axis with the largest spacing."""

    source: str                                   # "dicom" or "file"
    modality: str | None = None                   # DICOM Modality (e.g. "CT"); a file's: its header's tags', or None
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    tilt_deg: tuple[float, float] = (0.0, 0.0)    # smallest and largest gantry tilt of the slices
    gaps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)   # smallest, median, largest slice gap
    resampled: dict[str, Any] | None = None       # the regular grid the slices were resampled onto
    values: str | None = None                     # how stored values became Hounsfield units
    notes: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)   # the first slice's ACQUISITION_TAGS (what the scan is)
    #                                                        (a file's: those its header holds, `header_tags`)
    first_file: Path | None = None                # the series' first slice (whose scan it is: patient, study, series)

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
    gantry tilt (constant or varying), uneven spacing or gaps up to
    :data:`orbitai.io.dicom_geometry.MAX_GAP_FACTOR` median spacings is resampled onto a regular orthogonal grid
    (:func:`orbitai.io.regrid.regular_grid`); the files are never changed. Values: rescale slope/intercept are applied (by GDCM); CT stored
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
                    and (looks_like_dicom(p) or gdcm_may_read(p))], folder)
    ids = _gdcm_series(folder, lambda: sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))
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
    files = [Path(f) for f in _gdcm_series(
        folder, lambda: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id))]
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
    if not geometry.regular():
        # the regular grid's float32 planes, the slices sampled in-plane, and about 8 planes of working arrays
        try:
            planes, rows, columns = grid_shape(geometry.planes(), _grid_step(geometry))
        except ValueError as exc:
            raise _no_grid(geometry, exc) from None
        check_decoded_size(folder, 4 * rows * columns * (planes + len(geometry.files) + 8),
                           f"{len(geometry.files)} slices resampled onto a regular {columns}x{rows}x{planes} grid",
                           max_bytes, limit_name)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in geometry.files])      # sorted along the normal
    try:
        with itk_warnings_off():
            img = interruptible(reader.Execute)
    except RuntimeError as exc:
        raise VolumeError(f"{folder}: the slices cannot be read as one series ({last_line(exc)}).") from None
    acq = Acquisition("dicom", geometry.header.get("0008|0060", "").strip() or None, geometry.positions.copy(),
                      geometry.normal.copy(), tags={k: v for k, v in geometry.header.items()
                                                    if k in ACQUISITION_TAGS.values()}, first_file=geometry.files[0])
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


def _grid_step(geometry: "SliceGeometry") -> float:
    """The most mm between the regular grid's planes: the smallest slice gap, at least half the median."""
    return max(float(geometry.gaps.min()), 0.5 * geometry.median_spacing)


def _no_grid(geometry: "SliceGeometry", exc: ValueError) -> VolumeError:
    return VolumeError(f"{geometry.files[0].parent}: {exc}; the series cannot be put on a regular grid. "
                       "Export it without gantry tilt (or resliced by the scanner).")


def _regularised(stack: np.ndarray, geometry: "SliceGeometry", acq: Acquisition) -> Volume:
    """The stack resampled onto a regular grid, with a note saying what was corrected."""
    try:
        grid = regular_grid(stack, geometry.planes(), _grid_step(geometry), float(stack.min()))
    except ValueError as exc:
        raise _no_grid(geometry, exc) from None
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


def _gdcm_series(folder: Path, call: Callable[[], Sequence[str]]) -> Sequence[str]:
    """``call`` (GDCM's look for the folder's series, or for one series' files), its error refused in one line:
    GDCM stops on a header it cannot accept (a slice whose SamplesPerPixel is 15, found by fuzzing, issue 80:
    RuntimeError "An invalid logic behavior occurredSamplesPerPixel == 1 || ..."), naming the files it cannot
    read."""
    try:
        with itk_warnings_off():
            return call()
    except RuntimeError as exc:
        why = last_line(exc)
        broken = "An invalid logic behavior occurred"
        if why.startswith(broken):
            why = f"GDCM's check {why[len(broken):].strip()} failed"
        bad = _unreadable_dicom_files(folder, set())
        if not bad:
            raise VolumeError(f"{folder}: GDCM cannot list the DICOM series there ({why}). "
                              "Re-copy or re-export the series.") from None
        shown = ", ".join(p.name for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise VolumeError(f"{folder}: {shown} cannot be read as DICOM (truncated or damaged: {why}). "
                          "Re-copy or re-export the series.") from None


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
