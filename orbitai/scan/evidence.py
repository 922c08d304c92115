"""What an image's values say it is, measured once per input (:func:`value_evidence`, carried on the scan's facts as
:attr:`orbitai.scan.ScanFacts.values`): Hounsfield units or not, CT stored as 8-bit values or with +1024 added,
values wrapped by an integer overflow.

The measurements only: the verdicts, read against what the scan's facts say (the user's statement first), are
:mod:`orbitai.scan.values`'. Nothing outside :mod:`orbitai.scan` calls these (issue 63: one judge of the input).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from orbitai.io.values import offset_ct_evidence, value_sample
from orbitai.io.volume import Volume

__all__ = ["ValueEvidence", "value_evidence", "evidence_of", "looks_like_ct", "eight_bit_ct_evidence",
           "wrapped_values_evidence", "EIGHT_BIT_AT_ZERO", "EIGHT_BIT_AT_255", "WRAPPED_LIMIT", "WRAPPED_SHARE"]

#: An 8-bit CT: at least this fraction of voxels at 0 (air clipped) and at 255 (bone/saturated).
EIGHT_BIT_AT_ZERO = 0.2
EIGHT_BIT_AT_255 = 0.005
#: Beyond any scanner's range (CT: about -3024 to +4000 HU; MRI: not below 0): a share of voxels at both
#: ends of a 16-bit image means values that wrapped around (an integer overflow while scaling or converting).
WRAPPED_LIMIT = 5000
WRAPPED_SHARE = 0.005


def _dicom_ct(vol: Volume) -> bool:
    return str(vol.metadata.get("Modality", "")).upper() == "CT"


def _hounsfield(sample: np.ndarray, dicom_ct: bool) -> bool:
    p1, p99 = float(np.percentile(sample, 1)), float(np.percentile(sample, 99))
    if dicom_ct:
        return p1 < 0 < p99
    return p1 < -500 and p99 > 0


def looks_like_ct(vol: Volume) -> bool:
    """CT in Hounsfield units has air near -1000 and soft tissue near 0-100. A volume whose DICOM
    Modality is CT (``vol.metadata['Modality']``) counts as CT in HU when it has values on both sides
    of 0 (an 8-bit window converted to HU keeps air at the window's lower end)."""
    return _hounsfield(value_sample(vol), _dicom_ct(vol))


def _eight_bit(sample: np.ndarray) -> Optional[str]:
    if sample.min() != 0 or sample.max() != 255 or not np.all(sample == np.round(sample)):
        return None
    at_zero, at_top = float(np.mean(sample == 0)), float(np.mean(sample == 255))
    if at_zero < EIGHT_BIT_AT_ZERO or at_top < EIGHT_BIT_AT_255:
        return None
    return f"values 0-255 only, {100 * at_zero:.0f} % of voxels at 0 and {100 * at_top:.1f} % at 255"


def eight_bit_ct_evidence(vol: Volume) -> Optional[str]:
    """Why the image looks like CT stored as 8-bit values (clipped or windowed to 0-255, so its
    Hounsfield units are lost), or None.

    The sign: whole numbers in 0-255 saturated at both ends, a large share of voxels at exactly 0
    (air below the window) and a visible share at exactly 255 (bone above it). MRI scaled to 8 bits
    has a noisy background and only a few voxels at its maximum.
    """
    return _eight_bit(value_sample(vol))


def _wrapped(sample: np.ndarray, integer: bool) -> Optional[str]:
    if not integer:
        return None
    low, high = float(np.mean(sample < -WRAPPED_LIMIT)), float(np.mean(sample > WRAPPED_LIMIT))
    if low < WRAPPED_SHARE or high < WRAPPED_SHARE:
        return None
    return (f"{100 * low:.1f} % of voxels below -{WRAPPED_LIMIT} and {100 * high:.1f} % above {WRAPPED_LIMIT}, "
            f"from {int(sample.min())} to {int(sample.max())}")


def wrapped_values_evidence(vol: Volume) -> Optional[str]:
    """Why the image's values look wrapped around an integer type's limits (overflow), or None."""
    return _wrapped(value_sample(vol), bool(np.issubdtype(vol.array.dtype, np.integer)))


@dataclass(frozen=True)
class ValueEvidence:
    """What one image's values say (:func:`value_evidence`): each measure as its function above gives it."""

    hounsfield: bool                 # :func:`looks_like_ct`
    eight_bit: Optional[str]         # :func:`eight_bit_ct_evidence`
    offset: Optional[str]            # `orbitai.io.values.offset_ct_evidence` (+1024)
    wrapped: Optional[str]           # :func:`wrapped_values_evidence`
    dicom_ct: bool                   # the volume's DICOM Modality is CT
    low: float                       # the smallest and largest value of the sample
    high: float
    small_integers: bool             # whole numbers within 0-255 only


def value_evidence(vol: Volume) -> ValueEvidence:
    """Every measure of ``vol``'s values, on one sample of them: what :func:`orbitai.scan.scan_facts` computes once
    per input and the checks read from the facts."""
    sample = value_sample(vol)
    dicom_ct = _dicom_ct(vol)
    low, high = float(sample.min()), float(sample.max())
    whole = bool(np.all(sample == np.round(sample)))
    return ValueEvidence(hounsfield=_hounsfield(sample, dicom_ct), eight_bit=_eight_bit(sample),
                         offset=offset_ct_evidence(vol, sample),
                         wrapped=_wrapped(sample, bool(np.issubdtype(vol.array.dtype, np.integer))),
                         dicom_ct=dicom_ct, low=low, high=high, small_integers=low >= 0 and high <= 255 and whole)


def evidence_of(image: Union[Volume, ValueEvidence]) -> ValueEvidence:
    """``image``'s evidence: as given, or measured now from a volume (a caller without the scan's facts)."""
    return image if isinstance(image, ValueEvidence) else value_evidence(image)
