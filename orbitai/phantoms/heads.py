"""Scans rendered from 20 real whole-head label maps (SynthSeg's training maps): CT and MRI of any weighting.

``orbitai/data/synthseg_label_maps`` holds 20 people's heads at 1 mm (brain structures with FreeSurfer values, plus
extra-cerebral labels 502-530 that SynthSeg does not name). Their roles were read from where they lie (depth below
the skin, distance to the brain, look of each label on slices): 511 the skin and subcutaneous layer, 507 the soft
tissue of the head and neck (muscle and fat mixed), 515 the bone, 514 the marrow-like layer inside the skull, 516 fat
(orbital and other), 509 the nasal and pharyngeal airway, 506 the eyeballs and 508/530 the tissue behind them (nerve).

Each rendering draws, for one contrast (CT in Hounsfield units; MRI T1, T2, FLAIR or PD, with or without fat
suppression), tissue values around literature means, a smooth fat fraction through the soft tissue, partial volume,
noise, a bias field, a slice thickness along a random axis, a field of view (whole head, skull-stripped brain, an
orbit slab, a brain slab, a clinical head) and the way the values are stored (Hounsfield units, +1024, 8-bit
windows, 8/12/16-bit or float MRI with any scaling). :data:`HELD_OUT` heads are never used for training.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.bundle.registry import data_file
from orbitai.io import Volume

#: Head templates 1-20; these four are held out of every training (scan classifier, orbit and lesion synthesis).
TEMPLATES = tuple(range(1, 21))
HELD_OUT = (17, 18, 19, 20)
TRAINING = tuple(t for t in TEMPLATES if t not in HELD_OUT)

#: Tissue classes the renderer gives values to.
TISSUES = ("air", "wm", "gm", "deep_gm", "csf", "vitreous", "nerve", "fat", "muscle", "skin", "bone", "marrow",
           "airway")
_T = {name: i for i, name in enumerate(TISSUES)}

_LABEL_TISSUE = {0: "air", 24: "csf", 506: "vitreous", 508: "nerve", 530: "nerve", 507: "muscle", 511: "skin",
                 515: "bone", 514: "marrow", 516: "fat", 509: "airway", 502: "muscle", 512: "muscle",
                 16: "wm", 28: "wm", 60: "wm"}
_LABEL_TISSUE.update({v: "wm" for v in (2, 41, 7, 46)})
_LABEL_TISSUE.update({v: "gm" for v in (3, 42, 8, 47, 17, 18, 53, 54)})
_LABEL_TISSUE.update({v: "deep_gm" for v in (10, 49, 11, 50, 12, 51, 13, 52, 26, 58)})
_LABEL_TISSUE.update({v: "csf" for v in (4, 5, 14, 15, 43, 44)})
BRAIN_TISSUES = ("wm", "gm", "deep_gm", "csf")

#: Mean values: CT in HU; MRI relative to the brightest tissue (literature-typical spin-echo / inversion-recovery
#: contrasts at 1.5-3 T). Fat suppression replaces fat and marrow by FAT_SUPPRESSED.
MEANS: dict[str, dict[str, float]] = {
    "CT": dict(air=-1000, wm=28, gm=40, deep_gm=37, csf=6, vitreous=8, nerve=30, fat=-95, muscle=50, skin=45,
               bone=1100, marrow=350, airway=-850),
    "T1": dict(air=0, wm=0.78, gm=0.52, deep_gm=0.62, csf=0.15, vitreous=0.12, nerve=0.6, fat=1.0, muscle=0.38,
               skin=0.55, bone=0.04, marrow=0.85, airway=0.03),
    "T2": dict(air=0, wm=0.32, gm=0.45, deep_gm=0.38, csf=1.0, vitreous=1.0, nerve=0.4, fat=0.72, muscle=0.22,
               skin=0.45, bone=0.03, marrow=0.6, airway=0.03),
    "FLAIR": dict(air=0, wm=0.5, gm=0.66, deep_gm=0.58, csf=0.07, vitreous=0.08, nerve=0.55, fat=0.75, muscle=0.3,
                  skin=0.5, bone=0.03, marrow=0.65, airway=0.03),
    "PD": dict(air=0, wm=0.62, gm=0.78, deep_gm=0.72, csf=0.9, vitreous=0.9, nerve=0.65, fat=0.95, muscle=0.42,
               skin=0.65, bone=0.04, marrow=0.85, airway=0.03),
}
WEIGHTINGS = ("T1", "T2", "FLAIR", "PD")
FAT_SUPPRESSED = dict(fat=0.08, marrow=0.12)

#: Fields of view: name -> (orbits in view, brain in view).
VIEWS = {"head": (True, True), "brain_extracted": (False, True), "orbit_slab": (True, False),
         "brain_slab": (False, True), "clinical_head": (True, True), "dry_skull": (False, False)}


def template_path(number: int) -> Path:
    """The label map of head ``number`` (1-20)."""
    return data_file("synthseg_label_maps", f"training_seg_{number:02d}.nii.gz")


def head_labels(number: int, step: int = 2) -> Volume:
    """Head ``number``'s label map, every ``step``-th voxel (2 mm by default), as integers (read once per process
    and arguments, however they are spelled)."""
    return _head_labels(int(number), int(step))


@functools.lru_cache(maxsize=4)
def _head_labels(number: int, step: int) -> Volume:
    img = sitk.ReadImage(str(template_path(number)))
    vol = Volume.from_sitk(img)
    a = np.rint(vol.array[::step, ::step, ::step]).astype(np.int16)
    sx, sy, sz = (s * step for s in vol.spacing)
    return Volume(a, (sx, sy, sz), vol.origin, vol.direction)


def tissue_map(labels: np.ndarray) -> np.ndarray:
    """Tissue class index (:data:`TISSUES`) of every voxel; labels not listed count as muscle (soft tissue)."""
    lut = np.full(int(labels.max()) + 1, _T["muscle"], np.uint8)
    for value, tissue in _LABEL_TISSUE.items():
        if value < len(lut):
            lut[value] = _T[tissue]
    return lut[np.clip(labels, 0, None)]


@dataclass
class Rendering:
    """A rendered scan and what it truly is."""

    volume: Volume
    modality: str               # "CT" or "MR"
    weighting: str | None       # T1/T2/FLAIR/PD for MR
    fat_suppressed: bool | None
    view: str
    orbits_in_view: bool
    brain_in_view: bool
    storage: str
    template: int

    def truth(self) -> dict:
        """What the scan is; fat suppression is None (cannot be told) where no fat is in view."""
        fat_seen = self.fat_suppressed if self.view != "brain_extracted" else None
        return {"modality": self.modality, "weighting": self.weighting, "fat_suppressed": fat_seen,
                "view": self.view, "orbits_in_view": self.orbits_in_view, "brain_in_view": self.brain_in_view,
                "storage": self.storage, "template": self.template}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """A smooth random field in [0, 1] varying over about ``scale`` voxels."""
    small = rng.random(tuple(max(2, int(np.ceil(n / scale)) + 1) for n in shape))
    f = ndi.zoom(small, [n / s for n, s in zip(shape, small.shape)], order=1)[tuple(slice(0, n) for n in shape)]
    return np.clip(f, 0, 1)


def _axis_of(vol: Volume, physical: int) -> int:
    """The array axis (0..2, [z, y, x] order) most aligned with LPS axis ``physical``."""
    ijk = int(np.argmax(np.abs(vol.direction[physical, :])))
    return 2 - ijk


def _crop(tissue: np.ndarray, vol: Volume, view: str, rng: np.random.Generator) -> tuple[tuple[slice, ...], np.ndarray]:
    """The array slices of the field of view and the tissue map with what lies outside the view set to air."""
    t = tissue.copy()
    full = tuple(slice(0, n) for n in t.shape)
    if view == "brain_extracted":
        keep = np.isin(t, [_T[n] for n in BRAIN_TISSUES])
        keep = ndi.binary_opening(keep, iterations=1)
        t[~keep] = _T["air"]
        return full, t
    if view == "dry_skull":
        t[~np.isin(t, [_T["bone"], _T["marrow"]])] = _T["air"]
        return full, t
    if view == "head":
        return full, t
    si = _axis_of(vol, 2)
    sign = np.sign(vol.direction[2, 2 - si])          # +1: index grows toward superior
    eyes = np.argwhere(t == _T["vitreous"])
    if not len(eyes):
        return full, t
    sp = vol.spacing[2 - si]
    eye_lo, eye_hi = eyes[:, si].min(), eyes[:, si].max()
    centre = 0.5 * (eye_lo + eye_hi)
    n = t.shape[si]

    def span(below_mm: float, above_mm: float) -> slice:
        """Voxels from ``below_mm`` under to ``above_mm`` over the eyes' centre (superior is +)."""
        a, b = centre - sign * below_mm / sp, centre + sign * above_mm / sp
        lo, hi = int(max(0, min(a, b))), int(min(n, max(a, b) + 1))
        return slice(lo, hi)
    if view == "orbit_slab":
        sl = span(rng.uniform(15, 30), rng.uniform(15, 35))
    elif view == "brain_slab":
        sl = span(-rng.uniform(20, 35), rng.uniform(150, 200))
    else:                                              # clinical head: chin and neck cut off
        sl = span(rng.uniform(35, 60), rng.uniform(150, 200))
    index = [slice(None)] * 3
    index[si] = sl
    return tuple(index), t


def store_values(values: np.ndarray, modality: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The values as a scanner or a converter might store them, and how."""
    if modality == "CT":
        r = rng.random()
        if r < 0.4:
            return np.clip(np.rint(values), -1024, 3071).astype(np.int16), "int16 HU"
        if r < 0.6:
            return np.clip(np.rint(values + 1024), 0, 4095).astype(np.uint16), "uint16 HU+1024"
        if r < 0.7:
            return values.astype(np.float32), "float HU"
        if r < 0.85:
            centre, width = [(40, 80), (40, 400), (400, 2000), (600, 2800)][rng.integers(4)]
            v = (values - (centre - width / 2)) / width * 255
            return np.clip(np.rint(v), 0, 255).astype(np.uint8), f"uint8 window {centre}/{width}"
        a, b = rng.uniform(0.2, 5), rng.uniform(-2000, 2000)
        return (values * a + b).astype(np.float32), "float scaled"
    v = values / max(float(np.percentile(values, 99.9)), 1e-6)
    r = rng.random()
    if r < 0.2:
        return np.clip(np.rint(v * rng.uniform(150, 255)), 0, 255).astype(np.uint8), "uint8"
    if r < 0.5:
        return np.clip(np.rint(v * rng.uniform(1500, 4095)), 0, 4095).astype(np.int16), "12-bit"
    if r < 0.75:
        return np.clip(np.rint(v * rng.uniform(2000, 32000)), 0, 32767).astype(np.int16), "16-bit"
    scale, offset = 10 ** rng.uniform(-3, 3), rng.choice([0.0, 0.0, rng.uniform(-0.2, 0.2)])
    return ((v + offset) * scale).astype(np.float32), "float scaled"


def render_scan(template: int, rng: np.random.Generator, modality: str | None = None, weighting: str | None = None,
                fat_suppressed: bool | None = None, view: str | None = None, slice_mm: float | None = None,
                storage: bool = True) -> Rendering:
    """One random scan of head ``template`` (see the module docstring); any of the choices can be fixed."""
    labels = head_labels(template)
    modality = modality or ("CT" if rng.random() < 0.35 else "MR")
    if view is None:
        views = ["head", "brain_extracted", "orbit_slab", "brain_slab", "clinical_head"]
        p = [0.25, 0.15, 0.22, 0.15, 0.23]
        if modality == "CT":
            views, p = views + ["dry_skull"], [x * 0.93 for x in p] + [0.07]
        view = str(rng.choice(views, p=np.array(p) / sum(p)))
    tissue = tissue_map(labels.array)
    index, tissue = _crop(tissue, labels, view, rng)
    contrast = "CT"
    if modality == "MR":
        weighting = weighting or str(rng.choice(WEIGHTINGS, p=[0.3, 0.3, 0.25, 0.15]))
        fat_suppressed = bool(rng.random() < 0.3) if fat_suppressed is None else fat_suppressed
        contrast = weighting
    else:
        weighting, fat_suppressed = None, None
    means = dict(MEANS[contrast])
    if fat_suppressed:
        means.update(FAT_SUPPRESSED)
    values = np.zeros(len(TISSUES))
    spread = np.zeros(len(TISSUES))
    for name, mean in means.items():
        if contrast == "CT":
            jitter = {"bone": rng.uniform(-400, 500), "marrow": rng.uniform(-200, 150), "air": rng.uniform(-24, 20),
                      "airway": rng.uniform(-150, 100)}.get(name, rng.normal(0, 6))
            values[_T[name]] = mean + jitter
            spread[_T[name]] = {"bone": 150.0, "marrow": 80.0}.get(name, 8.0)
        else:
            values[_T[name]] = mean * float(np.exp(rng.normal(0, 0.12)))
            spread[_T[name]] = values[_T[name]] * rng.uniform(0.03, 0.1)
    img = values[tissue] + spread[tissue] * rng.standard_normal(tissue.shape)
    # soft tissue and skin: a smooth share of fat
    fat_share = _smooth_field(rng, tissue.shape, 6) * rng.uniform(0.2, 0.7)
    for name, weight in (("muscle", 1.0), ("skin", 1.3)):
        where = tissue == _T[name]
        share = np.clip(fat_share[where] * weight, 0, 1)
        img[where] = (1 - share) * img[where] + share * values[_T["fat"]]
    img = ndi.gaussian_filter(img, rng.uniform(0.4, 0.9))            # partial volume at 2 mm
    if modality == "MR":
        bias = np.exp((_smooth_field(rng, img.shape, 20) - 0.5) * rng.uniform(0, 0.6))
        img = img * bias
        sigma = rng.uniform(0.005, 0.04) * float(np.percentile(img, 99))
        img = np.hypot(img + sigma * rng.standard_normal(img.shape), sigma * rng.standard_normal(img.shape))
    else:
        img = img + rng.uniform(3, 25) * rng.standard_normal(img.shape)
    img = img[index]
    spacing = list(labels.spacing)
    origin = np.array(labels.origin, float)
    start = [s.start or 0 for s in index]
    origin = origin + labels.direction @ (np.array(start[::-1], float) * np.array(spacing))
    slice_mm = slice_mm if slice_mm is not None else float(rng.choice([2.0, 2.0, 4.0, 6.0]))
    factor = max(1, int(round(slice_mm / spacing[0])))
    if factor > 1:                                   # thick slices along a random axis: block averages
        axis = int(rng.integers(3))
        n = img.shape[axis] // factor * factor
        img = np.take(img, np.arange(n), axis=axis)
        shape = list(img.shape)
        shape[axis:axis + 1] = [n // factor, factor]
        img = img.reshape(shape).mean(axis=axis + 1)
        spacing[2 - axis] *= factor
    kind = "float HU" if modality == "CT" else "float"
    if storage:
        img, kind = store_values(img, modality, rng)
    vol = Volume(img, (spacing[0], spacing[1], spacing[2]), (origin[0], origin[1], origin[2]), labels.direction)
    orbits, brain = VIEWS[view]
    return Rendering(vol, modality, weighting, fat_suppressed, view, orbits, brain, kind, template)
