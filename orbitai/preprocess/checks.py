"""Input checks every model entry point runs first: a finite 3D volume, and whether it is CT."""
from __future__ import annotations

import numpy as np

from orbitai.io import Volume, VolumeError, require_finite
from orbitai.io.values import offset_ct_evidence, value_sample

#: An 8-bit CT: at least this fraction of voxels at 0 (air clipped) and at 255 (bone/saturated).
EIGHT_BIT_AT_ZERO = 0.2
EIGHT_BIT_AT_255 = 0.005


def looks_like_ct(vol: Volume) -> bool:
    """CT in Hounsfield units has air near -1000 and soft tissue near 0-100. A volume whose DICOM
    Modality is CT (``vol.metadata['Modality']``) counts as CT in HU when it has values on both sides
    of 0 (an 8-bit window converted to HU keeps air at the window's lower end)."""
    sample = value_sample(vol)
    p1, p99 = float(np.percentile(sample, 1)), float(np.percentile(sample, 99))
    if vol.metadata.get("Modality", "").upper() == "CT":
        return p1 < 0 < p99
    return p1 < -500 and p99 > 0


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


def eight_bit_ct_evidence(vol: Volume) -> str | None:
    """Why the image looks like CT stored as 8-bit values (clipped or windowed to 0-255, so its
    Hounsfield units are lost), or None.

    The sign: whole numbers in 0-255 saturated at both ends, a large share of voxels at exactly 0
    (air below the window) and a visible share at exactly 255 (bone above it). MRI scaled to 8 bits
    has a noisy background and only a few voxels at its maximum.
    """
    sample = value_sample(vol)
    if sample.min() != 0 or sample.max() != 255 or not np.all(sample == np.round(sample)):
        return None
    at_zero, at_top = float(np.mean(sample == 0)), float(np.mean(sample == 255))
    if at_zero < EIGHT_BIT_AT_ZERO or at_top < EIGHT_BIT_AT_255:
        return None
    return f"values 0-255 only, {100 * at_zero:.0f} % of voxels at 0 and {100 * at_top:.1f} % at 255"


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


def image_is_ct(vol: Volume, what: str = "the image", modality: str | None = None) -> bool:
    """Whether the CT model takes the image (True) or the MRI model (False), given what it is (``modality``: "CT"
    or "MR" from :func:`orbitai.scan.scan_facts`; None: from the values alone, as before the scan classifier).

    Raises :class:`~orbitai.io.VolumeError` for values wrapped by an integer overflow, and for a CT whose values
    are not Hounsfield units (stored as 8-bit values, or with +1024 and nothing in the file saying so), which
    neither model fits."""
    check_not_wrapped(vol, what)
    if modality == "MR":
        return False
    dicom_ct = vol.metadata.get("Modality", "").upper() == "CT"
    evidence = eight_bit_ct_evidence(vol)
    sample = value_sample(vol)
    if evidence is None and (dicom_ct or modality == "CT") and not looks_like_ct(vol):
        if sample.min() >= 0 and sample.max() <= 255 and np.all(sample == np.round(sample)):
            evidence = f"{'DICOM Modality CT' if dicom_ct else 'a CT'}, values {sample.min():g} to {sample.max():g}"
    if evidence:
        raise VolumeError(
            f"{what} looks like CT stored as 8-bit values ({evidence}) without a window in its header to "
            "convert them: its Hounsfield units are lost, so neither the CT nor the MRI model fits it. Export the "
            "CT with its original Hounsfield units (16-bit DICOM, NRRD or NIfTI), or choose a model with --model.")
    offset = offset_ct_evidence(vol)
    if offset and not dicom_ct and modality != "MR":
        raise VolumeError(
            f"{what} looks like CT stored with 1024 added to its Hounsfield units ({offset}), but nothing in the "
            "file says so. Subtract 1024 (or export it again with its rescale intercept), or choose a model with "
            "--model (if it is an MRI: --modality MR).")
    ct = looks_like_ct(vol)
    if (dicom_ct or modality == "CT") and not ct:
        said = "DICOM Modality" if dicom_ct else "the scan's image and tags"
        raise VolumeError(
            f"{what} is CT ({said}) but its values ({sample.min():g} to {sample.max():g}) are not Hounsfield "
            "units and its header gives no certain way to convert them; it is not given to the MRI model. Export "
            "the CT with its Hounsfield units, or choose a model with --model.")
    return ct


def check_input(vol: Volume, modality: str = "any") -> list[str]:
    """Raise :class:`~orbitai.io.VolumeError` for unusable input (NaN/infinity, untrustworthy spacing,
    fewer than 3 slices along an axis); return warnings when the image does not look like ``modality`` ("CT", "MR",
    or "any")."""
    require_finite(vol, "image")
    check_spacing(vol)
    if min(vol.shape) < 3:
        raise VolumeError(f"The image has only {min(vol.shape)} slices along one axis; a 3D scan is needed.")
    warnings = []
    ct = looks_like_ct(vol)
    if modality == "CT" and not ct:
        warnings.append("This model expects CT in Hounsfield units but the image does not look like CT.")
    if modality == "MR" and ct:
        warnings.append("This model expects MRI but the image looks like CT (Hounsfield units).")
    evidence = None if ct else eight_bit_ct_evidence(vol)
    if evidence:
        warnings.append(f"The image looks like CT stored as 8-bit values ({evidence}): Hounsfield units "
                        "are lost and the result is unreliable.")
    offset = None if ct else offset_ct_evidence(vol)
    if offset:
        warnings.append(f"The image looks like CT stored with 1024 added to its Hounsfield units ({offset}); "
                        "the result is unreliable.")
    return warnings


def field_of_view_mm(vol: Volume) -> np.ndarray:
    """Physical extent (x, y, z) of the volume in mm."""
    return np.array(vol.size_xyz) * np.array(vol.spacing)
