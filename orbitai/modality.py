"""What ``--modality`` states (the user's word on what a scan is, `orbitai.scan.scan_facts`'s first source).

Its own light module (standard library only) so that every command's argument parser and the panels' declaration
read the choices without loading the scan classifier. A value is parsed once: the parser's ``--modality`` yields a
:class:`Stated` (:func:`stated`), which :func:`parse_stated` (and so ``scan_facts``) reads without parsing again.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["MODALITY_CHOICES", "Stated", "parse_stated", "stated"]

#: What ``--modality`` and the panels' Scan choice accept ("auto": let the scan say).
MODALITY_CHOICES = ("auto", "CT", "MR", "T1", "T2", "FLAIR", "PD", "T1-FS", "T2-FS", "PD-FS")


class Stated(str):
    """A ``--modality`` value parsed once (:func:`stated`): its normalised text ("auto", "CT", "T2-FS"...), which
    options record and a child process is given as it is, with the facts it states (:attr:`facts`)."""

    facts: dict[str, Any]

    def __reduce__(self):           # a cohort's options travel to Dask workers: pickled with its facts
        return (_restore, (str(self), dict(self.facts)))


def _restore(text: str, facts: dict[str, Any]) -> Stated:
    value = Stated(text)
    value.facts = facts
    return value


def _parse(choice: Optional[str]) -> dict[str, Any]:
    if not choice or choice.lower() == "auto":
        return {}
    upper = choice.upper()
    if upper not in MODALITY_CHOICES:
        raise ValueError(f"--modality {choice!r} is not one of {', '.join(MODALITY_CHOICES)}")
    if upper in ("CT", "MR"):
        return {"modality": upper}
    weighting, _, fs = upper.partition("-")
    return {"modality": "MR", "weighting": weighting, **({"fat_suppressed": True} if fs else {})}


def stated(choice: Optional[str]) -> Stated:
    """``choice`` parsed (a ValueError for an unknown value) into its normalised text with the facts it states."""
    if isinstance(choice, Stated):
        return choice
    facts = _parse(choice)
    return _restore("auto" if not choice or choice.lower() == "auto" else choice.upper(), facts)


def parse_stated(choice: Optional[str]) -> dict[str, Any]:
    """The facts a ``--modality`` value states ({} for auto/None; a weighting without -FS leaves fat suppression to
    the tags and the image); raises ValueError for an unknown value. A :class:`Stated` is not parsed again."""
    if isinstance(choice, Stated):
        return dict(choice.facts)
    return _parse(choice)
