"""Orbit rules: the orbit label scheme's classes, per-orbit post-processing (SV-net section 2.D:
hole filling and the largest component on each side of the patient's midline), the eyeball
guard and structure volumes. Torch-free."""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import SimpleITK as sitk

from orbitai.boxes import Region, bbox
from orbitai.io import Volume, VolumeError
from orbitai.labels import GROUPS, ORBIT_LABELS, values_for
from orbitai.orbit.anatomy import HALF_GLOBE_DISTANCE_MM, implausible_globe, label_counts, sides_in_view
from orbitai.preprocess.checks import field_of_view_mm
from orbitai.scan import ScanFacts
from orbitai.engine.postprocess import fill_holes, largest_component

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


#: The orbits lie within this depth (mm) behind the front of the head (nose tip to optic chiasm ~100 mm)
#: and within this distance (mm) of the head's middle left to right (lateral recti ~55 mm).
ORBIT_DEPTH_MM, ORBIT_HALF_WIDTH_MM = 115.0, 80.0
#: Normalised intensity (0..1) above which a voxel counts as head, not air, when the orbits are looked for.
HEAD_ABOVE = 0.08


def orbit_search_box(norm: np.ndarray, spacing) -> tuple[slice, slice, slice] | None:
    """Where on an LPS model grid (``norm``: normalised intensities 0..1, [k, j, i] = [S, P, L]) the
    orbits can lie: from the front of the head back ``ORBIT_DEPTH_MM`` and ``ORBIT_HALF_WIDTH_MM`` either
    side of its middle; all slices from foot to head. None when that is the whole scan or no head is
    seen. On a whole-head MRI this leaves the network a third of the scan; an orbit-centred scan keeps
    all of it. (What the engine's :class:`orbitai.engine.focus.Focus` of the orbits finds first.)"""
    sx, sy, sz = (float(v) for v in spacing)
    head = norm > HEAD_ABOVE
    plane = head.sum((0, 2))                              # head voxels per coronal plane (j)
    rows = np.flatnonzero(plane * sx * sz >= 200.0)       # at least 2 cm2 of head in the plane
    if not len(rows):
        return None
    j0 = max(0, int(rows[0] - round(5.0 / sy)))
    j1 = min(norm.shape[1], int(rows[0] + round(ORBIT_DEPTH_MM / sy)) + 1)
    cols = np.flatnonzero(head[:, j0:j1, :].sum((0, 1)) * sy * sz >= 200.0)
    if not len(cols):
        return None
    mid = 0.5 * (cols[0] + cols[-1])
    half = ORBIT_HALF_WIDTH_MM / sx
    i0, i1 = max(0, int(np.floor(mid - half))), min(norm.shape[2], int(np.ceil(mid + half)) + 1)
    if j1 - j0 >= norm.shape[1] and i1 - i0 >= norm.shape[2]:
        return None
    return slice(0, norm.shape[0]), slice(j0, j1), slice(i0, i1)


# --------------------------------------------------------------------- post-processing
#: Structures lying medial of their globe (the optic nerve runs back to the chiasm, the medial rectus and the superior
#: oblique along the medial wall) and lateral of it: what tells which side one globe is on.
MEDIAL_OF_GLOBE = ("optic_nerve", "medial_rectus_muscle", "superior_oblique_muscle")
LATERAL_OF_GLOBE = ("lateral_rectus_muscle",)
#: Only a structure's voxels this near (mm, left to right) the globe are its orbit's (the other orbit's lie >= 40 mm off).
NEAR_GLOBE_MM = 30.0


def _eyeball_centroids(classes: Volume, eyeball_class: int) -> list[np.ndarray]:
    """LPS centroids of the largest eyeball component and, when at least a quarter of it (not a stray blob), the
    second; [] without an eyeball."""
    eye = classes.array == eyeball_class
    box = bbox(eye)
    if box is None:
        return []
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(sitk.GetImageFromArray(eye[box].astype(np.uint8))),
                               sortByObjectSize=True)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(cc)      # centroids in the crop's (i, j, k) index units: unit spacing, zero origin
    offset = np.array([box[2].start, box[1].start, box[0].start], float)
    found = [1] + ([2] if stats.HasLabel(2) and stats.GetNumberOfPixels(2) >= 0.25 * stats.GetNumberOfPixels(1) else [])
    return [classes.index_to_physical(np.asarray(stats.GetCentroid(lab)) + offset) for lab in found]


def eyeball_midline(classes: Volume, eyeball_class: int = 1) -> float | None:
    """LPS x of the patient's midline: the midpoint of the centroids of the two largest eyeball
    components; None without two eyeballs (the second at least a quarter of the first: not a stray blob)."""
    cents = _eyeball_centroids(classes, eyeball_class)
    return 0.5 * float(cents[0][0] + cents[1][0]) if len(cents) == 2 else None


def globe_side(classes: Volume, globe: np.ndarray, structure_values: dict[int, tuple[int, int]]) -> str | None:
    """Which of the patient's sides ("left": LPS +x) the globe centred at ``globe`` (LPS mm) is on, from its orbit's
    anatomy: the mean left-right offsets from the globe of the structures that lie medial of it (optic nerve, medial
    rectus, superior oblique) and lateral of it (lateral rectus), near it only. None when no such structure is found.
    Not from where the globe lies in the image: a scan may hold one orbit anywhere in its field of view."""
    arr, lin = classes.array, classes.ijk_to_lps()
    votes = []
    for c, (lv, _rv) in structure_values.items():
        structure = ORBIT_LABELS[lv].structure
        if structure not in MEDIAL_OF_GLOBE + LATERAL_OF_GLOBE:
            continue
        idx = np.argwhere(arr == c)
        if not len(idx):
            continue
        dx = idx[:, ::-1] @ lin[0, :3] + lin[0, 3] - float(globe[0])
        near = dx[np.abs(dx) < NEAR_GLOBE_MM]
        if len(near):
            votes.append(float(near.mean()) * (1.0 if structure in LATERAL_OF_GLOBE else -1.0))
    lateral = float(np.sum(votes)) if votes else 0.0       # where the lateral side is: +x on the patient's left
    return None if lateral == 0.0 else ("left" if lateral > 0 else "right")


def orbit_midline(classes: Volume, structure_values: dict[int, tuple[int, int]], eyeball_class: int = 1) -> float | None:
    """LPS x of the patient's midline: between the two globes (:func:`eyeball_midline`); with one globe in view,
    :data:`HALF_GLOBE_DISTANCE_MM` medial of it, the side told by its anatomy (:func:`globe_side`; when nothing
    around it tells, the side of the scanner's centre it lies on: patients lie centred in the bore). Either way one
    globe is never split in two. None without a globe."""
    cents = _eyeball_centroids(classes, eyeball_class) if eyeball_class > 0 else []
    if len(cents) != 1:
        return 0.5 * float(cents[0][0] + cents[1][0]) if cents else None
    side = globe_side(classes, cents[0], structure_values) or ("left" if cents[0][0] > 0 else "right")
    return float(cents[0][0]) + (-HALF_GLOBE_DISTANCE_MM if side == "left" else HALF_GLOBE_DISTANCE_MM)


def midline_x(classes: Volume, eyeball_class: int = 1,
              structure_values: dict[int, tuple[int, int]] | None = None) -> float:
    """:func:`orbit_midline` (:func:`eyeball_midline` without ``structure_values``), or without a globe the x of the
    volume centre."""
    if structure_values is None:
        centre = eyeball_midline(classes, eyeball_class)
    else:
        centre = orbit_midline(classes, structure_values, eyeball_class)
    if centre is None:
        centre = float(classes.index_to_physical((np.array(classes.size_xyz) - 1) / 2.0)[0])
    return centre


def left_of(classes: Volume, centre_x: float, box: Region | None = None) -> np.ndarray:
    """Boolean array over ``box`` of ``classes`` (default: all of it), True on the patient's left
    (LPS x above ``centre_x``)."""
    b: Region = box or cast(Region, tuple(slice(0, n) for n in classes.shape))
    k, j, i = (np.arange(s.start, s.stop)[tuple(slice(None) if a == ax else None for a in range(3))]
               for ax, s in enumerate(b))
    lin = classes.ijk_to_lps()
    x = lin[0, 0] * i + lin[0, 1] * j + lin[0, 2] * k + lin[0, 3]
    return np.broadcast_to(x > centre_x, tuple(s.stop - s.start for s in b))


def classes_to_orbit_labels(classes: Volume, structure_values: dict[int, tuple[int, int]],
                            clean: bool = True, eyeball_class: int = 1) -> Volume:
    """Turn a side-agnostic class map into orbit-scheme labels (left/right values per class).

    ``structure_values`` maps class index -> (left value, right value). With ``clean`` each
    class is hole-filled and reduced to its largest component on each side. Each class is worked
    on inside its own bounding box.
    """
    centre_x = midline_x(classes, eyeball_class, structure_values)

    def sides(c: int) -> tuple[Region, list[np.ndarray]] | None:
        """The class's box and its left and right parts, cleaned (worked on inside the box)."""
        m = classes.array == c
        box = bbox(m, 1)
        if box is None:
            return None
        m, left = m[box], left_of(classes, centre_x, box)
        parts = []
        for side_mask in (left, ~left):
            part = m & side_mask
            if clean and part.any():
                part = largest_component(fill_holes(part)) & side_mask
            parts.append(part)
        return box, parts

    out = np.zeros(classes.shape, np.uint8)
    with ThreadPoolExecutor(2) as pool:       # SimpleITK's filters release the GIL
        found = list(pool.map(sides, structure_values))
    for (lv, rv), done in zip(structure_values.values(), found):   # in class order: the first one keeps a voxel
        if done is None:
            continue
        box, parts = done
        view = out[box]                       # written in place
        for part, value in zip(parts, (lv, rv)):
            view[part & (view == 0)] = value
    return classes.with_array(out)


# --------------------------------------------------------------------------- guard
def require_orbit(labels: Volume, structures: Sequence[str], min_eyeball_ml: float = MIN_EYEBALL_ML,
                  image: Volume | None = None, facts: ScanFacts | None = None) -> None:
    """Raise :class:`OrbitNotFoundError` when the labels hold less eyeball than ``min_eyeball_ml``
    (models with an eyeball class) or nothing at all (other models); with ``image``, also when no
    found eyeball looks like one (:func:`orbitai.orbit.anatomy.implausible_globe`: an empty orbit or a skull; CT or
    not as the scan's ``facts`` say)."""
    if eyeball_class(structures) > 0:
        counts = label_counts(labels)
        eye_ml = sum(int(counts[v]) for v in values_for("eyeball")) * labels.voxel_volume_mm3() / 1000
        if eye_ml < min_eyeball_ml:
            raise OrbitNotFoundError(
                f"No orbit found: the model detected {eye_ml:.2f} mL of eyeball (both eyes are ~13 mL). "
                "Is this an orbital CT/MRI with the eyes in the field of view?")
        if image is not None:
            reasons = [r for r in (implausible_globe(image, labels, v, facts) for v in values_for("eyeball")) if r]
            if len(reasons) == len(values_for("eyeball")):
                raise OrbitNotFoundError(
                    f"No orbit found: what the model took for eyeballs is not ({reasons[0]}). "
                    "Is this an orbital CT/MRI with the eyes in the field of view?")
    elif not labels.array.any():
        raise OrbitNotFoundError("No orbit structure found. Is this an orbital CT/MRI?")


# ------------------------------------------------------------------------- volumes
def structure_volumes(labels: Volume, structures: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per orbit label: name, side, voxels, volume (cm^3). With ``structures`` (the
    model's), every side in view (:func:`~orbitai.orbit.anatomy.sides_in_view`: one with one globe found) of each is
    listed, 0 when not found; otherwise the labels present."""
    rows = []
    vv = labels.voxel_volume_mm3() / 1000.0
    counts = label_counts(labels)
    sides = sides_in_view(labels, structures, counts) if structures is not None else ("left", "right")
    for value, lab in ORBIT_LABELS.items():
        if (lab.structure in structures and lab.side in sides) if structures is not None else counts[value]:
            rows.append({"label": value, "name": lab.name, "structure": lab.structure, "side": lab.side,
                         "voxels": int(counts[value]), "volume_cm3": float(int(counts[value]) * vv)})
    return rows
