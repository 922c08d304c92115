"""Phantom generation speed on one core: a 256x256x64 orbital CT case and a 182x218x182 brain
FLAIR case (after the one-off atlas/template set-up, which is reported separately).

Run: ``python -m benchmarks.bench_phantoms`` (writes benchmarks/results/phantoms.json).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import time  # noqa: E402


def main() -> int:
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from benchmarks.common import best_of, peak_rss_mb, write_result
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
    write_result(
        area="phantoms",
        metrics={"orbit_case_s": orbit_ct, "orbit_mri_case_256x256x24_s": orbit_t2, "brain_case_s": brain,
                 "orbit_atlas_setup_s": setup_orbit, "brain_template_setup_s": setup_brain,
                 "peak_rss_mb": peak_rss_mb()},
        targets={"orbit_case_s": "<= 1.0", "brain_case_s": "<= 3.0"},
        notes={"threads": 1, "orbit_case": "CT 256x256x64, 0.45x0.45x0.8 mm, axial; best of 5",
               "orbit_mri": "T2 coronal 256x256x24 rendered with 3 sub-slices per 2.5 mm slice; best of 3",
               "brain_case": "FLAIR 182x218x182 MS; best of 3",
               "setup": "one-off per process (atlas tissue model / template inpainting), cached"},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
