"""Orbit templates from the 20 real SynthSeg heads: each head's own globes, skull, sinuses, soft tissue and brain, with
the SPL/NAC atlas's recti, obliques, levator and optic nerves carried into its orbits (issue #46).

The SynthSeg maps (:mod:`orbitai.phantoms.heads`) label the eyeballs, the bone, the airway and the brain of 20
people, but not the extraocular muscles: the orbit's contents are one soft-tissue label. For each head:

1. its labels become the atlas's tissue codes (:mod:`orbitai.phantoms.atlas`): the eyeballs split into left and
   right, bone and marrow, airway (sinus air), fat, soft tissue, brain; the eyeballs are scaled into the real globe
   volumes of 35 expert CT contours (:func:`target_globe_cm3`);
2. the atlas's orbit region is registered to the head (:mod:`orbitai.preprocess.registration`): both are drawn
   with one value per tissue (globe, bone, air, brain, soft tissue: what the two maps share; the atlas's muscles and
   orbital fat take the soft-tissue value, as the head's orbit contents do), a masked affine over the orbits and
   then demons, so the globes, the bony walls and the sinuses line up;
3. the atlas's muscles and nerves are resampled through that transform onto a 0.5 mm box over the head's orbits,
   where the head has soft tissue, fat or the tissue behind the globes (never over its globes, bone, air or brain);
   the rest of each orbit's muscle cone (the convex hull of the muscles, the nerve and the back of the globe, as for
   the atlas) becomes orbital fat; sclera and lens are drawn inside the head's own globes as for the atlas.

The result is an :class:`orbitai.phantoms.atlas.OrbitModel` in the head's own LPS frame (its own size and pose), which
:func:`orbitai.phantoms.orbit.orbit_anatomy` deforms and renders like the atlas. Heads
:data:`orbitai.phantoms.heads.HELD_OUT` are never used for training. About a minute per head on one core; cached
per process.
"""
from __future__ import annotations

import functools
import logging
from statistics import NormalDist
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.phantoms import atlas as A
from orbitai.phantoms.heads import _LABEL_TISSUE, template_path
from orbitai.preprocess.registration import affine_register, as_image, demons_refine

log = logging.getLogger(__name__)

#: head tissue (heads.TISSUES names) -> atlas tissue code; the eyeballs are split by side separately
_NAME_CODE = {"air": A.OUTSIDE, "wm": A.WM, "gm": A.GM, "deep_gm": A.GM, "csf": A.CSF, "vitreous": 1,
              "nerve": A.SOFT, "fat": A.FAT, "muscle": A.SOFT, "skin": A.SOFT, "bone": A.BONE, "marrow": A.FAT,
              "airway": A.AIR}
#: what the head's orbit may hold where the atlas puts a muscle or a nerve
_ORBIT_CONTENT = (A.SOFT, A.FAT, A.MUSCLE)
#: one value per tissue code for registration (both maps drawn alike)
_PSEUDO = np.full(A.N_TISSUES, 0.3, np.float32)
_PSEUDO[[A.OUTSIDE]] = 0.0
_PSEUDO[[A.AIR]] = 0.05
_PSEUDO[[1, 2, A.LENS_L, A.LENS_R, A.SCLERA_L, A.SCLERA_R]] = 1.0
_PSEUDO[[A.BONE]] = 0.8
_PSEUDO[[A.GM, A.WM, A.NEURAL]] = 0.55
_PSEUDO[[A.CSF]] = 0.65
#: the orbit region registered: around the globes' centre, mm (x half-width, y anterior, y posterior, z half-height)
_REGION = (60.0, 25.0, 60.0, 35.0)


def _atlas_image(codes: np.ndarray, lo: np.ndarray, spacing: float) -> sitk.Image:
    """``codes`` ([z, y, x]) on an LPS-aligned grid whose first voxel lies at ``lo``."""
    return as_image(codes, _grid(lo, codes.shape[::-1], spacing))


def head_codes(number: int, own_globes: bool = False) -> sitk.Image:
    """Head ``number``'s labels as atlas tissue codes, LPS, 1 mm; the two largest eyeball components become the left
    (patient's left: larger x) and right eyeball, scaled to :func:`target_globe_cm3` unless ``own_globes`` (then as
    the head's label has them, holes filled)."""
    img = sitk.DICOMOrient(sitk.ReadImage(str(template_path(number))), "LPS")
    lab = sitk.GetArrayFromImage(img).astype(np.int32)
    lut = np.full(int(lab.max()) + 1, A.SOFT, np.uint8)
    for value, name in _LABEL_TISSUE.items():
        if value < len(lut):
            lut[value] = _NAME_CODE[name]
    codes = lut[np.clip(lab, 0, None)]
    # unlabelled holes inside the head (up to 31 000 voxels in head 14, around its orbits) are soft tissue, not air
    codes[ndi.binary_fill_holes(lab > 0) & (lab == 0)] = A.SOFT
    comp, n = ndi.label(lab == 506)
    sizes = np.bincount(comp.ravel())[1:]
    if n < 2:
        raise ValueError(f"head {number}: fewer than two eyeballs labelled")
    big = np.argsort(sizes)[::-1][:2] + 1
    xs = [np.argwhere(comp == k)[:, 2].mean() for k in big]
    # LPS x grows toward the patient's left; array x index grows with x (DICOMOrient LPS: identity direction)
    left, right = (big[0], big[1]) if xs[0] > xs[1] else (big[1], big[0])
    codes[(lab == 506) & ~np.isin(comp, big)] = A.SOFT
    codes[comp == left] = 1
    codes[comp == right] = 2
    for value in (1, 2):                # a few maps leave unlabelled holes inside a globe
        codes[ndi.binary_fill_holes(codes == value)] = value
    if not own_globes:
        _scale_globes(codes, float(img.GetSpacing()[0]), number)
    out = sitk.GetImageFromArray(codes)
    out.CopyInformation(img)
    return out


#: globe volumes of the 35 TCIA patients' expert contours (``../shared/data/tcia_hn_eye_masks``, its README: median
#: 8.6 cm^3, 5-95 %: 7.0-10.2); a head's globes are scaled to the quantile of this distribution that its own globes'
#: rank among the 20 heads gives (SynthSeg's eyeball label is smaller than the expert globe: 4.5-8.1 cm^3)
TCIA_GLOBE_CM3 = (8.6, (10.2 - 7.0) / (2 * 1.645))


@functools.lru_cache(maxsize=1)
def own_globe_cm3() -> dict[int, float]:
    """Each head's labelled eyeball volume per eye (cm^3, the pair's mean)."""
    out = {}
    for n in range(1, 21):
        img = sitk.ReadImage(str(template_path(n)))
        out[n] = float((sitk.GetArrayViewFromImage(img) == 506).sum()) * float(np.prod(img.GetSpacing())) / 2000.0
    return out


def target_globe_cm3(number: int) -> float:
    """The globe volume head ``number`` is scaled to: its rank among the heads, as a TCIA quantile."""
    own = own_globe_cm3()
    rank = sorted(own, key=lambda n: (own[n], n)).index(number)
    median, sd = TCIA_GLOBE_CM3
    return median + sd * float(NormalDist().inv_cdf((rank + 0.5) / len(own)))


def _scale_globes(codes: np.ndarray, spacing: float, number: int) -> None:
    """Grow (or shrink) each eyeball (its holes filled: :func:`head_codes`) about its centre to
    :func:`target_globe_cm3` (in place): into the soft tissue, fat and muscle around it, never into bone, air or
    brain."""
    target = target_globe_cm3(number)
    for value in (1, 2):
        globe = codes == value
        idx = np.argwhere(globe)
        own = len(idx) * spacing ** 3 / 1000.0
        factor = (target / own) ** (1 / 3)
        lo = np.maximum(idx.min(0) - 6, 0)
        hi = np.minimum(idx.max(0) + 7, codes.shape)
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        sub = globe[box]
        c = idx.mean(0) - lo
        grid = np.indices(sub.shape, dtype=np.float32)
        src = [c[a] + (grid[a] - c[a]) / factor for a in range(3)]
        scaled = ndi.map_coordinates(sub.astype(np.float32), src, order=1) >= 0.5
        view = codes[box]
        view[sub & ~scaled] = A.FAT
        view[scaled & np.isin(view, _ORBIT_CONTENT)] = value


def _globe_centre(img: sitk.Image, value: int) -> np.ndarray:
    idx = np.argwhere(sitk.GetArrayViewFromImage(img) == value)[:, ::-1].mean(0)
    return np.array(img.TransformContinuousIndexToPhysicalPoint(idx.tolist()))


def _region_mask(img: sitk.Image, centre: np.ndarray) -> np.ndarray:
    """Voxels [z, y, x] of ``img`` inside the registered orbit region around ``centre`` (LPS mm)."""
    size = img.GetSize()
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij"), -1)[..., ::-1]
    pts = np.asarray(img.GetOrigin()) + (grid * np.asarray(img.GetSpacing())) @ np.asarray(
        img.GetDirection()).reshape(3, 3).T
    d = pts - centre
    hx, ya, yp, hz = _REGION
    return (np.abs(d[..., 0]) <= hx) & (d[..., 1] >= -ya) & (d[..., 1] <= yp) & (np.abs(d[..., 2]) <= hz)


def _grid(lo_mm: np.ndarray, size_xyz: Sequence[int], spacing: float) -> sitk.Image:
    """An empty LPS-aligned grid: first voxel at ``lo_mm``, ``size_xyz`` voxels of ``spacing`` mm."""
    ref = sitk.Image([int(s) for s in size_xyz], sitk.sitkUInt8)
    ref.SetOrigin(tuple(float(v) for v in lo_mm))
    ref.SetSpacing((spacing,) * 3)
    return ref


def head_orbit_model(number: int, own_globes: bool = False) -> A.OrbitModel:
    """Head ``number`` (1-20) as an orbit model with the atlas's muscles and nerves carried into it (see the module
    docstring); ``own_globes``: the head's globes as labelled, not scaled (:func:`head_codes`). Built once per
    process and arguments, however they are spelled (``(3)`` and ``(3, False)`` are one model: the cache below keys
    on the arguments as given)."""
    return _head_orbit_model(int(number), bool(own_globes))


@functools.lru_cache(maxsize=20)
def _head_orbit_model(number: int, own_globes: bool) -> A.OrbitModel:
    atlas = A.orbit_model()
    head = head_codes(number, own_globes)
    centre = 0.5 * (_globe_centre(head, 1) + _globe_centre(head, 2))
    a_centre = 0.5 * (atlas.globe_centre["left"] + atlas.globe_centre["right"])
    # the head's grids: the atlas's boxes placed at the same offset from the globes' centre
    coarse_lo = A.COARSE_LO + (centre - a_centre)
    fine_lo = A.FINE_LO + (centre - a_centre)
    coarse = sitk.Resample(head, _grid(coarse_lo, A.COARSE_SIZE, 1.0), sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                           sitk.sitkUInt8)
    T = sitk.GetArrayFromImage(coarse)
    # register the atlas (moving) to the head (fixed) over the orbits, both drawn with one value per tissue
    fixed = as_image(ndi.gaussian_filter(_PSEUDO[T], 0.6), coarse)
    moving = _atlas_image(ndi.gaussian_filter(_PSEUDO[atlas.coarse], 0.6), A.COARSE_LO, 1.0)
    fmask = _region_mask(coarse, centre)
    mmask = _region_mask(_atlas_image(atlas.coarse, A.COARSE_LO, 1.0), a_centre)
    affine = affine_register(fixed, as_image(fmask.astype(np.uint8), coarse), moving,
                             as_image(mmask.astype(np.uint8), moving))
    warp = demons_refine(fixed, moving, affine, shrink=1, iterations=60, smoothing=2.5)
    # the head's fine box (the atlas's recipe on the head's codes), then the atlas's muscles and nerves carried in
    F = A.make_fine(T)
    fine_ref = _grid(fine_lo, F.shape[::-1], A.FINE_SP)
    carried = sitk.GetArrayFromImage(sitk.Resample(_atlas_image(atlas.fine, A.FINE_LO, A.FINE_SP), fine_ref, warp,
                                                   sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8))
    put = (carried >= 3) & (carried <= 16) & np.isin(F, _ORBIT_CONTENT)
    F[put] = carried[put]
    A.fill_orbit_fat(F, fine_lo, _ORBIT_CONTENT)
    model = A.OrbitModel(coarse=T, fine=F, globe_centre={}, globe_radius={}, nerve_mid={},
                         orbit_centre=np.array([centre[0], centre[1] + 12.0, centre[2]]),
                         coarse_lo=coarse_lo, fine_lo=fine_lo, template=number)
    A.finish_fine(model, peel_lateral=False)
    log.info("head %d: atlas muscles and nerves carried into the orbits", number)
    return model


def structure_volumes(model: A.OrbitModel) -> dict[str, float]:
    """cm^3 of each orbit-scheme structure of a model's fine map (eyeball with lens and sclera)."""
    gt = A.GT_LUT[model.fine]
    counts = np.bincount(gt.ravel(), minlength=17)
    return {str(v): float(counts[v] * A.FINE_SP ** 3 / 1000.0) for v in range(1, 17)}
