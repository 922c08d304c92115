"""NeuroDifferential (paper 003, issue #16) summary: the bundled NMOSD-vs-MS classifiers on held-out brain
phantoms (seed 17000: no training uses it; the truth lesion masks as lesion input, as in training), their
parameters and training minutes from the bundles, and the speed of one classification with its occlusion
heat map on the FLAIR's grid (the lesions and brain mask given). Lesion segmentation, brain extraction and
the architecture comparison have their own results: neuro_lesions.json, neuro_anatomy.json,
neuro_classifier.json.

Run: ``python -m benchmarks neuro`` (writes benchmarks/results/neuro.json; makes the held-out cohort under
build/cohorts/neuro_heldout when missing). Each held-out accuracy gets its Wilson 95 % interval
(``notes["ci95"]``, n = the held-out cases); ``python -m benchmarks.bench_neuro intervals`` adds them to the
existing result file alone.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import json
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, record_interval, write_result

HELDOUT_SEED, HELDOUT_N = 17000, 40
COHORT = Path("build/cohorts/neuro_heldout")


def accuracy_intervals(metrics: dict, notes: dict, n: int) -> None:
    """Wilson intervals of the held-out accuracies (the counts follow from accuracy x n)."""
    from orbitai.metrics.intervals import wilson_ci

    for key, value in metrics.items():
        k = round(float(value) * n)
        if key.endswith("_heldout_accuracy") and abs(k / n - float(value)) < 1e-6:
            record_interval(notes, key, wilson_ci(k, n), "Wilson score interval")


def main(parts: tuple[str, ...] = ()) -> None:
    if parts == ("intervals",):
        doc = json.loads((RESULTS / "neuro.json").read_text())
        accuracy_intervals(doc["metrics"], doc["notes"], HELDOUT_N)
        write_result(doc["area"], doc["metrics"], doc["targets"], doc["notes"], measured=doc)
        return
    import torch

    from orbitai.bundle.core import iter_bundles
    from orbitai.cohort.manifest import read_manifest
    from orbitai.neuro.evaluate import evaluate_models

    metrics: dict[str, float] = {}
    notes: dict = {"load_average_at_start": list(os.getloadavg()), "torch_threads": torch.get_num_threads()}
    manifest = COHORT / "manifest.csv"
    if not manifest.is_file():
        from orbitai.phantoms.cohort import write_cohort

        write_cohort("brain-flair", HELDOUT_N, HELDOUT_SEED, COHORT, montage_cases=0)
    cases = read_manifest(manifest)
    bundles = sorted((b for b in iter_bundles() if b.metadata.get("task") == "neuro_differential"),
                     key=lambda b: b.name)
    report = evaluate_models(cases, [str(b.path) for b in bundles])
    for b in bundles:
        net = b.metadata["network"]
        for k, v in report["models"][b.name]["metrics"].items():
            metrics[f"{net}_heldout_{k}"] = v
        metrics[f"{net}_parameters"] = float(b.metadata["parameters"])
        metrics[f"{net}_training_minutes"] = float(b.metadata["training"]["minutes"])
    notes["heldout"] = (f"{len(cases)} brain-flair phantoms of seed {HELDOUT_SEED} (balanced); bundles "
                        + ", ".join(b.name for b in bundles))
    metrics["classify_with_heatmap_s"] = _classification_seconds(cases[0])
    notes["classify_with_heatmap"] = ("orbitai.neuro.predict.classify on one phantom with its lesions and brain mask: "
                                      "classifier input, P(NMOSD), 27-cube occlusion map mapped onto the FLAIR grid "
                                      "(model loaded before; best of 2)")
    accuracy_intervals(metrics, notes, len(cases))
    targets = {"twoview18_heldout_accuracy": ">= 0.80", "classify_with_heatmap_s": "<= 10"}
    write_result("neuro", metrics, targets, notes)


def _classification_seconds(case) -> float:
    from orbitai.neuro.models import load_neuro_model
    from orbitai.io import read_volume
    from orbitai.neuro.anatomy import extract_brain
    from orbitai.neuro.lesion_table import lesion_table
    from orbitai.neuro.predict import NeuroLesions, classify, read_lesions

    bundle, net = load_neuro_model(None)
    flair = read_volume(case.image)
    lesions = read_lesions(case.segmentation, flair)
    ext = extract_brain(flair)
    found = NeuroLesions(flair, ext, lesions, lesion_table(lesions, ext), "given")
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        classify(net, found, bundle.metadata["input"], "cpu", True, 0.5)
        best = min(best, time.perf_counter() - t)
    return best


if __name__ == "__main__":
    main(tuple(sys.argv[1:]))
