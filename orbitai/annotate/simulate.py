"""A deterministic simulated annotator for tests and benchmarks.

It only looks at the ground truth the way a person looks at the image: strokes are short lines
drawn along the middle of the structure on a few slices (inside the truth eroded by one voxel),
clicks go to the middle of the largest region still missing or wrongly included. It never hands
the answer itself to a tool.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from ._common import AnnotationError, spacing_kji


def _largest_component(m: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(m)
    if n <= 1:
        return m.astype(bool)
    sizes = np.bincount(lab.ravel())[1:]
    return lab == (1 + int(np.argmax(sizes)))


def _largest_error(segment: np.ndarray, truth: np.ndarray, extra_first: bool):
    """(component, extra?) of the largest connected error: voxels of ``segment`` outside the truth
    (extra) or of the truth it misses; a tie goes to the kind looked at first. None: no error."""
    seg = np.asarray(segment, bool)
    t = np.asarray(truth, bool)
    kinds = ((True, seg & ~t), (False, t & ~seg))
    best = None
    for extra, err in (kinds if extra_first else kinds[::-1]):
        if not err.any():
            continue
        comp = _largest_component(err)
        size = int(comp.sum())
        if best is None or size > best[0]:
            best = (size, comp, extra)
    return None if best is None else best[1:]


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


def _slice_strokes(t: np.ndarray, sk: np.ndarray, axis: int, n_strokes: int, max_len_mm: float) -> list[np.ndarray]:
    psp = np.delete(sk, axis)
    area = t.sum(axis=tuple(a for a in range(3) if a != axis))
    cand = np.nonzero(area >= 0.3 * area.max())[0]
    spread = np.round(np.linspace(cand[0], cand[-1], n_strokes + 2)[1:-1]).astype(int)
    picks = sorted({int(cand[np.argmin(np.abs(cand - k))]) for k in spread})
    strokes = []
    for k in picks:
        line = _stroke_in_slice(np.take(t, k, axis=axis), psp, max_len_mm)
        m = np.zeros(t.shape, bool)
        idx: list[slice | int] = [slice(None)] * 3
        idx[axis] = k
        m[tuple(idx)] = line
        strokes.append(m)
    return strokes


def _stroke_length_mm(strokes: list[np.ndarray], psp: np.ndarray) -> float:
    return float(sum(int(s.sum()) for s in strokes)) * float(np.sqrt(np.prod(psp)))


def simulate_strokes(truth: np.ndarray, spacing, n_strokes: int = 3, axis: int | None = None,
                     max_len_mm: float = 30.0) -> list[np.ndarray]:
    """``n_strokes`` object strokes (boolean masks, image shape) on different slices along
    ``axis``, at slices spread evenly among those where the structure is at least 30 % of its
    largest cross-section. Default axis: the view in which the strokes come out longest (an
    annotator draws along a muscle where it looks long, not across it); ties go to the view where
    the structure looks largest."""
    t = np.asarray(truth, bool)
    if not t.any():
        raise AnnotationError("The truth mask is empty: nothing to draw strokes in.")
    sk = spacing_kji(spacing)
    if axis is not None:
        return _slice_strokes(t, sk, axis, n_strokes, max_len_mm)
    box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in ndi.find_objects(t.astype(np.uint8))[0])
    views = []
    for ax in range(3):
        sub = _slice_strokes(t[box], sk, ax, n_strokes, max_len_mm)
        area = float(t.sum(axis=tuple(a for a in range(3) if a != ax)).max()) * float(np.prod(np.delete(sk, ax)))
        views.append(((round(_stroke_length_mm(sub, np.delete(sk, ax)), 3), area, -ax), sub))
    _, best = max(views, key=lambda view: view[0])
    out = []
    for s in best:
        m = np.zeros(t.shape, bool)
        m[box] = s
        out.append(m)
    return out


def correction_stroke(segment: np.ndarray, truth: np.ndarray, spacing, axis: int | None = None,
                      max_len_mm: float = 30.0):
    """What an annotator adds after looking at a preview: one stroke on the largest error.

    Returns ``(stroke, background)``: a stroke drawn along the middle of the largest connected
    region that the preview wrongly included (``background=True``: a background stroke, outside the
    truth) or missed (``background=False``: an object stroke, inside the truth), on the slice
    along ``axis`` (default: the view where that region looks largest) where it is largest;
    ``None`` when the preview equals the truth. Only the error region is looked at, never the
    answer: the tool still has to find the border itself.
    """
    sk = spacing_kji(spacing)
    largest = _largest_error(segment, truth, extra_first=True)
    if largest is None:
        return None
    comp, background = largest
    areas = {ax: comp.sum(axis=tuple(a for a in range(3) if a != ax)) * float(np.prod(np.delete(sk, ax)))
             for ax in range(3)}
    if axis is None:
        axis = max(range(3), key=lambda ax: (areas[ax].max(), -ax))
    k = int(np.argmax(areas[axis]))
    line = _stroke_in_slice(np.take(comp, k, axis=axis), np.delete(sk, axis), max_len_mm)
    stroke = np.zeros(comp.shape, bool)
    idx: list[slice | int] = [slice(None)] * 3
    idx[axis] = k
    stroke[tuple(idx)] = line
    return stroke, background


def interactive_fill(fill, truth: np.ndarray, spacing, n_strokes: int = 3, max_len_mm: float = 30.0):
    """Simulated SmartFill session with at most ``n_strokes`` strokes in the final result.

    The annotator draws ``n_strokes - 1`` object strokes, looks at the preview and adds one
    correction stroke on its largest error (a background stroke where it leaked, an object stroke
    where it fell short; see `correction_stroke`). If that made the preview worse, they undo it and
    draw ``n_strokes`` object strokes instead (`simulate_strokes`). The truth is only used the way
    a person looks at the image and the preview; the tool never sees it.

    ``fill(fg, bg)`` runs the tool (``bg`` may be None) and returns the object mask. Returns
    ``(mask, fg_strokes, bg_strokes)``.
    """
    t = np.asarray(truth, bool)

    def score(m: np.ndarray) -> float:
        s = int(m.sum()) + int(t.sum())
        return 2.0 * int(np.count_nonzero(m & t)) / s if s else 1.0

    strokes = simulate_strokes(t, spacing, max(1, n_strokes - 1), max_len_mm=max_len_mm)
    fg = np.any(strokes, axis=0)
    preview = fill(fg, None)
    if n_strokes < 2:
        return preview, fg, None
    corr = correction_stroke(preview, t, spacing, max_len_mm=max_len_mm)
    if corr is not None and corr[0].any():
        stroke, background = corr
        f2, b2 = (fg, stroke) if background else (fg | stroke, None)
        mask = fill(f2, b2)
        if score(mask) >= score(preview):
            return mask, f2, b2
    fg3 = np.any(simulate_strokes(t, spacing, n_strokes, max_len_mm=max_len_mm), axis=0)
    return fill(fg3, None), fg3, None


def next_click(segment: np.ndarray, truth: np.ndarray, spacing=(1.0, 1.0, 1.0)):
    """(point (k, j, i), remove?) at the middle of the largest missed or wrongly included region;
    None when the segment equals the truth."""
    largest = _largest_error(segment, truth, extra_first=False)
    if largest is None:
        return None
    comp, remove = largest
    dist = ndi.distance_transform_edt(np.pad(comp, 1), sampling=spacing_kji(spacing))[1:-1, 1:-1, 1:-1]
    p = np.unravel_index(int(np.argmax(dist)), comp.shape)
    return tuple(int(v) for v in p), remove


def rough_mask(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """The AutoCorrection benchmark's damaged mask: the truth dilated by one voxel with three
    small holes punched inside (deterministic for a seed)."""
    bad = ndi.binary_dilation(truth)
    rng = np.random.default_rng(seed)
    inner = np.argwhere(ndi.binary_erosion(truth))
    z, y, x = np.ogrid[: truth.shape[0], : truth.shape[1], : truth.shape[2]]
    for p in inner[rng.choice(len(inner), 3, replace=False)]:
        bad &= ((z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2) > 1
    return bad
