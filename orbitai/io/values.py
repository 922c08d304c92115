"""What an image's values must be before any model or radiomics reads it (finite, not constant), and
whether they look like CT stored with +1024 added (Hounsfield units whose rescale intercept was lost). Whether they
look like noise is `orbitai.scan.noise`'s to judge."""
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
