"""The voxels the page is sent (`orbitai.web.client_slices`): a volume's values as 8 or 16 bits (`compact`) and
gzip'd little-endian with their grid (`packed`), a chunk at a time (no whole copy of a large scan)."""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np

__all__ = ["compact", "packed", "GZIP_LEVEL"]

#: gzip level of what the page is sent: 1 packs a label map 50-100x and a head scan ~2x in a fraction of level 6's time.
GZIP_LEVEL = 1
#: The voxel types the page reads (the names of its typed arrays).
_DTYPES = {np.dtype(np.uint8): "uint8", np.dtype(np.int16): "int16", np.dtype(np.uint16): "uint16"}
#: Values `compact` spreads over int16 at a time (one float64 temporary of 2 MB, not a copy of the scan).
_CHUNK_VALUES = 1 << 18


def compact(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(values, slope, intercept)`` with ``array == values * slope + intercept`` (to within half a 16-bit step,
    ``slope / 2``, for a float array, however far from zero its values lie): integers that fit 8 or 16 bits as they
    are, anything else spread over int16 (a slope and an intercept, as NIfTI's ``scl_slope`` and ``scl_inter``)."""
    a = np.asarray(array)
    if a.size == 0:
        return a.astype(np.uint8), 1.0, 0.0
    lo, hi = float(a.min()), float(a.max())
    integral = a.dtype.kind in "iub" or (np.isfinite(lo) and np.isfinite(hi) and _whole_numbers(a))
    # as they are when they already have the type (no copy: a scan of 500 MB is not held twice to be packed)
    if integral and 0 <= lo and hi <= 255:
        return a.astype(np.uint8, copy=False), 1.0, 0.0
    if integral and -32768 <= lo and hi <= 32767:
        return a.astype(np.int16, copy=False), 1.0, 0.0
    if integral and 0 <= lo and hi <= 65535:
        return a.astype(np.uint16, copy=False), 1.0, 0.0
    if not (np.isfinite(lo) and np.isfinite(hi)):
        a = np.nan_to_num(a.astype(np.float64 if a.dtype == np.float64 else np.float32), nan=0.0, posinf=0.0,
                          neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
    slope = (hi - lo) / 65535.0 or 1.0
    inter = lo + 32768.0 * slope
    a = np.atleast_1d(a)
    out = np.empty(a.shape, np.int16)
    rows = _rows(a)
    for start in range(0, a.shape[0], rows):
        # in float64, the offset taken off first: a scan far from zero (1e9) in float32 is off by up to 64 units
        q = a[start:start + rows].astype(np.float64)
        q -= inter
        q /= slope
        np.clip(np.rint(q, out=q), -32768, 32767, out=q)
        out[start:start + rows] = q
    return out.reshape(np.shape(array)), slope, inter


def _rows(a: np.ndarray) -> int:
    """How many rows (first-axis slices) of ``a`` make about `_CHUNK_VALUES` values."""
    return max(1, _CHUNK_VALUES // max(1, a[:1].size))


def _whole_numbers(a: np.ndarray) -> bool:
    """Whether every value of the float array ``a`` is a whole number (checked a chunk at a time)."""
    a = np.atleast_1d(a)
    rows = _rows(a)
    return all(bool(np.all(np.mod(a[start:start + rows], 1) == 0)) for start in range(0, a.shape[0], rows))


def _gzip(a: np.ndarray, level: int) -> bytes:
    """The gzip file of the C-contiguous array ``a``'s bytes (one axis at least), little-endian, compressed a chunk at a time from the
    array's own memory (no whole copy of its bytes: ``tobytes`` held a 500 MB scan twice more)."""
    little = a.dtype.newbyteorder("<")
    deflate = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)     # 16+: a gzip header and trailer
    parts = []
    rows = _rows(a)
    for start in range(0, a.shape[0], rows):
        chunk = a[start:start + rows]
        if chunk.dtype != little:
            chunk = chunk.astype(little)
        parts.append(deflate.compress(np.ascontiguousarray(chunk).data.cast("B")))
    parts.append(deflate.flush())
    return b"".join(parts)


def packed(array: np.ndarray, ijk_to_ras: np.ndarray, slope: float = 1.0, inter: float = 0.0,
           level: int = GZIP_LEVEL) -> dict[str, Any]:
    """What the page takes of a volume: its voxels ([k, j, i] as `orbitai.io.Volume` holds them, so i runs fastest)
    gzip'd little-endian, their type, the grid's shape [k, j, i], its IJK-to-RAS (row-major) and the value scaling
    ``value = voxel * slope + inter``."""
    a = np.ascontiguousarray(array)
    if a.ndim != 3 or a.dtype not in _DTYPES:
        raise ValueError(f"a 3D array of {sorted(_DTYPES.values())} is needed, not {a.ndim}D {a.dtype}")
    m = np.asarray(ijk_to_ras, float).reshape(4, 4)
    return {"shape": [int(n) for n in a.shape], "dtype": _DTYPES[a.dtype], "ijk_to_ras": m.ravel().tolist(),
            "slope": float(slope), "inter": float(inter),
            "data": _gzip(a, level)}
