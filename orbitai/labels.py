"""The orbit label scheme: one table used by phantoms, models, outputs and Slicer segments.

Names follow TotalSegmentator's ``oculomotor_muscles`` task; left and right are the patient's.
Terminology codes are SNOMED CT (scheme designator ``SCT``) as used by Slicer's terminology
module; laterality uses the SNOMED qualifiers Left (7771000) / Right (24028007).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    scheme: str
    value: str
    meaning: str

    def slicer(self) -> str:
        """Slicer's ``scheme^value^meaning`` notation."""
        return f"{self.scheme}^{self.value}^{self.meaning}"


ANATOMICAL_STRUCTURE = Code("SCT", "123037004", "Anatomical Structure")
LEFT = Code("SCT", "7771000", "Left")
RIGHT = Code("SCT", "24028007", "Right")

# Structure type codes (SNOMED CT), checked against the SNOMED mapping of Slicer's TotalSegmentator
# extension (totalsegmentator_snomed_mapping.csv) and Slicer's "3D Slicer General Anatomy list"
# terminology, whose eyeball type is 79652003 "Eyeball" (81745001 "Eye" is the broader eye concept).
STRUCTURE_CODES: dict[str, Code] = {
    "eyeball": Code("SCT", "79652003", "Eyeball"),
    "optic_nerve": Code("SCT", "18234004", "Optic nerve"),
    "superior_rectus_muscle": Code("SCT", "5815008", "Superior rectus muscle"),
    "inferior_rectus_muscle": Code("SCT", "47869003", "Inferior rectus muscle"),
    "medial_rectus_muscle": Code("SCT", "24937009", "Medial rectus muscle"),
    "lateral_rectus_muscle": Code("SCT", "31836009", "Lateral rectus muscle"),
    "superior_oblique_muscle": Code("SCT", "66041005", "Superior oblique muscle"),
    "levator_palpebrae_superioris": Code("SCT", "58641002", "Levator palpebrae superioris muscle"),
}

# Display colours (RGB 0-255) per structure, close to Slicer's GenericAnatomyColors.
STRUCTURE_COLOURS: dict[str, tuple[int, int, int]] = {
    "eyeball": (194, 105, 98),
    "optic_nerve": (244, 214, 49),
    "superior_rectus_muscle": (192, 104, 88),
    "inferior_rectus_muscle": (128, 174, 128),
    "medial_rectus_muscle": (111, 184, 210),
    "lateral_rectus_muscle": (216, 101, 79),
    "superior_oblique_muscle": (183, 156, 220),
    "levator_palpebrae_superioris": (152, 189, 207),
}


@dataclass(frozen=True)
class Label:
    value: int
    name: str          # e.g. "superior_rectus_muscle_left"
    structure: str     # e.g. "superior_rectus_muscle"
    side: str          # "left" | "right"

    @property
    def colour(self) -> tuple[int, int, int]:
        r, g, b = STRUCTURE_COLOURS[self.structure]
        if self.side == "right":  # slightly different shade so the two orbits are told apart
            r, g, b = (min(255, int(c * 0.85 + 20)) for c in (r, g, b))
        return (r, g, b)

    @property
    def code(self) -> Code:
        return STRUCTURE_CODES[self.structure]

    @property
    def laterality(self) -> Code:
        return LEFT if self.side == "left" else RIGHT

    @property
    def display_name(self) -> str:
        return self.name.replace("_", " ")

    def slicer_terminology(self) -> str:
        """Terminology entry string for ``vtkSegment`` tag ``TerminologyEntry`` (Slicer >= 5)."""
        return (
            "Segmentation category and type - 3D Slicer General Anatomy list"
            f"~{ANATOMICAL_STRUCTURE.slicer()}~{self.code.slicer()}~{self.laterality.slicer()}"
            "~Anatomic codes - DICOM master list~^^~^^"
        )


_STRUCTURES = [
    "eyeball", "optic_nerve", "superior_rectus_muscle", "inferior_rectus_muscle",
    "medial_rectus_muscle", "lateral_rectus_muscle", "superior_oblique_muscle",
    "levator_palpebrae_superioris",
]

#: value -> Label for the whole scheme (1..16).
ORBIT_LABELS: dict[int, Label] = {}
for _i, _s in enumerate(_STRUCTURES):
    for _j, _side in enumerate(("left", "right")):
        _v = 2 * _i + _j + 1
        ORBIT_LABELS[_v] = Label(_v, f"{_s}_{_side}", _s, _side)

LABEL_BY_NAME: dict[str, Label] = {lab.name: lab for lab in ORBIT_LABELS.values()}

#: The five structures of SV-net (per side) and the eyeball: the segmentation targets.
RECTI = ("superior_rectus_muscle", "lateral_rectus_muscle", "medial_rectus_muscle", "inferior_rectus_muscle")


def label_value(name: str) -> int:
    """Label value of a scheme name such as ``'optic_nerve_left'`` (clear error if unknown)."""
    try:
        return LABEL_BY_NAME[name].value
    except KeyError:
        raise KeyError(f"Unknown orbit label {name!r}; known: {', '.join(LABEL_BY_NAME)}") from None


def values_for(structure: str) -> tuple[int, int]:
    """(left, right) label values of a structure."""
    return label_value(f"{structure}_left"), label_value(f"{structure}_right")


# --------------------------------------------------------------------------- side-agnostic classes
#: Structure classes (1-based) that segmentation models predict without a side; the side is
#: assigned afterwards from the patient's midline. Class c <-> orbit values (2c-1, 2c).
STRUCTURES: tuple[str, ...] = tuple(_STRUCTURES)


def structure_class(value: int) -> int:
    """Side-agnostic class of an orbit-scheme label value (0 stays background)."""
    return 0 if value == 0 else (int(value) + 1) // 2


def class_values(n_classes: int) -> dict[int, tuple[int, int]]:
    """class -> (left value, right value) for the first ``n_classes`` structures."""
    return {c: (2 * c - 1, 2 * c) for c in range(1, n_classes + 1)}


# --------------------------------------------------------------------------- group labels
#: Structures merged into one class by some published heads (SEQ-UNET's "extraocular muscle").
#: They get values after the scheme (17/18), used only by models trained with that head.
GROUPS: dict[str, tuple[str, ...]] = {
    "extraocular_muscles": ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle",
                            "lateral_rectus_muscle", "superior_oblique_muscle", "levator_palpebrae_superioris"),
}
STRUCTURE_CODES.setdefault("extraocular_muscles", Code("SCT", "28652008", "Extraocular muscle"))
STRUCTURE_COLOURS.setdefault("extraocular_muscles", (192, 104, 88))
for _k, _g in enumerate(GROUPS):
    for _j, _side in enumerate(("left", "right")):
        _lab = Label(len(_STRUCTURES) * 2 + 2 * _k + _j + 1, f"{_g}_{_side}", _g, _side)
        LABEL_BY_NAME[_lab.name] = _lab
