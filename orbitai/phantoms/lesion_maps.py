"""Lesion phantoms from real lesion maps placed in real brains (brain FLAIR with exact lesion masks).

* **Lesion maps**: the three-rater consensus white-matter lesion masks of 27 MS patients of Lesjak et al. (2017), in
  MNI space (``orbitai/data/ms_lesion_masks_lesjak``; patient 26's own map is left out: its FLAIR is the real final
  check). They are split by rank of load into training, validation and test maps (:func:`map_split`), so that no
  held-out map is ever drawn in training.
* **Brains**: the 20 real brains of SynthSeg's label maps (:mod:`orbitai.phantoms.heads`; heads 17-18 validation,
  19-20 test, the rest training) and patient 26's MNI FLAIR with its lesions inpainted (brain 0, training).
* **Placement**: each brain is registered once to the MNI FLAIR (:mod:`orbitai.preprocess.registration`: affine on a
  FLAIR-like rendering, then demons on the distance maps of the ventricles and the brain surface), and a case's map
  (one map, two maps mixed, or a subset of one map's lesions; mirrored left-right at random; a random affine of up to
  6 degrees, 10 % and 3 mm) is pulled onto the brain through it. Lesion voxels are kept in white matter, deep grey
  matter, cortex within 2 mm of white matter and the ventricles' 2 mm wall zone (a lesion pushes the ventricle wall
  back); none in the sulcal CSF or outside the brain.
* **FLAIR**: SynthSeg brains are rendered with FLAIR tissue contrasts drawn per case (grey/white 1.05-1.3, CSF
  0.08-0.3 of white matter, a bright ependymal lining), texture and partial volume; lesions take a contrast drawn
  from patient 26's real lesions (median over each lesion 1.2-1.5 x white matter, measured at run time from the
  shipped FLAIR and mask) with a sharp partial-volume border (the real profile rises from 1.05 to 1.40 across one
  voxel). A noisy case adds a bias field, Rician noise and, with ``slice_mm``, a thick-slice acquisition. With
  ``regional`` the lesion-free brain has a normal FLAIR's regional brightness too (:func:`_regional`).

Hand-written rather than SynthSeg's generator (TensorFlow, GPU-oriented) so that a phantom is one numpy pass on
two CPU cores; the registrations use SimpleITK.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.io import Volume
from orbitai.phantoms.atlas import data_path
from orbitai.phantoms.brain import _template
from orbitai.phantoms.heads import HELD_OUT, TRAINING, template_path
from orbitai.phantoms.orbit import PhantomCase
from orbitai.preprocess.registration import affine_register, as_image, demons_refine
from orbitai.preprocess.resolution import thick_slices

MAP_FOLDER = "ms_lesion_masks_lesjak"
#: patient 26's map: its FLAIR is the project's one real labelled case (the final check), so its map is never drawn.
FINAL_CHECK_MAP = 26
#: Brains of each split: SynthSeg heads by number, 0 = patient 26's inpainted MNI FLAIR.
BRAINS = {"training": (0,) + TRAINING, "validation": HELD_OUT[:2], "test": HELD_OUT[2:]}
LOADS = ("light", "heavy")
LIGHT_MAX_ML = 5.0
HEAVY_MIN_ML = 30.0

# SynthSeg label values -> tissue code
OUT, WM, GM, DEEP, VENT, CSF = 0, 1, 2, 3, 4, 5
_WM_LABELS = (2, 41, 7, 46, 16, 28, 60, 25, 57, 85)
_GM_LABELS = (3, 42, 8, 47, 17, 18, 53, 54)
_DEEP_LABELS = (10, 49, 11, 50, 12, 51, 13, 52, 26, 58)
_VENT_LABELS = (4, 5, 43, 44, 14, 15)
#: SynthSeg labels that a normal FLAIR shows brighter than the rest of their tissue (hippocampus, amygdala, the
#: ventral diencephalon with the hypothalamus and optic tracts): where real FLAIRs give false lesions (issue 77,
#: patient 26's false components in the mesial temporal lobe, the insula and around the third ventricle)
BRIGHT_LABELS = (17, 53, 18, 54, 28, 60)


def map_ids() -> tuple[int, ...]:
    """The patients whose lesion maps are shipped (26 included)."""
    folder = data_path(MAP_FOLDER)
    return tuple(sorted(int(m.group(1)) for p in folder.iterdir()
                        if (m := re.fullmatch(r"patient(\d+)_lesionmask_MNI\.nii\.gz", p.name))))


@functools.lru_cache(maxsize=32)
def lesion_map(patient: int) -> np.ndarray:
    """Patient ``patient``'s lesion mask on the MNI grid (bool [z, y, x], read-only)."""
    img = sitk.ReadImage(str(data_path(MAP_FOLDER, f"patient{patient:02d}_lesionmask_MNI.nii.gz")))
    a = sitk.GetArrayFromImage(img) > 0
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=1)
def map_volumes() -> dict[int, float]:
    """Lesion load (mL) of every shipped map."""
    return {p: float(lesion_map(p).sum()) * 1e-3 for p in map_ids()}


@functools.lru_cache(maxsize=1)
def map_split() -> dict[str, tuple[int, ...]]:
    """Maps by split: ranked by load (patient 26 left out), every third from the second is held out, alternately
    for validation and test, so each split spans light to heavy loads."""
    vols = map_volumes()
    ranked = sorted((p for p in vols if p != FINAL_CHECK_MAP), key=lambda p: (vols[p], p))
    held = ranked[1::3]
    return {"training": tuple(sorted(p for p in ranked if p not in held)),
            "validation": tuple(sorted(held[0::2])), "test": tuple(sorted(held[1::2]))}


@dataclass
class BrainTemplate:
    """One brain on its own 1 mm LAS grid (cropped to the brain), ready to receive lesion maps."""

    number: int
    tissue: np.ndarray           # uint8 tissue codes (OUT, WM, GM, DEEP, VENT, CSF)
    background: np.ndarray | None  # patient 26's inpainted FLAIR (brain 0); None: rendered per case
    allowed: np.ndarray          # bool: where a lesion voxel may lie
    ventricle_distance: np.ndarray  # mm from the ventricles (float32)
    grid: sitk.Image             # the grid's geometry
    to_mni: sitk.Transform       # brain points -> MNI points
    #: bool: structures that are brighter than their tissue on a normal FLAIR (:data:`BRIGHT_LABELS`); None for brain 0
    bright: np.ndarray | None = None


def _mni_reference() -> tuple[sitk.Image, dict]:
    T = _template()
    ref = sitk.ReadImage(str(data_path("ms_flair_lesjak", "cs_patient26_FLAIR_MNI.nii.gz")))
    return ref, T


def _distance_map(vent: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Distance to the ventricles (clipped, signed) plus depth below the brain surface (clipped): what demons
    aligns between two brains."""
    dv = np.minimum(ndi.distance_transform_edt(~vent), 15) - np.minimum(ndi.distance_transform_edt(vent), 5)
    db = np.minimum(ndi.distance_transform_edt(brain), 15)
    return (dv + 15 - db).astype(np.float32)


def _allowed(tissue: np.ndarray) -> np.ndarray:
    wm = tissue == WM
    near_wm = ndi.binary_dilation(wm, iterations=2)
    vent = tissue == VENT
    wall = vent & ~ndi.binary_erosion(vent, iterations=2)
    return wm | (tissue == DEEP) | ((tissue == GM) & near_wm) | wall


@functools.lru_cache(maxsize=21)
def brain_template(number: int) -> BrainTemplate:
    """Brain ``number`` (0: patient 26's MNI FLAIR; 1-20: SynthSeg heads), registered to MNI once per process."""
    ref, T = _mni_reference()
    if number == 0:
        brain = T["brain"]
        tissue = np.where(brain, WM, OUT).astype(np.uint8)
        tissue[T["vent"]] = VENT
        allowed = brain & ~(T["vent"] & ndi.binary_erosion(T["vent"], iterations=2))
        bg = np.where(tissue > 0, np.maximum(T["image"], 0), 0).astype(np.float32) / float(T["wm"])
        return BrainTemplate(0, tissue, bg, allowed, ndi.distance_transform_edt(~T["vent"]).astype(np.float32),
                             ref, sitk.Transform(3, sitk.sitkIdentity))
    img = sitk.DICOMOrient(sitk.Cast(sitk.ReadImage(str(template_path(number))), sitk.sitkInt16), "LAS")
    a = sitk.GetArrayFromImage(img)
    tissue = np.zeros(a.shape, np.uint8)
    for code, labels in ((WM, _WM_LABELS), (GM, _GM_LABELS), (DEEP, _DEEP_LABELS), (VENT, _VENT_LABELS)):
        tissue[np.isin(a, labels)] = code
    parenchyma = tissue > 0
    tissue[(a == 24) & ndi.binary_dilation(parenchyma, iterations=2) & ~parenchyma] = CSF
    idx = np.argwhere(tissue > 0)
    lo, hi = np.maximum(idx.min(0) - 4, 0), np.minimum(idx.max(0) + 5, a.shape)
    box = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi))
    tissue = tissue[box]
    bright = np.isin(a[box], BRIGHT_LABELS)
    grid = sitk.RegionOfInterest(img, [int(hi[2] - lo[2]), int(hi[1] - lo[1]), int(hi[0] - lo[0])],
                                 [int(lo[2]), int(lo[1]), int(lo[0])])
    brain = tissue > 0
    vent = tissue == VENT
    # register: a FLAIR-like rendering of this brain to patient 26's inpainted FLAIR, then the ventricles and surface
    pseudo = np.choose(tissue, [0.0, 50.0, 66.0, 58.0, 7.0, 7.0]).astype(np.float32)
    fixed = as_image(ndi.gaussian_filter(pseudo, 0.7) * brain, grid)
    moving = as_image(T["image"].astype(np.float32), ref)
    affine = affine_register(fixed, as_image(brain.astype(np.uint8), grid), moving,
                             as_image(T["brain"].astype(np.uint8), ref))
    to_mni = demons_refine(as_image(_distance_map(vent, brain), grid),
                           as_image(_distance_map(T["vent"], ndi.binary_fill_holes(T["brain"])), ref), affine)
    return BrainTemplate(number, tissue, None, _allowed(tissue),
                         ndi.distance_transform_edt(~vent).astype(np.float32), grid, to_mni, bright)


@functools.lru_cache(maxsize=1)
def real_lesion_gains() -> np.ndarray:
    """Median FLAIR of each real lesion of patient 26 over its white-matter level (lesions of >= 8 voxels)."""
    ref, T = _mni_reference()
    raw = sitk.GetArrayFromImage(ref).astype(np.float32)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(data_path("ms_flair_lesjak",
                                                               "cs_patient26_lesionmask_MNI.nii.gz")))) > 0
    lab, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    sizes = ndi.sum(mask, lab, range(1, n + 1))
    med = ndi.median(raw, lab, range(1, n + 1))
    return np.asarray(med, float)[np.asarray(sizes) >= 8] / float(T["wm"])


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def _regional(t: BrainTemplate, rng: np.random.Generator) -> np.ndarray:
    """A normal FLAIR's regional gain (1 = none): grey matter brighter in some regions than in others (the insula and
    cingulate are, on real FLAIRs), the :data:`BRIGHT_LABELS` structures brighter than their tissue, and a faint
    unevenness of the white matter (the corticospinal tracts); none of it a lesion. Its own generator ``rng``, so
    that a case's other draws are those of a plain rendering."""
    shape = t.tissue.shape
    gain = np.ones(shape, np.float32)
    gm = t.tissue == GM
    gain[gm] += np.float32(rng.uniform(0.04, 0.10)) * _smooth_noise(rng, shape, 5.0)[gm]
    if t.bright is not None:
        gain[t.bright] *= np.float32(rng.uniform(1.0, 1.15))
    wm = t.tissue == WM
    gain[wm] += np.float32(rng.uniform(0.0, 0.04)) * _smooth_noise(rng, shape, 4.0)[wm]
    return np.clip(gain, 0.8, 1.4)


def _render_brain(t: BrainTemplate, rng: np.random.Generator, regional: np.random.Generator | None = None
                  ) -> np.ndarray:
    """A lesion-free FLAIR of the brain, white matter = 1; ``regional``: a generator for a normal FLAIR's regional
    brightness (:func:`_regional`), None for uniform tissues."""
    if t.background is not None:
        return t.background * np.float32(rng.normal(1.0, 0.02))     # zero outside the brain
    gm = rng.uniform(1.05, 1.3)
    values = np.array([0.0, 1.0, gm, rng.uniform(1.0, min(gm, 1.2)), rng.uniform(0.08, 0.3), 0.0], np.float32)
    values[CSF] = values[VENT] * rng.uniform(0.9, 1.3)
    img = values[t.tissue]
    if regional is not None:
        img = img * _regional(t, regional)
    # a bright ependymal lining, fading over a few mm from the ventricles
    lining = rng.uniform(0.0, 0.15) * np.exp(-t.ventricle_distance / rng.uniform(1.5, 3.0))
    img = img * (1 + lining * (t.tissue == WM))
    img = img * (1 + rng.uniform(0.01, 0.05) * _smooth_noise(rng, img.shape, 2.0))
    img = ndi.gaussian_filter(img, rng.uniform(0.4, 0.8))
    return np.where(t.tissue > 0, np.maximum(img, 0.02), 0).astype(np.float32)


def _choose_maps(rng: np.random.Generator, split: str, load: str | None, given: tuple[int, ...] | None = None
                 ) -> tuple[np.ndarray, dict]:
    """The case's MNI lesion map (float) and how it was made (``given``: these maps together, as they are)."""
    maps = map_split()[split]
    vols = map_volumes()
    if given:
        chosen, mode = [int(p) for p in given], "natural" if len(given) == 1 else "mixed"
    elif load == "heavy":
        heavy = [p for p in maps if vols[p] > 20]
        chosen = [int(rng.choice(heavy or maps))]
        while sum(vols[p] for p in chosen) < 40 and len(chosen) < len(maps):
            chosen.append(int(rng.choice([p for p in maps if p not in chosen])))
        mode = "mixed" if len(chosen) > 1 else "natural"
    elif load == "light":
        chosen, mode = [int(rng.choice(maps))], "subset"
    else:
        mode = str(rng.choice(["natural", "mixed", "subset"], p=[0.5, 0.25, 0.25]))
        chosen = [int(p) for p in rng.choice(maps, size=2 if mode == "mixed" else 1, replace=False)]
    m = np.zeros(lesion_map(chosen[0]).shape, bool)
    for p in chosen:
        m |= lesion_map(p)
    if mode == "subset":
        lab, n = ndi.label(m, np.ones((3, 3, 3), bool))
        target = rng.uniform(0.2, 4.5) if load == "light" else rng.uniform(0.2, 1.0) * m.sum() * 1e-3
        sizes = np.bincount(lab.ravel())[1:]
        keep: list[int] = []
        total = 0.0
        for k in rng.permutation(n):
            if total + sizes[k] * 1e-3 <= target or not keep:
                keep.append(k + 1)
                total += sizes[k] * 1e-3
        m = np.isin(lab, keep)
    if rng.random() < 0.5:                     # mirrored left-right (x = 90 - i: i -> 180 - i)
        m = np.concatenate([m[:, :, :1], m[:, :, :0:-1]], axis=2)
    return m.astype(np.float32), {"maps": chosen, "mode": mode}


def _random_affine(rng: np.random.Generator) -> sitk.AffineTransform:
    tx = sitk.AffineTransform(3)
    tx.SetCenter((0.0, -18.0, 18.0))
    ang = np.radians(rng.uniform(-6, 6, 3))
    rot = sitk.Euler3DTransform((0, 0, 0), *ang).GetMatrix()
    scale = np.diag(rng.uniform(0.9, 1.1, 3))
    tx.SetMatrix(tuple((np.array(rot).reshape(3, 3) @ scale).ravel()))
    tx.SetTranslation(tuple(rng.uniform(-3, 3, 3)))
    return tx


def _case_rng(seed: int) -> np.random.Generator:
    """The generator of case ``seed`` (`render_case`): its first draw is the brain."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 4747]))


def case_brain(seed: int, split: str = "training") -> int:
    """The brain that `render_case` draws case ``seed`` of ``split`` on (without rendering it): a batch of cases can
    then be grouped by brain, so each brain is registered to MNI once per process (`brain_template`)."""
    return int(_case_rng(seed).choice(BRAINS[split]))


def render_case(seed: int, split: str = "training", load: str | None = None, brain: int | None = None,
                maps: tuple[int, ...] | None = None, regional: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, sitk.Image, dict]:
    """Noise-free (image, lesion-free image, lesion mask, grid, info) of one case; white matter = 1. ``brain`` and
    ``maps`` fix the brain and the lesion maps (else drawn from ``split``'s); ``regional``: a normal FLAIR's regional
    brightness in the lesion-free brain (:func:`_regional`; the case's other draws unchanged)."""
    if split not in BRAINS:
        raise ValueError(f"split must be one of {sorted(BRAINS)}, got {split!r}")
    if load not in (None,) + LOADS:
        raise ValueError(f"load must be one of {LOADS} or None, got {load!r}")
    rng = _case_rng(seed)
    number = int(rng.choice(BRAINS[split])) if brain is None else int(brain)
    t = brain_template(number)
    mni, how = _choose_maps(rng, split, load, maps)
    ref, _ = _mni_reference()
    warp = sitk.CompositeTransform(_random_affine(rng))
    warp.AddTransform(t.to_mni)                          # applied first: brain -> MNI, then the random affine
    soft = sitk.GetArrayFromImage(sitk.Resample(as_image(mni, ref), t.grid, warp, sitk.sitkLinear, 0.0))
    drawn = soft > 0.5
    label = drawn & t.allowed
    bg = _render_brain(t, rng, np.random.default_rng(np.random.SeedSequence([int(seed), 7712])) if regional else None)
    lab, n = ndi.label(label, np.ones((3, 3, 3), bool))
    gains = real_lesion_gains()
    g = np.concatenate([[0.0], rng.choice(gains, n) * np.exp(rng.normal(0, 0.05, n))]).astype(np.float32)
    value = g[lab] * (1 + 0.04 * _smooth_noise(rng, label.shape, 1.5))
    p = ndi.gaussian_filter(label.astype(np.float32), rng.uniform(0.35, 0.6))
    p = np.where(label, np.maximum(p, 0.85), p) * (t.tissue > 0)
    # the lesion's value inside, the border's value from the nearest lesion voxel
    near = ndi.distance_transform_edt(~label, return_distances=False, return_indices=True) if n else None
    if near is not None:
        value = value[tuple(near)]
    img = np.where(t.tissue > 0, (1 - p) * bg + p * value, 0).astype(np.float32)
    info = {"seed": int(seed), "split": split, "brain": number, **how, "n_lesions": int(n),
            "lesion_volume_ml": round(float(label.sum()) * 1e-3, 4),
            "kept_share": round(float(label.sum()) / max(float(drawn.sum()), 1.0), 4), "regional": bool(regional)}
    return img, bg, label.astype(np.uint8), t.grid, info


def real_lesion_case(seed: int, split: str = "training", load: str | None = None, noise: bool = True,
                     slice_mm: float | None = None, brain: int | None = None, maps: tuple[int, ...] | None = None,
                     regional: bool = False) -> PhantomCase:
    """One FLAIR phantom (brain-extracted, 1 mm) with a real lesion map on a real brain; labels = lesion mask.

    ``load`` ``"light"`` draws a subset of one map's lesions (< 5 mL before placement), ``"heavy"`` one or more
    heavy maps together; ``noise`` adds a bias field and Rician noise; ``slice_mm`` simulates axial slices that thick
    (partial volume, resampled back to 1 mm); ``brain``, ``maps``, ``regional``: see :func:`render_case`."""
    img, _, label, grid, info = render_case(seed, split, load, brain, maps, regional)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 4748]))
    inside = img > 0
    img = img * np.float32(100.0 * rng.uniform(0.7, 1.5))
    if slice_mm is not None:
        img = thick_slices(img, rng, float(slice_mm)) * inside
        info["slice_mm"] = float(slice_mm)
    if noise:
        bias = np.exp(rng.uniform(0, 0.25) * _smooth_noise(rng, img.shape, 30.0))
        s = np.float32(rng.uniform(1.0, 3.0))
        n1 = rng.standard_normal(img.shape, dtype=np.float32)
        n2 = rng.standard_normal(img.shape, dtype=np.float32)
        img = np.sqrt((img * bias + s * n1) ** 2 + (s * n2) ** 2) * inside
    image = Volume.from_sitk(as_image(img.astype(np.float32), grid))
    labels = image.with_array(label)
    return PhantomCase(image, labels, info)
