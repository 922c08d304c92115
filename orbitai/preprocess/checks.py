"""Input checks of an image's geometry every model entry point runs first: a finite 3D volume with a head scan's
spacing. What the image is (CT or MR, CT values stored as 8-bit or with +1024, values wrapped by an overflow) is
:mod:`orbitai.scan`'s alone (:mod:`orbitai.scan.values`, with the scan's facts), asked here for the warnings."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from orbitai.io import Volume, VolumeError, require_finite
from orbitai.scan.geometry import TRUSTED_SPACING_MM, check_spacing
from orbitai.scan.values import value_caveats

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

# check_spacing and TRUSTED_SPACING_MM are `orbitai.scan.geometry`'s (what spacing and field of view a scan may have)
__all__ = ["check_input", "check_spacing", "field_of_view_mm", "TRUSTED_SPACING_MM"]


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
