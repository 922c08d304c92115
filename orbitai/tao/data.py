"""TAO cohorts as arrays: one sample per eye (five 164 x 164 slices), the case's label for both
eyes, and the paper's augmentation (random flip, random crop to 128 x 128)."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from orbitai.bundle.core import sha256_input
from orbitai.training.checkpoint import REBUILDING, discard, load_arrays, save_arrays
from orbitai.cohort.manifest import Case, ManifestError, binary_label, naming_case, read_labels
from orbitai.io import read_volume
from orbitai.progress import ProgressCallback
from orbitai.tao.preprocess import CROP_PIXELS, NET_PIXELS, GivenLabels, preprocess_eyes

log = logging.getLogger(__name__)


@dataclass
class EyeSamples:
    x: np.ndarray            # (N, 5, 164, 164) float32
    y: np.ndarray            # (N,) int, 1 = active
    case_ids: list[str]
    sides: list[str]

    def subset(self, idx) -> "EyeSamples":
        idx = list(idx)
        return EyeSamples(self.x[idx], self.y[idx], [self.case_ids[i] for i in idx], [self.sides[i] for i in idx])


def case_label(case: Case) -> int:
    """The case's class from the manifest's ``label`` column (1 = active, 0 = inactive)."""
    return binary_label(case, "inactive", "active")


def _case_eyes(case: Case) -> tuple[list[np.ndarray], list[str], int, list[str]]:
    if case.segmentation is None:
        raise ManifestError(f"Case {case.case_id} has no segmentation; training places the orbit crops "
                            "from the manifest's 'segmentation' column.")
    label = case_label(case)
    with naming_case(case.case_id):
        crops = preprocess_eyes(read_volume(case.image), read_labels(case.segmentation),
                                given=GivenLabels(what=f"Case {case.case_id}: the segmentation "
                                                  f"{Path(case.segmentation).name}", option=None))
    return [c.canonical() for c in crops], [c.side for c in crops], label, [w for c in crops for w in c.warnings]


def _init_worker() -> None:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)   # one case per core


def _map_cases(cases: list[Case], workers: int) -> list:
    if workers == 1:
        return [_case_eyes(c) for c in cases]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        return list(pool.map(_case_eyes, cases, chunksize=4))


def prepare_eyes(cases: list[Case], progress: Optional[ProgressCallback] = None,
                 cache: Optional[Path] = None, workers: Optional[int] = None) -> EyeSamples:
    """Preprocess every case's eyes (the manifest's segmentation places the crops), ``workers``
    cases at a time (default: one per CPU core). With ``cache`` the arrays are kept in that
    checksummed .npz and reused when the case list and every file's SHA-256 are the same (never for other
    images at the same paths); a corrupt cache is named and rebuilt."""
    key = ""
    if cache is not None:
        key = "|".join(f"{c.case_id}:{c.image}:{sha256_input(c.image)}:{c.segmentation}:"
                       f"{sha256_input(c.segmentation) if c.segmentation is not None else ''}:{c.row.get('label', '')}"
                       for c in cases)
        cached = _read_cache(cache, key)
        if cached is not None:
            return cached
    xs, ys, ids, sides = [], [], [], []
    workers = max(1, min(workers or os.cpu_count() or 1, len(cases)))
    if len(cases) < 8 * workers:    # a pool's start-up costs more than it saves on a few cases
        workers = 1
    try:
        results = _map_cases(cases, workers)
    except (BrokenProcessPool, OSError) as exc:   # e.g. no way to start worker processes here
        log.warning("parallel preprocessing unavailable (%s); preprocessing one case at a time", exc)
        results = [_case_eyes(c) for c in cases]
    for n, (case, (arrays, case_sides, label, warnings)) in enumerate(zip(cases, results), start=1):
        xs += arrays
        ys += [label] * len(arrays)
        ids += [case.case_id] * len(arrays)
        sides += case_sides
        for w in warnings:
            log.warning("%s: %s", case.case_id, w)
        if progress:
            progress(n, len(cases), f"preprocessed {case.case_id}")
    out = EyeSamples(np.stack(xs).astype(np.float32), np.array(ys, np.int64), ids, sides)
    if cache is not None:
        save_arrays(cache, {"x": out.x, "y": out.y, "case_ids": np.array(ids), "sides": np.array(sides),
                            "key": np.array(key)})
    return out


def _read_cache(cache: Path, key: str) -> Optional[EyeSamples]:
    """The samples cached for this case list (``key``), or None: no cache, another case list, or a
    corrupt cache (named in a warning by :func:`orbitai.training.checkpoint.load_arrays`, then rebuilt)."""
    z = load_arrays(cache, "TAO preprocessing cache")
    if z is None or "key" not in z or str(z["key"]) != key:
        return None
    x, y, ids, sides = (z.get(name) for name in ("x", "y", "case_ids", "sides"))
    if x is None or y is None or ids is None or sides is None or x.ndim != 4 \
            or not len(x) == len(y) == len(ids) == len(sides):
        discard(cache, "TAO preprocessing cache", "its arrays do not fit together", REBUILDING)
        return None
    return EyeSamples(x, y, ids.tolist(), sides.tolist())


def augment(sample: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The paper's augmentation: random left-right flip, random 128 x 128 crop of the 164 x 164."""
    if rng.random() < 0.5:
        sample = sample[:, :, ::-1]
    i, j = rng.integers(0, CROP_PIXELS - NET_PIXELS + 1, size=2)
    return np.ascontiguousarray(sample[:, i:i + NET_PIXELS, j:j + NET_PIXELS])


def centre_crop(x: np.ndarray, net_pixels: int = NET_PIXELS) -> np.ndarray:
    """The prediction-time input: the centred 128 x 128 (``net_pixels``) of each 164 x 164 sample."""
    m = (x.shape[-1] - net_pixels) // 2
    return np.ascontiguousarray(x[..., m:m + net_pixels, m:m + net_pixels])

