"""Whether an image looks like noise where its segmented structures lie (neighbouring voxels unrelated), so that a
model's call on it means nothing: the judge the TAO and IVGC tasks ask (issue 82, point 3: it lived in
`orbitai.io.values`)."""
from __future__ import annotations

import numpy as np

__all__ = ["MIN_NEIGHBOUR_CORRELATION", "neighbour_correlation", "noise_warning"]


#: Below this the neighbouring voxels around the segmented structures are as unrelated as pure noise's (~0); a scan's,
#: anatomy being smooth at the voxel scale, correlate far above it (0.6 or more in-plane).
MIN_NEIGHBOUR_CORRELATION = 0.25


def neighbour_correlation(array: np.ndarray, region: np.ndarray, margin: int = 4) -> float:
    """The largest, over the axes, correlation of each voxel with its next neighbour inside the bounding box of
    ``region`` (grown by ``margin`` voxels): ~0 for noise, near 1 for an image with structure."""
    where = np.argwhere(region)
    if not len(where):
        return float("nan")
    lo = np.maximum(where.min(0) - margin, 0)
    hi = np.minimum(where.max(0) + margin + 1, array.shape)
    box = np.asarray(array[tuple(slice(a, b) for a, b in zip(lo, hi))], dtype=np.float64)
    best = float("nan")
    for axis in range(box.ndim):
        if box.shape[axis] < 2:
            continue
        a = np.take(box, np.arange(box.shape[axis] - 1), axis=axis).ravel()
        b = np.take(box, np.arange(1, box.shape[axis]), axis=axis).ravel()
        if a.std() == 0 or b.std() == 0:
            continue
        r = float(np.corrcoef(a, b)[0, 1])
        best = r if not best >= r else best
    return best


def noise_warning(image: np.ndarray, labels: np.ndarray, what: str = "image") -> str | None:
    """A warning when ``image`` (its voxel values) looks like noise where ``labels`` (non-zero: the segmented
    structures, on the image's grid) lie: no voxel relates to its neighbour (`neighbour_correlation` below
    :data:`MIN_NEIGHBOUR_CORRELATION`), so a model's call on it means nothing. None for a plausible image, or when
    the labels are not on its grid."""
    labels = np.asarray(labels)
    if labels.shape != np.shape(image) or not labels.any():
        return None
    r = neighbour_correlation(image, labels != 0)
    if not r < MIN_NEIGHBOUR_CORRELATION:       # NaN (a constant box) is refused elsewhere
        return None
    return (f"The {what} looks like noise around the segmented structures (neighbouring voxels correlate {r:.2f}; "
            f"a scan's above {MIN_NEIGHBOUR_CORRELATION:g}): the calls are not meaningful; check that the image is the "
            "scan the segmentation belongs to.")
