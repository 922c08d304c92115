"""What ``--modality`` states (the user's word on what a scan is, `orbitai.scan.scan_facts`'s first source).

Its own light module (standard library only) so that every command's argument parser and the panels' declaration
read the choices without loading the scan classifier.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["MODALITY_CHOICES", "parse_stated"]

#: What ``--modality`` and the panels' Scan choice accept ("auto": let the scan say).
MODALITY_CHOICES = ("auto", "CT", "MR", "T1", "T2", "FLAIR", "PD", "T1-FS", "T2-FS", "PD-FS")


def parse_stated(choice: Optional[str]) -> dict[str, Any]:
    """The facts a ``--modality`` value states ({} for auto/None; a weighting without -FS leaves fat suppression to
    the tags and the image); raises ValueError for an unknown value."""
    if not choice or choice.lower() == "auto":
        return {}
    upper = choice.upper()
    if upper not in MODALITY_CHOICES:
        raise ValueError(f"--modality {choice!r} is not one of {', '.join(MODALITY_CHOICES)}")
    if upper in ("CT", "MR"):
        return {"modality": upper}
    weighting, _, fs = upper.partition("-")
    return {"modality": "MR", "weighting": weighting, **({"fat_suppressed": True} if fs else {})}
