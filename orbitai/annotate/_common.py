"""Shared validation and small helpers for the annotation tools (no Slicer)."""
from __future__ import annotations

from typing import Sequence, cast

import numpy as np

from orbitai.boxes import Region, bbox  # noqa: F401  (re-exported for the annotation tools)
from orbitai.errors import AnnotationError




def check_image(image: np.ndarray, spacing: Sequence[float] | None = None, what: str = "image"):
    """Validate a 3D scalar image [k, j, i] and its (x, y, z) spacing; return (float32 array, spacing)."""
    a = np.asarray(image)
    if a.ndim != 3:
        raise AnnotationError(
            f"The {what} must be a 3D volume indexed [k, j, i]; got {a.ndim}D data of shape {a.shape}. "
            "For a single slice, pass it as a volume of one slice (shape (1, rows, columns)).")
    if a.size == 0:
        raise AnnotationError(f"The {what} is empty (shape {a.shape}).")
    if a.dtype.kind not in "biuf":
        raise AnnotationError(f"The {what} has voxel type {a.dtype}; expected numbers.")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        n = int(np.count_nonzero(~np.isfinite(a)))
        raise AnnotationError(f"The {what} contains {n} NaN/infinite voxels; replace them (e.g. by the "
                              "background value) before annotating.")
    sp = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(sp) != 3 or not all(np.isfinite(sp)) or min(sp) <= 0:
        raise AnnotationError(f"Spacing must be three positive numbers (x, y, z) in mm, got {spacing}.")
    return a, sp


def check_mask(mask, shape, what: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise AnnotationError(f"The {what} has shape {m.shape} but the image has shape {tuple(shape)}; "
                              "they must be on the same voxel grid.")
    if m.dtype.kind == "f" and not np.all(np.isfinite(m)):
        raise AnnotationError(f"The {what} contains NaN values.")
    return m.astype(bool, copy=False)


def check_point(point, shape) -> tuple[int, int, int]:
    """A voxel index (k, j, i) inside the image, else a clear error."""
    try:
        p = tuple(int(round(float(v))) for v in point)
    except (TypeError, ValueError):
        raise AnnotationError(f"A point must be three voxel indices (k, j, i); got {point!r}.") from None
    if len(p) != 3:
        raise AnnotationError(f"A point must be three voxel indices (k, j, i); got {point!r}.")
    if any(v < 0 or v >= n for v, n in zip(p, shape)):
        raise AnnotationError(f"The point (k, j, i) = {p} is outside the image (shape {tuple(shape)}): "
                              "click inside the image.")
    return p


def spacing_kji(spacing) -> np.ndarray:
    return np.asarray(spacing, float)[::-1]


def normalize_region(region, shape) -> Region:
    """Region as three slices clipped to the image; ``None`` = whole image."""
    if region is None:
        return cast(Region, tuple(slice(0, n) for n in shape))
    if len(region) != 3:
        raise AnnotationError(f"A region is three slices (k, j, i); got {region!r}.")
    out = []
    for s, n in zip(region, shape):
        if not isinstance(s, slice):
            lo, hi = s
            s = slice(int(lo), int(hi))
        lo = 0 if s.start is None else max(0, int(s.start))
        hi = n if s.stop is None else min(n, int(s.stop))
        if hi <= lo:
            raise AnnotationError(f"The working region {region!r} does not overlap the image (shape {shape}).")
        out.append(slice(lo, hi))
    return cast(Region, tuple(out))


def region_around(point, size_mm: float | Sequence[float], spacing, shape) -> Region:
    """Box of ``size_mm`` (one value or (x, y, z)) centred on voxel ``point`` (k, j, i), clipped."""
    size = np.broadcast_to(np.asarray(size_mm, float), (3,))[::-1]
    half = np.ceil(size / spacing_kji(spacing) / 2.0).astype(int)
    p = np.asarray(point, int)
    return normalize_region(tuple(slice(int(c - h), int(c + h + 1)) for c, h in zip(p, half)), shape)


def noise_sigma(a: np.ndarray) -> float:
    """Robust noise level: MAD of differences between neighbouring voxels along the last axis."""
    a = np.asarray(a, np.float32)
    if a.shape[-1] > 1:
        d = np.diff(a, axis=-1)
    else:
        d = np.diff(a.reshape(-1))
    d = d.ravel()
    if d.size > 200_000:
        d = d[:: d.size // 200_000]
    s = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2.0)
    if not s > 0:
        s = float(np.std(a)) or 1.0
    return s


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * int(np.count_nonzero(a & b)) / s
