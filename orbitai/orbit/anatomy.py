"""Normal orbit anatomy: the adult ranges every segmentation is checked against, the measures compared
with them, and the per-structure plausibility of a result (range and the model's own confidence), which
result.json, the CLI's summary and Slicer's volume table report."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS

if TYPE_CHECKING:  # pragma: no cover - the scan judge (scipy) is imported where a globe is judged
    from orbitai.scan import ScanFacts

#: Normal adult volumes (cm3), low and high: eyeball 5.5-9.5 (axial length 22-26 mm as a sphere is 5.6-9.2;
#: the 35 expert-contoured globes of ../shared/data/tcia_hn_eye_masks have a median of 8.6), rectus muscle
#: 0.3-1.6 (CT and MRI volumetry of normal adults), optic nerve 0.1-1.2 (the orbital segment to the whole
#: nerve as far as the chiasm; the TCIA contours' median is 0.7).
RANGES = {"eyeball": (5.5, 9.5), "optic_nerve": (0.1, 1.2), "rectus": (0.3, 1.6)}
RECTI = ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle", "lateral_rectus_muscle")

#: Per-side volumes (cm3, 2.5th-97.5th percentile) of 400 thyroid eye disease (TED) patients' T2 MRI (TOM500
#: tables, CC0; superior rectus with the levator): written by scripts/ted_ranges.py, provenance in the file.
RANGES_FILE = Path(__file__).resolve().parent.parent / "resources" / "orbit_ranges.json"
TED_RANGES: dict[str, tuple[float, float]] = {
    k: (float(v["range_cm3"][0]), float(v["range_cm3"][1]))
    for k, v in json.loads(RANGES_FILE.read_text())["ted"]["structures"].items()}
#: Whose ranges the checks use: healthy adults only, or also TED's (a structure above the healthy range but
#: within TED's is "enlarged", a finding, never counted against the result).
POPULATIONS = ("ted", "healthy")
#: TED by default: OrbitAI's users mostly scan TED patients, whose enlarged muscles are the finding, not an
#: error. It hides nothing: the healthy ranges still decide what is normal, and TED's eyeball and optic nerve
#: upper bounds lie below the healthy ones, so only a rectus above the healthy range reads differently.
DEFAULT_POPULATION = "ted"

#: A structure whose voxels' mean winning class probability lies below this is reported "uncertain": on the
#: held-out phantoms the bundled models segment well (Dice >= 0.75; CT and four MRI sets, 384 structure-sides)
#: the lowest is 0.82, so none is flagged (benchmarks/bench_orbit_plausibility.py).
UNCERTAIN_BELOW = 0.75

NORMAL, NOT_FOUND, OUTSIDE, UNCERTAIN = "normal", "not found", "outside the normal adult range", "uncertain"
ENLARGED = "enlarged, within the thyroid eye disease range"


def has_range(structure: str) -> bool:
    """Whether the checks know the normal range of this orbit-scheme structure (eyeball, optic nerve, recti)."""
    return structure in RECTI or structure in RANGES


def range_of(structure: str) -> tuple[float, float]:
    """The normal adult volume range (cm3) of an orbit-scheme structure."""
    return RANGES["rectus" if structure in RECTI else structure]


def checked_range(structure: str, population: str = DEFAULT_POPULATION) -> tuple[float, float]:
    """The range (cm3) outside which a structure of ``population`` (:data:`POPULATIONS`) is "outside": the
    normal adult one, for TED up to the larger of the healthy and TED upper bounds."""
    if population not in POPULATIONS:
        raise InputError(f"Unknown population {population!r}; use one of {', '.join(POPULATIONS)}.")
    lo, hi = range_of(structure)
    return (lo, max(hi, TED_RANGES[structure][1])) if population == "ted" else (lo, hi)


def _nerve_diameter(points_mm: np.ndarray, volume_mm3: float) -> float:
    """Mean diameter of a tube: its volume over its length along the main axis (a cylinder's)."""
    if len(points_mm) < 3:
        return 0.0
    mu = points_mm.mean(0)
    _, _, vt = np.linalg.svd(points_mm - mu, full_matrices=False)
    along = (points_mm - mu) @ vt[0]
    length = float(along.max() - along.min())
    return float(2 * np.sqrt(volume_mm3 / max(length, 1e-6) / np.pi))


def structure_measures(labels: Volume) -> dict[int, dict[str, Any]]:
    """For each orbit-scheme value 1..12 (eyeballs, optic nerves, recti): its structure, side, voxel
    count, volume (cm3), for eyeballs and nerves the diameter (mm, for information), and ``in_range``:
    whether the volume lies in :data:`RANGES` (False for an absent structure)."""
    arr = labels.array
    vv = labels.voxel_volume_mm3()
    out: dict[int, dict[str, Any]] = {}
    for v in range(1, 13):
        info = ORBIT_LABELS[v]
        idx = np.argwhere(arr == v)
        vol_mm3 = len(idx) * vv
        row: dict[str, Any] = {"structure": info.structure, "side": info.side, "voxels": len(idx),
                               "volume_cm3": vol_mm3 / 1000.0}
        if info.structure == "eyeball":
            row["diameter_mm"] = float((6 * vol_mm3 / np.pi) ** (1 / 3))
        elif info.structure == "optic_nerve":
            row["diameter_mm"] = _nerve_diameter(labels.index_to_physical(idx[:, ::-1]), vol_mm3)
        lo, hi = range_of(info.structure)
        row["in_range"] = bool(len(idx) and lo <= row["volume_cm3"] <= hi)
        out[v] = row
    return out


@dataclass(frozen=True)
class StructureCheck:
    """One structure-side's plausibility: ``status`` is one of normal, not found, outside the normal adult
    range, uncertain; ``note`` says it to a reader (empty when normal)."""

    label: int
    name: str
    volume_cm3: float
    normal_cm3: tuple[float, float]
    confidence: Optional[float]
    status: str
    note: str
    implausible: bool          # counts against the result (an enlarged muscle alone does not: a finding)
    population: str = "healthy"        # whose ranges (POPULATIONS)
    range_cm3: Optional[tuple[float, float]] = None    # the range used (checked_range); None: normal_cm3

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["normal_cm3"] = list(self.normal_cm3)
        d["range_cm3"] = list(self.range_cm3 or self.normal_cm3)
        d["confidence"] = None if self.confidence is None else round(self.confidence, 3)
        d["volume_cm3"] = round(self.volume_cm3, 4)
        return d


def check_structure(label: int, volume_cm3: float, confidence: Optional[float],
                    population: str = DEFAULT_POPULATION) -> StructureCheck:
    """The plausibility of one orbit-scheme structure-side from its volume and mean confidence, with the ranges
    of ``population`` (:data:`POPULATIONS`)."""
    info = ORBIT_LABELS[label]
    lo, hi = range_of(info.structure)
    used = checked_range(info.structure, population)
    span = f"{lo:g}-{hi:g} cm3"
    ted = "" if population != "ted" else "thyroid eye disease's {:g}-{:g} cm3".format(*TED_RANGES[info.structure])
    if volume_cm3 <= 0:
        return StructureCheck(label, info.name, 0.0, (lo, hi), None, NOT_FOUND,
                              "not found: check that the scan covers it", True, population, used)
    if volume_cm3 < lo:
        note = (f"{volume_cm3:.2f} cm3 is below the normal adult range ({span}): possibly under-segmented "
                "(thick slices, field of view) or small; check it")
        status, implausible = OUTSIDE, True
    elif volume_cm3 > hi and volume_cm3 <= used[1]:
        note = (f"{volume_cm3:.2f} cm3 is above the normal adult range ({span}) but within {ted}: an enlarged "
                f"{info.structure.replace('_', ' ')}, a finding to check")
        status, implausible = ENLARGED, False
    elif volume_cm3 > hi:
        span = f"{span}, and {ted}" if ted else span
        if info.structure in RECTI:
            note = (f"{volume_cm3:.2f} cm3 is above the normal adult range ({span}): an enlarged muscle, as in "
                    "thyroid eye disease, is a finding to check")
            implausible = False
        else:
            note = (f"{volume_cm3:.2f} cm3 is above the normal adult range ({span}): an enlarged {info.structure.replace('_', ' ')} "
                    "or over-segmentation; check it")
            implausible = True
        status = OUTSIDE
    else:
        status, note, implausible = NORMAL, "", False
    if confidence is not None and confidence < UNCERTAIN_BELOW:
        extra = f"the model is uncertain here (mean confidence {confidence:.2f}, below {UNCERTAIN_BELOW:g}); check it"
        note = f"{note}; {extra}" if note else extra
        status, implausible = UNCERTAIN, True
    return StructureCheck(label, info.name, float(volume_cm3), (lo, hi), confidence, status, note, implausible,
                          population, used)


#: Half the distance between the centres of the two globes (adult interpupillary distance ~63 mm): with one globe
#: found, the patient's midline lies this far medial of it and the other globe twice as far.
HALF_GLOBE_DISTANCE_MM = 32.0


def sides_in_view(labels: Volume, structures: Sequence[str], counts: Optional[np.ndarray] = None) -> tuple[str, ...]:
    """The sides a result reports: both, or with one globe found by a model that segments eyeballs and the other
    globe's place (:data:`HALF_GLOBE_DISTANCE_MM` twice across the midline) outside the field of view, the found
    globe's side only (one orbit in view: the other is not "not found"). ``counts``: :func:`label_counts`."""
    if "eyeball" not in structures:
        return ("left", "right")
    counts = label_counts(labels) if counts is None else counts
    found = [v for v, lab in ORBIT_LABELS.items() if lab.structure == "eyeball" and counts[v]]
    if len(found) != 1:
        return ("left", "right")
    side = ORBIT_LABELS[found[0]].side
    centre = labels.index_to_physical(np.argwhere(labels.array == found[0])[:, ::-1].mean(0))
    centre[0] += 2 * HALF_GLOBE_DISTANCE_MM * (-1.0 if side == "left" else 1.0)    # the patient's left is LPS +x
    ijk = labels.physical_to_index(centre)
    inside = bool(np.all(ijk >= -0.5) and np.all(ijk <= np.asarray(labels.size_xyz) - 0.5))
    return ("left", "right") if inside else (side,)


def one_orbit_warning(labels: Volume, structures: Sequence[str]) -> list[str]:
    """One line when the result reports one side only (:func:`sides_in_view`)."""
    sides = sides_in_view(labels, structures)
    if len(sides) != 1:
        return []
    return [f"One orbit in view, the patient's {sides[0]} (told by its anatomy): only the {sides[0]} orbit's "
            "structures are reported."]


def check_structures(labels: Volume, structures: Sequence[str],
                     confidence: Optional[Volume] = None, *,
                     population: str = DEFAULT_POPULATION,
                     volumes: Optional[Mapping[int, float]] = None) -> list[StructureCheck]:
    """Every side in view (:func:`sides_in_view`) of the model's ``structures`` (orbit-scheme names; those with a normal range) in ``labels``, checked against the
    ranges of ``population`` (:func:`check_structure`) and, with ``confidence`` (the winning class probability on the same grid), the model's
    mean confidence over the structure. ``volumes`` (label value -> cm3, e.g. the partial-volume-aware soft
    volumes) replaces the voxel count's volume of each structure found."""
    checked_range("eyeball", population)      # an unknown population: one line before any work
    counts = label_counts(labels)
    vv = labels.voxel_volume_mm3() / 1000.0
    conf = None if confidence is None else confidence.array
    out, sides = [], sides_in_view(labels, structures, counts)
    for value, lab in ORBIT_LABELS.items():
        if lab.structure not in structures or not has_range(lab.structure) or lab.side not in sides:
            continue
        mean_conf = None
        if conf is not None and counts[value]:
            mean_conf = float(conf[labels.array == value].mean())
        cm3 = float(counts[value]) * vv
        if volumes is not None and counts[value] and value in volumes:
            cm3 = float(volumes[value])
        out.append(check_structure(value, cm3, mean_conf, population))
    return out


def verdict(checks: Sequence[StructureCheck]) -> Optional[str]:
    """One clear line when most structure-sides are implausible (not found, outside the range other than
    an enlarged muscle, or uncertain); None otherwise."""
    bad = [c for c in checks if c.implausible]
    if checks and 2 * len(bad) > len(checks):
        return (f"{len(bad)} of {len(checks)} structures are missing, outside the normal adult ranges or uncertain: "
                "this result is unlikely to be right; check the scan (field of view, slice thickness, modality) "
                "before using it.")
    return None


#: The vitreous on CT (HU): water-like; an "eyeball" whose median lies outside is air, fat or bone (a skull).
CT_VITREOUS_HU = (-60.0, 100.0)
#: Less than this (cm3) is not an eyeball, even one cut by the field of view.
MIN_GLOBE_CM3 = 1.0


def implausible_globe(image: Volume, labels: Volume, value: int, facts: Optional[ScanFacts] = None) -> Optional[str]:
    """Why eyeball ``value`` of ``labels`` (on ``image``'s grid) is not an eyeball, or None when it may be:
    too small even for a globe cut by the field of view, or on CT not water-like (values in Hounsfield units as the
    scan's ``facts`` say, :func:`orbitai.scan.values.in_hounsfield_units`). (On MRI no intensity rule holds for every contrast: the vitreous is
    as bright as the fat behind it on a T2 without fat suppression.)"""
    side = ORBIT_LABELS[value].side
    mask = labels.array == value
    cm3 = float(mask.sum()) * labels.voxel_volume_mm3() / 1000.0
    if cm3 < MIN_GLOBE_CM3:
        return f"the {side} one measures {cm3:.2f} cm3"
    from orbitai.scan.values import in_hounsfield_units   # the scan judge: not for the panels' population list

    if in_hounsfield_units(facts, image):
        hu = float(np.median(image.array[mask]))
        if not CT_VITREOUS_HU[0] <= hu <= CT_VITREOUS_HU[1]:
            return f"the {side} one holds {hu:.0f} HU, not the vitreous' water-like {CT_VITREOUS_HU[0]:g}-{CT_VITREOUS_HU[1]:g} HU"
    return None


def label_counts(labels: Volume) -> np.ndarray:
    """Voxels of each label value (index = value, up to at least the scheme's largest), in one pass."""
    arr = labels.array
    # the labelled voxels only (a small part of a scan): bincount would make an int64 copy of all of it
    found = arr[arr > 0]
    counts = np.bincount(found.astype(np.intp, copy=False), minlength=max(ORBIT_LABELS) + 1)
    counts[0] = arr.size - found.size       # 0 and (meaningless) negative values
    return counts
