"""Input checks every model entry point runs first: a finite 3D volume with a head scan's spacing and values no
overflow wrapped. What the image is (CT or MR, CT values stored as 8-bit or with +1024) is :mod:`orbitai.scan`'s
(:mod:`orbitai.scan.values`), read here with the scan's facts."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orbitai.io import Volume, VolumeError, require_finite
from orbitai.io.values import value_sample
from orbitai.scan.values import eight_bit_ct_evidence, looks_like_ct, value_caveats
from orbitai.scan.values import image_is_ct as scan_image_is_ct

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

__all__ = ["check_input", "check_not_wrapped", "check_spacing", "eight_bit_ct_evidence", "field_of_view_mm",
           "image_is_ct", "looks_like_ct", "wrapped_values_evidence"]

#: Spacing (mm) a head scan's header can be trusted with; outside it the header is wrong (or the image
#: is not a clinical scan), and a model would see the anatomy at the wrong size.
TRUSTED_SPACING_MM = (0.05, 20.0)


def check_spacing(vol: Volume, what: str = "the image") -> None:
    """Raise :class:`~orbitai.io.VolumeError` naming the voxel spacing when it cannot be a head scan's."""
    lo, hi = TRUSTED_SPACING_MM
    if min(vol.spacing) < lo or max(vol.spacing) > hi:
        sp = " x ".join(f"{s:.4g}" for s in vol.spacing)
        raise VolumeError(f"{what} has a voxel spacing of {sp} mm, outside {lo:g}-{hi:g} mm: its header's spacing "
                          "cannot be right for a head scan. Fix the spacing in the header (or export the image again).")


#: Beyond any scanner's range (CT: about -3024 to +4000 HU; MRI: not below 0): a share of voxels at both
#: ends of a 16-bit image means values that wrapped around (an integer overflow while scaling or converting).
WRAPPED_LIMIT = 5000
WRAPPED_SHARE = 0.005


def wrapped_values_evidence(vol: Volume) -> str | None:
    """Why the image's values look wrapped around an integer type's limits (overflow), or None."""
    if not np.issubdtype(vol.array.dtype, np.integer):
        return None
    sample = value_sample(vol)
    low, high = float(np.mean(sample < -WRAPPED_LIMIT)), float(np.mean(sample > WRAPPED_LIMIT))
    if low < WRAPPED_SHARE or high < WRAPPED_SHARE:
        return None
    return (f"{100 * low:.1f} % of voxels below -{WRAPPED_LIMIT} and {100 * high:.1f} % above {WRAPPED_LIMIT}, "
            f"from {int(sample.min())} to {int(sample.max())}")


def check_not_wrapped(vol: Volume, what: str = "the image") -> None:
    """Raise :class:`~orbitai.io.VolumeError` for values wrapped by an integer overflow (no model reads them)."""
    wrapped = wrapped_values_evidence(vol)
    if wrapped:
        raise VolumeError(
            f"{what} has values wrapped around its integer type's limits ({wrapped}): it was scaled or converted "
            "with an integer overflow, so no model can read it. Export it again from the original scan "
            "(CT in Hounsfield units, 16-bit).")


def image_is_ct(vol: Volume, what: str = "the image", modality: str | None = None,
                said_by: str | None = None) -> bool:
    """Whether the CT model takes the image (True) or the MRI model (False): values wrapped by an integer overflow
    are refused (:func:`check_not_wrapped`), the rest is :func:`orbitai.scan.values.image_is_ct`'s (``modality``:
    "CT" or "MR" from the scan's facts)."""
    check_not_wrapped(vol, what)
    return scan_image_is_ct(vol, what, modality, said_by)


def check_input(vol: Volume, modality: str = "any", facts: ScanFacts | None = None) -> list[str]:
    """Raise :class:`~orbitai.io.VolumeError` for unusable input (NaN/infinity, untrustworthy spacing,
    fewer than 3 slices along an axis); return warnings when the image is not what a model for ``modality`` ("CT",
    "MR", or "any") reads, as the scan's ``facts`` say (:func:`orbitai.scan.values.value_caveats`)."""
    require_finite(vol, "image")
    check_spacing(vol)
    if min(vol.shape) < 3:
        raise VolumeError(f"The image has only {min(vol.shape)} slices along one axis; a 3D scan is needed.")
    return value_caveats(vol, modality, facts)


def field_of_view_mm(vol: Volume) -> np.ndarray:
    """Physical extent (x, y, z) of the volume in mm."""
    return np.array(vol.size_xyz) * np.array(vol.spacing)
