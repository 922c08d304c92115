"""Normal orbit anatomy: the literature ranges a segmentation is checked against, and the measures
compared with them (used by the phantom tests and the real-MRI benchmark)."""
from __future__ import annotations

from typing import Any

import numpy as np

from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS

#: (low, high) of normal adults: rectus muscle volume (cm3; CT/MRI volumetry), eyeball equivalent-sphere
#: diameter (mm; axial length 22-26 mm), intra-orbital optic nerve diameter (mm; with its sheath 3-5 mm).
RANGES = {"rectus_volume_cm3": (0.4, 1.5), "eyeball_diameter_mm": (22.0, 26.0),
          "optic_nerve_diameter_mm": (3.0, 5.0)}
RECTI = ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle", "lateral_rectus_muscle")


def _nerve_diameter(points_mm: np.ndarray, volume_mm3: float) -> float:
    """Mean diameter of a tube: its volume over its length along the main axis (a cylinder's)."""
    if len(points_mm) < 3:
        return 0.0
    mu = points_mm.mean(0)
    _, _, vt = np.linalg.svd(points_mm - mu, full_matrices=False)
    along = (points_mm - mu) @ vt[0]
    length = float(along.max() - along.min())
    return float(2 * np.sqrt(volume_mm3 / max(length, 1e-6) / np.pi))


def structure_measures(labels: Volume) -> dict[int, dict[str, Any]]:
    """For each orbit-scheme value 1..12 (eyeballs, optic nerves, recti): its structure, side, voxel
    count, volume (cm3) and, for eyeballs and nerves, the diameter (mm) compared with :data:`RANGES`;
    ``in_range`` says whether the measure lies in its range (False for an absent structure)."""
    arr = labels.array
    vv = labels.voxel_volume_mm3()
    out: dict[int, dict[str, Any]] = {}
    for v in range(1, 13):
        info = ORBIT_LABELS[v]
        idx = np.argwhere(arr == v)
        vol_mm3 = len(idx) * vv
        row: dict[str, Any] = {"structure": info.structure, "side": info.side, "voxels": len(idx),
                               "volume_cm3": vol_mm3 / 1000.0}
        if info.structure == "eyeball":
            row["diameter_mm"] = float((6 * vol_mm3 / np.pi) ** (1 / 3))
            lo, hi = RANGES["eyeball_diameter_mm"]
            row["in_range"] = bool(lo <= row["diameter_mm"] <= hi)
        elif info.structure == "optic_nerve":
            row["diameter_mm"] = _nerve_diameter(labels.index_to_physical(idx[:, ::-1]), vol_mm3)
            lo, hi = RANGES["optic_nerve_diameter_mm"]
            row["in_range"] = bool(lo <= row["diameter_mm"] <= hi)
        else:
            lo, hi = RANGES["rectus_volume_cm3"]
            row["in_range"] = bool(lo <= row["volume_cm3"] <= hi)
        out[v] = row
    return out
