"""What an image's values say it is, read against the scan's facts: CT in Hounsfield units or not, CT stored as
8-bit values or with +1024 added (the reader's own conversion of a tagged DICOM CT is `orbitai.io.dicom`'s), and the
model's modality against the scan's.

The one place these value rules decide (issue 63): a check elsewhere asks here with the input's
:class:`~orbitai.scan.ScanFacts`. CT-value warnings are said only where the facts say CT or cannot tell; an image the
facts call MR (the user's statement, its DICOM tags, or the image classifier when sure) is never told it looks like
CT stored with 1024 added. Refused are only values no model reads: CT whose Hounsfield units are lost.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import numpy as np

from orbitai.io.values import offset_ct_evidence, value_sample
from orbitai.io.volume import Volume, VolumeError

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

__all__ = ["looks_like_ct", "eight_bit_ct_evidence", "image_is_ct", "value_caveats", "said_modality",
           "EIGHT_BIT_AT_ZERO", "EIGHT_BIT_AT_255"]

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


def said_modality(facts: Optional[ScanFacts]) -> Optional[str]:
    """"CT" or "MR" where the facts are sure of it (stated, tagged, or the classifier sure), else None."""
    if facts is None or not facts.sure("modality"):
        return None
    return str(facts.modality.value)


def image_is_ct(vol: Volume, what: str = "the image", modality: str | None = None,
                said_by: str | None = None) -> bool:
    """Whether the CT model takes the image (True) or the MRI model (False), given what it is (``modality``: "CT"
    or "MR" from :func:`orbitai.scan.scan_facts`, ``said_by`` the source of that fact, as the messages credit it;
    None: from the values alone, as before the scan classifier).

    Raises :class:`~orbitai.io.VolumeError` for a CT whose values are not Hounsfield units (stored as 8-bit values,
    or with +1024 and nothing in the file saying so), which neither model fits; an MR is never refused here."""
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
    if offset and not dicom_ct:
        raise VolumeError(
            f"{what} looks like CT stored with 1024 added to its Hounsfield units ({offset}), but nothing in the "
            "file says so. Subtract 1024 (or export it again with its rescale intercept), or choose a model with "
            "--model (if it is an MRI: --modality MR).")
    ct = looks_like_ct(vol)
    if (dicom_ct or modality == "CT") and not ct:
        stated = bool(said_by) and str(said_by).startswith("stated")
        said = ("DICOM Modality" if dicom_ct else "as stated with --modality CT" if stated
                else "the image classifier" if said_by == "image" else said_by or "the scan's image and tags")
        raise VolumeError(
            f"{what} is CT ({said}) but its values ({sample.min():g} to {sample.max():g}) are not Hounsfield "
            "units and its header gives no certain way to convert them; it is not given to the MRI model. Export "
            "the CT with its Hounsfield units, or choose a model with --model"
            + (" (if it is an MRI: --modality MR)." if stated else "."))
    return ct


def value_caveats(vol: Volume, expected: str = "any", facts: Optional[ScanFacts] = None) -> list[str]:
    """Warnings when the image is not what a model made for ``expected`` ("CT", "MR" or "any") reads, one sentence
    each. What the image is comes from ``facts`` where they are sure (the user's word, DICOM tags, the classifier);
    only where they cannot tell (or none are given) from the values. CT-value warnings (8-bit, +1024) only where the
    facts say CT (sure, or their likeliest answer), or from the values alone where no facts are given."""
    known = said_modality(facts)
    ct = known == "CT" if known else looks_like_ct(vol)
    warnings = []
    if expected == "CT" and not ct:
        warnings.append("This model expects CT in Hounsfield units but the image does not look like CT.")
    if expected == "MR" and ct:
        warnings.append("This model expects MRI but the image looks like CT (Hounsfield units).")
    if looks_like_ct(vol) or (facts is not None and facts.modality.value != "CT"):
        return warnings                 # CT-value warnings only where the facts say CT (sure, or likeliest)
    evidence = eight_bit_ct_evidence(vol)
    if evidence:
        warnings.append(f"The image looks like CT stored as 8-bit values ({evidence}): Hounsfield units "
                        "are lost and the result is unreliable.")
    offset = offset_ct_evidence(vol)
    if offset:
        warnings.append(f"The image looks like CT stored with 1024 added to its Hounsfield units ({offset}); "
                        "the result is unreliable.")
    return warnings
