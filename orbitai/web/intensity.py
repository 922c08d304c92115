"""Defaults the page takes from the shown scan's intensities (issue 81.8): the window/level presets and the
threshold tool's starting range. No trame import: the rules are tested on their own.

* Window/level presets (`preset_values`): "Auto" is Slicer's automatic window (the display node's
  ``vtkImageHistogramStatistics`` auto range: the 0.1 and 99.9 percentiles of every voxel); the CT presets are Slicer's
  fixed Hounsfield windows (`CT_PRESETS`); the MRI presets (`MRI_PRESETS`) are per weighting, from the scan's own
  percentiles (an MRI's values have no unit: a fixed window fits one scanner only), taken over the head (`foreground`,
  the voxels above the background) so that the air around it does not shift them:

  - T1: the 0.5-99.5 percentiles of the head: the orbital fat, the brightest, just short of white.
  - T2: the 0.5-99.9 percentiles: the vitreous and the CSF, bright and large on T2, kept below white.
  - FLAIR: the 20-99.8 percentiles: a narrower window over the brain's tissue, so that bright lesions stand out.

* The threshold's default (`threshold_default`): the brightest `THRESHOLD_TOP_PERCENT` % of the head (up to its
  maximum): bone on a CT, the vitreous and CSF on a T2, fat on a T1: one press of "Apply threshold" selects a
  structure, never the whole head (a quarter to three quarters of the value range selected 3.4 million voxels of a
  head scan).

Statistics are taken on at most `SAMPLE_VALUES` voxels (an even grid of them), so a 500 MB scan costs milliseconds.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["CT_PRESETS", "MRI_PRESETS", "AUTO", "preset_names", "preset_values", "sample", "foreground",
           "threshold_default", "THRESHOLD_TOP_PERCENT", "SAMPLE_VALUES"]

#: Slicer's automatic window/level (the display node's own).
AUTO = "Auto"
#: Slicer's CT presets (the volume display node's ``CT-Bone``, ``CT-Abdomen``, ``CT-Brain``, ``CT-Lung``) and a soft
#: tissue window for the orbit: name -> (window, level) in HU.
CT_PRESETS: dict[str, tuple[float, float]] = {
    "CT soft tissue (W 400 / L 40)": (400.0, 40.0),
    "CT bone (W 1000 / L 400)": (1000.0, 400.0),
    "CT brain (W 100 / L 50)": (100.0, 50.0),
    "CT abdomen (W 350 / L 40)": (350.0, 40.0),
    "CT lung (W 1400 / L -500)": (1400.0, -500.0),
}
#: MRI presets: name -> (low, high) percentiles of the head's values (module docstring).
MRI_PRESETS: dict[str, tuple[float, float]] = {
    "MRI T1 (head 0.5-99.5 %)": (0.5, 99.5),
    "MRI T2 (head 0.5-99.9 %)": (0.5, 99.9),
    "MRI FLAIR (head 20-99.8 %)": (20.0, 99.8),
}
#: Slicer's auto window: these percentiles of every voxel.
AUTO_PERCENTILES = (0.1, 99.9)
#: The threshold's default: the brightest this percent of the head.
THRESHOLD_TOP_PERCENT = 2.0
#: Statistics are taken on about this many voxels at most.
SAMPLE_VALUES = 1_000_000


def preset_names() -> list[str]:
    """Every preset's name, in the order the page lists them."""
    return [AUTO, *CT_PRESETS, *MRI_PRESETS]


def sample(array: np.ndarray, max_values: int = SAMPLE_VALUES) -> np.ndarray:
    """The finite values of an even grid of at most about ``max_values`` voxels of ``array`` (float64, flat)."""
    a = np.asarray(array)
    step = max(1, int(np.ceil((a.size / max(1, max_values)) ** (1.0 / max(1, a.ndim)))))
    values = a[tuple(slice(None, None, step) for _ in range(a.ndim))].astype(np.float64).ravel()
    return values[np.isfinite(values)]


#: A CT (values in HU): the air is below this.
CT_AIR_HU = -500.0
#: Otherwise (an MRI): the background is below this share of the way from the lowest value to the 99.5th percentile.
BACKGROUND_SHARE = 0.1


def foreground(values: np.ndarray) -> np.ndarray:
    """The values of ``values`` (a `sample`) that belong to the head, not the air around it: above `CT_AIR_HU` for a
    CT (its lowest percent at -900 HU or below), else above `BACKGROUND_SHARE` of the way from the lowest value to the
    99.5th percentile (an MRI's dark background); all of them when that leaves under 1 %."""
    if values.size == 0:
        return values
    lo, p1, top = (float(v) for v in np.percentile(values, (0, 1, 99.5)))
    cut = CT_AIR_HU if p1 <= -900.0 else lo + BACKGROUND_SHARE * (top - lo)
    inside = values[values > cut]
    return inside if inside.size >= max(1, values.size // 100) else values


def _window(lo: float, hi: float) -> list[float]:
    """[window, level] of the value range lo..hi (rounded to 0.1, a window of at least 1e-3)."""
    return [round(max(float(hi) - float(lo), 1e-3), 1) or 1e-3, round((float(lo) + float(hi)) / 2, 1)]


def preset_values(array: Optional[np.ndarray]) -> dict[str, list[float]]:
    """[window, level] of every preset (`preset_names`) for the scan ``array``: Auto and the MRI ones from its values
    (module docstring), the CT ones fixed; only the CT ones without a scan."""
    out = {name: [w, lv] for name, (w, lv) in CT_PRESETS.items()}
    values = sample(array) if array is not None else np.zeros(0)
    if values.size == 0:
        return out
    out[AUTO] = _window(*np.percentile(values, AUTO_PERCENTILES))
    head = foreground(values)
    for name, pct in MRI_PRESETS.items():
        out[name] = _window(*np.percentile(head, pct))
    return {name: out[name] for name in preset_names() if name in out}


def threshold_default(array: Optional[np.ndarray]) -> Optional[tuple[float, float]]:
    """The threshold tool's starting range for the scan ``array``: the brightest `THRESHOLD_TOP_PERCENT` % of the
    head (`foreground`) to its maximum, rounded to 0.1 (the minimum never above the maximum); None without values."""
    if array is None:
        return None
    values = sample(array)
    if values.size == 0:
        return None
    top = float(np.nanmax(array))            # the whole scan's maximum (the sample's may miss it)
    top = top if np.isfinite(top) else float(values.max())
    low = float(np.percentile(foreground(values), 100.0 - THRESHOLD_TOP_PERCENT))
    low = np.floor(low * 10) / 10 if low < top else top
    return float(low), float(np.ceil(top * 10) / 10)
