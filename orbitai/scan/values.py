"""What an image's values say it is, read against the scan's facts: which model family reads it (CT or MR), CT in
Hounsfield units or not, CT stored as 8-bit values or with +1024 added (the reader's own conversion of a tagged DICOM
CT is `orbitai.io.dicom`'s), values wrapped by an integer overflow, and the model's modality against the scan's.

The one place these value rules decide (issue 63): a check elsewhere asks here with the input's
:class:`~orbitai.scan.ScanFacts`, whose :attr:`~orbitai.scan.ScanFacts.values` (:mod:`orbitai.scan.evidence`) are
measured once per input. CT-value warnings are said only where the facts say CT or cannot tell; an image the facts
call MR (the user's statement, its DICOM tags, or the image classifier when sure) is never told it looks like CT
stored with 1024 added. Refused are only values no model reads: CT whose Hounsfield units are lost, wrapped values.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from orbitai.io.volume import Volume, VolumeError
from orbitai.scan.evidence import (
    EIGHT_BIT_AT_255,
    EIGHT_BIT_AT_ZERO,
    ValueEvidence,
    eight_bit_ct_evidence,
    evidence_of,
    looks_like_ct,
)

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

__all__ = ["looks_like_ct", "eight_bit_ct_evidence", "image_is_ct", "value_caveats", "said_modality",
           "model_family", "bundled_model_family", "plainly_mr", "in_hounsfield_units", "ct_for_an_mr_model", "check_not_wrapped",
           "EIGHT_BIT_AT_ZERO", "EIGHT_BIT_AT_255"]

Image = Union[Volume, ValueEvidence]


def said_modality(facts: Optional[ScanFacts]) -> Optional[str]:
    """"CT" or "MR" where the facts are sure of it (stated, tagged, or the classifier sure), else None."""
    if facts is None or not facts.sure("modality"):
        return None
    return str(facts.modality.value)


def _evidence(facts: Optional[ScanFacts], vol: Optional[Image]) -> ValueEvidence:
    """The facts' value evidence (measured once per input), else ``vol``'s."""
    if facts is not None and facts.values is not None:
        return facts.values
    if vol is None:
        raise ValueError("the scan's facts carry no value evidence: give the volume")
    return evidence_of(vol)


def model_family(facts: Optional[ScanFacts], vol: Optional[Image] = None) -> str:
    """"CT" or "MR": which family of models reads the scan, by the one rule of :func:`ct_for_an_mr_model`: what the
    user stated or the DICOM tags say wins; otherwise any sign of CT (values in Hounsfield units, or the image
    classifier sure of CT) makes it CT. The classifier alone never turns an image holding Hounsfield units into an MR:
    it was trained on whole heads and can be sure of MR on a crop of one orbit whose air sits at -1000 HU."""
    return "CT" if ct_for_an_mr_model(facts, vol) else "MR"


def in_hounsfield_units(facts: Optional[ScanFacts], vol: Optional[Image] = None) -> bool:
    """Whether the image's values are read as Hounsfield units (a value rule such as the vitreous' water-like HU
    applies): what the user stated or the DICOM tags say wins; else the values themselves. Unlike
    :func:`model_family`, the image classifier does not overrule the values here: a dry skull in air, which it may
    take for an MR, still holds Hounsfield units."""
    if facts is not None and facts.sure("modality") and facts.modality.source.startswith(("stated", "DICOM")):
        return facts.modality.value == "CT"
    return _evidence(facts, vol).hounsfield


def ct_for_an_mr_model(facts: Optional[ScanFacts], vol: Optional[Image] = None) -> bool:
    """Whether a model made for MR only (TAO, IVGC, the lesion models' FLAIR) refuses the image as CT: what the user
    stated or the DICOM tags say wins; otherwise either sign of CT does: the image classifier sure of CT, or values
    in Hounsfield units (air near -1000, which no MR holds)."""
    if facts is not None and facts.sure("modality") and facts.modality.source.startswith(("stated", "DICOM")):
        return facts.modality.value == "CT"
    return said_modality(facts) == "CT" or _evidence(facts, vol).hounsfield


def bundled_model_family(facts: ScanFacts, what: str = "the image", vol: Optional[Image] = None) -> str:
    """"CT" or "MR" for the bundled model chosen without ``--model``: the facts must say it
    (:meth:`~orbitai.scan.ScanFacts.require_modality` asks for ``--modality`` otherwise), and a CT whose values no
    model reads is refused (:func:`image_is_ct`; the values: the facts', else ``vol``'s)."""
    if plainly_mr(facts, vol):
        facts.notes.append("read as MR: its values hold no sign of CT (no Hounsfield units, no 8-bit or +1024 CT, no "
                           "DICOM CT), which the CT model needs")
        return "MR"
    modality = facts.require_modality(what)
    return "CT" if image_is_ct(_evidence(facts, vol), what, modality, facts.modality.source) else "MR"


def plainly_mr(facts: ScanFacts, vol: Optional[Image] = None) -> bool:
    """Whether a scan the facts are unsure of is MR all the same (issue 78): CT or MR is the only question the orbit
    models ask, and a scan whose values hold no sign of CT (no Hounsfield units, no CT stored as 8-bit or with +1024,
    no DICOM Modality CT) is not one the CT model could read, whatever the image classifier's doubt (a PD head was
    sent back for ``--modality`` at MR 60 %). Unless the classifier leans to CT: then the user is asked."""
    if facts.sure("modality") or (facts.modality.known and facts.modality.value == "CT"):
        return False
    ev = _evidence(facts, vol)
    return not (ev.hounsfield or ev.eight_bit or ev.offset or ev.dicom_ct)


def check_not_wrapped(image: Image, what: str = "the image") -> ValueEvidence:
    """Raise :class:`~orbitai.io.VolumeError` for values wrapped by an integer overflow (no model reads them); else
    return ``image``'s value evidence (measured here from a volume: give it to :func:`orbitai.scan.scan_facts`)."""
    ev = evidence_of(image)
    wrapped = ev.wrapped
    if wrapped:
        raise VolumeError(
            f"{what} has values wrapped around its integer type's limits ({wrapped}): it was scaled or converted "
            "with an integer overflow, so no model can read it. Export it again from the original scan "
            "(CT in Hounsfield units, 16-bit).")
    return ev


def image_is_ct(image: Image, what: str = "the image", modality: str | None = None,
                said_by: str | None = None) -> bool:
    """Whether the CT model takes the image (True) or the MRI model (False), given what it is (``modality``: "CT"
    or "MR" from :func:`orbitai.scan.scan_facts`, ``said_by`` the source of that fact, as the messages credit it;
    None: from the values alone, as before the scan classifier). ``image``: the volume, or its measured evidence.

    Raises :class:`~orbitai.io.VolumeError` for values wrapped by an integer overflow and for a CT whose values are
    not Hounsfield units (stored as 8-bit values, or with +1024 and nothing in the file saying so), which neither
    model fits; an MR is never refused for its CT-like values."""
    ev = evidence_of(image)
    check_not_wrapped(ev, what)
    if modality == "MR":
        return False
    evidence = ev.eight_bit
    if evidence is None and (ev.dicom_ct or modality == "CT") and not ev.hounsfield and ev.small_integers:
        evidence = f"{'DICOM Modality CT' if ev.dicom_ct else 'a CT'}, values {ev.low:g} to {ev.high:g}"
    if evidence:
        raise VolumeError(
            f"{what} looks like CT stored as 8-bit values ({evidence}) without a window in its header to "
            "convert them: its Hounsfield units are lost, so neither the CT nor the MRI model fits it. Export the "
            "CT with its original Hounsfield units (16-bit DICOM, NRRD or NIfTI), or choose a model with --model.")
    if ev.offset and not ev.dicom_ct:
        raise VolumeError(
            f"{what} looks like CT stored with 1024 added to its Hounsfield units ({ev.offset}), but nothing in the "
            "file says so. Subtract 1024 (or export it again with its rescale intercept), or choose a model with "
            "--model (if it is an MRI: --modality MR).")
    if (ev.dicom_ct or modality == "CT") and not ev.hounsfield:
        stated = bool(said_by) and str(said_by).startswith("stated")
        said = ("DICOM Modality" if ev.dicom_ct else "as stated with --modality CT" if stated
                else "the image classifier" if said_by == "image" else said_by or "the scan's image and tags")
        raise VolumeError(
            f"{what} is CT ({said}) but its values ({ev.low:g} to {ev.high:g}) are not Hounsfield "
            "units and its header gives no certain way to convert them; it is not given to the MRI model. Export "
            "the CT with its Hounsfield units, or choose a model with --model"
            + (" (if it is an MRI: --modality MR)." if stated else "."))
    return ev.hounsfield


def value_caveats(image: Image, expected: str = "any", facts: Optional[ScanFacts] = None) -> list[str]:
    """Warnings when the image is not what a model made for ``expected`` ("CT", "MR" or "any") reads, one sentence
    each. What the image is comes from ``facts`` where they are sure (the user's word, DICOM tags, the classifier);
    only where they cannot tell (or none are given) from the values (:func:`model_family`). CT-value warnings
    (8-bit, +1024) only where the facts say CT (sure, or their likeliest answer), or from the values alone where no
    facts are given."""
    ev = _evidence(facts, image)
    ct = model_family(facts, ev) == "CT"
    warnings = []
    if expected == "CT" and not ct:
        warnings.append("This model expects CT in Hounsfield units but the image does not look like CT.")
    if expected == "MR" and ct:
        warnings.append("This model expects MRI but the image looks like CT (Hounsfield units).")
    if ev.hounsfield or (facts is not None and facts.modality.value != "CT"):
        return warnings                 # CT-value warnings only where the facts say CT (sure, or likeliest)
    if ev.eight_bit:
        warnings.append(f"The image looks like CT stored as 8-bit values ({ev.eight_bit}): Hounsfield units "
                        "are lost and the result is unreliable.")
    if ev.offset:
        warnings.append(f"The image looks like CT stored with 1024 added to its Hounsfield units ({ev.offset}); "
                        "the result is unreliable.")
    return warnings

