"""DICOM results: a segmentation as DICOM SEG (:mod:`orbitai.dicom.seg`) and its measurements as a TID 1500
Measurement Report (:mod:`orbitai.dicom.sr`), written with ``highdicom`` (``pip install orbitai[dicom]``).

``pydicom`` and ``highdicom`` are imported only inside the functions that write, so the rest of the core
works without them."""
from __future__ import annotations

from types import ModuleType

from orbitai.errors import OrbitAIError

__all__ = ["DicomExportError", "require_highdicom"]


class DicomExportError(OrbitAIError, RuntimeError):
    """A DICOM SEG or SR cannot be written (library missing, source series unusable)."""


def require_highdicom() -> tuple[ModuleType, ModuleType]:
    """``(pydicom, highdicom)``, or a :class:`DicomExportError` saying what to install."""
    try:
        import highdicom
        import pydicom
    except ImportError as exc:
        raise DicomExportError(f"Writing DICOM SEG/SR needs pydicom and highdicom ({exc.name} is missing): "
                               "pip install 'orbitai[dicom]'.") from None
    return pydicom, highdicom
