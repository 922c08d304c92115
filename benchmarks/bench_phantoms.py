"""Phantom generation speed on one core: a 256x256x64 orbital CT case and a 182x218x182 brain
FLAIR case (after the one-off atlas/template set-up, which is reported separately); and how well the
disease signals built into the orbit phantoms separate the classes (``separability``: the cohorts of
``Testing/phantoms/test_phantoms.py``, with the per-case values and the 95 % interval of each AUC).

Run: ``python -m benchmarks.bench_phantoms`` (writes benchmarks/results/phantoms.json), or
``python -m benchmarks.bench_phantoms speed`` / ``separability`` for one part (the other's metrics are kept).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

BOOTSTRAP = "stratified percentile bootstrap over cases, 2000 resamples, seed 0"


def separability(metrics: dict, notes: dict) -> None:
    """TAO: 80 axial T2 cases (seeds 1000-1079, every other one active), mean T2 signal over the eight recti,
    cross-validated logistic regression (5 folds); IVGC: 50 coronal T2 cases (seeds 2000-2049, every other one
    a responder), mean T2 signal over MR+LR and over SR+IR as scores. AUC with its stratified bootstrap
    interval; for IVGC also the paired interval of MR+LR minus SR+IR."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from benchmarks.common import record_interval
    from orbitai.metrics.intervals import auc_ci, auc_difference_ci
    from orbitai.phantoms.orbit import orbit_case

    x, y = [], []
    for i in range(80):
        lab = i % 2
        c = orbit_case(1000 + i, "t2", tao="active" if lab else "inactive", orientation="axial", size=(112, 112, 10))
        x.append(float(c.image.array[np.isin(c.labels.array, range(5, 13))].mean()))
        y.append(lab)
    p = cross_val_predict(LogisticRegression(), np.asarray(x)[:, None], y,
                          cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    tao = auc_ci(y, p)
    metrics["tao_mean_rectus_t2_cv_auc"] = tao.estimate
    record_interval(notes, "tao_mean_rectus_t2_cv_auc", tao, BOOTSTRAP)
    a, b, yi = [], [], []
    for i in range(50):
        lab = i % 2
        c = orbit_case(2000 + i, "t2", ivgc=lab, orientation="coronal", size=(112, 112, 12))
        lab_map, im = c.labels.array, c.image.array.astype(float)
        a.append(float(im[np.isin(lab_map, [9, 10, 11, 12])].mean()))
        b.append(float(im[np.isin(lab_map, [5, 6, 7, 8])].mean()))
        yi.append(lab)
    for key, v in (("ivgc_mean_mrlr_t2_auc", a), ("ivgc_mean_srir_t2_auc", b)):
        ci = auc_ci(yi, v)
        metrics[key] = ci.estimate
        record_interval(notes, key, ci, BOOTSTRAP)
    diff = auc_difference_ci(yi, a, b)
    metrics["ivgc_mrlr_minus_srir_auc"] = diff.estimate
    record_interval(notes, "ivgc_mrlr_minus_srir_auc", diff, "paired " + BOOTSTRAP)
    notes["per_case"] = {"tao_label": y, "tao_mean_rectus_t2": [round(v, 3) for v in x],
                         "tao_cv_probability": [round(float(v), 6) for v in p], "ivgc_label": yi,
                         "ivgc_mean_mrlr_t2": [round(v, 3) for v in a], "ivgc_mean_srir_t2": [round(v, 3) for v in b]}
    notes["separability"] = ("TAO: 80 axial T2 phantoms 112x112x10 (seeds 1000-1079, odd = active), mean T2 over "
                             "the eight recti, logistic regression, 5-fold stratified CV (random_state 0); IVGC: 50 "
                             "coronal T2 phantoms 112x112x12 (seeds 2000-2049, odd = responder), mean T2 over MR+LR "
                             "and SR+IR as scores")


def speed(metrics: dict, notes: dict) -> None:
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from benchmarks.common import best_of, peak_rss_mb
    from orbitai.phantoms.atlas import orbit_model
    from orbitai.phantoms.brain import _template, brain_flair_case
    from orbitai.phantoms.orbit import orbit_case

    t0 = time.perf_counter()
    orbit_model()
    setup_orbit = time.perf_counter() - t0
    t0 = time.perf_counter()
    _template()
    setup_brain = time.perf_counter() - t0
    seeds = iter(range(100))
    orbit_ct = best_of(lambda: orbit_case(next(seeds), "ct", size=(256, 256, 64), spacing=(0.45, 0.45, 0.8),
                                          orientation="axial"), repeat=5)
    orbit_t2 = best_of(lambda: orbit_case(next(seeds), "t2", size=(256, 256, 24), spacing=(0.6, 0.6, 2.5),
                                          orientation="coronal"), repeat=3)
    brain = best_of(lambda: brain_flair_case(next(seeds), "ms"), repeat=3)
    metrics.update({"orbit_case_s": orbit_ct, "orbit_mri_case_256x256x24_s": orbit_t2, "brain_case_s": brain,
                    "orbit_atlas_setup_s": setup_orbit, "brain_template_setup_s": setup_brain,
                    "peak_rss_mb": peak_rss_mb()})
    notes.update({"threads": 1, "orbit_case": "CT 256x256x64, 0.45x0.45x0.8 mm, axial; best of 5",
                  "orbit_mri": "T2 coronal 256x256x24 rendered with 3 sub-slices per 2.5 mm slice; best of 3",
                  "brain_case": "FLAIR 182x218x182 MS; best of 3",
                  "setup": "one-off per process (atlas tissue model / template inpainting), cached"})


PARTS = {"speed": speed, "separability": separability}


def main(parts: tuple[str, ...] = tuple(PARTS)) -> int:
    from benchmarks.common import RESULTS, write_result

    metrics: dict = {}
    notes: dict = {}
    previous = RESULTS / "phantoms.json"
    old = None
    if set(parts) != set(PARTS) and previous.exists():   # a partial run keeps the rest
        old = json.loads(previous.read_text())
        metrics, notes = old.get("metrics", {}), old.get("notes", {})
    for part in parts:
        PARTS[part](metrics, notes)
    keep = old if old is not None and "speed" not in parts else None   # the speed figures keep their date, machine
    write_result("phantoms", metrics, {"orbit_case_s": "<= 1.0", "brain_case_s": "<= 3.0"}, notes, measured=keep,
                 derived="the separability part (its metrics, notes.ci95, notes.per_case) measured at this date; "
                         "the speed figures at the date above")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(tuple(sys.argv[1:]) or tuple(PARTS)))
