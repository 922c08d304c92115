"""A deterministic simulated annotator for tests and benchmarks.

It only looks at the ground truth the way a person looks at the image: strokes are short lines
drawn along the middle of the structure on a few slices (inside the truth eroded by one voxel),
clicks go to the middle of the largest region still missing or wrongly included. It never hands
the answer itself to a tool.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ._common import AnnotationError, spacing_kji


def _largest_component(m: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(m)
    if n <= 1:
        return m.astype(bool)
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (1 + int(np.argmax(sizes)))


def _principal_line(core: np.ndarray, psp: np.ndarray, max_len_mm: float) -> np.ndarray:
    """Line through the middle along the cross-section's long axis, kept inside ``core``."""
    pts = np.argwhere(core).astype(float)
    c = pts.mean(0)
    if len(pts) >= 3:
        _, _, vt = np.linalg.svd((pts - c) * psp, full_matrices=False)
        d = vt[0] / psp
    else:
        d = np.array([0.0, 1.0]) / psp[1]
    d = d / np.linalg.norm(d * psp)                      # one mm per unit
    inside = np.argwhere(core)
    start = inside[np.argmin(((inside - c) ** 2).sum(1))]
    out = np.zeros(core.shape, bool)
    for sgn in (1, -1):
        t = 0.0
        while t <= max_len_mm / 2:
            q = np.round(start + sgn * t * d).astype(int)
            if np.any(q < 0) or np.any(q >= core.shape) or not core[tuple(q)]:
                break
            out[tuple(q)] = True
            t += 0.25
    return out


def _stroke_in_slice(shape2d: np.ndarray, psp: np.ndarray, max_len_mm: float) -> np.ndarray:
    """What an annotator draws as "a line along the middle of the structure": the medial axis
    (2D skeleton) of the cross-section, or for round shapes (whose skeleton is a dot) the line
    through the middle along the long axis, whichever is longer; within ``max_len_mm / 2`` of the
    middle and inside the cross-section eroded by one pixel."""
    from skimage.morphology import skeletonize

    core = ndi.binary_erosion(shape2d)
    if core.sum() < 3:
        core = shape2d
    core = _largest_component(core)
    sk = skeletonize(core)
    if sk.any():
        pts = np.argwhere(sk)
        mid = pts[np.argmin((((pts - pts.mean(0)) * psp) ** 2).sum(1))]
        keep = np.sqrt((((pts - mid) * psp) ** 2).sum(1)) <= max_len_mm / 2
        sk = np.zeros(core.shape, bool)
        sk[tuple(pts[keep].T)] = True
    line = _principal_line(core, psp, max_len_mm)
    return sk if sk.sum() >= line.sum() else line


def simulate_strokes(truth: np.ndarray, spacing, n_strokes: int = 3, axis: int | None = None,
                     max_len_mm: float = 30.0) -> list[np.ndarray]:
    """``n_strokes`` object strokes (boolean masks, image shape) on different slices along
    ``axis`` (default: the axis whose slices show the structure largest), at slices spread
    evenly among those where the structure is at least 30 % of its largest cross-section."""
    t = np.asarray(truth, bool)
    if not t.any():
        raise AnnotationError("The truth mask is empty: nothing to draw strokes in.")
    sk = spacing_kji(spacing)
    areas = {ax: np.array([np.take(t, k, axis=ax).sum() for k in range(t.shape[ax])]) * np.prod(np.delete(sk, ax))
             for ax in range(3)}
    if axis is None:
        axis = max(range(3), key=lambda ax: (areas[ax].max(), -ax))
    psp = np.delete(sk, axis)
    area = areas[axis]
    cand = np.nonzero(area >= 0.3 * area.max())[0]
    picks = np.round(np.linspace(cand[0], cand[-1], n_strokes + 2)[1:-1]).astype(int)
    picks = sorted({int(cand[np.argmin(np.abs(cand - k))]) for k in picks})
    strokes = []
    for k in picks:
        line = _stroke_in_slice(np.take(t, k, axis=axis), psp, max_len_mm)
        m = np.zeros(t.shape, bool)
        idx = [slice(None)] * 3
        idx[axis] = k
        m[tuple(idx)] = line
        strokes.append(m)
    return strokes


def next_click(segment: np.ndarray, truth: np.ndarray, spacing=(1.0, 1.0, 1.0)):
    """(point (k, j, i), remove?) at the middle of the largest missed or wrongly included region;
    None when the segment equals the truth."""
    seg = np.asarray(segment, bool)
    t = np.asarray(truth, bool)
    best = None
    for remove, err in ((False, t & ~seg), (True, seg & ~t)):
        if not err.any():
            continue
        comp = _largest_component(err)
        size = int(comp.sum())
        if best is None or size > best[0]:
            best = (size, comp, remove)
    if best is None:
        return None
    _, comp, remove = best
    dist = ndi.distance_transform_edt(np.pad(comp, 1), sampling=spacing_kji(spacing))[1:-1, 1:-1, 1:-1]
    p = np.unravel_index(int(np.argmax(dist)), comp.shape)
    return tuple(int(v) for v in p), remove
