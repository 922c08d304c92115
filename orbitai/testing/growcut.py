"""The background seeds a Slicer user paints for Grow from seeds (`orbitai.mrml.growcut`), simulated from
the truth like `orbitai.annotate.simulate`'s strokes, for the SmartFill benchmark (issue #18).

Arrays are indexed [k, j, i] and spacing is (x, y, z) in mm, as in `orbitai.io.Volume`.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from orbitai.annotate import AnnotationError
from orbitai.annotate._common import check_mask, spacing_kji

__all__ = ["user_background_seeds"]


def _stroke_slices(strokes: np.ndarray, axis: int | None) -> set[tuple[int, int]]:
    """(axis, index) of the slices the strokes were drawn on. Each stroke (26-connected piece) was
    drawn on slices along an axis where it is one voxel thick; a straight stroke can be flat along
    two axes, and then the axis most strokes are flat along (the view they were drawn in) wins."""
    lab, _ = ndi.label(strokes, ndi.generate_binary_structure(3, 3))
    boxes = ndi.find_objects(lab)
    flat = [{ax for ax, s in enumerate(box) if s.stop - s.start == 1} for box in boxes]
    votes = [sum(ax in f for f in flat) for ax in range(3)]
    out: set[tuple[int, int]] = set()
    for c, (box, f) in enumerate(zip(boxes, flat), start=1):
        if axis is not None:
            ax = axis
        elif f:
            ax = max(f, key=lambda a: (votes[a], -a))
        else:                                   # not drawn on one slice: its thinnest axis
            ax = int(np.argmin([s.stop - s.start for s in box]))
        out.update((ax, int(k)) for k in np.unique(np.nonzero(lab[box] == c)[ax] + box[ax].start))
    return out


def user_background_seeds(truth: np.ndarray, spacing, fg_strokes: np.ndarray,
                          distance_mm: float = 4.0, axis: int | None = None) -> np.ndarray:
    """Background seeds a Slicer user paints for Grow from seeds: on each slice an object stroke
    lies on (in the view it was drawn in: ``axis``, default the axis along which the stroke is one
    voxel thick), a one-voxel ring about ``distance_mm`` outside the structure's cross-section on
    that slice.

    A simulation choice, like `orbitai.annotate.simulate`: the truth is only looked at the way a
    person looks at the image (the structure's outline on the slice), never handed to the tool.
    Real users paint background more loosely (blobs on neighbouring structures, partial rings);
    a closed ring at a fixed distance is a deterministic stand-in for that habit. Where the ring
    would leave the image it is left open.
    """
    t = np.asarray(truth, bool)
    f = check_mask(fg_strokes, t.shape, "object strokes")
    if not f.any():
        raise AnnotationError("No object strokes: there is no slice to paint background seeds on.")
    if not distance_mm > 0:
        raise AnnotationError(f"The background seed distance must be positive (mm), got {distance_mm}.")
    sk = spacing_kji(spacing)
    slices = _stroke_slices(f, axis)
    out = np.zeros(t.shape, bool)
    for ax, k in sorted(slices):
        idx: list[slice | int] = [slice(None)] * 3
        idx[ax] = k
        section = t[tuple(idx)]
        if not section.any():
            continue
        d = ndi.distance_transform_edt(~section, sampling=np.delete(sk, ax))
        near = d <= distance_mm
        ring = near & ~ndi.binary_erosion(near, border_value=1)
        out[tuple(idx)] |= ring & ~section
    return out & ~t & ~f
