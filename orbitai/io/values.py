"""What an image's values must be before any model or radiomics reads it (finite, not constant), and
whether they look like CT stored with +1024 added (Hounsfield units whose rescale intercept was lost)."""
from __future__ import annotations

import numpy as np

from orbitai.io.volume import Volume, VolumeError


#: Values beyond this magnitude are refused: no scanner stores them (CT in HU, MR and PET counts stay far below),
#: and float32 arithmetic (a z-score's squares, radiomics' bins) overflows on them. A conversion error writes them.
MAX_ABS_VALUE = 1e12


def require_finite(vol: Volume, what: str = "image", case_id: str = "") -> None:
    """Raise `VolumeError` naming ``what`` (and the case) if the volume holds NaN or infinite values, or values
    beyond +-:data:`MAX_ABS_VALUE` (looked for only in floats and 64-bit integers: no narrower integer reaches it)."""
    a = vol.array
    who = f"Case {case_id}: the" if case_id else "The"
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        n = int(np.count_nonzero(~np.isfinite(a)))
        raise VolumeError(
            f"{who} {what} contains {n} NaN/infinite voxels. Fix or mask them before running "
            "(e.g. replace NaN by the background value)."
        )
    if a.size and _can_be_absurd(a.dtype):
        lo, hi = float(a.min()), float(a.max())
        if max(abs(lo), abs(hi)) > MAX_ABS_VALUE:
            n = int(np.count_nonzero(np.abs(a) > MAX_ABS_VALUE))
            raise VolumeError(
                f"{who} {what} holds {n} voxel(s) of absurd magnitude (values {lo:.3g} to {hi:.3g}; no scan has values "
                f"beyond +-{MAX_ABS_VALUE:.0e}): a conversion or export error. Export the image again or fix them."
            )


def _can_be_absurd(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` can exceed :data:`MAX_ABS_VALUE`: floats (but float16's 65504 cannot) and
    64-bit integers; int8 .. int32 and uint8 .. uint32 (at most 4.3e9) cannot."""
    if dtype.kind == "f":
        return bool(np.finfo(dtype).max > MAX_ABS_VALUE)
    return dtype.kind in "iu" and dtype.itemsize >= 8


def require_values(vol: Volume, what: str = "image", case_id: str = "") -> None:
    """The one check of an image's values before any model or radiomics reads it: no NaN, infinity or absurd
    magnitude (`require_finite`), not empty or constant (`require_contrast`)."""
    require_finite(vol, what, case_id)
    require_contrast(vol, what, case_id)


def require_contrast(vol: Volume, what: str = "image", case_id: str = "") -> None:
    """Raise `VolumeError` naming ``what`` (and the case) if every voxel has the same value: a blank or
    constant export holds no scan (radiomics' intensity normalisation would divide by zero)."""
    a = vol.array
    if a.size and a.min() == a.max():
        who = f"Case {case_id}: the" if case_id else "The"
        raise VolumeError(f"{who} {what} is empty or constant (every voxel is {a.flat[0]:g}); "
                          "it holds no scan: export the image again.")


def value_sample(vol: Volume) -> np.ndarray:
    """About 200 000 of the volume's values (every n-th voxel) as float32, for percentile checks."""
    a = vol.array
    return a.ravel()[:: max(1, a.size // 200_000)].astype(np.float32)


def offset_ct_evidence(vol: Volume, sample: np.ndarray | None = None) -> str | None:
    """Why the image looks like CT stored with +1024 added (Hounsfield units with the rescale intercept
    lost: no negative value, air near 0, soft tissue near 1024, bone above 1700), or None. ``sample``: the
    volume's `value_sample` when the caller took it already."""
    if not np.issubdtype(vol.array.dtype, np.integer):
        return None
    sample = value_sample(vol) if sample is None else sample
    if sample.min() < 0:
        return None
    p1, p99 = np.percentile(sample, [1, 99])
    soft = float(np.mean((sample > 900) & (sample < 1200)))
    bone = float(np.mean(sample > 1700))
    if p1 < 100 and p99 > 1024 and soft > 0.05 and bone > 0.002:
        return (f"values {int(sample.min())} to {int(sample.max())}, none negative, {100 * soft:.0f} % between 900 "
                f"and 1200 (soft tissue + 1024) and {100 * bone:.1f} % above 1700 (bone)")
    return None


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
