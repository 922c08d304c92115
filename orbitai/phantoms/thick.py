"""Thick clinical slices from a fine orbit phantom, with the fine truth carried along (issue 66).

A clinical 2D protocol acquires 3-5 mm slices; each slice's value is the tissue's signal averaged over its
thickness. :func:`thick_slices` makes such a scan from a fine phantom (:func:`orbitai.phantoms.orbit.orbit_case`
at ~1 mm slices): every ``factor`` consecutive slices averaged into one (partial volume through the slice, as
:mod:`orbitai.phantoms.clinical_ct` does for CT), in-plane untouched. Its labels are each thick voxel's most
frequent fine label (ties to the lower value: background before any structure): the best a binary mask on the
thick grid can be. The volumes to compare with are the fine labels' (:func:`truth_cm3`). (Training simulates the
same averaging on its own grid, resampled back onto it: :func:`orbitai.preprocess.resolution.thick_slices`;
here the scan keeps the thick grid a clinical series has.)
"""
from __future__ import annotations

import numpy as np

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.phantoms.orbit import PhantomCase


def _grouped(arr: np.ndarray, factor: int) -> np.ndarray:
    n = arr.shape[0] // factor * factor
    return arr[:n].reshape(n // factor, factor, *arr.shape[1:])


def thick_slices(case: PhantomCase, factor: int) -> PhantomCase:
    """``case`` with every ``factor`` slices (its third voxel axis) averaged into one: image values rounded to
    the fine image's integer type, labels the most frequent fine label per thick voxel; slices left over at the
    end dropped. ``info`` gains ``slice_factor`` and ``fine_spacing_mm``."""
    if factor < 1 or factor > case.image.shape[0]:
        raise InputError(f"Cannot average {factor} slices of a {case.image.shape[0]}-slice phantom.")
    img, lab = case.image, case.labels
    mean = _grouped(img.array.astype(np.float32), factor).mean(1)
    if np.issubdtype(img.array.dtype, np.integer):
        info = np.iinfo(img.array.dtype)
        mean = np.clip(np.rint(mean), info.min, info.max).astype(img.array.dtype)
    groups = _grouped(lab.array, factor)
    values = np.unique(groups)
    counts = np.stack([(groups == v).sum(1, dtype=np.int16) for v in values])
    labels = values[counts.argmax(0)].astype(lab.array.dtype)       # ties: the lower value
    spacing = (img.spacing[0], img.spacing[1], img.spacing[2] * factor)
    # the thick slice's centre: the middle of its fine slices
    centre = np.asarray(img.origin, float) + img.direction[:, 2] * img.spacing[2] * (factor - 1) / 2.0
    origin = (float(centre[0]), float(centre[1]), float(centre[2]))
    info_out = {**case.info, "slice_factor": int(factor), "fine_spacing_mm": [round(s, 4) for s in img.spacing],
                "spacing_mm": [round(s, 4) for s in spacing]}
    return PhantomCase(Volume(mean, spacing, origin, img.direction), Volume(labels, spacing, origin, img.direction),
                       info_out)


def truth_cm3(case: PhantomCase, factor: int = 1) -> dict[int, float]:
    """Volume (cm3) of each label value > 0 of ``case`` (the fine phantom), over the slices that
    :func:`thick_slices` with ``factor`` keeps."""
    lab = case.labels
    n = lab.shape[0] // factor * factor
    found = lab.array[:n]
    counts = np.bincount(found[found > 0].astype(np.intp).ravel())
    return {v: float(c) * lab.voxel_volume_mm3() / 1000.0 for v, c in enumerate(counts) if v and c}
