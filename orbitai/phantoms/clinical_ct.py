"""Clinical-style DICOM CT series from an orbit CT phantom, with the truth carried along.

The phantom (:func:`orbitai.phantoms.orbit.orbit_case`, CT, fine isotropic grid) stands for the
patient; :func:`write_clinical_series` "acquires" slices through it as a scanner with a tilted
gantry does: slice k is a plane through the table axis point ``(cx, cy, z_k)`` whose column
direction is tilted by ``tilt_k`` degrees about the row (left-right) axis, the table positions
``z_k`` follow the given gaps (so ImagePositionPatient moves along the table, not along the slice
normal), and each slice averages the phantom over its thickness along its own normal. Slices
can be dropped (missing slices) and values stored as a scanner or a careless export would:
Hounsfield units, unsigned with a rescale intercept, offset by 1024 without one, or 8-bit
windowed with or without WindowCenter/WindowWidth.

The truth is the phantom's own label map on its physical grid (:attr:`ClinicalSeries.truth`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.io import Volume, write_dicom_slice
from orbitai.phantoms.orbit import PhantomCase, orbit_case

#: How stored values relate to Hounsfield units (see :func:`stored_values`).
ENCODINGS = ("hu", "rescaled", "offset1024", "window8", "clip8")


@dataclass
class ClinicalSeries:
    """A written series: its folder, the phantom it was acquired from (``truth`` labels and
    ``source`` HU image, on the phantom's physical grid) and what each slice is."""

    folder: Path
    truth: Volume
    source: Volume
    tilt_deg: list[float]
    table_z: list[float]                     # table position (mm, LPS z) of each written slice
    dropped: list[int] = field(default_factory=list)
    encoding: str = "hu"


def source_phantom(seed: int, fov_mm: float = 128.0, height_mm: float = 120.0, spacing_mm: float = 0.5) -> PhantomCase:
    """A CT orbit phantom on an axial isotropic grid large enough to hold tilted slices through the orbits."""
    n = int(round(fov_mm / spacing_mm))
    nz = int(round(height_mm / spacing_mm))
    return orbit_case(seed, "ct", orientation="axial", size=(n, n, nz), spacing=(spacing_mm,) * 3, oblique=False)


def table_positions(gaps_mm: Sequence[float], centre_z: float, below_mm: float) -> np.ndarray:
    """Table positions of ``len(gaps_mm) + 1`` slices with these gaps, the first ``below_mm`` under ``centre_z``."""
    return centre_z - below_mm + np.concatenate([[0.0], np.cumsum(np.asarray(gaps_mm, float))])


def stored_values(hu: np.ndarray, encoding: str, window: tuple[float, float] = (40.0, 400.0)
                  ) -> tuple[np.ndarray, dict[str, str]]:
    """Pixels to store for Hounsfield units ``hu`` and the DICOM tags that go with them.

    ``hu``: int16 HU. ``rescaled``: HU with RescaleIntercept -1024 (GDCM stores HU + 1024).
    ``offset1024``: HU + 1024 with no intercept (an export that dropped it). ``window8``: 8-bit values of
    DICOM's linear window (centre, width) with WindowCenter/WindowWidth; ``clip8``: the same values
    without them (the mapping to HU is lost)."""
    if encoding not in ENCODINGS:
        raise InputError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    hu = np.rint(np.clip(hu, -1024, 3071))
    if encoding == "hu":
        return hu.astype(np.int16), {}
    if encoding == "rescaled":
        return hu.astype(np.int16), {"0028|1052": "-1024", "0028|1053": "1"}
    if encoding == "offset1024":
        return (hu + 1024).astype(np.int16), {}
    c, w = window
    # DICOM PS3.3 C.11.2.1.2 linear VOI function onto 0-255
    v = ((hu - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    pixels = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    tags = {"0028|1050": f"{c:g}", "0028|1051": f"{w:g}"} if encoding == "window8" else {}
    return pixels, tags


def write_clinical_series(case: PhantomCase, folder: str | Path, gaps_mm: Sequence[float],
                          tilt_deg: float | Sequence[float] = 0.0, matrix: int = 256, pixel_mm: float = 0.5,
                          below_mm: float | None = None, drop: Sequence[int] = (), encoding: str = "hu",
                          window: tuple[float, float] = (40.0, 400.0)) -> ClinicalSeries:
    """Acquire ``len(gaps_mm) + 1`` tilted slices (``matrix`` x ``matrix`` pixels of ``pixel_mm``) through
    the phantom ``case`` and write them to ``folder`` as a DICOM CT series (``slice0000.dcm``...).

    ``tilt_deg`` is one angle or one per slice (a varying tilt); ``below_mm`` puts the first slice that far
    below the phantom's centre along the table (default: the stack centred on it); each slice is as
    thick as its smaller neighbouring gap; ``drop`` lists slice indices not written; ``encoding`` and
    ``window`` as in :func:`stored_values`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    src = case.image
    n_slices = len(gaps_mm) + 1
    tilts = np.broadcast_to(np.asarray(tilt_deg, float), (n_slices,)).copy()
    centre = src.index_to_physical((np.array(src.size_xyz) - 1) / 2.0)
    total = float(np.sum(gaps_mm))
    z = table_positions(gaps_mm, float(centre[2]), total / 2 if below_mm is None else below_mm)
    gaps = np.asarray(gaps_mm, float)
    thick = np.minimum(np.concatenate([gaps[:1], gaps]), np.concatenate([gaps, gaps[-1:]]))
    img = sitk.Cast(src.to_sitk(), sitk.sitkFloat32)
    half = (matrix - 1) / 2.0 * pixel_mm
    row = np.array([1.0, 0.0, 0.0])
    written_tilt, written_z, number = [], [], 0
    for k in range(n_slices):
        if k in drop:
            continue
        t = np.radians(tilts[k])
        col = np.array([0.0, np.cos(t), np.sin(t)])
        normal = np.cross(row, col)
        point = np.array([centre[0], centre[1], z[k]])
        origin = point - half * row - half * col
        # the slice's thickness sampled every 0.5 mm along its normal and averaged (partial volume)
        nsub = max(1, int(round(thick[k] / 0.5)))
        ref = sitk.Image([matrix, matrix, nsub], sitk.sitkFloat32)
        ref.SetSpacing((pixel_mm, pixel_mm, thick[k] / nsub))
        ref.SetOrigin(tuple(origin - (thick[k] / 2 - thick[k] / (2 * nsub)) * normal))
        ref.SetDirection(tuple(np.stack([row, col, normal], axis=1).ravel()))
        slab = sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, -1000.0))
        pixels, tags = stored_values(slab.mean(0), encoding, window)
        number += 1
        write_dicom_slice(pixels, folder / f"slice{k:04d}.dcm", origin, row, col, (pixel_mm, pixel_mm), number,
                          {"0008|0060": "CT", "0018|0050": f"{thick[k]:.4f}", "0018|1120": f"{tilts[k]:.4f}", **tags})
        written_tilt.append(float(tilts[k]))
        written_z.append(float(z[k]))
    return ClinicalSeries(folder, case.labels, src, written_tilt, written_z, sorted(set(drop)), encoding)
