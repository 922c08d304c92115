"""Input checks of an image's geometry every model entry point runs first: a finite 3D volume with a head scan's
spacing. What the image is (CT or MR, CT values stored as 8-bit or with +1024, values wrapped by an overflow) is
:mod:`orbitai.scan`'s alone (:mod:`orbitai.scan.values`, with the scan's facts), asked here for the warnings."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orbitai.io import Volume, VolumeError, require_finite
from orbitai.scan.values import value_caveats

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

__all__ = ["check_input", "check_spacing", "field_of_view_mm"]

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
