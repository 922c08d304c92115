"""What DICOM tags and file names say a scan is.

DICOM tags are read by :func:`orbitai.io.dicom.read_dicom_scan` into ``Acquisition.tags`` (tag numbers as keys).
The MR weighting follows the usual timing rules (a spin echo with short TR and TE is T1-weighted, long TR and long TE
T2, long TR and short TE proton density, an inversion recovery with TI over 1500 ms and long TE a FLAIR, with TI
100-250 ms a STIR: fat suppressed by inversion), then the series description's words when the timings are missing.
Fat suppression is said only when a tag names a method (ScanOptions FS, a STIR inversion time, a description naming
fat sat, SPIR, SPAIR, STIR, Dixon water): a description that names none ("T2 TSE AX") is no evidence either way, and
the image decides. A series OrbitAI wrote itself (:func:`orbitai.dicom.source.write_derived_series`: derived, research
mode, "OrbitAI source image") is never evidence about the original scan: only its Modality is read.
"""
from __future__ import annotations

import re

from orbitai.io.dicom_tags import ACQUISITION_TAGS as TAGS

_FS_WORDS = re.compile(r"(^|[^a-z]|(?<=pd))(fs|fatsat|fat[ _-]?sat|spir|spair|stir|fat[ _-]?supp\w*|dixon[ _-]?w|water)"
                       r"([^a-z]|$)", re.I)
#: PD as the other weightings are named: "PD", BIDS "PDw", "PDFS" (fat suppressed), "proton density".
_WORDS = {"FLAIR": re.compile(r"flair|dark[ _-]?fluid", re.I),
          "PD": re.compile(r"(^|[^a-z])pd(w|fs)?([^a-z]|$)|proton", re.I),
          "T2": re.compile(r"t2", re.I), "T1": re.compile(r"t1|mprage|spgr|bravo|tfe", re.I)}


def number(text: str | None) -> float | None:
    try:
        return float(str(text).split("\\")[0])
    except (TypeError, ValueError):
        return None


def weighting_from_words(text: str) -> str | None:
    """T1/T2/FLAIR/PD named in a description or file name, or None (FLAIR first: "T2 FLAIR" is a FLAIR)."""
    for name in ("FLAIR", "PD", "T2", "T1"):
        if _WORDS[name].search(text):
            return name
    return None


def fat_suppressed_from_words(text: str) -> bool | None:
    """True when a description names fat suppression (FS, fat sat, SPIR, SPAIR, STIR, Dixon water), else None."""
    return True if _FS_WORDS.search(text) else None


#: The description of the derived series OrbitAI writes (`orbitai.dicom.source`) when none is given.
OWN_SERIES_DESCRIPTION = "OrbitAI source image"


def own_derived_series(get: dict[str, str]) -> bool:
    """Whether tags (by name) are those of a series OrbitAI wrote from a volume file: its default description, or a
    derived secondary image in research mode (ScanningSequence RM, no acquisition), as `orbitai.dicom.source`
    writes them. Its descriptions are the user's attributes, not the scanner's."""
    image_type = {t.strip().upper() for t in get.get("ImageType", "").split("\\")}
    return (get.get("SeriesDescription", "").strip().casefold() == OWN_SERIES_DESCRIPTION.casefold()
            or ({"DERIVED", "SECONDARY"} <= image_type and get.get("ScanningSequence", "").strip().upper() == "RM"))


def from_tags(tags: dict[str, str]) -> dict[str, tuple[object, str]]:
    """The facts DICOM tags give: question -> (answer, which tags said so). Only what a tag names is said (no
    fat-suppression method named: nothing said); a series OrbitAI derived itself gives its Modality only."""
    get = {name: tags.get(number, "").strip() for name, number in TAGS.items()}
    out: dict[str, tuple[object, str]] = {}
    modality = get["Modality"].upper()
    if modality in ("CT", "MR"):
        out["modality"] = (modality, "DICOM Modality")
    if modality != "MR" or own_derived_series(get):
        return out
    tr, te, ti = (number(get[k]) for k in ("RepetitionTime", "EchoTime", "InversionTime"))
    seq = get["ScanningSequence"].upper()
    words = " ".join(get[k] for k in ("SeriesDescription", "ProtocolName", "SequenceName"))
    weighting = None
    if ti and ("IR" in seq or ti > 0):
        if ti >= 1500 and (te or 0) >= 60:
            weighting = "FLAIR"
        elif 80 <= ti <= 250:
            out["fat_suppressed"] = (True, "DICOM InversionTime (STIR)")
            weighting = "T2" if (te or 0) >= 30 else None
        elif 300 <= ti < 1500 and (te or 100) < 30:
            weighting = "T1"                    # IR-prepared T1 (MPRAGE, T1 FLAIR)
    if weighting is None and tr and te and "GR" not in seq:
        if tr < 1000 and te < 30:
            weighting = "T1"
        elif tr >= 1800 and te >= 60:
            weighting = "T2"
        elif tr >= 1800 and te < 40:
            weighting = "PD"
    if weighting:
        out["weighting"] = (weighting, "DICOM RepetitionTime/EchoTime/InversionTime")
    elif weighting_from_words(words):
        out["weighting"] = (weighting_from_words(words), "DICOM SeriesDescription")
    options = get["ScanOptions"].upper().replace(" ", "").split("\\")
    if "fat_suppressed" not in out:
        if {"FS", "SFS", "FSA", "FSS", "FSI", "FSP"} & set(options):
            out["fat_suppressed"] = (True, "DICOM ScanOptions")
        elif fat_suppressed_from_words(words):
            out["fat_suppressed"] = (True, "DICOM SeriesDescription")
        # no method named is no evidence of none (a "T2 TSE AX" may well be fat suppressed): the image decides
    return out


def from_file_name(name: str) -> dict[str, tuple[object, str]]:
    """Weak hints from a file name ("sub-01_T2w.nii.gz", "ct_head.nrrd")."""
    out: dict[str, tuple[object, str]] = {}
    stem = name.lower()
    if re.search(r"(^|[^a-z])ct([^a-z]|$)", stem):
        out["modality"] = ("CT", "file name")
        return out
    w = weighting_from_words(stem)
    if w:
        out["modality"] = ("MR", "file name")
        out["weighting"] = (w, "file name")
    if fat_suppressed_from_words(stem):
        out["fat_suppressed"] = (True, "file name")
    return out
