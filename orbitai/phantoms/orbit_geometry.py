"""The acquisition of an orbit phantom (`orbitai.phantoms.orbit`): what a caller fixes of it (`Acquisition`) and how
the rest is drawn (`sample_geometry`: orientation, voxel spacing, matrix, direction, an oblique tilt)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitai.errors import InputError


@dataclass(frozen=True)
class Acquisition:
    """What a caller fixes of a case's acquisition (None: drawn, :func:`sample_geometry`): ``orientation``
    ('axial'/'coronal'), ``size`` (nx, ny, nz), ``spacing`` (x, y, z) mm, ``oblique`` (False: none; True: a drawn
    tilt; a number: that tilt in degrees)."""

    orientation: str | None = None
    size: Any = None
    spacing: Any = None
    oblique: bool | float | None = None


def sample_geometry(rng, modality: str, orientation: str | None = None, size=None, spacing=None,
                    oblique: bool | float | None = None):
    """Draw the acquisition: orientation, voxel spacing, matrix, direction (maybe oblique)."""
    if orientation is None:
        orientation = "axial" if (modality == "ct" or rng.random() < 0.5) else "coronal"
    if spacing is None:
        if modality == "ct":
            sp_in = rng.uniform(0.38, 0.5)
            sp_sl = rng.uniform(0.5, 1.0)
        else:
            sp_in = rng.uniform(0.5, 0.9)
            sp_sl = rng.uniform(2.0, 3.3)
        spacing = (sp_in, sp_in, sp_sl)
    spacing = tuple(float(s) for s in spacing)
    if size is None:
        fov_in = 110.0 if modality == "ct" else 150.0
        n_in = int(min(512, max(128, round(fov_in / spacing[0] / 16) * 16)))
        cover = 48.0 if orientation == "axial" else 60.0
        size = (n_in, n_in, int(max(8, round(cover / spacing[2]))))
    size = tuple(int(s) for s in size)
    if orientation == "axial":   # rows anterior->posterior, slices inferior->superior
        d = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    elif orientation == "coronal":   # rows superior->inferior, slices anterior->posterior
        d = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    else:
        raise InputError(f"orientation must be 'axial' or 'coronal', got {orientation!r}")
    if oblique is None:
        oblique = rng.random() < 0.3
    ang = 0.0
    if oblique:
        ang = float(oblique) if not isinstance(oblique, bool) else float(rng.uniform(4, 12) * rng.choice([-1, 1]))
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        t = np.radians(ang)
        d = (np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K) @ d
    return orientation, spacing, size, d, ang
