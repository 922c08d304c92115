"""Brain extraction, intracranial volume and lesion-location regions for brain FLAIR, without downloaded weights.

Method (atlas registration, SimpleITK):

1. The FLAIR is smoothed and resampled to a 2.5 mm isotropic grid. A rough head mask (Otsu) and a rough
   brain pre-mask (tissue above the Otsu level inside the head, eroded, largest component, dilated,
   closed, holes filled) are found by intensity and morphology. An input whose foreground is already
   brain only (skull-stripped, e.g. MNI-space FLAIR) is recognised and its foreground is the pre-mask.
2. The template, the MNI-space FLAIR of Lesjak et al. (2017) that ships with the package (the image
   `orbitai.phantoms.brain` builds its phantoms from), is registered to the pre-masked FLAIR: moments
   initialisation on the masks, multi-resolution affine with Mattes mutual information sampled in the
   pre-mask grown by 5 mm (without that mask the scalp pulls the template outward: +10 % ICV).
3. The template's intracranial mask (brain mask, holes filled, closed by 3 mm to fill sulci and the
   fissure, grown by 2 mm for the subarachnoid CSF that skull stripping removed) and its location regions
   are warped onto the FLAIR's grid (nearest neighbour). ICV = voxels of the warped mask x voxel volume.

Location regions are defined once in template (MNI) space, codes in `REGIONS`, painted in this order
(later wins): deep white matter (everything intracranial), juxtacortical (within 4 mm of the pial side:
the brain surface or CSF connected to it, i.e. cortex plus ~1-2 mm of subcortical white matter, MAGNIMS
2016 "juxtacortical/cortical"), periventricular (within 5 mm of the lateral ventricles, ventricles included;
MAGNIMS: lesions abutting the lateral ventricles, with room for registration error), callosal (the
corpus-callosum arc on the midline, |x| <= 10 mm), infratentorial (brainstem and cerebellum, below a
tentorium surface z_t(x, y)). Ventricles come from the template's dark CSF as in `orbitai.phantoms.brain`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.phantoms.atlas import data_path
from orbitai.preprocess.registration import affine_register
from orbitai.progress import Progress, ProgressCallback
from orbitai.scan import ScanFacts, scan_facts
from orbitai.scan.values import ct_for_an_mr_model
from orbitai.scan.weighting import CSF_RATIO_T2, csf_ratio, flair_verdict

REGIONS: dict[int, str] = {1: "periventricular", 2: "juxtacortical", 3: "infratentorial",
                           4: "deep_white_matter", 5: "callosal"}
REGION_CODES: dict[str, int] = {v: k for k, v in REGIONS.items()}

#: isotropic grid (mm) of the rough masks and the registration
GRID_MM = 2.5
#: distances (mm) of the template regions
PERIVENTRICULAR_MM = 5.0
JUXTACORTICAL_MM = 4.0
ICV_CLOSING_MM = 3
ICV_GROW_MM = 2
#: the MNI-space FLAIR template shipped with the package (Lesjak et al. 2017, patient 26)
TEMPLATE = ("ms_flair_lesjak", "cs_patient26_FLAIR_MNI.nii.gz")


@dataclass
class BrainExtraction:
    """Intracranial mask, ICV and location regions of one FLAIR (all on the FLAIR's grid)."""

    mask: Volume            # uint8 1 = intracranial (brain + CSF)
    icv_ml: float
    regions: Volume         # uint8 location-class map, codes in REGIONS, 0 outside the mask
    to_template: "sitk.Transform | None"   # FLAIR physical -> template physical (None for already-MNI input)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- template
def _edt(mask: np.ndarray) -> np.ndarray:
    """Distance (voxels = mm on the template grid) of each True voxel to the nearest False one.

    ITK's Maurer map of the False set, measured outside it: the same values as
    ``scipy.ndimage.distance_transform_edt(mask)`` at a third of the time.
    """
    img = sitk.GetImageFromArray(np.ascontiguousarray(~mask, dtype=np.uint8))
    d = sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False, useImageSpacing=False,
                                     backgroundValue=0)
    return np.clip(sitk.GetArrayFromImage(d), 0, None).astype(np.float32)


@functools.lru_cache(maxsize=1)
def template_anatomy() -> dict:
    """The template FLAIR (sitk, 1 mm MNI grid) with its intracranial mask, lateral ventricles and location
    regions (uint8 sitk images), the 2.5 mm registration copy (``grid``) and ``icv_ml``."""
    # The raw template, not orbitai.phantoms.brain._template(): its lesion inpainting costs 8 s and
    # changes nothing here (lesions are bright; the rules below read dark CSF and the brain outline).
    vol = Volume.from_sitk(sitk.ReadImage(str(data_path(*TEMPLATE)), sitk.sitkFloat32))
    full = vol.array.astype(np.float32)
    # work in the brain's bounding box + 10 mm (the distance maps are the cost)
    nz = np.argwhere(full > 0)
    lo, hi = np.maximum(nz.min(0) - 10, 0), np.minimum(nz.max(0) + 11, full.shape)
    box = tuple(slice(int(a_), int(b_)) for a_, b_ in zip(lo, hi))
    a = full[box]
    brain = a > 0
    k, j, i = np.ogrid[box[0], box[1], box[2]]
    X, Y, Z = 90 - i, j - 126, k - 72          # MNI (RAS) mm of this grid (see orbitai.phantoms.brain)
    filled = ndi.binary_fill_holes(brain)
    # lateral ventricles: the dark-CSF rule of orbitai.phantoms.brain, on the hole-filled brain (the
    # template's ventricles are partly <= 0, outside its ``brain`` mask)
    fdepth = _edt(filled)
    vent = filled & (a < 45) & (np.abs(X) < 30) & (Y > -45) & (Y < 35) & (Z > -2) & (Z < 35) & (fdepth > 12)
    vent = ndi.binary_opening(vent, iterations=1)      # cut thin links to cisterns and the fissure
    lab, n = ndi.label(vent)
    if n:
        sizes = ndi.sum(vent, lab, range(1, n + 1))
        vent = np.isin(lab, 1 + np.nonzero(sizes >= 200)[0])     # horns, bodies, trigones (>= 0.2 mL)
    vent = ndi.binary_closing(vent, iterations=1)
    grown = _edt(~filled) <= ICV_CLOSING_MM                       # closing by distance maps (fast)
    icv = ndi.binary_fill_holes((_edt(grown) > ICV_CLOSING_MM) | filled)
    icv = _edt(~icv) <= ICV_GROW_MM
    regions = np.where(icv, 4, 0).astype(np.uint8)
    # juxtacortical: within JUXTACORTICAL_MM of the pial side (outside the brain, or dark CSF connected to it)
    dark = ~filled | (a < 40)
    lab, _ = ndi.label(dark)
    pial = lab == lab[0, 0, 0]
    regions[icv & (_edt(~pial) <= JUXTACORTICAL_MM)] = 2
    # periventricular: within PERIVENTRICULAR_MM of the lateral ventricles (ventricles included)
    regions[icv & (_edt(~vent) <= PERIVENTRICULAR_MM)] = 1
    # callosal: tube around the midline arc of the corpus callosum (genu y=+30 to splenium y=-38)
    t = np.clip((30 - Y) / 68.0, 0, 1)
    arc_z = 7 + 15 * np.sin(np.pi * t)
    cc = (np.abs(X) <= 10) & (Y <= 33) & (Y >= -42) & (np.abs(Z - arc_z) <= 4.5) & ~vent & (a >= 50)
    regions[icv & cc] = 5
    # infratentorial: below the tentorium z_t(x, y) (rises to z=0 at y=-55 on the midline, falls 0.5 mm
    # per mm laterally; read off the template's sagittal slices), plus the brainstem
    zt = np.minimum(0.0, 0.37 * (Y + 55.0)) - 0.5 * np.abs(X)
    posterior = (Y < -35) & (Z < zt)
    stem = (np.abs(X) < 14) & (Y >= -35) & (Y < -8) & (Z < -8)
    regions[icv & (posterior | stem)] = 3

    def as_image(arr: np.ndarray, pixel=sitk.sitkUInt8) -> sitk.Image:
        out = sitk.Cast(sitk.GetImageFromArray(np.ascontiguousarray(arr)), pixel)
        out.SetSpacing(vol.spacing)
        out.SetOrigin(vol.origin)
        out.SetDirection(tuple(vol.direction.ravel()))
        return out

    def pasted(arr: np.ndarray) -> np.ndarray:
        out = np.zeros(full.shape, np.uint8)
        out[box] = arr
        return out

    image = as_image(full, sitk.sitkFloat32)
    return {"image": image, "grid": _to_grid(image, GRID_MM), "icv": as_image(pasted(icv)),
            "regions": as_image(pasted(regions)), "brain": as_image((full > 0).astype(np.uint8)),
            "ventricles": as_image(pasted(vent)),
            "icv_ml": float(icv.sum()) * 1e-3}


def template_volume() -> Volume:
    """The template FLAIR as a `Volume` (for figures and tests)."""
    return Volume.from_sitk(template_anatomy()["image"])


# ----------------------------------------------------------------------------- rough masks
def _to_grid(img: sitk.Image, mm: float) -> sitk.Image:
    """Anti-aliased resample to an isotropic ``mm`` grid in the image's own orientation (float32)."""
    img = sitk.Cast(img, sitk.sitkFloat32)
    sig = [max((mm - s) / 2.0, 0.0) for s in img.GetSpacing()]
    if max(sig) > 0:
        img = sitk.SmoothingRecursiveGaussian(img, [max(s, 1e-3) for s in sig])
    size = [max(1, int(round(n * s / mm))) for n, s in zip(img.GetSize(), img.GetSpacing())]
    return sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, img.GetOrigin(), (mm,) * 3,
                         img.GetDirection(), 0.0, sitk.sitkFloat32)


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


@dataclass
class _Rough:
    head: np.ndarray
    brain: np.ndarray
    stripped: bool
    head_ml: float
    tissue_level: float


def _rough_masks(a: np.ndarray, mm: float) -> _Rough:
    """Head mask, brain pre-mask and whether the input is already skull-stripped (on the coarse grid)."""
    vox_ml = mm ** 3 * 1e-3
    pos = a[a > np.percentile(a, 1)]
    if pos.size < 100:
        return _Rough(np.zeros(a.shape, bool), np.zeros(a.shape, bool), False, 0.0, 0.0)
    t = float(threshold_otsu(pos))
    head = ndi.binary_fill_holes(_largest(a > 0.5 * t))
    t2 = float(threshold_otsu(a[head]))
    tissue = (a > t2) & head
    core = _largest(ndi.binary_erosion(tissue, iterations=2))
    brain = ndi.binary_dilation(core, iterations=2) & head
    brain = ndi.binary_closing(np.pad(brain, 3), np.ones((3, 3, 3)), iterations=3)[3:-3, 3:-3, 3:-3]
    brain = ndi.binary_fill_holes(brain)
    head_ml = float(head.sum()) * vox_ml
    # skull-stripped: a brain-sized foreground that the brain pre-mask nearly fills (no scalp, no skull)
    stripped = bool(head_ml < 2100 and brain.sum() > 0.8 * head.sum())
    if stripped:
        brain = head
    return _Rough(head, brain, stripped, head_ml, t2)


def _same_grid_as_template(flair: Volume) -> bool:
    ref = template_anatomy()["image"]
    return (flair.size_xyz == tuple(ref.GetSize())
            and np.allclose(flair.spacing, ref.GetSpacing(), atol=1e-3)
            and np.allclose(flair.origin, ref.GetOrigin(), atol=0.5)
            and np.allclose(flair.direction.ravel(), ref.GetDirection(), atol=1e-3))


def extract_brain(flair: Volume, progress: ProgressCallback | None = None) -> BrainExtraction:
    """Intracranial mask, ICV and location regions of a FLAIR (raw whole head or skull-stripped, any grid)."""
    p = Progress(4, progress) if progress else None
    arr = np.asarray(flair.array)
    if arr.ndim != 3 or min(arr.shape) < 8 or not np.all(np.isfinite(arr)):
        check_flair(flair)
    T = template_anatomy()
    img = flair.to_sitk()
    grid = _to_grid(img, GRID_MM)
    rough = _rough_masks(sitk.GetArrayFromImage(grid), GRID_MM)
    if not rough.brain.any():
        raise InputError("No head found in the FLAIR (the image is empty or constant); load a brain FLAIR.")
    if p:
        p.step("rough head and brain masks")
    notes: list[str] = []
    if rough.stripped:
        notes.append("already skull-stripped input: its foreground is taken as the brain")
    tx: sitk.Transform | None
    if _same_grid_as_template(flair) and rough.stripped:
        tx = None
        notes.append("input on the template's MNI grid: regions used without registration")
    else:
        pre = sitk.GetImageFromArray(rough.brain.astype(np.uint8))
        pre.CopyInformation(grid)
        masked = sitk.Mask(grid, sitk.BinaryDilate(pre, [1, 1, 1]))
        tmask = sitk.Cast(T["grid"] > 0.5, sitk.sitkUInt8)
        tx = affine_register(masked, pre, T["grid"], tmask)
    if p:
        p.step("registered to the MNI FLAIR template")
    ident = sitk.Transform(3, sitk.sitkIdentity) if tx is None else tx
    mask = sitk.Resample(T["icv"], img, ident, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    regions = sitk.Resample(T["regions"], img, ident, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    if p:
        p.step("template masks warped to the FLAIR")
    m = sitk.GetArrayFromImage(mask).astype(np.uint8)
    r = sitk.GetArrayFromImage(regions) * m
    icv_ml = float(m.sum()) * flair.voxel_volume_mm3() * 1e-3
    if p:
        p.step(f"intracranial volume {icv_ml:.0f} mL")
    return BrainExtraction(flair.with_array(m), icv_ml, flair.with_array(r.astype(np.uint8)), tx, notes)


# ----------------------------------------------------------------------------- input checks
def check_flair(flair: Volume, extraction: BrainExtraction | None = None, facts: ScanFacts | None = None
                ) -> list[str]:
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
    ``extraction`` the intracranial volume must also be plausible (600-2500 mL).
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
    a = sitk.GetArrayFromImage(_to_grid(flair.to_sitk(), GRID_MM))
    rough = _rough_masks(a, GRID_MM)
    head_ml = rough.head_ml
    if rough.head.mean() > 0.7 or not 500 <= head_ml <= 8000:
        raise InputError(f"No head found: the foreground fills {100 * rough.head.mean():.0f} % of the field "
                         f"of view ({head_ml:.0f} mL); this does not look like a brain FLAIR.")
    depth = ndi.distance_transform_edt(rough.head) * GRID_MM
    core = a[depth > 0.55 * depth.max()]
    if facts is None and csf_ratio(core) > CSF_RATIO_T2:       # the image classifier, which lesions do not sway
        facts = scan_facts(flair)
    refusal, caveat = flair_verdict(core, a, rough.brain, facts)
    if refusal:
        raise InputError(refusal)
    caveats = [caveat] if caveat else []
    brain_ml = float(rough.brain.sum()) * GRID_MM ** 3 * 1e-3
    if brain_ml < 500 and not said:
        raise InputError(f"No FLAIR-like brain found (brain tissue region {brain_ml:.0f} mL): the image may be a "
                         "T1 or another contrast (FLAIR: CSF dark, grey matter brighter than white matter); "
                         "load the FLAIR series.")
    if extraction is not None:
        check_intracranial_volume(extraction)
    return caveats


def check_intracranial_volume(extraction: BrainExtraction) -> None:
    """Raise a one-line `InputError` unless the brain extraction's intracranial volume is plausible (600-2500 mL):
    the check :func:`check_flair` adds with ``extraction``, for a caller that checked the FLAIR (and judged its
    contrast) before the extraction."""
    if not 600 <= extraction.icv_ml <= 2500:
        raise InputError(f"The brain extraction found an implausible intracranial volume ({extraction.icv_ml:.0f} mL);"
                         " check that the image is a whole-head or skull-stripped brain FLAIR.")


def _said_weighting(facts: ScanFacts | None) -> bool:
    """Whether the user stated what the scan is (--modality): the image's values then never refuse it."""
    return facts is not None and any(getattr(facts, q).source.startswith("stated") for q in ("modality", "weighting"))
