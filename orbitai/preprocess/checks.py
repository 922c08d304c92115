"""Input checks every model entry point runs first: a finite 3D volume, and whether it is CT."""
from __future__ import annotations

import numpy as np

from orbitai.io import Volume, VolumeError, require_finite


def looks_like_ct(vol: Volume) -> bool:
    """CT in Hounsfield units has air near -1000 and soft tissue near 0-100."""
    a = vol.array
    sample = a.ravel()[:: max(1, a.size // 200_000)].astype(np.float32)
    return float(np.percentile(sample, 1)) < -500 and float(np.percentile(sample, 99)) > 0


def check_input(vol: Volume, modality: str = "any") -> list[str]:
    """Raise :class:`~orbitai.io.VolumeError` for unusable input (NaN/infinity, fewer than 3 slices
    along an axis); return warnings when the image does not look like ``modality`` ("CT", "MR",
    or "any")."""
    require_finite(vol, "image")
    if min(vol.shape) < 3:
        raise VolumeError(f"The image has only {min(vol.shape)} slices along one axis; a 3D scan is needed.")
    warnings = []
    ct = looks_like_ct(vol)
    if modality == "CT" and not ct:
        warnings.append("This model expects CT in Hounsfield units but the image does not look like CT.")
    if modality == "MR" and ct:
        warnings.append("This model expects MRI but the image looks like CT (Hounsfield units).")
    return warnings


def field_of_view_mm(vol: Volume) -> np.ndarray:
    """Physical extent (x, y, z) of the volume in mm."""
    return np.array(vol.size_xyz) * np.array(vol.spacing)
