"""Whether a brain image is a FLAIR a model can read, read against the scan's facts: 3D, finite, not CT, a head in
view (not noise filling the field of view, not a crop of the orbits), its contrast a FLAIR's
(:func:`orbitai.scan.weighting.flair_verdict`) and, after a brain extraction, a plausible intracranial volume.

The one place these checks decide (issue 82, point 3: they lived in `orbitai.neuro.anatomy`); the rough head and
brain masks they read (:func:`rough_masks`, on a :data:`HEAD_GRID_MM` grid) are the brain extraction's first step
too (`orbitai.neuro.anatomy.extract_brain` imports them from here). Not imported by :mod:`orbitai.scan` itself: it
needs scikit-image's Otsu threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from orbitai.errors import InputError
from orbitai.io.volume import Volume
from orbitai.scan import ScanFacts, scan_facts
from orbitai.scan.values import ct_for_an_mr_model
from orbitai.scan.weighting import CSF_RATIO_T2, csf_ratio, flair_verdict

__all__ = ["HEAD_GRID_MM", "RoughMasks", "rough_masks", "to_grid", "largest", "check_flair",
           "check_intracranial_volume"]

#: isotropic grid (mm) of the rough masks (and of the brain extraction's registration)
HEAD_GRID_MM = 2.5


def to_grid(img: sitk.Image, mm: float) -> sitk.Image:
    """Anti-aliased resample to an isotropic ``mm`` grid in the image's own orientation (float32)."""
    img = sitk.Cast(img, sitk.sitkFloat32)
    sig = [max((mm - s) / 2.0, 0.0) for s in img.GetSpacing()]
    if max(sig) > 0:
        img = sitk.SmoothingRecursiveGaussian(img, [max(s, 1e-3) for s in sig])
    size = [max(1, int(round(n * s / mm))) for n, s in zip(img.GetSize(), img.GetSpacing())]
    return sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), (mm,) * 3,
                         img.GetDirection(), 0.0, sitk.sitkFloat32)


def largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of ``mask`` (``mask`` itself when it has none)."""
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


@dataclass
class RoughMasks:
    """A head image's rough masks on the coarse grid: its head, its brain (pre-mask), whether it is skull-stripped,
    the head's volume (mL) and the tissue level (Otsu inside the head)."""

    head: np.ndarray
    brain: np.ndarray
    stripped: bool
    head_ml: float
    tissue_level: float


def rough_masks(a: np.ndarray, mm: float) -> RoughMasks:
    """Head mask, brain pre-mask and whether the input is already skull-stripped (on the coarse grid)."""
    vox_ml = mm ** 3 * 1e-3
    pos = a[a > np.percentile(a, 1)]
    if pos.size < 100:
        return RoughMasks(np.zeros(a.shape, bool), np.zeros(a.shape, bool), False, 0.0, 0.0)
    t = float(threshold_otsu(pos))
    head = ndi.binary_fill_holes(largest(a > 0.5 * t))
    t2 = float(threshold_otsu(a[head]))
    tissue = (a > t2) & head
    core = largest(ndi.binary_erosion(tissue, iterations=2))
    brain = ndi.binary_dilation(core, iterations=2) & head
    brain = ndi.binary_closing(np.pad(brain, 3), np.ones((3, 3, 3)), iterations=3)[3:-3, 3:-3, 3:-3]
    brain = ndi.binary_fill_holes(brain)
    head_ml = float(head.sum()) * vox_ml
    # skull-stripped: a brain-sized foreground that the brain pre-mask nearly fills (no scalp, no skull)
    stripped = bool(head_ml < 2100 and brain.sum() > 0.8 * head.sum())
    if stripped:
        brain = head
    return RoughMasks(head, brain, stripped, head_ml, t2)


def check_flair(flair: Volume, facts: Optional[ScanFacts] = None, icv_ml: Optional[float] = None) -> list[str]:
    """Raise a one-line `InputError` unless ``flair`` is a 3D brain FLAIR a model can read (head or skull-stripped);
    return caveats (one sentence each) where the image's contrast disagrees with what ``facts`` say (the user's
    ``--modality``, DICOM tags: what they state wins, `orbitai.scan.weighting.flair_verdict`).

    Refused: a single slice or a few slices (2D), NaN/infinite voxels, CT (Hounsfield units), an image
    that is not a head (noise filling the field of view, a small crop such as an orbit-only volume), and
    other MR contrasts: T2 (CSF brighter than tissue: the 99th percentile of the head's core is more than
    1.75 x its median; FLAIR 1.2-1.4) and T1 (no FLAIR-like brain found: the brain pre-mask of a
    FLAIR, tissue above the Otsu level separated from the scalp by dark skull and CSF, is under
    500 mL on T1, where WM is as bright as the scalp fat; or, skull-stripped T1, its bright tissue lies
    deep), judged in :mod:`orbitai.scan.weighting`: refused only where nothing states the weighting. With
    ``icv_ml`` (a brain extraction's intracranial volume) it must also be plausible (600-2500 mL).
    """
    arr = np.asarray(flair.array)
    if arr.ndim != 3:
        raise InputError(f"The FLAIR is {arr.ndim}D; load the whole 3D stack of slices.")
    extent = np.array(flair.size_xyz) * np.array(flair.spacing)
    if min(arr.shape) < 8 or extent.min() < 40:
        raise InputError(
            f"The FLAIR is a 2D image or a thin slab ({' x '.join(str(n) for n in flair.size_xyz)} voxels, "
            f"{' x '.join(f'{e:.0f}' for e in extent)} mm); load the whole 3D stack of slices of the head.")
    if not np.all(np.isfinite(arr)):
        n = int(np.count_nonzero(~np.isfinite(arr)))
        raise InputError(f"The FLAIR contains {n} NaN/infinite voxels; export it again or replace them "
                         "by the background value.")
    lo, hi = (float(v) for v in np.percentile(arr, [1, 99.9]))
    said = _said_weighting(facts)
    if not said and ct_for_an_mr_model(facts, flair):      # stated or tagged wins; else any sign of CT
        raise InputError(f"The image looks like CT (values from {float(arr.min()):.0f} to {hi:.0f}, "
                         "Hounsfield units), not an MR FLAIR; load the brain FLAIR series.")
    if hi <= lo:
        raise InputError("The FLAIR is empty or constant; load a brain FLAIR.")
    if sorted(extent)[1] < 100:
        raise InputError(f"The image covers only {' x '.join(f'{e:.0f}' for e in extent)} mm, too little "
                         "for a head (a crop of the orbits or one region?); load the whole-head brain FLAIR.")
    a = sitk.GetArrayFromImage(to_grid(flair.to_sitk(), HEAD_GRID_MM))
    rough = rough_masks(a, HEAD_GRID_MM)
    head_ml = rough.head_ml
    if rough.head.mean() > 0.7 or not 500 <= head_ml <= 8000:
        raise InputError(f"No head found: the foreground fills {100 * rough.head.mean():.0f} % of the field "
                         f"of view ({head_ml:.0f} mL); this does not look like a brain FLAIR.")
    depth = ndi.distance_transform_edt(rough.head) * HEAD_GRID_MM
    core = a[depth > 0.55 * depth.max()]
    if facts is None and csf_ratio(core) > CSF_RATIO_T2:       # the image classifier, which lesions do not sway
        facts = scan_facts(flair)
    refusal, caveat = flair_verdict(core, a, rough.brain, facts)
    if refusal:
        raise InputError(refusal)
    caveats = [caveat] if caveat else []
    brain_ml = float(rough.brain.sum()) * HEAD_GRID_MM ** 3 * 1e-3
    if brain_ml < 500 and not said:
        raise InputError(f"No FLAIR-like brain found (brain tissue region {brain_ml:.0f} mL): the image may be a "
                         "T1 or another contrast (FLAIR: CSF dark, grey matter brighter than white matter); "
                         "load the FLAIR series.")
    if icv_ml is not None:
        check_intracranial_volume(icv_ml)
    return caveats


def check_intracranial_volume(icv_ml: float) -> None:
    """Raise a one-line `InputError` unless a brain extraction's intracranial volume ``icv_ml`` is plausible
    (600-2500 mL): the check :func:`check_flair` adds with ``icv_ml``, for a caller that checked the FLAIR (and
    judged its contrast) before the extraction."""
    if not 600 <= icv_ml <= 2500:
        raise InputError(f"The brain extraction found an implausible intracranial volume ({icv_ml:.0f} mL);"
                         " check that the image is a whole-head or skull-stripped brain FLAIR.")


def _said_weighting(facts: Optional[ScanFacts]) -> bool:
    """Whether the user stated what the scan is (--modality): the image's values then never refuse it."""
    return facts is not None and any(getattr(facts, q).source.startswith("stated") for q in ("modality", "weighting"))
