"""Whose scan a volume node holds, as kept on the node (attributes `ATTRIBUTE_PREFIX` + field): the DICOM header
fields the page's loader reads from a series' first image (`orbitai.web.identity.read_identity`), or the file's name
for a scan that is not DICOM. Read by the page's banner and scan list and by "Which scan next" (the patient of a row).
Duck-typed on the node (``GetAttribute``, ``SetAttribute``): no Slicer import."""
from __future__ import annotations

from typing import Any

__all__ = ["FIELDS", "ATTRIBUTE_PREFIX", "set_identity", "identity_of", "patient_name", "patient_line"]

#: The header fields kept (DICOM keywords), and ``File`` for a scan that is not DICOM.
FIELDS = ("PatientName", "PatientID", "StudyDate", "SeriesNumber", "SeriesDescription", "Modality", "File")
#: Node attribute prefix of the identity fields.
ATTRIBUTE_PREFIX = "OrbitAI.Identity."


def set_identity(node: Any, identity: dict[str, str]) -> None:
    """Keep ``identity`` on the volume node (its attributes)."""
    for field in FIELDS:
        if identity.get(field):
            node.SetAttribute(ATTRIBUTE_PREFIX + field, identity[field])


def identity_of(node: Any) -> dict[str, str]:
    """The identity kept on ``node`` (empty for none)."""
    if node is None:
        return {}
    out = {}
    for field in FIELDS:
        value = node.GetAttribute(ATTRIBUTE_PREFIX + field)
        if value:
            out[field] = value
    return out


def patient_name(value: str) -> str:
    """A DICOM person name (``Family^Given^Middle^Prefix^Suffix``) as read: ``Family, Given Middle``."""
    parts = [p.strip() for p in value.split("=")[0].split("^")]
    family, rest = (parts[0] if parts else ""), " ".join(p for p in parts[1:3] if p)
    return ", ".join(x for x in (family, rest) if x)


def patient_line(node: Any) -> str:
    """The patient of the scan ``node``: ``Family, Given (ID 123)`` from its DICOM tags; "" without them."""
    identity = identity_of(node)
    pid = identity.get("PatientID", "")
    return " ".join(x for x in (patient_name(identity.get("PatientName", "")), f"(ID {pid})" if pid else "") if x)
