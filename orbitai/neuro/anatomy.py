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

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.phantoms.atlas import data_path
from orbitai.preprocess.registration import affine_register
from orbitai.progress import Progress, ProgressCallback
from orbitai.scan.flair import HEAD_GRID_MM, check_flair, rough_masks, to_grid

REGIONS: dict[int, str] = {1: "periventricular", 2: "juxtacortical", 3: "infratentorial",
                           4: "deep_white_matter", 5: "callosal"}
REGION_CODES: dict[str, int] = {v: k for k, v in REGIONS.items()}

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
    return {"image": image, "grid": to_grid(image, HEAD_GRID_MM), "icv": as_image(pasted(icv)),
            "regions": as_image(pasted(regions)), "brain": as_image((full > 0).astype(np.uint8)),
            "ventricles": as_image(pasted(vent)),
            "icv_ml": float(icv.sum()) * 1e-3}


def template_volume() -> Volume:
    """The template FLAIR as a `Volume` (for figures and tests)."""
    return Volume.from_sitk(template_anatomy()["image"])


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
    grid = to_grid(img, HEAD_GRID_MM)
    rough = rough_masks(sitk.GetArrayFromImage(grid), HEAD_GRID_MM)
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

