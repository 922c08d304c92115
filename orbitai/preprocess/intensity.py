"""Intensity normalisation: the modes a bundle names in ``metadata.json['input']['intensity']``,
the robust z-score inside a mask (:func:`masked_zscore`, lesion segmentation's, in training and
inference) and the whole-array z-score of the TAO crops."""
from __future__ import annotations

from typing import Any

import numpy as np

from orbitai.errors import InputError


def normalise(arr: np.ndarray, intensity: dict[str, Any], reuse: bool = False) -> np.ndarray:
    """Intensity normalisation named in the bundle: ``ct_window``, ``percentile`` or ``zscore``
    (float32 out, whatever the input type). ``reuse``: ``arr`` is the caller's temporary, and a float32 one is
    normalised in its own memory (a 1 mm head on the model grid: 0.4 s and 128 MB less)."""
    return normalise_with(arr, intensity, normalisation_of(arr, intensity), reuse)


def _scaled(arr: np.ndarray, lo: float, width: float, reuse: bool) -> np.ndarray:
    """``clip((arr - lo) / width, 0, 1)``, in ``arr``'s memory when ``reuse`` (same values either way)."""
    if not reuse:
        return np.clip((arr - lo) / width, 0, 1)
    np.subtract(arr, np.float32(lo), out=arr)
    np.divide(arr, np.float32(width), out=arr)
    return np.clip(arr, 0, 1, out=arr)


def normalisation_of(arr: np.ndarray, intensity: dict[str, Any]) -> tuple[float, float]:
    """(offset, scale) that `normalise` applies to ``arr`` under the bundle's ``intensity``: measured on ``arr``
    (percentile, zscore) or fixed (ct_window). `normalise_with` applies them to another part of the same scan (the
    engine measures a whole scan on a coarse grid and normalises only the part it runs the network on)."""
    mode = intensity.get("mode", "percentile")
    if mode == "ct_window":  # SEQ-UNET: level 48 HU, width 400 HU
        width = float(intensity.get("width", 400))
        return float(intensity.get("level", 48)) - width / 2, width
    arr = arr.astype(np.float32, copy=False)
    if mode == "percentile":
        sample = arr.ravel()[:: max(1, arr.size // 500_000)]
        lo, hi = np.percentile(sample, [intensity.get("low", 0.5), intensity.get("high", 99.5)])
        return float(lo), max(float(hi - lo), 1e-6)
    if mode == "zscore":  # over the foreground: voxels above the 5th percentile
        fg = arr[arr > np.percentile(arr, 5)]
        return float(fg.mean()), max(float(fg.std()), 1e-6)
    raise InputError(f"Unknown intensity normalisation {mode!r}; use 'ct_window', 'percentile' or 'zscore'.")


def normalise_with(arr: np.ndarray, intensity: dict[str, Any], offset_scale: tuple[float, float],
                   reuse: bool = False) -> np.ndarray:
    """``arr`` normalised with `normalisation_of`'s (offset, scale) (float32; in ``arr``'s memory when ``reuse`` and
    it is a writeable float32 array)."""
    reuse = reuse and arr.dtype == np.float32 and arr.flags.writeable
    arr = arr.astype(np.float32, copy=False)
    lo, width = offset_scale
    if intensity.get("mode", "percentile") == "zscore":
        return ((arr - np.float32(lo)) / np.float32(width)).astype(np.float32, copy=False)
    return _scaled(arr, lo, width, reuse)


def median_mad(values: np.ndarray) -> tuple[float, float]:
    """Median and median absolute deviation (not scaled) of ``values``, in double precision."""
    v = np.asarray(values, np.float64)
    med = float(np.median(v))
    return med, float(np.median(np.abs(v - med)))


def masked_zscore(arr: np.ndarray, mask: np.ndarray, centre: float, sd: float,
                  clip: tuple[float, float]) -> np.ndarray:
    """``(arr - centre) / sd`` clipped to ``clip`` inside ``mask``, ``clip[0]`` outside; float32 (the
    arithmetic in float32). A robust z-score when ``centre`` is the median of the masked voxels and ``sd``
    a scaled MAD (:func:`median_mad`)."""
    z = (np.asarray(arr, np.float32) - np.float32(centre)) / np.float32(sd)
    z = np.clip(z, clip[0], clip[1])
    return np.where(mask, z, np.float32(clip[0])).astype(np.float32)


def zscore(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation over the whole array (float32; a flat array is only centred)."""
    sd = float(a.std())
    return ((a - float(a.mean())) / (sd if sd > 1e-6 else 1.0)).astype(np.float32)
