"""Where the slices of a DICOM series lie (`SliceGeometry`, read from every slice's header by
`dicom_slice_geometry`, before any pixel is decoded): sorted along the slice normal, their gantry tilt and gaps,
whether they already form a regular grid and, if they cannot be put on one, why (slices missing, mixed series)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io.dicom_tags import ACQUISITION_TAGS, VALUE_TAGS, itk_warnings_off, last_line
from orbitai.io.headers import image_bytes
from orbitai.io.regrid import Planes
from orbitai.io.volume import VolumeError

#: Orientations may vary between slices only by a rotation about the common row direction (a gantry
#: tilt that changes during the series), within this many degrees of each other; anything else is
#: another series (a localizer) mixed in.
MAX_TILT_SPREAD_DEG = 30.0
#: A gap wider than this many median spacings is refused (slices missing), never interpolated.
MAX_GAP_FACTOR = 2.0

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
                              f"ImageOrientationPatient ({last_line(exc)}). Re-copy or re-export the series."
                              ) from None
        if len(pos[-1]) != 3 or len(orient[-1]) != 6:      # one slice's count unlike the others' (found by fuzzing)
            raise VolumeError(f"{path}: ImagePositionPatient/ImageOrientationPatient must have 3 and 6 values, not "
                              f"{len(pos[-1])} and {len(orient[-1])}. Re-export the series.")
        pixel.append(tuple(round(s, 6) for s in reader.GetSpacing()[:2]))
        size.append(tuple(reader.GetSize()[:2]))
        decoded += image_bytes(reader.GetSize(), reader.GetNumberOfComponents(), reader.GetPixelID())
        if not header:
            header = {k: reader.GetMetaData(k) for k in (*VALUE_TAGS, *ACQUISITION_TAGS.values())
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
