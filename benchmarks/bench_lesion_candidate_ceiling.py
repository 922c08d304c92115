"""Issue 79: how many true lesions the lesion network's probability reaches at all: the ceiling of any candidate stage.

The second look (`orbitai.neuro.second_look`) can only keep or drop components of the probability: a true lesion that
no voxel of probability >= t touches is lost to every keep rule at candidate threshold t. Per held-out set (the test
split's real-map phantoms, 1 mm and 3-5 mm slices, and their 2D 5-8 mm acquisitions) and true-lesion size bin:

* ``<set>_reach_<bin>_t<t>``: the share of true lesions (26-connected components of the truth) whose peak probability
  is >= t (t = 0.05 ... 0.65): lesion recall of a perfect second look at candidate threshold t;
* ``<set>_f1_ceiling_t<t>``: the lesion F1 of that perfect second look (precision 1, pooled recall);
* ``<set>_share_<bin>``: the share of the true lesions in each bin (how many a bar on every lesion counts), and
  ``<set>_recall_if_all_ge_10mm3_found``: the recall of a detector that finds every lesion >= 10 mm3 and none smaller;
* ``source_maps_share_<bin>``: the same shares in the test split's real lesion maps as drawn on MNI (before their
  placement on a phantom brain, which clips them to where lesions may lie and resamples them): how many of a set's
  small lesions the placement made;
* ``<set>_contrast_<bin>_found`` / ``_missed``: median lesion / brain-median FLAIR ratio of the lesions reached or
  not at t = 0.2 (whether the missed ones are visible in the image at all).

``python -m benchmarks lesion_candidate_ceiling`` -> ``benchmarks/results/lesion_candidate_ceiling.json``; the
bundle is the bundled lesion model or ``ORBITAI_LESION_BUNDLE`` (written to ``ORBITAI_LESION_AREA``). The
probabilities are those of the benches and the second-look fit (`orbitai.neuro.lesionseg_eval.cached_probability`).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks.common import write_result

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.65)
BINS = {"lt_3mm3": (0.0, 3.0), "3_10mm3": (3.0, 10.0), "10_30mm3": (10.0, 30.0), "30_100mm3": (30.0, 100.0),
        "ge_100mm3": (100.0, np.inf)}


def lesion_rows(prob: np.ndarray, truth: np.ndarray, image: np.ndarray, brain: np.ndarray,
                voxel_mm3: float) -> np.ndarray:
    """Per true lesion: size (mm3), peak probability, lesion / brain-median image ratio (rows of 3)."""
    from scipy import ndimage

    from orbitai.metrics.segmentation import lesion_components

    labels, n = lesion_components(truth)
    if not n:
        return np.zeros((0, 3))
    idx = np.arange(1, n + 1)
    size = ndimage.sum(truth, labels, idx) * voxel_mm3
    peak = ndimage.maximum(prob, labels, idx)
    ref = float(np.median(image[brain & ~truth])) or 1.0
    ratio = ndimage.mean(image, labels, idx) / ref
    return np.stack([size, peak, ratio], axis=1)


def figures(name: str, rows: np.ndarray) -> dict[str, float]:
    """The ceiling figures of one set's pooled lesion rows."""
    out: dict[str, float] = {f"{name}_n_lesions": float(len(rows))}
    if not len(rows):
        return out
    size, peak, ratio = rows[:, 0], rows[:, 1], rows[:, 2]
    for t in THRESHOLDS:
        r = float(np.mean(peak >= t))
        out[f"{name}_reach_all_t{t}"] = r
        out[f"{name}_f1_ceiling_t{t}"] = 2 * r / (1 + r) if r else 0.0
    for tag, (lo, hi) in BINS.items():
        m = (size >= lo) & (size < hi)
        out[f"{name}_share_{tag}"] = float(np.mean(m))
        if not m.any():
            continue
        for t in THRESHOLDS:
            out[f"{name}_reach_{tag}_t{t}"] = float(np.mean(peak[m] >= t))
        for kind, sel in (("found", peak >= 0.2), ("missed", peak < 0.2)):
            if (m & sel).any():
                out[f"{name}_contrast_{tag}_{kind}"] = float(np.median(ratio[m & sel]))
    out[f"{name}_recall_if_all_ge_10mm3_found"] = float(np.mean(size >= 10.0))
    return out


def main() -> None:
    import torch

    from orbitai.neuro.lesionseg import lesion_bundle
    from orbitai.metrics.segmentation import lesion_components
    from orbitai.neuro.lesionseg_eval import cached_probability, real_phantom_set, thick_2d_set
    from orbitai.phantoms import lesion_maps

    torch.set_num_threads(int(os.environ.get("ORBITAI_BENCH_THREADS", "2")))
    b = lesion_bundle(os.environ.get("ORBITAI_LESION_BUNDLE") or None)
    model = b.load_model("cpu")
    test = real_phantom_set("test")
    sets = {"test_1mm": [c for c in test if not c.slice_mm], "test_thick": [c for c in test if c.slice_mm],
            "test_2d": list(thick_2d_set("test"))}
    metrics: dict[str, float] = {}
    sizes = []
    for patient in lesion_maps.map_split()["test"]:
        labels, n = lesion_components(lesion_maps.lesion_map(patient))
        sizes.append(np.bincount(labels.ravel(), minlength=n + 1)[1:] * 1.0)   # the MNI maps are 1 mm
    pooled = np.concatenate(sizes)
    metrics["source_maps_n_lesions"] = float(len(pooled))
    metrics.update({f"source_maps_share_{tag}": float(np.mean((pooled >= lo) & (pooled < hi)))
                    for tag, (lo, hi) in BINS.items()})
    notes: dict[str, Any] = {"bundle": f"{b.name} ({b.path.name}, weights {b.metadata['weights_sha256'][:12]})",
                             "sets": {k: [c.name for c in v] for k, v in sets.items()}}
    for name, cases in sets.items():
        rows = [lesion_rows(np.asarray(cached_probability(c, b, model).array), np.asarray(c.truth.array) > 0,
                            np.asarray(c.image.array, np.float64), np.asarray(c.brain.array) > 0,
                            float(c.image.voxel_volume_mm3())) for c in cases]
        metrics.update(figures(name, np.concatenate(rows) if rows else np.zeros((0, 3))))
    notes["what"] = ("reach: share of true lesions whose peak probability is >= t (a perfect second look's recall at "
                     "candidate threshold t); f1_ceiling: that perfect second look's lesion F1 (precision 1)")
    notes["targets"] = "what the issue's 1 mm bars (lesion F1 >= 0.65, recall >= 0.60) need of any candidate stage"
    targets = {"test_1mm_f1_ceiling_t0.2": ">= 0.65", "test_1mm_reach_all_t0.2": ">= 0.6"}
    write_result(os.environ.get("ORBITAI_LESION_AREA", "lesion_candidate_ceiling"), metrics, targets, notes)


if __name__ == "__main__":
    main()
