"""SmartFill: fill a structure in 3D from a few strokes (Boykov-Jolly interactive graph cut).

Energy (Boykov & Jolly 2001): unary terms are negative log-likelihoods of the voxel intensity under
an object model (from the object strokes) and a background model (from background strokes when
given, otherwise from the working region, re-estimated once from the first cut, GrabCut-style);
neighbour terms are contrast-weighted, ``smoothness * exp(-dI^2 / 2 sigma^2) / distance`` with sigma
from the image noise; stroke voxels are hard constraints; the faces of the working region are
background (the region grows automatically when the object reaches a face).

Model prior (optional): ``prior`` is a network's probability p that each voxel belongs to the
structure. Inside the working region it adds ``prior_weight * -log(max(p, eps))`` to the object
cost and ``prior_weight * -log(max(1 - p, eps))`` to the background cost (eps = `PRIOR_EPS` = 1e-3,
so a confident network costs a voxel at most 6.9 nats per unit weight and strong image evidence can
still overrule it). Weight 1 puts one nat of prior on the same footing as one nat of intensity
likelihood; the default, `DEFAULT_PRIOR_WEIGHT` = 2, is where the superior rectus, which touches the
levator of the same intensity, cleared 0.85 Dice with margin on three phantoms (0.87 at 2 against 0.856
at 1; benchmarks/results/annotation.json); weight 0 (or no prior) gives exactly the energy without it. Strokes stay hard
constraints, so the user always wins. With a prior the locality term (object cost growing with the
distance from the object strokes, which keeps touching structures of the same intensity apart) is
scaled by ``1 - min(prior_weight, 1) * p``: the network says where the structure is, so a long
muscle is not cut short far from the strokes where p is high, while the term keeps its full
strength where the network does not see the structure. The network also tells which voxels are
background samples for the intensity models: each voxel that is not otherwise a sample of either
model counts as a background sample with weight ``min(prior_weight, 1) * (1 - p)`` (a neighbour of
the object's own intensity then no longer looks like object to the intensity terms alone). The
superpixels of the coarse stage are split along the network's border (p = 1/2): SLIC cannot see the
border between touching structures of one intensity, and the voxel band alone is too narrow to move
a coarse boundary that crosses a whole superpixel.

Speed: the cut is solved first on SLIC superpixels of the working region (a few thousand nodes;
the same voxel energy restricted to superpixel-constant labelings) and then on voxels in a narrow
band around that coarse boundary only. `smartfill_full` solves the same energy on every voxel of
the image: the naive reference used by the benchmark.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ._common import AnnotationError, bbox, check_image, check_mask, noise_sigma, spacing_kji
from .graphcut import contrast_weights, grid_cut, superpixel_cut
from .superpixels import compute_superpixels

#: A unary cost that acts as a hard constraint in the superpixel stage (nats).
_HARD = 1.0e4
_MAX_NLL = 50.0
#: SmartFill's weight of the model prior (see the module docstring).
DEFAULT_PRIOR_WEIGHT = 2.0
#: Floor of p and 1 - p in the prior's costs: at most -log(PRIOR_EPS) = 6.9 nats per unit weight.
PRIOR_EPS = 1.0e-3


@dataclass(frozen=True)
class FillParameters:
    """SmartFill's tuning knobs (the Slicer effect sets three of them from its options: smoothness, margin and
    locality, `orbitai.app.annotation.options`); the defaults are the measured ones."""

    #: The working region: the strokes' bounding box grown by this much (and grown again, up to ``max_grow``
    #: times, while the result touches its faces).
    margin_mm: float = 10.0
    smoothness: float = 2.0                 # weight of the neighbour terms
    #: Intensity difference scale of the neighbour terms (None: twice the image noise).
    edge_sigma: Optional[float] = None
    supervoxel_mm: float = 3.0              # superpixel size of the coarse stage
    band_vox: int = 2                       # half-width of the voxel refinement band
    #: The object cost grows by one nat per this distance from the object strokes (keeps touching structures of
    #: the same intensity apart; None: off).
    locality_mm: Optional[float] = 8.0
    max_grow: int = 2


@dataclass
class FillResult:
    mask: np.ndarray                 # object mask, image shape (bool)
    region: tuple                    # working region used (slices k, j, i)
    coarse: np.ndarray | None = None  # superpixel-stage mask inside the region (bool)
    timings: dict = field(default_factory=dict)
    message: str = ""


class IntensityModel:
    """Smoothed histogram density of intensities (a kernel density on a fixed grid)."""

    def __init__(self, samples: np.ndarray, lo: float, hi: float, bandwidth: float, weights=None):
        self.lo = float(lo)
        self.step = max(bandwidth / 3.0, (float(hi) - float(lo)) / 4096.0, 1e-6)
        nb = int(np.ceil((float(hi) - self.lo) / self.step)) + 1
        idx = np.clip(((np.asarray(samples, np.float64) - self.lo) / self.step).astype(np.int64), 0, nb - 1)
        h = np.bincount(idx, weights=weights, minlength=nb).astype(np.float64)
        h = ndi.gaussian_filter1d(h, bandwidth / self.step, mode="constant")
        total = h.sum()
        p = h / total if total > 0 else np.full(nb, 1.0 / nb)
        # Mix in a Gaussian fit so the tails decay smoothly (a histogram alone is flat far from
        # its samples, which makes partial-volume voxels a tie between object and background).
        s = np.asarray(samples, np.float64)
        wt = np.ones_like(s) if weights is None else np.asarray(weights, np.float64)
        if s.size and wt.sum() > 0:
            mu = float(np.average(s, weights=wt))
            sd = max(float(np.sqrt(np.average((s - mu) ** 2, weights=wt))), bandwidth)
            centres = self.lo + self.step * np.arange(nb)
            g = np.exp(-0.5 * ((centres - mu) / sd) ** 2)
            p = 0.8 * p + 0.2 * g / g.sum()
        self.nll = np.minimum(-np.log(p + 1e-300), _MAX_NLL).astype(np.float32)

    def cost(self, x: np.ndarray) -> np.ndarray:
        idx = np.clip(((x - self.lo) / self.step).astype(np.int64), 0, len(self.nll) - 1)
        return self.nll[idx]


def _faces(shape, region, image_shape) -> np.ndarray:
    """Voxels on the faces of the region that are not faces of the image."""
    f = np.zeros(shape, bool)
    for ax, s in enumerate(region):
        idx: list[slice | int] = [slice(None)] * 3
        if s.start > 0:
            idx[ax] = 0
            f[tuple(idx)] = True
        if s.stop < image_shape[ax]:
            idx[ax] = -1
            f[tuple(idx)] = True
    return f


def _models(x, fg_vox, bg_vox, sigma, fg_w=None, bg_w=None):
    lo, hi = float(x.min()) - 3 * sigma, float(x.max()) + 3 * sigma
    bw = max(sigma, 1e-6)
    return (IntensityModel(x[fg_vox], lo, hi, bw, None if fg_w is None else fg_w),
            IntensityModel(x[bg_vox], lo, hi, bw, None if bg_w is None else bg_w))


def check_prior(prior, shape, prior_weight: float) -> np.ndarray | None:
    """The validated prior as float32 (image shape), or None when it is off (None or weight 0)."""
    try:
        w = float(prior_weight)
    except (TypeError, ValueError):
        raise AnnotationError(f"The prior weight must be a number, got {prior_weight!r}.") from None
    if not np.isfinite(w) or w < 0:
        raise AnnotationError(f"The prior weight must be zero or positive, got {prior_weight!r}.")
    if prior is None:
        return None
    p = np.asarray(prior)
    if p.shape != tuple(shape):
        raise AnnotationError(f"The prior has shape {p.shape} but the image has shape {tuple(shape)}; "
                              "they must be on the same voxel grid.")
    if p.dtype.kind not in "biuf":
        raise AnnotationError(f"The prior has voxel type {p.dtype}; expected probabilities (numbers in [0, 1]).")
    p = p.astype(np.float32, copy=False)
    if not np.all(np.isfinite(p)):
        raise AnnotationError(f"The prior contains {int(np.count_nonzero(~np.isfinite(p)))} NaN/infinite voxels.")
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0:
        raise AnnotationError(f"The prior must be probabilities in [0, 1]; its values span [{lo:.3g}, {hi:.3g}].")
    return None if w == 0 else p


@dataclass
class PriorTerms:
    """A prior's contribution to the unary terms on one region (see the module docstring)."""
    cost_fg: np.ndarray      # prior_weight * -log(max(p, eps))
    cost_bg: np.ndarray      # prior_weight * -log(max(1 - p, eps))
    locality: np.ndarray     # factor on the locality term: 1 - min(prior_weight, 1) * p
    bg_share: np.ndarray     # weight as a background-model sample: min(prior_weight, 1) * (1 - p)
    inside: np.ndarray       # p > 1/2: the network's mask (superpixels are split along its border)

    @classmethod
    def of(cls, p: np.ndarray, prior_weight: float) -> PriorTerms:
        w = np.float32(prior_weight)
        p = np.asarray(p, np.float32)
        cf = -np.log(np.clip(p, PRIOR_EPS, 1.0)) * w
        cb = -np.log(np.clip(1.0 - p, PRIOR_EPS, 1.0)) * w
        share = np.float32(min(float(prior_weight), 1.0))
        return cls(cf.astype(np.float32), cb.astype(np.float32), (1.0 - share * p).astype(np.float32),
                   (share * (1.0 - p)).astype(np.float32), p > 0.5)


def _prepare(image, spacing, fg_strokes, bg_strokes):
    a, sp = check_image(image, spacing)
    fg = check_mask(fg_strokes, a.shape, "object strokes")
    bg = None if bg_strokes is None else check_mask(bg_strokes, a.shape, "background strokes")
    if not fg.any():
        raise AnnotationError("SmartFill needs at least one stroke inside the structure; none was painted.")
    if bg is not None and np.any(fg & bg):
        raise AnnotationError("Object and background strokes overlap; erase one of them where they cross.")
    return a, sp, fg, bg


def working_region(seeds: np.ndarray, spacing, margin_mm: float = 10.0):
    """SmartFill's working region for these seeds: their bounding box grown by ``margin_mm``, clipped."""
    box = bbox(np.asarray(seeds, bool), np.ceil(float(margin_mm) / spacing_kji(spacing)).astype(int))
    if box is None:   # _prepare refuses empty object strokes
        raise AnnotationError("SmartFill needs at least one stroke inside the structure; none was painted.")
    return box


def smartfill(image, spacing, fg_strokes, bg_strokes=None, params: FillParameters = FillParameters(), *,
              prior: np.ndarray | None = None, prior_weight: float = DEFAULT_PRIOR_WEIGHT) -> FillResult:
    """Fill the structure marked by ``fg_strokes`` (bool mask; ``bg_strokes`` optional) in 3D, with the tuning
    knobs ``params`` (`FillParameters`). ``prior``: the network's probability of the structure per voxel (image
    shape, values in [0, 1]) and ``prior_weight`` its weight (0 = off); see the module docstring.
    """
    t0 = time.perf_counter()
    a, sp, fg, bg = _prepare(image, spacing, fg_strokes, bg_strokes)
    p = check_prior(prior, a.shape, prior_weight)
    sk = spacing_kji(sp)
    seeds = fg if bg is None else (fg | bg)
    margin = float(params.margin_mm)
    for attempt in range(params.max_grow + 1):
        region = working_region(seeds, sp, margin)
        pt = None if p is None else PriorTerms.of(p[region], prior_weight)
        res = _solve_region(a, sk, fg, bg, region, params, pt)
        touches = np.any(res & _faces(res.shape, region, a.shape))
        if not touches or attempt == params.max_grow:
            break
        margin *= 2.0
    mask = np.zeros(a.shape, bool)
    mask[region] = res
    msg = f"SmartFill: {int(res.sum())} voxels in a {'x'.join(str(s.stop - s.start) for s in region[::-1])} region."
    if touches:
        msg += " The result reaches the working region's border: add a background stroke or increase the margin."
    return FillResult(mask, region, None, {"total_s": time.perf_counter() - t0}, msg)


def _shell(shape, sk, depth_mm):
    """Voxels within ``depth_mm`` of the region's faces (the region surrounds the strokes by a
    margin, so its outer shell is a sample of what lies around the structure)."""
    inner = tuple(slice(min(n // 2, int(np.ceil(depth_mm / s))), max(n - n // 2, n - int(np.ceil(depth_mm / s))))
                  for n, s in zip(shape, sk))
    m = np.ones(shape, bool)
    m[inner] = False
    return m


def _unaries(x, sk, fg, bg, sigma, locality_mm, first_guess=None, shell_mm=3.0, prior: PriorTerms | None = None):
    if first_guess is None:
        bg_vox = _shell(x.shape, sk, shell_mm) & ~ndi.binary_dilation(fg, iterations=2)
        if bg is not None:
            bg_vox |= bg
        if bg_vox.sum() < 20:
            bg_vox = ~fg
        if prior is None:
            m_fg, m_bg = _models(x, fg, bg_vox, sigma)
        else:   # every other voxel is also a background sample, as far as the network says so
            m_fg, m_bg = _models(x, fg, ~fg, sigma, None, np.where(bg_vox, 1.0, prior.bg_share)[~fg])
    else:
        inner = first_guess if bg is None else first_guess & ~bg
        outer = ~first_guess if bg is None else (~first_guess | bg)
        if prior is None:
            m_fg, m_bg = _models(x, inner | fg, outer, sigma)
        else:   # the first cut's voxels count as object, or background as far as the network says so
            share = np.where(inner & ~fg, prior.bg_share, 0.0)
            m_fg, m_bg = _models(x, inner | fg, outer | (share > 0), sigma, (1.0 - share)[inner | fg],
                                 np.where(outer, 1.0, share)[outer | (share > 0)])
    cf = m_fg.cost(x)
    cb = m_bg.cost(x)
    if locality_mm:
        d = ndi.distance_transform_edt(~fg, sampling=sk).astype(np.float32)
        if prior is not None:
            d *= prior.locality
        cf = cf + d / np.float32(locality_mm)
    if prior is not None:
        cf = cf + prior.cost_fg
        cb = cb + prior.cost_bg
    return cf, cb


def _solve_region(a, sk, fg_all, bg_all, region, params: FillParameters, prior: PriorTerms | None = None):
    x = np.asarray(a[region], np.float32)
    fg = fg_all[region]
    bg = None if bg_all is None else bg_all[region]
    sigma = noise_sigma(x)
    es = 2.0 * sigma if params.edge_sigma is None else float(params.edge_sigma)
    weights = contrast_weights(x, sk, es, params.smoothness)
    faces = _faces(x.shape, region, a.shape)
    hard_bg = faces & ~fg
    if bg is not None:
        hard_bg |= bg

    # ---- coarse: superpixels (two GrabCut-style rounds of model estimation)
    n_sp = max(50, int(x.size * float(np.prod(sk)) / params.supervoxel_mm ** 3))
    spx = compute_superpixels(x, tuple(sk[::-1]), n_sp)
    labels, n_labels = spx.labels, spx.n_labels
    if prior is not None:
        # SLIC cannot see the border between touching structures of one intensity; the network can
        _, inv = np.unique(labels.astype(np.int64) * 2 + prior.inside, return_inverse=True)
        labels, n_labels = inv.reshape(labels.shape), int(inv.max()) + 1
    guess = None
    for _ in range(2):
        cf, cb = _unaries(x, sk, fg, bg, sigma, params.locality_mm, guess, prior=prior)
        cfh = cf + np.where(hard_bg, _HARD, 0).astype(np.float32)
        cbh = cb + np.where(fg, _HARD, 0).astype(np.float32)
        guess = superpixel_cut(labels, n_labels, cfh, cbh, weights)
        guess |= fg
    # ---- fine: voxels in a narrow band around the coarse boundary
    st = ndi.generate_binary_structure(3, 1)
    band = ndi.binary_dilation(guess, st, iterations=params.band_vox) & ~ndi.binary_erosion(
        guess, st, iterations=params.band_vox, border_value=1)
    band &= ~fg & ~hard_bg
    return grid_cut(cf, cb, weights, active=band, fixed=guess, hard_fg=None, hard_bg=None)


def smartfill_full(image, spacing, fg_strokes, bg_strokes=None, params: FillParameters = FillParameters(), *,
                   prior: np.ndarray | None = None, prior_weight: float = DEFAULT_PRIOR_WEIGHT) -> np.ndarray:
    """Naive reference: the same energy solved on every voxel of the whole image at once (of ``params``, the
    neighbour and locality terms; no working region)."""
    a, sp, fg, bg = _prepare(image, spacing, fg_strokes, bg_strokes)
    p = check_prior(prior, a.shape, prior_weight)
    sk = spacing_kji(sp)
    x = np.asarray(a, np.float32)
    sigma = noise_sigma(x)
    es = 2.0 * sigma if params.edge_sigma is None else float(params.edge_sigma)
    weights = contrast_weights(x, sk, es, params.smoothness)
    cf, cb = _unaries(x, sk, fg, bg, sigma, params.locality_mm,
                      prior=None if p is None else PriorTerms.of(p, prior_weight))
    return grid_cut(cf, cb, weights, hard_fg=fg, hard_bg=bg)
