"""Held-out phantom sets for the lesion network, and the choice of its post-processing on them.

**Real lesion maps on real brains** (issue #47, :func:`real_phantom_set`; what a bundle's post-processing is chosen
on): `orbitai.phantoms.lesion_maps` cases on brains and lesion maps that training never draws: ``validation`` on
SynthSeg heads 17-18 with validation maps, ``test`` on heads 19-20 with test maps. Each set holds every map of the
split on every brain as it is, two light loads (a subset of one map's lesions, < 5 mL) and two heavy loads (maps
together, > 30 mL) per brain; every other case is a 2D acquisition of 3-5 mm slices, the rest 1 mm 3D. Loads are
named by the placed volume: light < 5 mL, heavy > 30 mL, medium between.

The post-processing of a bundle (probability threshold, smallest lesion, the peak a region needs:
`orbitai.neuro.lesionseg.Postprocess`) is chosen on the real-map ``validation`` set by :func:`choose_postprocess` and
written into the bundle's metadata (``postprocess``) that :func:`orbitai.neuro.lesionseg.segment_lesions` reads.

**Drawn lesions on patient 26's brain** (issue #30, :func:`phantom_set`): two disjoint phantom sets (seeds never used
in training, 16000-16199), each with a light and a heavy lesion load, ``validation`` (seeds 17400+ light, 17500+
heavy; where post-processing was chosen before issue #47) and ``test`` (seeds 17000+ light, 17200+ heavy), reported
by ``benchmarks/bench_neuro_lesions.py``.

Light: default MS and NMOSD phantoms with < 5 mL of lesions; heavy: MS phantoms drawn with
``heavy=1`` that hold > 30 mL. Seeds are walked in order and the first ones that qualify are kept,
so a set is the same on every machine. The one real labelled case (Lesjak et al. cs_patient26) is
never used for a choice.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.bundle.core import refuse_package_folder
from orbitai.io import Volume
from orbitai.metrics.segmentation import LesionDetection, dice, lesion_components, lesion_metrics
from orbitai.neuro.lesionseg import Postprocess, lesion_bundle, lesion_probability
from orbitai.neuro.lesionseg_train import record_metadata
from orbitai.phantoms import lesion_maps
from orbitai.phantoms.brain import brain_flair_case
from orbitai.preprocess.resolution import thick_slices
from orbitai.training.checkpoint import cache_folder

log = logging.getLogger(__name__)

LIGHT_MAX_ML, HEAVY_MIN_ML = lesion_maps.LIGHT_MAX_ML, lesion_maps.HEAVY_MIN_ML   # one definition of the loads
#: first seed of each (set, load, disease) series
SEEDS = {("validation", "light", "ms"): 17400, ("validation", "light", "nmosd"): 17450,
         ("validation", "heavy", "ms"): 17500,
         ("test", "light", "ms"): 17000, ("test", "light", "nmosd"): 17100, ("test", "heavy", "ms"): 17200}
#: cases per (set, load): light sets mix MS and NMOSD two to one
SIZES = {"validation": {"light": (4, 2), "heavy": (4, 0)}, "test": {"light": (4, 2), "heavy": (6, 0)}}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
#: up to 14 mm^3, a sphere of 3 mm: the smallest lesion the MAGNIMS criteria count (larger minima, chosen on
#: phantoms, would drop the real small lesions that a light load is made of)
MIN_SIZES_MM3 = (3.0, 6.0, 10.0, 14.0)
#: peak probability a region needs (hysteresis); 0: none
SEEDS_PEAK = (0.0, 0.9, 0.95)


@dataclass(frozen=True)
class PhantomCase:
    name: str          # e.g. "heavy ms 17203"
    load: str          # "light" | "heavy"
    image: Volume      # FLAIR with scanner noise
    brain: Volume      # brain mask (the noise-free phantom's image > 0)
    truth: Volume      # lesion mask
    slice_mm: float | None = None    # a thick-slice acquisition's slice thickness (None: 1 mm 3D)
    #: a real-map case's `orbitai.phantoms.lesion_maps.real_lesion_case` arguments (seed, split, load, brain, maps)
    source: tuple = ()


def _make(seed: int, disease: str, load: str) -> tuple[PhantomCase, float]:
    heavy = 1.0 if load == "heavy" else 0.0
    clean = brain_flair_case(seed, disease, noise=False, heavy=heavy)
    noisy = brain_flair_case(seed, disease, noise=True, heavy=heavy)
    brain = clean.image.with_array((clean.image.array > 0).astype(np.uint8))
    case = PhantomCase(f"{load} {disease} {seed}", load, noisy.image, brain, noisy.labels)
    return case, float(noisy.info["lesion_volume_ml"])


@functools.lru_cache(maxsize=2)
def phantom_set(which: str) -> tuple[PhantomCase, ...]:
    """The ``validation`` or ``test`` cases (light ones first), generated deterministically."""
    if which not in SIZES:
        raise ValueError(f"phantom set must be one of {sorted(SIZES)}, got {which!r}")
    out: list[PhantomCase] = []
    for load, (n_ms, n_nmosd) in SIZES[which].items():
        for disease, n in (("ms", n_ms), ("nmosd", n_nmosd)):
            seed, kept = SEEDS.get((which, load, disease), 0), 0
            while kept < n:
                case, ml = _make(seed, disease, load)
                if (ml < LIGHT_MAX_ML) if load == "light" else (ml > HEAVY_MIN_ML):
                    out.append(case)
                    kept += 1
                seed += 1
    return tuple(out)


#: first seed of the real-map sets; cases per brain: light subsets, heavy mixes
REAL_SEEDS = {"validation": 47000, "test": 47500}
REAL_EXTRA = {"light": 2, "heavy": 2}
#: lesions of at least this many mm^3 are counted by the light-load F1 bar (smaller: recall reported)
COUNTED_MM3 = 10.0


def _load_of(ml: float) -> str:
    return "light" if ml < LIGHT_MAX_ML else "heavy" if ml > HEAVY_MIN_ML else "medium"


def _real_case(seed: int, which: str, brain: int, load: str | None = None, maps: tuple[int, ...] | None = None,
               regional: bool = False) -> PhantomCase:
    rng = np.random.default_rng([seed, 47])
    slice_mm = None if seed % 2 == 0 else float(rng.uniform(3.0, 5.0))
    c = lesion_maps.real_lesion_case(seed, which, load, noise=True, slice_mm=slice_mm, brain=brain, maps=maps,
                                     regional=regional)
    brain_mask = c.image.with_array((lesion_maps.brain_template(brain).tissue > 0).astype(np.uint8))
    ml = float(c.info["lesion_volume_ml"])
    how = "+".join(str(p) for p in c.info["maps"])
    name = (f"{_load_of(ml)} brain {brain} maps {how} ({c.info['mode']}, {ml:.1f} mL, "
            f"{'%.1f mm slices' % slice_mm if slice_mm else '1 mm'}) seed {seed}" + (" regional" if regional else ""))
    return PhantomCase(name, _load_of(ml), c.image, brain_mask, c.labels, slice_mm,
                       (seed, which, load, brain, maps, regional))


@functools.lru_cache(maxsize=4)
def real_phantom_set(which: str, regional: bool = False) -> tuple[PhantomCase, ...]:
    """The ``validation`` or ``test`` cases with real lesion maps on real brains, generated deterministically
    (``regional``: the brains with a normal FLAIR's regional brightness, `orbitai.phantoms.lesion_maps.render_case`;
    the same lesions)."""
    if which not in REAL_SEEDS:
        raise ValueError(f"phantom set must be one of {sorted(REAL_SEEDS)}, got {which!r}")
    out: list[PhantomCase] = []
    seed = REAL_SEEDS[which]
    for brain in lesion_maps.BRAINS[which]:
        for m in lesion_maps.map_split()[which]:
            out.append(_real_case(seed, which, brain, maps=(m,), regional=regional))
            seed += 1
        for load, n in REAL_EXTRA.items():
            kept = 0
            while kept < n:
                c = _real_case(seed, which, brain, load=load, regional=regional)
                seed += 1
                if c.load == load:
                    out.append(c)
                    kept += 1
    return tuple(out)


#: 2D clinical FLAIR as sites acquire it (issue #65): slices of 5-8 mm, in-plane 0.45-0.9 mm
THICK_2D_MM, INPLANE_2D_MM = (5.0, 8.0), (0.45, 0.9)


def acquire_2d(image: Volume, truth: Volume, brain: Volume, rng: np.random.Generator,
               slice_mm: float, inplane_mm: float) -> tuple[Volume, Volume, Volume]:
    """A noise-free 1 mm FLAIR acquired as a 2D protocol: axial slices ``slice_mm`` thick (each the average over its
    thickness) on an in-plane grid of ``inplane_mm``, then a bias field and Rician noise on that grid (finer voxels:
    noisier). The truth on that grid is the lesion fraction of each voxel >= 0.5 (as a reader marks it on the thick
    slices), the brain mask's likewise."""
    img = sitk.GetImageFromArray(ndi.uniform_filter1d(np.asarray(image.array, np.float32),
                                                      max(1, int(round(slice_mm / image.spacing[2]))), axis=0))
    ref = image.to_sitk()
    img.CopyInformation(ref)
    size = [max(1, int(round(n * sp / new))) for n, sp, new in
            zip(ref.GetSize(), ref.GetSpacing(), (inplane_mm, inplane_mm, slice_mm))]
    grid = sitk.Image(size, sitk.sitkFloat32)
    grid.SetSpacing((inplane_mm, inplane_mm, slice_mm))
    grid.SetDirection(ref.GetDirection())
    grid.SetOrigin(ref.TransformContinuousIndexToPhysicalPoint([(sp / (2 * s0) - 0.5 if k < 2 else
                                                                  slice_mm / (2 * s0) - 0.5)
                                                                 for k, (sp, s0) in enumerate(zip(
                                                                     (inplane_mm, inplane_mm, slice_mm),
                                                                     ref.GetSpacing()))]))

    def onto(a: np.ndarray, average: bool) -> np.ndarray:
        src = sitk.GetImageFromArray(ndi.uniform_filter1d(a.astype(np.float32), max(1, int(round(slice_mm))), axis=0)
                                     if average else a.astype(np.float32))
        src.CopyInformation(ref)
        return sitk.GetArrayFromImage(sitk.Resample(src, grid, sitk.Transform(), sitk.sitkLinear, 0.0))

    acquired = sitk.GetArrayFromImage(sitk.Resample(img, grid, sitk.Transform(), sitk.sitkLinear, 0.0))
    inside = onto(np.asarray(brain.array) > 0, True) >= 0.5
    les = onto(np.asarray(truth.array) > 0, True) >= 0.5
    field = ndi.gaussian_filter(rng.standard_normal(acquired.shape), (2, 30, 30))
    bias = np.exp(rng.uniform(0, 0.25) * field / max(float(field.std()), 1e-6))
    s = np.float32(rng.uniform(1.0, 3.0) * np.sqrt(1.0 / (inplane_mm * inplane_mm * slice_mm)))
    noisy = np.sqrt((acquired * bias + s * rng.standard_normal(acquired.shape)) ** 2
                    + (s * rng.standard_normal(acquired.shape)) ** 2) * inside
    out = sitk.GetImageFromArray(noisy.astype(np.float32))
    out.CopyInformation(grid)
    vol = Volume.from_sitk(out)
    return vol, vol.with_array(les.astype(np.uint8)), vol.with_array(inside.astype(np.uint8))


@functools.lru_cache(maxsize=4)
def thick_2d_set(which: str = "test", regional: bool = False) -> tuple[PhantomCase, ...]:
    """:func:`real_phantom_set`'s brains and lesion maps (the same seeds) acquired as 2D clinical FLAIR
    (:data:`THICK_2D_MM` slices, :data:`INPLANE_2D_MM` in-plane; :func:`acquire_2d`), scored on that grid."""
    out = []
    for c in real_phantom_set(which, regional):
        seed, split, load, brain_no, maps, _ = c.source
        rng = np.random.default_rng([seed, 2020])
        slice_mm, inplane = float(rng.uniform(*THICK_2D_MM)), float(rng.uniform(*INPLANE_2D_MM))
        clean = lesion_maps.real_lesion_case(seed, split, load, noise=False, brain=brain_no, maps=maps,
                                             regional=regional)
        img, truth, brain = acquire_2d(clean.image, clean.labels, c.brain, rng, slice_mm, inplane)
        ml = float(truth.array.sum()) * img.voxel_volume_mm3() / 1000.0
        how = "+".join(str(p) for p in clean.info["maps"])
        name = (f"{_load_of(ml)} brain {brain_no} maps {how} ({ml:.1f} mL, 2D {slice_mm:.1f} mm slices, "
                f"{inplane:.2f} mm in-plane) seed {seed}" + (" regional" if regional else ""))
        out.append(PhantomCase(name, _load_of(ml), img, brain, truth, slice_mm, c.source))
    return tuple(out)


def partial_volume_ceiling(case: PhantomCase, phases: int = 3) -> float:
    """Dice that the truth itself keeps through the case's thick slices (1.0 for a 1 mm case): the truth averaged
    over each slice, resampled back to 1 mm as the image was, and thresholded at one half; the mean over
    ``phases`` slice positions. What a segmenter that only sees the thick slices recovers without a shape prior."""
    if not case.slice_mm:
        return 1.0
    t = np.asarray(case.truth.array) > 0
    return float(np.mean([dice(thick_slices(t.astype(np.float32), np.random.default_rng(k), case.slice_mm) >= 0.5, t)
                          for k in range(phases)]))


def probabilities(cases: Sequence[PhantomCase], model: Any, device: str = "cpu", bundle: Any = None) -> list[Volume]:
    """The network's lesion probability of each case (mirrored test-time augmentation as in use); with the model's
    ``bundle``, kept in and read from the probability cache (`cached_probability`)."""
    if bundle is not None:
        return [cached_probability(c, bundle, model, device) for c in cases]
    return [lesion_probability(c.image, c.brain, model, device) for c in cases]


def cached_probability(case: PhantomCase, bundle: Any, model: Any, device: str = "cpu") -> Volume:
    """The case's mirrored lesion probability, computed once per weights and case (float16 on disk, in
    ``~/.orbitai/cache/lesion-probs``): `tune_bundle` and ``neuro second-look`` read the same maps."""
    key = hashlib.sha256(f"{bundle.metadata['weights_sha256']}|{case.name}|{case.image.shape}".encode()).hexdigest()
    path = cache_folder("lesion-probs") / f"prob_{key[:24]}.npy"
    if path.is_file():
        a = np.load(path, allow_pickle=False)
        if a.shape == case.image.shape:
            return case.image.with_array(a.astype(np.float32))
    prob = lesion_probability(case.image, case.brain, model, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, prob.array.astype(np.float16))
    tmp.replace(path)
    return prob


def score(cases: Sequence[PhantomCase], probs: Sequence[Volume], pp: Postprocess) -> list[dict[str, float]]:
    """`orbitai.metrics.segmentation.lesion_metrics` of each case at one post-processing."""
    return [lesion_metrics(pp.apply(p).array, c.truth.array, c.image.spacing) for c, p in zip(cases, probs)]


def counted_f1(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Lesion F1 counting lesions of at least :data:`COUNTED_MM3` (both sides), and the recall of smaller true ones."""
    vox = float(np.prod(spacing))
    n = max(1, int(np.ceil(COUNTED_MM3 / vox - 1e-9)))
    d = LesionDetection.of(pred, truth, n)
    lt, nt = lesion_components(truth > 0)
    sizes = np.bincount(lt.ravel())[1:]
    small = [k + 1 for k in range(nt) if sizes[k] < n]
    hit = np.unique(lt[(pred > 0) & np.isin(lt, small)]).size if small else 0
    return {"lesion_f1_counted": d.f1, "small_n": float(len(small)),
            "small_recall": hit / len(small) if small else float("nan")}


def score_counted(cases: Sequence[PhantomCase], probs: Sequence[Volume], pp: Postprocess
                  ) -> list[dict[str, float]]:
    """:func:`score` and :func:`counted_f1` of each case."""
    out = []
    for c, p in zip(cases, probs):
        pred = pp.apply(p).array
        out.append({**lesion_metrics(pred, c.truth.array, c.image.spacing),
                    **counted_f1(pred, c.truth.array, c.image.spacing)})
    return out


def summary(cases: Sequence[PhantomCase], rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean Dice, lesion F1, |volume difference| (mL, %) per load and over all cases (``all_``); the worst volume
    error per load; with :func:`score_counted` rows, the counted F1 and the small lesions' recall as well."""
    out: dict[str, float] = {}
    if rows and "lesion_f1_counted" in rows[0]:
        out["all_dice"] = float(np.mean([r["dice"] for r in rows]))
        out["all_lesion_f1"] = float(np.mean([r["lesion_f1"] for r in rows]))
        out["all_n"] = len(rows)
    for load in ("light", "medium", "heavy"):
        rs = [r for c, r in zip(cases, rows) if c.load == load]
        if not rs:
            continue
        for k in ("dice", "lesion_f1", "avd_ml", "avd_percent"):
            out[f"{load}_{k}"] = float(np.mean([r[k] for r in rs]))
        out[f"{load}_n"] = len(rs)
        out[f"{load}_avd_percent_max"] = float(np.max([r["avd_percent"] for r in rs]))
        if "lesion_f1_counted" in rs[0]:
            out[f"{load}_lesion_f1_counted"] = float(np.mean([r["lesion_f1_counted"] for r in rs]))
            small = [r for r in rs if r["small_n"] > 0]
            out[f"{load}_small_recall"] = (float(np.sum([r["small_recall"] * r["small_n"] for r in small])
                                                 / np.sum([r["small_n"] for r in small])) if small else float("nan"))
    return out


def objective(s: dict[str, float]) -> float:
    """What the choice maximises (issue #65: detection and overlap together): the mean of voxel Dice and lesion-wise F1
    (every lesion) over all cases, less the heavy volume error beyond 20 % (issue #47's volume bar)."""
    return ((s["all_dice"] + s["all_lesion_f1"]) / 2
            - max(0.0, s.get("heavy_avd_percent", 0.0) - 20.0) / 100.0)


def sweep(cases: Sequence[PhantomCase], probs: Sequence[Volume]) -> dict[str, Any]:
    """Threshold x smallest lesion x seed over ``cases``: the best by :func:`objective` (``postprocess``: its
    metadata, objective, summary)."""
    best: dict[str, Any] = {}
    for t in THRESHOLDS:
        for m in MIN_SIZES_MM3:
            for seed in SEEDS_PEAK:
                if 0 < seed <= t:
                    continue
                pp = Postprocess(t, m, seed)
                s = summary(cases, score_counted(cases, probs, pp))
                if not best or objective(s) > best["objective"] + 1e-9:
                    best = {"postprocess": asdict(pp), "objective": objective(s), "summary": s}
    return best


def choose_postprocess(model: Any, device: str = "cpu", bundle: Any = None) -> dict[str, Any]:
    """Sweep threshold x smallest lesion x seed on the real-map validation set and its 2D 5-8 mm acquisitions
    (:func:`thick_2d_set`); the best by :func:`objective`."""
    cases = real_phantom_set("validation") + thick_2d_set("validation")
    found = sweep(cases, probabilities(cases, model, device, bundle))
    best: dict[str, Any] = {**found["postprocess"], "objective": round(found["objective"], 4),
                            "validation": {k: round(v, 4) for k, v in found["summary"].items()}}
    best["chosen_on"] = (f"validation phantoms ({len(cases)}: real lesion maps "
                         f"{list(lesion_maps.map_split()['validation'])} on SynthSeg brains "
                         f"{list(lesion_maps.BRAINS['validation'])}, seeds {REAL_SEEDS['validation']}+, 1 mm, 3-5 mm "
                         "and 2D 5-8 mm; orbitai.neuro.lesionseg_eval), never the real case")
    return best


def tune_bundle(bundle: str, device: str = "cpu") -> dict[str, Any]:
    """Choose the post-processing of a lesion bundle and write it into its metadata (weights untouched)."""
    b = lesion_bundle(bundle)      # found once, architecture checked, weights checksum-verified on load
    refuse_package_folder(b.path, "--bundle")     # bundled models are read-only (issue #62 item 5)
    choice = choose_postprocess(b.load_model(device), device, b)
    record_metadata(b.path, {"postprocess": choice})
    log.info("post-processing of %s: threshold %.2f, smallest lesion %.0f mm3, seed %.2f (validation objective "
             "%.3f)", b.name, choice["threshold"], choice["min_size_mm3"], choice["seed"], choice["objective"])
    return choice
