"""Label-to-image synthesis on the fly for segmentation training (SynthSeg's recipe).

A pool of deformed atlas heads (:func:`orbitai.phantoms.orbit.orbit_anatomy`: tissue codes on the
model grid, each muscle, nerve, lens, sclera, fat, bone, sinus air and brain tissue a separate code) is
built once; every training patch is then rendered with a fresh random contrast: a random mean and
spread per tissue code, a random resolution (in-plane blur and a thick slice of 1.5-6 mm along a random
axis, averaged and resampled back so the partial volume is that of a real thick-slice scan), a bias
field, noise and a gamma curve. The labels stay at the model's resolution, so the network learns to
segment thin muscles from whatever contrast and slice thickness a clinical MRI brings.

Hand-written rather than MONAI's random transforms: the per-tissue random contrast and the
slice-thickness simulation on a tissue map have no MONAI equivalent, and on 2 CPU cores one numpy pass
per patch keeps the rendering well below the network's own step.
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from scipy import ndimage as ndi

from orbitai.errors import ConfigError
from orbitai.labels import values_for
from orbitai.orbit.rules import class_lut
from orbitai.phantoms import atlas as A
from orbitai.phantoms.heads import HELD_OUT
from orbitai.phantoms.orbit import TED_SCALE, Acquisition, orbit_anatomy
from orbitai.preprocess.resolution import thick_slices
from orbitai.progress import ProgressCallback
from orbitai.training.checkpoint import load_arrays, save_arrays
from orbitai.training.prefetch import fork_available, forked_each
from orbitai.engine.inference import SegSpec


#: The range the coil falloff's gain in front is drawn from (``PoolRecipe.coil_floor``'s default, :func:`_coil_falloff`).
COIL_FLOOR = (0.1, 0.6)


@dataclass(frozen=True)
class PoolRecipe:
    """What :meth:`SynthPool.build` draws: ``anatomies`` heads from ``seed`` (same seed, same pool) on a grid of
    ``size`` (x, y, z voxels on the model grid), each tilted up to ``tilt_deg`` about a random axis (a brain-planned
    scan cuts the orbits obliquely), ``tao_share`` of them with TAO muscles; ``fov_edge`` of the rendered patches are
    cut by the scan's field of view (see :func:`render`). ``templates``: the anatomies they are drawn from in turn
    (`orbitai.phantoms.orbit.template_model`: 0 the atlas, 1-16 the SynthSeg training heads; never
    :data:`orbitai.phantoms.heads.HELD_OUT`). ``ted_share`` of the heads have every rectus enlarged
    (:data:`TED_SCALE`); ``clinical_thick`` of the patches are rendered as a clinical 2D protocol
    (:data:`CLINICAL_SLICE_MM`); ``plain_sclera`` of them draw the sclera plain (:data:`PLAIN_SCLERA_LIKE_VITREOUS`);
    ``coil_falloff`` of those without a field-of-view edge dim towards the face, the scan going on (:func:`_coil_falloff`;
    the gain in front drawn from ``coil_floor``).
    A configuration's ``extra['synth']`` holds some of these fields by name (``PoolRecipe(**extra['synth'])``)."""

    anatomies: int = 96
    seed: int = 2000
    size: Sequence[int] = (160, 160, 80)
    tilt_deg: float = 20.0
    tao_share: float = 0.3
    fov_edge: float = 0.0
    templates: Sequence[int] = (0,)
    ted_share: float = 0.0
    clinical_thick: float = 0.0
    plain_sclera: float = 0.0
    coil_falloff: float = 0.0
    coil_floor: Sequence[float] = COIL_FLOOR


#: Pool defaults (`PoolRecipe`'s) by name.
POOL_DEFAULTS: dict[str, Any] = asdict(PoolRecipe())
#: A clinical 2D protocol (``clinical_thick`` of the patches): slices of 3-5 mm, axial (brain FLAIR and T2) or
#: coronal (orbit protocols), with the fine in-plane sampling of 0.4-0.7 mm (little in-plane blur on the model grid).
CLINICAL_SLICE_MM = (3.0, 5.0)
_CLINICAL_AXIS_P = (0.7, 0.3, 0.0)
#: A plain sclera (``plain_sclera`` of the patches): the globe's outer layer drawn like the vitreous (this share of them)
#: or darker than it (the rest), as a real T1 shows the fibrous sclera. Always a rim unlike the vitreous taught the
#: network that a globe ends one layer past its vitreous-like inside: 1.18-1.21x the true globe on 1 mm T1 heads
#: (benchmarks/results/globe_sclera.json).
PLAIN_SCLERA_LIKE_VITREOUS = 0.5
_SCLERA = [A.SCLERA_L, A.SCLERA_R]
#: Where a simulated field-of-view edge cuts a patch: (array axis, the side cut away: 0 = the low indices),
#: with its probability: the front (y low: anterior), the foot (z low) or the top (z high) of the scan.
_EDGES = ((1, 0), (0, 0), (0, 1))
_EDGE_P = (0.6, 0.2, 0.2)
#: Slice axis of a simulated thick-slice scan (array axis 0 = z: axial, 1 = y: coronal, 2 = x: sagittal).
_SLICE_AXES = (0, 1, 2)
_SLICE_AXIS_P = (0.6, 0.3, 0.1)


def template_sources(templates: Sequence[int]) -> list[str]:
    """Where the anatomies of a pool come from and under which licence (for a bundle's metadata)."""
    out = []
    if 0 in templates:
        out.append("SPL/NAC head-and-neck atlas, one healthy head (Harvard SPL/NAC; 3D Slicer License)")
    heads = sorted(int(t) for t in templates if t)
    if heads:
        out.append(f"SynthSeg training label maps {heads} (20 real heads; Apache-2.0; Billot et al., Medical Image "
                   "Analysis 2023) with the atlas's recti, obliques, levator and optic nerves carried in by "
                   "registration (orbitai.phantoms.head_orbits); globes scaled to the globe volumes of 35 TCIA "
                   "expert CT contours (CC BY 4.0; Nikolov et al. 2018)")
    return out


@dataclass
class SynthHead:
    """One pool entry: tissue codes and model classes on the model grid, where each class lies."""

    tissue: np.ndarray                 # uint8 [z, y, x]
    classes: np.ndarray                # uint8 [z, y, x]
    where: dict[int, np.ndarray]       # class -> flat indices (a subsample) of its voxels


@dataclass(frozen=True)
class Building:
    """How a pool's heads are built: ``cache``, a folder where each head is kept (a checksummed ``.npz`` named by the
    digest of its recipe and of the phantom code, :func:`head_key`), so a resumed or repeated training reads its pool
    back in seconds instead of rebuilding it (about 20 s a head on one core); ``workers`` processes build the missing
    heads (0: here); ``progress`` hears of each head."""

    cache: Optional[Path] = None
    workers: int = 0
    progress: Optional[ProgressCallback] = None


class SynthPool:
    """Deformed atlas heads on the model grid; :meth:`sample` renders a random-contrast patch."""

    def __init__(self, heads: list[SynthHead], spacing: tuple[float, float, float], n_classes: int,
                 fov_edge: float = 0.0, clinical_thick: float = 0.0, plain_sclera: float = 0.0,
                 coil_falloff: float = 0.0, coil_floor: Sequence[float] = COIL_FLOOR):
        self.heads = heads
        self.spacing = spacing
        self.n_classes = n_classes
        self.fov_edge = fov_edge
        self.clinical_thick = clinical_thick
        self.plain_sclera = plain_sclera
        self.coil_falloff = coil_falloff
        self.coil_floor = (float(coil_floor[0]), float(coil_floor[1]))

    @classmethod
    def build(cls, spec: SegSpec, pool: PoolRecipe = PoolRecipe(), how: Optional[Building] = None) -> SynthPool:
        """The heads and rendering that ``pool`` (:class:`PoolRecipe`) says, on ``spec``'s model grid. ``how``: where
        the heads are kept, who builds them and whom to tell (:class:`Building`)."""
        anatomies, seed, size, tilt_deg, tao_share = pool.anatomies, pool.seed, pool.size, pool.tilt_deg, pool.tao_share
        fov_edge, templates, ted_share = pool.fov_edge, pool.templates, pool.ted_share
        clinical_thick, plain_sclera = pool.clinical_thick, pool.plain_sclera
        bad = sorted(set(int(t) for t in templates) & set(HELD_OUT))
        if bad or not templates:
            raise ConfigError(f"synthetic-head templates must be 0-16 and not the held-out heads {list(HELD_OUT)}; "
                              f"got {list(templates)}")
        recipe = {"structures": list(spec.structures), "spacing": [float(v) for v in spec.spacing],
                  "n_classes": int(spec.n_classes), "seed": int(seed), "size": [int(v) for v in size],
                  "tilt_deg": float(tilt_deg), "tao_share": float(tao_share), "ted_share": float(ted_share),
                  "templates": [int(t) for t in templates]}
        how = how or Building()
        heads = _heads(recipe, anatomies, how.cache, how.workers, how.progress)
        return cls(heads, (float(spec.spacing[0]), float(spec.spacing[1]), float(spec.spacing[2])), spec.n_classes,
                   float(fov_edge), float(clinical_thick), float(plain_sclera), float(pool.coil_falloff),
                   pool.coil_floor)

    def sample(self, rng: np.random.Generator, patch, fg_prob: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """A rendered patch (float32, 0..1) and its classes (uint8): with ``fg_prob`` centred near a
        structure chosen uniformly among the classes (the thin ones as often as the eyeball)."""
        h = self.heads[rng.integers(len(self.heads))]
        shape = h.tissue.shape
        centre = None
        if rng.random() < fg_prob and h.where:
            c = list(h.where)[rng.integers(len(h.where))]
            centre = np.unravel_index(h.where[c][rng.integers(len(h.where[c]))], shape)
        sl = patch_window(shape, patch, centre, rng)
        tissue, lab = _pad(h.tissue[sl], patch), _pad(h.classes[sl], patch)
        edge = _fov_edge(lab, rng, self.spacing) if rng.random() < self.fov_edge else None
        # drawn only when asked (as plain_sclera below), so that pools without it render the same patches
        if edge is None and bool(self.coil_falloff) and rng.random() < self.coil_falloff:
            edge = _coil_falloff(lab, rng, self.spacing, self.coil_floor)
        clinical = bool(self.clinical_thick) and rng.random() < self.clinical_thick
        # drawn only when asked, so that pools without it render the same patches
        plain = bool(self.plain_sclera) and rng.random() < self.plain_sclera
        img = render(tissue, rng, self.spacing, edge, clinical, plain)
        if edge is not None and edge.cut:       # nothing of the head beyond the scan's edge: background there
            lab = lab.copy()
            lab[_beyond(lab.shape, edge)] = 0
        if rng.random() < 0.5:      # classes are side-agnostic: a mirrored head is a valid head
            img, lab = img[..., ::-1], lab[..., ::-1]
        return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(lab, np.uint8)


def phantom_code_digest() -> str:
    """A digest of the code that draws the pool's heads (the phantom package, this module, the label tables and the
    class table of ``orbitai.orbit.rules``), so a cached head is never reused after that code changed (the rest of
    the rules module, the plausibility rules, leaves the heads as they are)."""
    here = Path(__file__).resolve()
    files = sorted((here.parent.parent / "phantoms").glob("*.py")) + [here, here.parent.parent / "labels.py"]
    h = hashlib.sha256(inspect.getsource(class_lut).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def head_key(recipe: dict[str, Any], index: int, code: str) -> str:
    """The cache name of head ``index`` of a pool ``recipe`` drawn by phantom code of digest ``code``."""
    text = json.dumps({**recipe, "index": int(index), "code": code}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _build_head(recipe: dict[str, Any], i: int) -> SynthHead:
    """Head ``i`` of the pool ``recipe`` (its own generator, so heads can be built in any order or process)."""
    spacing, templates, ted_share = tuple(recipe["spacing"]), recipe["templates"], recipe["ted_share"]
    lut = class_lut(tuple(recipe["structures"]))
    rng = np.random.default_rng(np.random.SeedSequence([int(recipe["seed"]), i, 5151]))
    tao = None
    if rng.random() < recipe["tao_share"]:
        tao = "active" if rng.random() < 0.5 else "inactive"
    # drawn only when asked, so that pools without TED heads stay the same head for head
    scale = float(rng.uniform(*TED_SCALE)) if ted_share and rng.random() < ted_share else None
    tilt = recipe["tilt_deg"]
    an = orbit_anatomy(rng, "t2", tao=tao, acquisition=Acquisition("axial", tuple(recipe["size"]), spacing,
                                                                    float(rng.uniform(-tilt, tilt))),
                       template=int(templates[i % len(templates)]), muscle_scale=scale)
    if rng.random() < 0.7:
        _open_eyes(an.tissue, an.labels, rng, spacing[1])
    classes = lut[an.labels]
    where = {}
    for c in range(1, recipe["n_classes"] + 1):
        idx = np.flatnonzero(classes == c)
        if len(idx):
            where[c] = idx[rng.choice(len(idx), min(len(idx), 4000), replace=False)]
    return SynthHead(an.tissue, classes, where)


def _head_arrays(h: SynthHead) -> dict[str, np.ndarray]:
    return {"tissue": h.tissue, "classes": h.classes, **{f"where_{c}": v for c, v in h.where.items()}}


def _head_from_arrays(a: dict[str, np.ndarray]) -> SynthHead:
    where = {int(k[6:]): np.asarray(v) for k, v in a.items() if k.startswith("where_")}
    return SynthHead(np.asarray(a["tissue"]), np.asarray(a["classes"]), dict(sorted(where.items())))


def _build_and_keep(job: tuple[dict[str, Any], int, Optional[str]]) -> tuple[int, Optional[SynthHead]]:
    """Build head ``i`` of ``job = (recipe, i, path)``; with ``path`` write it there and answer None for it (a
    worker's answer stays small)."""
    recipe, i, path = job
    head = _build_head(recipe, i)
    if path is None:
        return i, head
    save_arrays(path, _head_arrays(head))
    return i, None


def _heads(recipe: dict[str, Any], anatomies: int, cache: Optional[Path], workers: int,
           progress: Optional[ProgressCallback]) -> list[SynthHead]:
    """The pool's heads: read from ``cache`` where kept there, the others built (by ``workers`` forked processes)."""
    paths: list[Optional[Path]] = [None] * anatomies
    heads: list[Optional[SynthHead]] = [None] * anatomies
    if cache is not None:
        code = phantom_code_digest()
        for i in range(anatomies):
            paths[i] = Path(cache) / f"head_{head_key(recipe, i, code)}.npz"
            arrays = load_arrays(str(paths[i]), "synthetic head cache")
            if arrays is not None:
                heads[i] = _head_from_arrays(arrays)
    todo = [i for i in range(anatomies) if heads[i] is None]
    done = anatomies - len(todo)
    if workers > 0 and len(todo) > 1 and fork_available():
        def keep(answer: tuple[int, Optional[SynthHead]]) -> None:
            nonlocal done
            i, head = answer
            if head is None:       # kept in the cache by the worker: read back through its checksum
                arrays = load_arrays(str(paths[i]), "synthetic head cache")
                if arrays is None:
                    raise RuntimeError(f"synthetic head {i} could not be read back from {paths[i]}")
                head = _head_from_arrays(arrays)
            heads[i] = head
            done += 1
            if progress:
                progress(done, anatomies, f"synthetic head {done}/{anatomies}")

        # one forked process a head, killed on a cancel or an error: none goes on building
        forked_each(_build_and_keep, [(recipe, i, None if paths[i] is None else str(paths[i])) for i in todo],
                    workers, keep)
    else:
        for i in todo:
            heads[i] = _build_head(recipe, i)
            if paths[i] is not None:
                save_arrays(paths[i], _head_arrays(heads[i]))   # type: ignore[arg-type]
            done += 1
            if progress:
                progress(done, anatomies, f"synthetic head {done}/{anatomies}")
    return [h for h in heads if h is not None]


def patch_window(shape: Sequence[int], patch: Sequence[int], centre: Optional[Sequence[int]],
                 rng: np.random.Generator) -> tuple[slice, ...]:
    """A patch's place in a volume of ``shape``: around ``centre`` with a jitter of a quarter patch, or anywhere
    (None); inside the volume where it fits."""
    starts = []
    for ax in range(3):
        hi = max(shape[ax] - patch[ax], 0)
        if centre is not None:
            s = centre[ax] - patch[ax] // 2 + rng.integers(-patch[ax] // 4, patch[ax] // 4 + 1)
        else:
            s = rng.integers(0, hi + 1)
        starts.append(int(np.clip(s, 0, hi)))
    return tuple(slice(s, s + n) for s, n in zip(starts, patch))


def _open_eyes(tissue: np.ndarray, labels: np.ndarray, rng: np.random.Generator, row_mm: float) -> None:
    """Air in front of each eyeball but for a lid 0.5-3 mm thick (in place): the atlas' head outline
    wraps the globes in several millimetres of skin and fat, whereas in a real scan the cornea and lids
    face the air, and a network that never saw that misses real eyeballs."""
    for v in values_for("eyeball"):
        globe = labels == v
        cols = globe.any(1)                                   # (z, x) columns through the globe
        if not cols.any():
            continue
        inner = ndi.binary_erosion(cols, iterations=2)
        cols = inner if inner.any() else cols
        front = np.argmax(globe, axis=1)                      # first globe row (anterior) per column
        lid = int(round(rng.uniform(0.5, 3.0) / row_mm))
        rows = np.arange(tissue.shape[1])[None, :, None]
        carve = cols[:, None, :] & (rows < (front - lid)[:, None, :])
        tissue[carve] = 0


@dataclass(frozen=True)
class Edge:
    """A field-of-view edge in a patch: along ``axis``, the indices below ``index`` (``side`` 0) or from
    it on (``side`` 1) are outside the scan; the receive coil's sensitivity falls to ``floor`` of its
    value over the last ``falloff`` voxels before the edge. ``cut`` False: the scan goes on beyond it, only dimmed
    (a coil's falloff, :func:`_coil_falloff`)."""

    axis: int
    side: int
    index: int
    falloff: float
    floor: float
    cut: bool = True


def _fov_edge(lab: np.ndarray, rng: np.random.Generator, spacing) -> Edge:
    """A random edge through the patch's structures: real clinical scans end inside an orbit (a brain
    scan's front or foot cutting a globe, dim where the head coil ends), and the network must still find
    what remains."""
    axis, side = _EDGES[int(rng.choice(len(_EDGES), p=_EDGE_P))]
    where = np.flatnonzero(lab.any(axis=tuple(a for a in range(3) if a != axis)))
    lo, hi = (int(where[0]), int(where[-1])) if len(where) else (0, lab.shape[axis] - 1)
    vox = float(spacing[::-1][axis])
    return Edge(axis, side, int(rng.integers(lo, hi + 1)), rng.uniform(5.0, 40.0) / vox, rng.uniform(0.15, 1.0))


def _coil_falloff(lab: np.ndarray, rng: np.random.Generator, spacing,
                  floor: Sequence[float] = COIL_FLOOR) -> Edge:
    """The head coil's sensitivity falling towards the face with the scan going on (real brain FLAIR and T2: the
    front of each globe dim, its vitreous at 0.15-0.6 of its back's brightness, the air and lids in front still in the
    scan): a gain that rises from one drawn in ``floor`` at a row between 10 mm in front of the patch's structures and
    their middle to 1 over 10-50 mm behind it (y low: anterior): an :class:`Edge` that does not cut."""
    vox = float(spacing[1])
    rows = np.flatnonzero(lab.any(axis=(0, 2)))
    lo, hi = (int(rows[0]), int(rows[-1])) if len(rows) else (0, lab.shape[1] - 1)
    start = int(rng.integers(lo - int(round(10.0 / vox)), (lo + hi) // 2 + 1))
    return Edge(1, 0, start, rng.uniform(10.0, 50.0) / vox, rng.uniform(floor[0], floor[1]), cut=False)


def _beyond(shape, edge: Edge) -> tuple[slice, ...]:
    sl = [slice(None)] * len(shape)
    sl[edge.axis] = slice(0, edge.index) if edge.side == 0 else slice(edge.index, None)
    return tuple(sl)


def _pad(a: np.ndarray, shape) -> np.ndarray:
    pads = [(0, max(0, s - n)) for n, s in zip(a.shape, shape)]
    return np.pad(a, pads) if any(p[1] for p in pads) else a


def render(tissue: np.ndarray, rng: np.random.Generator, spacing=(0.8, 0.8, 0.8),
           edge: Optional[Edge] = None, clinical: bool = False, plain_sclera: bool = False) -> np.ndarray:
    """A random-contrast image of the tissue codes ``tissue`` [z, y, x] on a grid of ``spacing`` mm
    (x, y, z), normalised to 0..1 as the percentile normalisation of a whole scan would; with ``edge``
    the scan ends there (zero beyond, as the inference engine pads a scan; unless ``edge.cut`` is False) and dims
    towards it; ``clinical``: a 2D
    protocol's thick slices (:data:`CLINICAL_SLICE_MM`) with fine in-plane sampling; ``plain_sclera``: the sclera
    like the vitreous or darker (:data:`PLAIN_SCLERA_LIKE_VITREOUS`)."""
    mean = rng.uniform(0, 1, 256).astype(np.float32)
    # the two sides of one structure look alike in a scan: pair them (orbit labels odd/even, lens, sclera)
    mean[2:17:2] = mean[1:17:2] * rng.uniform(0.95, 1.05, 8).astype(np.float32)
    mean[[18, 20]] = mean[[17, 19]]
    mean[0] = rng.uniform(0, 0.15)                      # air outside the head: dark in MRI and CT alike
    if plain_sclera:
        like = rng.random() < PLAIN_SCLERA_LIKE_VITREOUS
        mean[_SCLERA] = mean[[1, 2]] * (rng.uniform(0.95, 1.05) if like else rng.uniform(0.2, 0.8))
    sd = rng.uniform(0, 0.06, 256).astype(np.float32)
    img = mean[tissue] + sd[tissue] * rng.standard_normal(tissue.shape, dtype=np.float32)
    vox = np.array(spacing[::-1], float)                # z, y, x
    psf = rng.uniform(0.2, 0.9, 3) / (vox / vox.min())  # in-plane and through-plane point spread
    if clinical:
        axis = int(rng.choice(_SLICE_AXES, p=_CLINICAL_AXIS_P))
        psf = rng.uniform(0.2, 0.5, 3) / (vox / vox.min())
        psf[axis] = 0.0
        img = ndi.gaussian_filter(img, psf, truncate=2.5)
        img = thick_slices(img, rng, rng.uniform(*CLINICAL_SLICE_MM) / vox[axis], axis)
    elif rng.random() < 0.75:                           # a thick-slice acquisition along one axis
        axis = int(rng.choice(_SLICE_AXES, p=_SLICE_AXIS_P))
        thick_mm = rng.uniform(1.5, 6.0)
        psf[axis] = 0.0
        img = ndi.gaussian_filter(img, psf, truncate=2.5)
        img = thick_slices(img, rng, thick_mm / vox[axis], axis)
    else:
        img = ndi.gaussian_filter(img, psf, truncate=2.5)
    ctrl = rng.standard_normal((3, 4, 4)).astype(np.float32)
    field = ndi.zoom(ctrl, [n / c for n, c in zip(img.shape, ctrl.shape)], order=1, grid_mode=True, mode="nearest")
    img = img * np.exp(np.float32(rng.uniform(0, 0.35)) * field[: img.shape[0], : img.shape[1], : img.shape[2]])
    if edge is not None:
        dist = np.arange(img.shape[edge.axis], dtype=np.float32) - edge.index   # voxels inside the scan: >= 0
        dist = dist if edge.side == 0 else -1.0 - dist
        gain = np.float32(edge.floor) + np.float32(1 - edge.floor) * np.clip(dist / np.float32(edge.falloff), 0, 1)
        shape = [1, 1, 1]
        shape[edge.axis] = -1
        img = img * gain.reshape(shape)
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0, 0.04))
    img = np.clip(img, 0, None)
    img = (img / max(float(img.max()), 1e-6)) ** np.float32(np.exp(rng.normal(0, 0.3)))
    # a whole scan's 99.5th percentile lies anywhere between this patch's bright tissues and its maximum
    lo, hi = np.percentile(img, [0.5, rng.uniform(97.0, 100.0)])
    lo *= rng.uniform(0, 1)                              # the scan's darkest voxels may lie outside the patch
    out = np.clip((img - lo) / max(float(hi - lo), 1e-6), 0, 1).astype(np.float32)
    if edge is not None and edge.cut:
        out[_beyond(out.shape, edge)] = 0.0
    return out
