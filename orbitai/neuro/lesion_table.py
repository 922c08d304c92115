"""Lesion table of a white-matter lesion mask: count, volumes (mL, % ICV) and location class per lesion.

A lesion is a 26-connected component of the mask with at least ``min_voxels`` voxels. Its location is
read from the location regions of `orbitai.neuro.anatomy.extract_brain` (codes in ``REGIONS``) by a
priority rule in the spirit of the MAGNIMS definitions, where a lesion is periventricular or
juxtacortical when it *touches* the structure rather than when most of it lies there:

* infratentorial when at least half of its voxels are infratentorial (the compartment it sits in);
* else the first of callosal, periventricular, juxtacortical holding at least ``TOUCH_SHARE`` (20 %)
  of its voxels;
* else deep white matter.

Voxels outside the intracranial mask (region 0) count toward none of the classes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage as ndi

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.neuro.anatomy import REGION_CODES, REGIONS, BrainExtraction

#: location classes in table order
LOCATIONS: tuple[str, ...] = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter",
                              "callosal")
#: share of a lesion's voxels in a region that counts as touching it
TOUCH_SHARE = 0.20
#: share of a lesion's voxels below the tentorium that makes it infratentorial
INFRATENTORIAL_SHARE = 0.5
_PRIORITY = ("callosal", "periventricular", "juxtacortical")


@dataclass
class Lesion:
    id: int
    volume_ml: float
    location: str
    centroid_ras: tuple[float, float, float]
    voxels: int


@dataclass
class LesionTable:
    count: int
    total_ml: float
    percent_icv: float
    icv_ml: float
    lesions: list[Lesion] = field(default_factory=list)

    def location_counts(self) -> dict[str, int]:
        out = dict.fromkeys(LOCATIONS, 0)
        for les in self.lesions:
            out[les.location] += 1
        return out

    def location_volumes_ml(self) -> dict[str, float]:
        out = dict.fromkeys(LOCATIONS, 0.0)
        for les in self.lesions:
            out[les.location] += les.volume_ml
        return {k: round(v, 4) for k, v in out.items()}

    def to_rows(self) -> list[dict]:
        """Per-lesion rows for lesions.csv: id, volume_ml, location, centroid_r/a/s, voxels."""
        rows = []
        for les in self.lesions:
            r, a, s = les.centroid_ras
            rows.append({"id": les.id, "volume_ml": round(les.volume_ml, 4), "location": les.location,
                         "centroid_r": round(r, 2), "centroid_a": round(a, 2), "centroid_s": round(s, 2),
                         "voxels": les.voxels})
        return rows

    def summary(self) -> dict:
        """count, total_ml, percent_icv, icv_ml, counts and volumes (mL) per location."""
        return {"count": self.count, "total_ml": round(self.total_ml, 4),
                "percent_icv": round(self.percent_icv, 4), "icv_ml": round(self.icv_ml, 2),
                "counts": self.location_counts(), "volumes_ml": self.location_volumes_ml()}

    def to_json(self) -> dict:
        return {**self.summary(), "lesions": [asdict(les) for les in self.lesions]}


def locate(region_codes: np.ndarray) -> str:
    """Location class of one lesion from the region codes of its voxels (priority rule of the module)."""
    codes = np.asarray(region_codes).ravel()
    n = codes.size
    if n == 0:
        return "deep_white_matter"
    share = np.bincount(codes, minlength=max(REGIONS) + 1) / n
    if share[REGION_CODES["infratentorial"]] >= INFRATENTORIAL_SHARE:
        return "infratentorial"
    for name in _PRIORITY:
        if share[REGION_CODES[name]] >= TOUCH_SHARE:
            return name
    return "deep_white_matter"


def lesion_table(lesions: Volume, extraction: BrainExtraction, min_voxels: int = 3) -> LesionTable:
    """Count, volumes and locations of the lesions (26-connected components) of a mask on the FLAIR grid."""
    if not lesions.same_geometry(extraction.regions, tol=1e-3):
        raise InputError(
            f"The lesion mask's geometry (size {lesions.size_xyz}, spacing {tuple(round(s, 3) for s in lesions.spacing)}) "
            f"differs from the FLAIR's (size {extraction.regions.size_xyz}); resample the segmentation onto the FLAIR.")
    m = np.asarray(lesions.array) > 0
    lab, n = ndi.label(m, structure=np.ones((3, 3, 3), bool))
    vox_ml = lesions.voxel_volume_mm3() * 1e-3
    regions = np.asarray(extraction.regions.array)
    ijk_to_ras = lesions.ijk_to_ras()
    out: list[Lesion] = []
    if n:
        objects = ndi.find_objects(lab)
        for comp, sl in enumerate(objects, start=1):
            if sl is None:
                continue
            sub = lab[sl] == comp
            nvox = int(sub.sum())
            if nvox < min_voxels:
                continue
            kji = np.argwhere(sub).mean(0) + np.array([s.start for s in sl])
            ras = ijk_to_ras @ np.array([kji[2], kji[1], kji[0], 1.0])
            out.append(Lesion(id=len(out) + 1, volume_ml=nvox * vox_ml, location=locate(regions[sl][sub]),
                              centroid_ras=(float(ras[0]), float(ras[1]), float(ras[2])), voxels=nvox))
    total = float(sum(les.volume_ml for les in out))
    icv = float(extraction.icv_ml)
    return LesionTable(count=len(out), total_ml=total, percent_icv=100.0 * total / icv if icv > 0 else 0.0,
                       icv_ml=icv, lesions=out)
