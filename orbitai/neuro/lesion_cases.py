"""The lesion network's training cases: noise-free brain FLAIR phantoms generated once into a checksummed cache
(``WORK/data``, one ``.npz`` a phantom, named by the generator's digest; the missing ones made by one process per core,
grouped by brain) and read back, memory-mapped, as `Case` (the arrays and the indices that `lesionseg_train.sample`
draws patches around)."""
from __future__ import annotations

import hashlib
import inspect
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage as ndi

import orbitai.phantoms.brain as brain
import orbitai.phantoms.lesion_maps as lesion_maps
from orbitai.neuro.seg_configs import brain_stats
from orbitai.phantoms.brain import brain_flair_case
from orbitai.training.checkpoint import load_arrays, save_arrays
from orbitai.training.prefetch import fork_available, forked_each

log = logging.getLogger("orbitai.neuro.lesionseg_train")

REAL = "real"     # the "disease" of a real-lesion-map phantom in the cache and the seed list


@dataclass
class Case:
    ratio: np.ndarray      # float16 [z, y, x] intensity / brain median (0 outside the brain)
    background: np.ndarray  # float16 the same with the lesions inpainted from their surroundings
    label: np.ndarray      # uint8 lesion mask
    mad: float             # brain MAD of ``ratio``
    lesion_idx: np.ndarray  # int32 [n, 3] lesion voxel indices, grouped by 26-connected lesion
    brain_idx: np.ndarray   # int32 [n, 3] a subsample of brain voxel indices
    lesion_bounds: np.ndarray  # int64 [m + 1] start of each lesion's rows in ``lesion_idx``
    #: int32 [n, 3] bright voxels that are no lesion (a subsample): cortex, vessels, septum (:func:`bright_non_lesion`)
    bright_idx: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int32))


def make_case_arrays(seed: int, disease: str, confluent: float = 0.0, heavy: float = 0.0, regional: bool = False
                     ) -> dict[str, np.ndarray]:
    """One noise-free phantom as training arrays (cropped to the brain box + 4 voxels); ``disease`` ``"real"``: a real
    lesion map on a real training brain (`orbitai.phantoms.lesion_maps`), its lesion-free rendering as background
    (``regional``: with a normal FLAIR's regional brightness, `orbitai.phantoms.lesion_maps.render_case`)."""
    if disease == REAL:
        img, bg, label, _, _ = lesion_maps.render_case(seed, "training", regional=regional)
        med, mad = brain_stats(img[img > 0])
        return {"ratio": (img / med).astype(np.float16), "background": (bg / med).astype(np.float16),
                "label": label, "mad": np.float32(mad / med), "seed": np.int64(seed), "disease": np.array(disease)}
    c = brain_flair_case(seed, disease, noise=False, confluent=confluent, heavy=heavy)
    a = c.image.array.astype(np.float32)
    brain = a > 0
    idx = np.argwhere(brain)
    lo = np.maximum(idx.min(0) - 4, 0)
    hi = np.minimum(idx.max(0) + 5, a.shape)
    sl = tuple(slice(int(x), int(y)) for x, y in zip(lo, hi))
    med, mad = brain_stats(a[brain])
    ratio = a[sl] / med
    label = c.labels.array[sl].astype(np.uint8)
    return {"ratio": ratio.astype(np.float16), "background": inpaint_lesions(ratio, label).astype(np.float16),
            "label": label, "mad": np.float32(mad / med), "seed": np.int64(seed), "disease": np.array(disease)}


def inpaint_lesions(ratio: np.ndarray, label: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """The image with its lesions (dilated by 2 voxels) filled by a normalised Gaussian average of the
    surrounding brain: the lesion-free background that the lesion-contrast augmentation blends with."""
    zone = ndi.binary_dilation(label > 0, iterations=2) & (ratio > 0)
    keep = ((ratio > 0) & ~zone).astype(np.float32)
    num = ndi.gaussian_filter(ratio * keep, sigma)
    den = ndi.gaussian_filter(keep, sigma)
    return np.where(zone, num / np.maximum(den, 1e-3), ratio).astype(np.float32)


def phantom_version() -> str:
    """A digest of the phantom generator's source and of this cache format: a changed generator
    never reuses stale cached phantoms."""
    return hashlib.sha256((inspect.getsource(brain) + inspect.getsource(lesion_maps) + "cache-v2").encode()
                          ).hexdigest()[:10]


def _cache_path(work: Path, seed: int, disease: str, confluent: float, heavy: float, regional: bool = False) -> Path:
    """Where phantom ``seed`` of ``disease`` is kept in ``work`` (named by the generator's digest)."""
    if disease == REAL:
        tag = "_regional" if regional else ""
    else:
        tag = (f"_confluent{round(confluent * 100)}" if confluent else "") + (f"_heavy{round(heavy * 100)}" if heavy
                                                                              else "")
    return work / "data" / f"{disease}_{seed}_{phantom_version()}{tag}.npz"


def _make_and_keep(job: tuple[list[tuple[int, str]], str, float, float, bool]) -> int:
    """Generate the phantoms ``job[0]`` into the cache folder ``job[1]`` (a worker process's task); returns how many."""
    seeds, work, confluent, heavy, regional = job
    for seed, disease in seeds:
        save_arrays(_cache_path(Path(work), seed, disease, confluent, heavy, regional),
                    make_case_arrays(seed, disease, confluent, heavy, regional))
    return len(seeds)


def _tasks(todo: Sequence[tuple[int, str]], workers: int) -> list[list[tuple[int, str]]]:
    """``todo`` split into worker tasks: the real-map cases grouped by their brain (registered to MNI once per
    process, ~14 s, where a case then takes ~7 s), a group cut in pieces of at most a half-share of a worker's, so
    that the workers end together."""
    groups: dict[object, list[tuple[int, str]]] = {}
    for seed, disease in todo:
        key = ("brain", lesion_maps.case_brain(seed)) if disease == REAL else ("seed", seed)
        groups.setdefault(key, []).append((seed, disease))
    size = max(1, math.ceil(len(todo) / (2 * max(workers, 1))))
    return [g[i:i + size] for g in groups.values() for i in range(0, len(g), size)]


def prepare_data(work: Path, seeds: Sequence[tuple[int, str]], confluent: float = 0.0,
                 heavy: float = 0.0, workers: Optional[int] = None, regional: bool = False) -> list[Case]:
    """Generate (or read back from the cache) the training phantoms (``confluent``, ``heavy``: see
    `orbitai.phantoms.brain.brain_flair_case`; ``regional``: see :func:`make_case_arrays`); the missing ones are
    generated by ``workers`` processes (None: one per core), each writing its phantoms to the cache, from where all are read back through their checksums."""
    (work / "data").mkdir(parents=True, exist_ok=True)
    paths = [_cache_path(work, seed, disease, confluent, heavy, regional) for seed, disease in seeds]
    todo = [sd for sd, path in zip(seeds, paths) if load_arrays(path, "training phantom cache", mmap=True) is None]
    workers = min(os.cpu_count() or 1, len(todo)) if workers is None else min(workers, len(todo))
    if todo:
        log.info("generating %d phantoms on %d process(es)", len(todo), max(workers, 1))
    done = 0
    if workers > 1 and fork_available():
        def count(n: int) -> None:
            nonlocal done
            done += n
            log.info("phantoms %d/%d generated", done, len(todo))

        # a forked process a task, killed on a cancel or an error: none goes on generating
        forked_each(_make_and_keep, [(task, str(work), confluent, heavy, regional) for task in _tasks(todo, workers)],
                    workers, count)
    else:
        for seed, disease in todo:
            _make_and_keep(([(seed, disease)], str(work), confluent, heavy, regional))
            done += 1
            log.info("phantom %d/%d (%s %d) generated", done, len(todo), disease, seed)
    out = []
    for (seed, _), path in zip(seeds, paths):
        arrays = load_arrays(path, "training phantom cache", mmap=True)   # 432 cases: 9.5 GB if read in
        if arrays is None:
            raise RuntimeError(f"training phantom {seed} could not be read back from {path}")
        out.append(case_from_arrays(arrays, seed))
    return out


def case_from_arrays(arrays: dict[str, np.ndarray], seed: int) -> Case:
    """A training case from its arrays (``ratio``, ``background``, ``label``, ``mad``: :func:`make_case_arrays`);
    ``seed`` draws its subsample of brain voxels."""
    ratio = arrays["ratio"]
    label = arrays["label"]
    rng = np.random.default_rng(seed)
    bidx = np.argwhere(ratio > 0)
    bidx = bidx[rng.choice(len(bidx), size=min(len(bidx), 20000), replace=False)]
    lab, n_les = ndi.label(label > 0, np.ones((3, 3, 3), bool))
    lidx = np.argwhere(lab > 0)
    order = np.argsort(lab[tuple(lidx.T)], kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(lab.ravel(), minlength=n_les + 1)[1:])])
    return Case(ratio, arrays["background"], label, float(arrays["mad"]), lidx[order].astype(np.int32),
                bidx.astype(np.int32), bounds.astype(np.int64), bright_non_lesion(ratio, label, rng))


def bright_non_lesion(ratio: np.ndarray, label: np.ndarray, rng: np.random.Generator, n: int = 5000) -> np.ndarray:
    """Up to ``n`` voxels among the brightest 3 % of the brain that lie at least 3 voxels from any lesion: what a
    lesion network mistakes for a lesion (bright cortex, vessels, septum, the ventricles' rims); int32 [k, 3]."""
    brain = ratio > 0
    if not brain.any():
        return np.zeros((0, 3), np.int32)
    cut = np.percentile(np.asarray(ratio[brain], np.float32), 97)
    far = ~ndi.binary_dilation(label > 0, iterations=3) if label.any() else np.ones(label.shape, bool)
    idx = np.argwhere(brain & (ratio > cut) & far)
    if len(idx) > n:
        idx = idx[rng.choice(len(idx), size=n, replace=False)]
    return idx.astype(np.int32)
