"""Orbit rules: the orbit label scheme's classes, per-orbit post-processing (SV-net section 2.D:
hole filling and the largest component on each side of the patient's midline), the eyeball
guard and structure volumes. Torch-free."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from orbitai.io import Volume, VolumeError
from orbitai.labels import GROUPS, ORBIT_LABELS, values_for
from orbitai.preprocess.checks import field_of_view_mm
from orbitai.seg.postprocess import fill_holes, largest_component

#: Eyeballs below this (both eyes together) mean no orbit is in the scan; both are ~13 mL.
MIN_EYEBALL_ML = 2.0


class OrbitNotFoundError(VolumeError):
    """The scan shows no usable orbit (e.g. a brain-only field of view, or no eyeball segmented)."""


# ------------------------------------------------------------------- scheme <-> classes
def class_values(structures: Sequence[str]) -> dict[int, tuple[int, int]]:
    """Model class (``structures[c - 1]``) -> (left, right) orbit-scheme label values."""
    return {c: values_for(s) for c, s in enumerate(structures, start=1)}


def class_lut(structures: Sequence[str]) -> np.ndarray:
    """Label value -> class index (structures not in the model -> 0); group labels such as
    ``extraocular_muscles`` collect all their members' values."""
    lut = np.zeros(max(ORBIT_LABELS) + 1 + 2 * len(GROUPS), np.uint8)
    for c, s in enumerate(structures, start=1):
        for member in GROUPS.get(s, (s,)):
            lv, rv = values_for(member)
            lut[lv] = lut[rv] = c
    return lut


def eyeball_class(structures: Sequence[str]) -> int:
    """The model's eyeball class, or -1 when the model has none."""
    return list(structures).index("eyeball") + 1 if "eyeball" in structures else -1


# --------------------------------------------------------------------------- input
def field_of_view_warnings(vol: Volume) -> list[str]:
    """A warning when the scan is too small to hold an orbit."""
    extent = field_of_view_mm(vol)
    if np.any(extent < 20):
        return [f"The field of view is very small ({extent.round(1).tolist()} mm); an orbit is ~40 mm wide."]
    return []


# --------------------------------------------------------------------- post-processing
def midline_split(classes: Volume, eyeball_class: int = 1) -> np.ndarray:
    """Boolean array, True on the patient's left (LPS +x) of the midline.

    The midline is the plane through the midpoint of the two eyeball centroids (found as the
    two largest eyeball components), perpendicular to the line joining them; without two
    eyeballs it falls back to the LPS x coordinate of the volume centre.
    """
    arr = classes.array
    k, j, i = np.indices(arr.shape, sparse=True)  # type: ignore[misc]  # numpy's stub: tuple[()] for this shape type
    lin = classes.ijk_to_lps()
    # LPS x of every voxel (broadcast over the sparse index grids).
    x = lin[0, 0] * i + lin[0, 1] * j + lin[0, 2] * k + lin[0, 3]
    eye = arr == eyeball_class
    centre_x = None
    if eye.any():
        cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(eye.astype(np.uint8))),
                                   sortByObjectSize=True)
        cca = sitk.GetArrayFromImage(cc)
        cents = []
        for lab in (1, 2):
            idx = np.argwhere(cca == lab)
            if len(idx):
                kk, jj, ii = idx.mean(axis=0)
                cents.append(classes.index_to_physical((ii, jj, kk))[0])
        if len(cents) == 2:
            centre_x = 0.5 * (cents[0] + cents[1])
    if centre_x is None:
        ctr = (np.array(classes.size_xyz) - 1) / 2.0
        centre_x = classes.index_to_physical(ctr)[0]
    return np.broadcast_to(x > centre_x, arr.shape)


def classes_to_orbit_labels(classes: Volume, structure_values: dict[int, tuple[int, int]],
                            clean: bool = True, eyeball_class: int = 1) -> Volume:
    """Turn a side-agnostic class map into orbit-scheme labels (left/right values per class).

    ``structure_values`` maps class index -> (left value, right value). With ``clean`` each
    class is hole-filled and reduced to its largest component on each side.
    """
    left = midline_split(classes, eyeball_class)
    out = np.zeros(classes.shape, np.uint8)
    for c, (lv, rv) in structure_values.items():
        m = classes.array == c
        if not m.any():
            continue
        for side_mask, value in ((left, lv), (~left, rv)):
            part = m & side_mask
            if clean and part.any():
                part = largest_component(fill_holes(part)) & side_mask
            out[part & (out == 0)] = value
    return classes.with_array(out)


# --------------------------------------------------------------------------- guard
def require_orbit(labels: Volume, structures: Sequence[str], min_eyeball_ml: float = MIN_EYEBALL_ML) -> None:
    """Raise :class:`OrbitNotFoundError` when the labels hold less eyeball than ``min_eyeball_ml``
    (models with an eyeball class) or nothing at all (other models)."""
    if eyeball_class(structures) > 0:
        eye_ml = sum(np.count_nonzero(labels.array == v) for v in values_for("eyeball")) * labels.voxel_volume_mm3() / 1000
        if eye_ml < min_eyeball_ml:
            raise OrbitNotFoundError(
                f"No orbit found: the model detected {eye_ml:.2f} mL of eyeball (both eyes are ~13 mL). "
                "Is this an orbital CT/MRI with the eyes in the field of view?")
    elif not labels.array.any():
        raise OrbitNotFoundError("No orbit structure found. Is this an orbital CT/MRI?")


# ------------------------------------------------------------------------- volumes
def structure_volumes(labels: Volume, structures: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per orbit label: name, side, voxels, volume (cm^3). With ``structures`` (the
    model's), every side of each is listed, 0 when not found; otherwise the labels present."""
    rows = []
    vv = labels.voxel_volume_mm3() / 1000.0
    counts = {v: int(np.count_nonzero(labels.array == v)) for v in ORBIT_LABELS}  # no int64 copy of the map
    for value, lab in ORBIT_LABELS.items():
        if (lab.structure in structures) if structures is not None else counts[value]:
            rows.append({"label": value, "name": lab.name, "structure": lab.structure, "side": lab.side,
                         "voxels": int(counts[value]), "volume_cm3": float(counts[value] * vv)})
    return rows
