"""Orbital CT / MRI phantoms: a randomly deformed atlas head rendered per modality.

One case = one seed. The atlas tissue model (:mod:`orbitai.phantoms.atlas`) is pulled back
through a per-case transform (global affine: head size, pose; elastic: smooth random field on a
coarse grid; local: globe size, optic-nerve course), per-muscle thickening is applied to the
tissue map, and each tissue gets an intensity for the modality (CT in HU; T2 with fat
suppression as in T2-SPIR; T1), then texture, partial-volume blur (in-plane PSF and slice
thickness), an MRI bias field and noise (Gaussian for CT, Rician for MRI).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.errors import InputError
from orbitai.io import Volume, rotation
from orbitai.phantoms import atlas as A
from orbitai.phantoms.head_orbits import head_codes, head_orbit_model
from orbitai.phantoms.orbit_geometry import Acquisition, sample_geometry

MODALITIES = ("ct", "t2", "t1")
RECTI_VALUES = {"superior": (5, 6), "inferior": (7, 8), "medial": (9, 10), "lateral": (11, 12)}
MUSCLE_VALUES = tuple(range(5, 17))

# tissue -> (mean, texture sd) per modality. CT in HU; MRI in arbitrary units (vitreous ~ 1000 on T2).
_T = A
_BASE = {
    "ct": {0: (-1000, 0), 1: (12, 4), 2: (12, 4), 3: (32, 5), 4: (32, 5), **{v: (52, 6) for v in MUSCLE_VALUES},
           _T.LENS_L: (115, 6), _T.LENS_R: (115, 6), _T.SCLERA_L: (55, 5), _T.SCLERA_R: (55, 5),
           _T.FAT: (-100, 12), _T.BONE: (1100, 220), _T.AIR: (-960, 15), _T.SOFT: (42, 10), _T.MUSCLE: (50, 8),
           _T.GM: (38, 4), _T.WM: (28, 4), _T.CSF: (6, 4), _T.NEURAL: (32, 4)},
    "t2": {0: (0, 0), 1: (1000, 25), 2: (1000, 25), 3: (330, 25), 4: (330, 25), **{v: (190, 18) for v in MUSCLE_VALUES},
           _T.LENS_L: (90, 10), _T.LENS_R: (90, 10), _T.SCLERA_L: (70, 10), _T.SCLERA_R: (70, 10),
           _T.FAT: (95, 25), _T.BONE: (25, 10), _T.AIR: (8, 4), _T.SOFT: (240, 35), _T.MUSCLE: (180, 20),
           _T.GM: (470, 25), _T.WM: (330, 20), _T.CSF: (1050, 30), _T.NEURAL: (340, 20)},
    "t1": {0: (0, 0), 1: (160, 10), 2: (160, 10), 3: (470, 20), 4: (470, 20), **{v: (400, 20) for v in MUSCLE_VALUES},
           _T.LENS_L: (520, 15), _T.LENS_R: (520, 15), _T.SCLERA_L: (330, 15), _T.SCLERA_R: (330, 15),
           _T.FAT: (950, 40), _T.BONE: (60, 20), _T.AIR: (10, 5), _T.SOFT: (430, 40), _T.MUSCLE: (390, 25),
           _T.GM: (470, 20), _T.WM: (620, 20), _T.CSF: (130, 15), _T.NEURAL: (580, 20)},
}



def _table(vitreous, fat, muscle, nerve, csf, gm, wm, soft, lens, sclera) -> dict[int, tuple[float, float]]:
    return {0: (0, 0), 1: (vitreous, 25), 2: (vitreous, 25), 3: (nerve, 25), 4: (nerve, 25),
            **{v: (muscle, 18) for v in MUSCLE_VALUES}, _T.LENS_L: (lens, 10), _T.LENS_R: (lens, 10),
            _T.SCLERA_L: (sclera, 10), _T.SCLERA_R: (sclera, 10), _T.FAT: (fat, 60), _T.BONE: (40, 10),
            _T.AIR: (8, 4), _T.SOFT: (soft, 35), _T.MUSCLE: (muscle, 20), _T.GM: (gm, 25), _T.WM: (wm, 20),
            _T.CSF: (csf, 30), _T.NEURAL: (nerve, 20)}


#: Clinical brain-protocol contrasts the T1/T2 tables above do not render, for ``orbit_case(contrast=...)``:
#: T2 and FLAIR without fat suppression (fat bright, muscle dark), and globes as bright as the fat around them.
CONTRASTS: dict[str, dict[int, tuple[float, float]]] = {
    "t2_no_fat_suppression": _table(1400, 850, 220, 420, 1450, 650, 480, 500, 150, 120),
    "flair": _table(180, 900, 300, 500, 120, 700, 520, 500, 250, 200),
    "flair_iso_globe": _table(700, 750, 300, 500, 120, 700, 520, 500, 250, 150),
    "t2_iso_globe": _table(900, 850, 220, 420, 1450, 650, 480, 500, 150, 120),
}

@dataclass
class PhantomCase:
    """One synthetic case: image and label map on the same grid, and what was drawn."""

    image: Volume
    labels: Volume
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendering:
    """How a case's image is rendered: ``domain_random`` draws a random intensity per tissue, resolution, bias and
    noise (SynthSeg-style, float image); else the modality's tissue table, or ``contrast`` (MRI only: a tissue ->
    (mean, texture sd) table replacing it, e.g. a T2 without fat suppression, see :data:`CONTRASTS`), with ``noise``."""

    domain_random: bool = False
    noise: bool = True
    contrast: dict[int, tuple[float, float]] | None = None


def _smooth_field(rng, shape, n_ctrl, out_shape=None) -> np.ndarray:
    """Smooth random field: normal noise on a coarse control grid, cubic-upsampled."""
    ctrl = rng.standard_normal(n_ctrl).astype(np.float32)
    out_shape = out_shape or shape
    return ndi.zoom(ctrl, [o / c for o, c in zip(out_shape, n_ctrl)], order=3, mode="nearest",
                    grid_mode=True)[: out_shape[0], : out_shape[1], : out_shape[2]]


def _params(rng, tao, ivgc):
    """Per-muscle oedema (0 = none) and fibrosis (0..1) and thickening (mm)."""
    oed = np.zeros(17)
    fib = np.zeros(17)
    thick = np.zeros(17)
    base_thick = rng.normal(0.0, 0.12)
    for v in MUSCLE_VALUES:
        thick[v] = max(0.0, base_thick + rng.normal(0, 0.1))
    state = None
    if tao in ("active", "inactive"):
        state = tao
        act = tao == "active"
        level = rng.normal(0.55, 0.3) if act else rng.normal(0.22, 0.3)
        fibrosis = rng.uniform(0.0, 0.25) if act else rng.uniform(0.2, 0.9)
        enlarge = rng.gamma(4.0, 0.32) if act else rng.gamma(3.0, 0.32)
        for v in MUSCLE_VALUES:
            w = 1.0 if v <= 12 else 0.5
            oed[v] = max(0.0, level + rng.normal(0, 0.12)) * w
            fib[v] = np.clip(fibrosis + rng.normal(0, 0.1), 0, 1)
            thick[v] += max(0.0, enlarge * w * rng.uniform(0.6, 1.4))
        # inactive fibrotic muscles: signal lowered by fibrosis
    elif ivgc in (0, 1):
        state = "responder" if ivgc == 1 else "non_responder"
        resp = ivgc == 1
        for v in MUSCLE_VALUES:
            mrlr = v in (9, 10, 11, 12)
            if v > 12:
                mu_o, mu_f = 0.3, 0.3
            elif mrlr:
                mu_o, mu_f = (0.55, 0.2) if resp else (0.32, 0.5)
            else:
                mu_o, mu_f = (0.45, 0.28) if resp else (0.38, 0.38)
            oed[v] = max(0.0, rng.normal(mu_o, 0.3))
            fib[v] = float(np.clip(rng.normal(mu_f, 0.2), 0, 1))
            thick[v] += max(0.0, rng.gamma(3.0, 0.35))
    return oed, fib, thick, state


def template_model(template: int = 0) -> A.OrbitModel:
    """The anatomy a case is drawn from: 0 the SPL/NAC atlas, 1-20 a SynthSeg head with the atlas's muscles and
    nerves carried into its orbits (:mod:`orbitai.phantoms.head_orbits`)."""
    if template == 0:
        return A.orbit_model()
    return head_orbit_model(int(template))


def _belly(m: A.MuscleGeom) -> np.ndarray:
    """Thickening profile along a muscle (0..1): a fusiform belly, the tendon spared."""
    return np.maximum(np.sin(np.pi * np.clip(m.s * 1.1 - 0.02, 0, 1)), 0) ** 0.8


def _thicken(model: A.OrbitModel, thick: np.ndarray) -> np.ndarray:
    out = model.fine.copy()
    for m in model.muscles:
        t = thick[m.value]
        if t <= 0.05:
            continue
        prof = _belly(m)
        sub = out[m.box]
        grow = (m.dist_out <= t * prof) & ((sub == A.FAT) | (sub == A.SOFT))
        sub[grow] = m.value
    return out


def _scale_muscles(model: A.OrbitModel, thick: np.ndarray, muscle_scale: float | dict[int, float]) -> None:
    """Set the thickening (mm) of each rectus (or of each muscle value ``muscle_scale`` maps) so that its volume
    on the atlas grid becomes ``muscle_scale`` times the atlas's (bisection; at most 4 mm: about 3.5x), as in
    thyroid eye disease (:func:`ted_case`)."""
    for m in model.muscles:
        k = muscle_scale.get(m.value, 1.0) if isinstance(muscle_scale, dict) else (
            float(muscle_scale) if m.value <= 12 else 1.0)
        if k <= 1.0:
            continue
        sub = model.fine[m.box]
        base = np.count_nonzero(sub == m.value)
        free, prof = (sub == A.FAT) | (sub == A.SOFT), _belly(m)
        lo, hi = 0.0, 4.0
        for _ in range(16):
            t = (lo + hi) / 2
            lo, hi = (t, hi) if base + np.count_nonzero((m.dist_out <= t * prof) & free) < k * base else (lo, t)
        thick[m.value] = hi


@dataclass
class Anatomy:
    """One deformed atlas head on an acquisition grid, before any intensity is drawn.

    ``tissue`` holds tissue codes (:mod:`orbitai.phantoms.atlas`) on ``nsub`` sub-slices per slice
    (partial volume through thick slices), ``bias`` a smooth field on the same grid, ``labels`` the
    orbit-scheme ground truth on the slices themselves."""

    tissue: np.ndarray
    bias: np.ndarray
    labels: np.ndarray
    nsub: int
    spacing: tuple[float, float, float]
    origin: Any               # LPS mm of the first voxel (3,)
    direction: np.ndarray
    orientation: str
    size: tuple[int, int, int]
    oblique_deg: float
    head_scale: np.ndarray
    oedema: np.ndarray
    fibrosis: np.ndarray
    thickening: np.ndarray
    state: str | None
    local: dict[str, Any]


#: An acquisition left wholly to the draw (`sample_geometry`).
DRAWN = Acquisition()


def orbit_anatomy(rng: np.random.Generator, modality: str = "ct", domain_random: bool = False,
                  tao: str | None = None, ivgc: int | None = None, acquisition: Acquisition = DRAWN,
                  template: int = 0, muscle_scale: float | dict[int, float] | None = None) -> Anatomy:
    """Draw the acquisition (what ``acquisition`` leaves open) and the per-case anatomy (see :func:`orbit_case`) from
    ``rng``; the tissue map is what label-to-image synthesis renders (:func:`orbit_case`, or random contrasts
    for segmentation training in :mod:`orbitai.orbit.synth`). ``template``: see :func:`template_model`;
    ``muscle_scale``: the recti enlarged to that many times their volume (:func:`ted_case`)."""
    orientation, size, spacing, oblique = acquisition.orientation, acquisition.size, acquisition.spacing, \
        acquisition.oblique
    model = template_model(template)
    if domain_random and spacing is None:
        spacing = (rng.uniform(0.4, 1.0),) * 2 + (rng.uniform(0.5, 3.5),)
    orientation, sp, size, D, ang = sample_geometry(rng, modality, orientation, size, spacing, oblique)
    nx, ny, nz = size
    # ---- per-case anatomy transform (output physical -> atlas physical)
    scale = rng.uniform(0.96, 1.03) * (1 + rng.normal(0, 0.01, 3))
    R = rotation(*np.radians(rng.normal(0, [3.0, 3.0, 3.0])))
    Ainv = np.diag(1.0 / scale) @ R.T
    c_atlas = model.orbit_centre + np.array([0.0, rng.normal(-4, 2), rng.normal(0, 2)])
    c_pat = c_atlas + rng.normal(0, 3, 3)
    # acquisition grid (sub-slices for partial volume through thick slices)
    nsub = 1 if sp[2] <= 1.2 * sp[0] + 0.3 else 3
    nzr = nz * nsub
    sp_r = np.array([sp[0], sp[1], sp[2] / nsub])
    centre_idx = (np.array([nx, ny, nz]) - 1) / 2.0
    origin = c_pat - D @ (np.array(sp) * centre_idx)
    origin_r = origin + D[:, 2] * (-(nsub - 1) / 2.0 * sp_r[2])
    # coarse grid of the pull-back map
    step = np.array([8, 8, max(1, min(4, nzr // 8))])
    ncz = int(np.ceil((nzr - 1) / step[2])) + 1
    ncy = int(np.ceil((ny - 1) / step[1])) + 1
    ncx = int(np.ceil((nx - 1) / step[0])) + 1
    kk, jj, ii = np.meshgrid(np.arange(ncz) * step[2], np.arange(ncy) * step[1], np.arange(ncx) * step[0],
                             indexing="ij")
    ijk = np.stack([ii, jj, kk], -1).astype(np.float64) * sp_r
    P = origin_r + ijk @ D.T                                  # LPS of the case
    Q = c_atlas + (P - c_pat) @ Ainv.T                        # affine pull-back to the atlas
    # elastic: smooth field in the atlas frame sampled at Q (amplitude ~1.5 mm)
    amp = rng.uniform(0.8, 2.0)
    ctrl = rng.standard_normal((3, 6, 6, 6)).astype(np.float32) * amp
    lo = model.orbit_centre - 75.0
    u = (Q - lo) / 150.0 * 5.0
    disp = np.stack([ndi.map_coordinates(ctrl[c], [u[..., 2], u[..., 1], u[..., 0]], order=3, mode="nearest")
                     for c in range(3)], -1)
    Qd = Q + disp
    info_local = {}
    for side in ("left", "right"):
        # globe size: radial pull toward the centre (bigger globe when k > 0)
        k = float(np.clip(rng.normal(0.012, 0.015), -0.02, 0.04))
        c = model.globe_centre[side]
        rg = model.globe_radius[side]
        dist = np.linalg.norm(Q - c, axis=-1)
        w = np.clip((rg + 8 - dist) / 8.0, 0, 1)[..., None]
        Qd -= k * (Q - c) * w
        # optic nerve course: smooth lateral/vertical bow of the mid-orbital nerve
        bow = np.array([rng.normal(0, 1.2), 0.0, rng.normal(0, 1.2)])
        nm = model.nerve_mid[side]
        g = np.exp(-np.sum((Q - nm) ** 2, -1) / (2 * 7.0 ** 2))[..., None]
        Qd -= bow * g
        info_local[side] = {"globe_scale": float(1 + k), "nerve_bow_mm": bow[[0, 2]].round(2).tolist()}
    # fine-grid index coordinates, then the bias field as a fourth channel
    fidx = (Qd - model.fine_lo) / A.FINE_SP
    bias_ctrl = rng.standard_normal((4, 4, 4)).astype(np.float32)
    ub = (Q - lo) / 150.0 * 3.0
    bias = ndi.map_coordinates(bias_ctrl, [ub[..., 2], ub[..., 1], ub[..., 0]], order=3, mode="nearest")
    coarse = np.concatenate([fidx, bias[..., None]], -1).astype(np.float32)
    full = A.upsample_linear(coarse, (step[2], step[1], step[0], 1))[:nzr, :ny, :nx]
    # ---- anatomy per case, then sample tissue codes
    oed, fib, thick, state = _params(rng, tao, ivgc)
    if muscle_scale is not None:
        _scale_muscles(model, thick, muscle_scale)
    fine = _thicken(model, thick)
    fx, fy, fz = (np.rint(full[..., c]).astype(np.int32) for c in range(3))
    Fz, Fy, Fx = fine.shape
    inside = (fx >= 0) & (fx < Fx) & (fy >= 0) & (fy < Fy) & (fz >= 0) & (fz < Fz)
    tissue = np.empty((nzr, ny, nx), np.uint8)
    tissue[inside] = fine[fz[inside], fy[inside], fx[inside]]
    out = ~inside
    if out.any():
        off = (model.fine_lo - model.coarse_lo)
        cx = np.rint(full[..., 0][out] * A.FINE_SP + off[0]).astype(np.int32)
        cy = np.rint(full[..., 1][out] * A.FINE_SP + off[1]).astype(np.int32)
        cz = np.rint(full[..., 2][out] * A.FINE_SP + off[2]).astype(np.int32)
        C = model.coarse
        ok = (cx >= 0) & (cx < C.shape[2]) & (cy >= 0) & (cy < C.shape[1]) & (cz >= 0) & (cz < C.shape[0])
        vals = np.zeros(cx.shape, np.uint8)
        vals[ok] = C[cz[ok], cy[ok], cx[ok]]
        tissue[out] = vals
    mid = (nsub - 1) // 2
    labels = A.GT_LUT[tissue[mid::nsub]]
    return Anatomy(tissue, full[..., 3], labels, nsub, sp, origin, D, orientation, size, ang, scale, oed, fib,
                   thick, state, info_local)


def orbit_case(seed: int, modality: str = "ct", tao: str | None = None, ivgc: int | None = None,
               orientation: str | None = None, size=None, spacing=None, oblique: bool | float | None = None,
               template: int = 0, rendering: Rendering = Rendering()) -> PhantomCase:
    """Synthesise one orbital case from the deformed atlas (``template`` 0) or head ``template`` (1-20, see
    :func:`template_model`).

    ``modality`` 'ct' (HU), 't2' (fat-suppressed, T2-SPIR-like) or 't1'; ``rendering``: a random intensity per
    tissue, resolution, bias and noise (SynthSeg-style), or the modality's (or another) contrast, with or without
    noise (:class:`Rendering`). ``tao`` 'active'/'inactive' adds TAO muscle enlargement and signal; ``ivgc`` 1/0 adds
    the responder/non-responder muscle pattern. ``size`` (nx, ny, nz), ``spacing`` (x, y, z) mm, ``orientation``
    ('axial'/'coronal') and ``oblique`` fix the acquisition (:class:`Acquisition`); otherwise they are drawn.
    """
    if modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}, got {modality!r}")
    if tao not in (None, "active", "inactive"):
        raise InputError(f"tao must be None, 'active' or 'inactive', got {tao!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7007]))
    an = orbit_anatomy(rng, modality, rendering.domain_random, tao, ivgc,
                       Acquisition(orientation, size, spacing, oblique), template)
    return _case(rng, an, seed, template, modality, rendering.domain_random, rendering.noise, rendering.contrast)


#: Thyroid eye disease's usual pattern: inferior, medial and superior recti enlarged most, the lateral least.
TED_MUSCLE_SCALE = {5: 3.0, 6: 3.0, 7: 3.0, 8: 3.0, 9: 3.0, 10: 3.0, 11: 2.0, 12: 2.0}
#: Thyroid-eye-disease cases for training (``ted_share`` of the synthetic heads, ``--ted`` of a phantom cohort): every
#: rectus enlarged to this many times its volume (uniform; TOM500's TED medial rectus reaches 2-3x the healthy median at
#: its 95th percentile).
TED_SCALE = (1.5, 3.5)


def ted_case(seed: int, modality: str = "ct", muscle_scale: float | dict[int, float] | None = None, size=None,
             spacing=None, template: int = 0, oblique: bool | None = False,
             orientation: str | None = None) -> PhantomCase:
    """A thyroid-eye-disease-like case: :func:`orbit_case` (no TAO signal; not oblique, or with ``oblique`` None
    drawn as :func:`orbit_case` draws it, so the same seed gives the same anatomy) with each rectus enlarged to
    ``muscle_scale`` times its volume (or per muscle value, a dict; by default :data:`TED_MUSCLE_SCALE`), its belly
    thickened as in :func:`_thicken`; ``info["muscle_scale"]`` says it. ``orientation`` (``axial``, ``coronal``;
    None: drawn) fixes the slices' plane."""
    muscle_scale = dict(TED_MUSCLE_SCALE) if muscle_scale is None else muscle_scale
    if modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}, got {modality!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7007]))
    an = orbit_anatomy(rng, modality, False, None, None, Acquisition(orientation, size, spacing, oblique), template,
                       muscle_scale)
    case = _case(rng, an, seed, template, modality, False, True, None)
    case.info["muscle_scale"] = muscle_scale if isinstance(muscle_scale, (int, float)) else dict(muscle_scale)
    return case


def whole_head_case(template: int, modality: str = "ct", seed: int = 0, own_globes: bool = False) -> PhantomCase:
    """SynthSeg head ``template`` (1-20) whole, at its own 1 mm, rendered in ``modality`` with the orbit phantoms'
    tissue values, its orbits holding what :func:`template_model` carries into them (the atlas's recti, nerves,
    orbital fat, sclera and lens): a real head's field of view and a real orbit's contents. (Rendering the SynthSeg
    labels alone leaves the orbit one soft-tissue label: on CT +50 HU around the globe, where a real orbit holds fat at
    -100 HU.) Not deformed; labels in the orbit scheme. The globes are scaled as the training phantoms' are, or, with
    ``own_globes``, the head's own (its label 506, the sclera and lens drawn inside)."""
    if modality not in MODALITIES:
        raise InputError(f"modality must be one of {MODALITIES}, got {modality!r}")
    model = head_orbit_model(int(template), own_globes)
    head = head_codes(int(template), own_globes)
    grid = Volume.from_sitk(head)                # the head's codes and grid, read from the image once
    tissue = grid.array.astype(np.uint8)
    fine = sitk.GetImageFromArray(model.fine)
    fine.SetSpacing((A.FINE_SP,) * 3)
    fine.SetOrigin(tuple(float(v) for v in model.fine_lo))
    orbits = sitk.GetArrayFromImage(sitk.Resample(fine, head, sitk.Transform(), sitk.sitkNearestNeighbor, 255,
                                                  sitk.sitkUInt8))
    inside = orbits != 255                      # the orbit model's box: its codes replace the head's own
    tissue[inside] = orbits[inside]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(template), 7011]))
    zeros = np.zeros(17)
    img = _render(rng, modality, tissue, np.zeros(tissue.shape, np.float32), 1, grid.spacing, zeros, zeros)
    info = {"seed": int(seed), "template": int(template), "modality": modality, "spacing_mm": list(grid.spacing),
            "size": list(head.GetSize()), "view": "whole head", "own_globes": bool(own_globes)}
    return PhantomCase(grid.with_array(img), grid.with_array(A.GT_LUT[tissue]), info)


def _case(rng, an: Anatomy, seed: int, template: int, modality: str, domain_random: bool, noise: bool,
          contrast: dict[int, tuple[float, float]] | None) -> PhantomCase:
    """The image of anatomy ``an`` (:func:`orbit_case`'s rendering, from ``rng`` as left by the anatomy)."""
    sp, nsub, tissue, bias = an.spacing, an.nsub, an.tissue, an.bias
    oed, fib, thick = an.oedema, an.fibrosis, an.thickening
    # ---- intensities
    if domain_random:
        img = _render_random(rng, tissue, bias, nsub, sp)
        mod_name = "synth"
    else:
        img = _render(rng, modality, tissue, bias, nsub, sp, oed, fib, noise, contrast)
        mod_name = modality
    img_vol = Volume(img, sp, an.origin, an.direction)
    lab_vol = Volume(an.labels, sp, an.origin, an.direction)
    info = {"seed": int(seed), "template": int(template), "modality": mod_name, "orientation": an.orientation, "spacing_mm": [round(s, 4) for s in sp],
            "size": list(an.size), "oblique_deg": round(an.oblique_deg, 2), "head_scale": an.head_scale.round(4).tolist(),
            "state": an.state, "oedema": {int(v): round(float(oed[v]), 4) for v in MUSCLE_VALUES},
            "fibrosis": {int(v): round(float(fib[v]), 4) for v in MUSCLE_VALUES},
            "thickening_mm": {int(v): round(float(thick[v]), 4) for v in MUSCLE_VALUES}, **an.local}
    return PhantomCase(img_vol, lab_vol, info)


def _texture(rng, shape, scale=2) -> np.ndarray:
    small = [max(2, s // scale + 1) for s in shape]
    n = rng.standard_normal(small, dtype=np.float32)
    f = A.upsample_linear(n, [scale] * 3)[: shape[0], : shape[1], : shape[2]]
    if f.shape != tuple(shape):
        f = np.pad(f, [(0, a - b) for a, b in zip(shape, f.shape)], mode="edge")
    return f


def _blur_and_average(img, nsub, sp, psf_in):
    sig_z = 0.35 if nsub == 1 else 0.5
    img = ndi.gaussian_filter(img, (sig_z, psf_in, psf_in), truncate=2.5)
    if nsub > 1:
        img = img.reshape(img.shape[0] // nsub, nsub, *img.shape[1:]).mean(1)
    return img


def _render(rng, modality, tissue, bias, nsub, sp, oed, fib, noise=True, contrast=None) -> np.ndarray:
    if contrast is not None and modality == "ct":
        raise InputError("contrast tables are for MRI phantoms; CT is rendered in Hounsfield units")
    table = contrast or _BASE[modality]
    mean = np.zeros(256, np.float32)
    sd = np.zeros(256, np.float32)
    gain = rng.normal(1.0, 0.03) if modality != "ct" else 1.0
    for t, (m, s) in table.items():
        mean[t] = m * (gain if modality != "ct" else 1.0)
        sd[t] = s
    if modality == "ct":
        mean[A.BONE] = rng.uniform(750, 1450)
        mean[A.FAT] = rng.normal(-100, 8)
    for v in MUSCLE_VALUES:
        if modality == "t2":
            mean[v] = table[v][0] * gain * (1 + 0.9 * oed[v]) * (1 - 0.22 * fib[v])
            sd[v] = table[v][1] * (1 + 2.0 * fib[v] + 0.5 * oed[v])
        elif modality == "t1":
            mean[v] = table[v][0] * gain * (1 - 0.1 * oed[v])
            sd[v] = table[v][1] * (1 + 1.5 * fib[v])
        else:
            mean[v] = table[v][0] - 6 * oed[v]
            sd[v] = table[v][1] * (1 + fib[v])
    tex = _texture(rng, tissue.shape, 2)
    img = mean[tissue] + sd[tissue] * tex
    if modality == "ct":
        img = _blur_and_average(img, nsub, sp, rng.uniform(0.5, 0.8))
        if noise:
            img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(6, 16))
        return np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    b = bias[(nsub - 1) // 2::nsub] if nsub > 1 else bias
    img = _blur_and_average(img, nsub, sp, rng.uniform(0.5, 0.8))
    img *= np.exp(np.float32(rng.uniform(0.08, 0.22)) * b)
    if noise:
        s = np.float32(rng.uniform(0.012, 0.03) * 1000)
        n1 = rng.standard_normal(img.shape, dtype=np.float32)
        n2 = rng.standard_normal(img.shape, dtype=np.float32)
        img = np.sqrt((img + s * n1) ** 2 + (s * n2) ** 2)
    return np.clip(np.rint(img), 0, 32767).astype(np.int16)


def _render_random(rng, tissue, bias, nsub, sp) -> np.ndarray:
    mean = rng.uniform(0, 255, 256).astype(np.float32)
    sd = rng.uniform(0, 20, 256).astype(np.float32)
    mean[0] = rng.uniform(0, 30)
    tex = _texture(rng, tissue.shape, int(rng.integers(1, 4)))
    img = mean[tissue] + sd[tissue] * tex
    b = bias[(nsub - 1) // 2::nsub] if nsub > 1 else bias
    img = _blur_and_average(img, nsub, sp, rng.uniform(0.3, 1.5))
    img *= np.exp(np.float32(rng.uniform(0.0, 0.4)) * b)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0, 12))
    img = np.clip(img, 0, None)
    img = 255 * (img / max(float(img.max()), 1e-6)) ** np.float32(np.exp(rng.normal(0, 0.25)))
    return img.astype(np.float32)
