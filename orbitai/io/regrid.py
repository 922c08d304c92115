"""Slices that do not form a regular grid (gantry tilt, uneven spacing, varying tilt) onto one.

Each acquired slice is a plane at its true position and orientation (from its DICOM
ImagePositionPatient / ImageOrientationPatient). :func:`regular_grid` resamples the stack onto a
regular, orthogonal grid in physical space, as dcm2niix does for tilted and variably spaced
series: the output rows keep the slices' row direction, its slice axis is the slices' (mean)
normal, and every output voxel is interpolated *along that normal* between the two acquired
slices on either side of it, each sampled bilinearly in its own plane.

Hand-written on purpose: ITK's series reader and ``sitk.Resample`` need a regular input grid,
and no library interpolates between planes that are unevenly spaced or not parallel. The
in-plane part (a 2D affine resampling of each slice) is SciPy's ``affine_transform``; what is
hand-written is only the 1D linear interpolation between neighbouring planes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Planes:
    """Acquired slices as planes in LPS millimetres, sorted along the stack's normal.

    ``origins[k]`` is slice k's first pixel centre, ``rows[k]``/``cols[k]`` the directions of
    increasing column/row index (ImageOrientationPatient), ``pixel`` the (column, row) spacing."""

    origins: np.ndarray     # (K, 3)
    rows: np.ndarray        # (K, 3)
    cols: np.ndarray        # (K, 3)
    pixel: tuple[float, float]
    size: tuple[int, int]   # (columns, rows) of each slice

    @property
    def normals(self) -> np.ndarray:
        n = np.cross(self.rows, self.cols)
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    def frame(self) -> np.ndarray:
        """Orthonormal output axes (columns): mean row direction, column direction, mean normal."""
        r = self.rows.mean(0)
        r /= np.linalg.norm(r)
        n = self.normals.mean(0)
        n -= (n @ r) * r
        n /= np.linalg.norm(n)
        return np.stack([r, np.cross(n, r), n], axis=1)

    def corners(self, k: int) -> np.ndarray:
        """LPS positions of slice k's four corner pixel centres (4, 3)."""
        w, h = (self.size[0] - 1) * self.pixel[0], (self.size[1] - 1) * self.pixel[1]
        return np.array([self.origins[k] + a * self.rows[k] + b * self.cols[k]
                         for a in (0.0, w) for b in (0.0, h)])


@dataclass(frozen=True)
class RegularGrid:
    """The resampled volume: ``array`` [k, j, i] with ITK-style (x, y, z) spacing, origin, direction."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray


def normal_positions(planes: Planes, frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(K, P) distance along ``frame``'s normal from each point to where the line through it along
    that normal meets each slice plane (positive: the plane lies further along the normal)."""
    n = frame[:, 2]
    nk = planes.normals
    return ((planes.origins @ nk.T).diagonal()[:, None] - nk @ points.T) / (nk @ n)[:, None]


def _layout(planes: Planes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, np.ndarray]:
    """Where the regular grid lies: its axes (``frame``), its first column's point on slice 0's plane
    (``base``), that point and its neighbours along the rows and columns (``lattice``), where the normal lines
    through them meet each plane (``t3``, (K, 3)), its columns and rows (``nu``, ``nv``), and where the normal
    lines through its four corner columns meet each plane (``t_corner``, (K, 4))."""
    frame = planes.frame()
    r, c = frame[:, 0], frame[:, 1]
    ref = planes.origins[0]
    corners = np.concatenate([planes.corners(k) for k in range(len(planes.origins))]) - ref
    uv = corners @ frame[:, :2]
    lo, hi = uv.min(0), uv.max(0)
    sx, sy = planes.pixel
    with np.errstate(all="ignore"):
        counts = np.floor((hi - lo) / np.array([sx, sy], float) + 1e-6) + 1
    if not (np.all(np.isfinite(counts)) and np.all(counts >= 1)):   # a pixel spacing of 1e-300 or below 0
        raise ValueError(f"the pixel spacing {sx:g} x {sy:g} mm makes no grid")
    nu, nv = int(counts[0]), int(counts[1])
    base = ref + lo[0] * r + lo[1] * c             # column (a=0, b=0) on the plane through slice 0's origin
    # t_k(a, b): where the normal line through column (a, b) meets plane k (affine in a, b)
    lattice = np.array([base, base + sx * r, base + sy * c])
    t3 = normal_positions(planes, frame, lattice)                  # (K, 3)
    t0, ta, tb = t3[:, 0], t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0]
    ext = np.array([[0, 0], [nu - 1, 0], [0, nv - 1], [nu - 1, nv - 1]], float)
    t_corner = t0[:, None] + ta[:, None] * ext[:, 0] + tb[:, None] * ext[:, 1]   # (K, 4)
    return frame, base, lattice, t3, nu, nv, t_corner


def _count(s_lo: float, s_hi: float, step: float) -> int:
    """Grid planes from ``s_lo`` to ``s_hi`` at most ``step`` apart."""
    with np.errstate(all="ignore"):
        n = np.ceil(np.float64(s_hi - s_lo) / step - 1e-6) + 1
    if not np.isfinite(n):
        raise ValueError(f"the slices span {s_hi - s_lo:g} mm along their normal")
    return int(n)


def grid_shape(planes: Planes, step: float) -> tuple[int, int, int]:
    """The (planes, rows, columns) of the grid :func:`regular_grid` would make for ``planes`` and ``step``, from the
    slices' geometry alone: what the resampling will allocate, known before any pixel is read (a few slices of a
    few pixels, small pixel spacing and far apart in-plane, make a grid of gigabytes; found by fuzzing). Raises
    ValueError when the geometry makes no grid (a pixel spacing not above 0, or so small the grid is infinite)."""
    _frame, _base, _lattice, _t3, nu, nv, t_corner = _layout(planes)
    return max(1, _count(float(t_corner[0].min()), float(t_corner[-1].max()), step)), nv, nu


def regular_grid(stack: np.ndarray, planes: Planes, step: float, fill: float) -> RegularGrid:
    """Resample ``stack`` (K, rows, columns) acquired on ``planes`` onto a regular grid whose axes are
    :meth:`Planes.frame`, with the slices' pixel spacing in-plane and at most ``step`` mm along the
    normal, covering every slice; voxels no slice covers get ``fill``.

    Raises ValueError when two neighbouring planes cross inside the field of view (no order along
    the normal there)."""
    stack = np.asarray(stack, np.float32)
    K = stack.shape[0]
    frame, base, lattice, t3, nu, nv, t_corner = _layout(planes)
    n = frame[:, 2]
    sx, sy = planes.pixel
    t0, ta, tb = t3[:, 0], t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0]
    crossing = np.flatnonzero(np.diff(t_corner, axis=0).min(1) <= 1e-3)
    if len(crossing):
        k = int(crossing[0])
        raise ValueError(f"slices {k + 1} and {k + 2} cross or touch inside the field of view")
    parallel = bool(np.allclose(ta, 0, atol=1e-6) and np.allclose(tb, 0, atol=1e-6))
    from scipy import ndimage as ndi      # imported here: a second of start-up that a regular scan never needs

    # each slice sampled (bilinearly, NaN outside it) where the normal lines through the columns meet it
    sampled = np.empty((K, nv, nu), np.float32)
    for k in range(K):
        pts = lattice + t3[k][:, None] * n                          # meeting points of three columns
        ij = (pts - planes.origins[k]) @ np.stack([planes.rows[k] / sx, planes.cols[k] / sy], axis=1)
        # output (b, a) -> input (j, i): rows of the matrix are d(j, i)/d(b, a)
        d_a, d_b = ij[1] - ij[0], ij[2] - ij[0]
        matrix = np.array([[d_b[1], d_a[1]], [d_b[0], d_a[0]]])
        offset = np.array([ij[0][1], ij[0][0]])
        sampled[k] = ndi.affine_transform(stack[k], matrix, offset, output_shape=(nv, nu), order=1,
                                          mode="constant", cval=np.nan, prefilter=False)
    s_lo, s_hi = float(t_corner[0].min()), float(t_corner[-1].max())
    # the step shrinks a little where needed so that the grid ends exactly on the last slice
    n_out = _count(s_lo, s_hi, step)
    step = (s_hi - s_lo) / (n_out - 1) if n_out > 1 else step
    s = s_lo + step * np.arange(n_out)
    out = np.full((n_out, nv, nu), np.nan, np.float32)
    if not parallel:
        aa, bb = np.meshgrid(np.arange(nu, dtype=np.float32), np.arange(nv, dtype=np.float32))
    for k in range(K - 1):
        # Hand-written: linear interpolation along the normal between planes k and k+1
        first = int(np.searchsorted(s, t_corner[k].min() - 1e-6))
        last = int(np.searchsorted(s, t_corner[k + 1].max() + 1e-6, side="right"))
        if parallel:
            tk, tk1 = float(t0[k]), float(t0[k + 1])
        else:
            tk = t0[k] + ta[k] * aa + tb[k] * bb
            tk1 = t0[k + 1] + ta[k + 1] * aa + tb[k + 1] * bb
        for m in range(first, last):
            w = (s[m] - tk) / (tk1 - tk)
            a, b = sampled[k], sampled[k + 1]
            val = np.where(w <= 1e-6, a, np.where(w >= 1 - 1e-6, b, (1 - w) * a + w * b))
            inside = (w >= -1e-6) & (w <= 1 + 1e-6) & np.isnan(out[m])
            if np.ndim(inside) == 0:
                if inside:
                    out[m] = val
            else:
                out[m][inside] = val[inside]
    np.nan_to_num(out, copy=False, nan=fill)
    origin = base + s_lo * n
    return RegularGrid(out, (sx, sy, float(step)), tuple(float(v) for v in origin), frame)  # type: ignore[arg-type]
