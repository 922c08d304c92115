"""What the annotation effects' model prior costs the calling thread (Slicer's main thread), on a real MRML scene.

The default test suite asserts what must not happen on that thread (model work, waiting for the child, reading
the prior early; ``Testing/annotate/test_prior_off_the_main_thread.py``); the times live here:

* on the phantom orbit box (the tests' image): "Start from the model" asked before the prior is there, the status
  line, and the longest timer poll while the child computes;
* on a 512x512x300 int16 CT-sized volume: the prior's image key as the effects compute it now (node ID,
  modification time and grid) against the checksum of every voxel it replaced (``orbitai.orbit.prior.image_key``),
  and writing the image for the child: at once (``orbitai.jobs.inputs.write_job_input``, as before) and a 16 MiB slab
  per timer tick (``orbitai.jobs.inputs.JobInputWriter``, what the prior does now): the longest step.

Run: ``python -m benchmarks annotation_prior`` (writes benchmarks/results/annotation_prior.json; ~1 minute).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import best_of, write_result

REPO = Path(__file__).resolve().parents[1]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _orbit_calls() -> dict[str, float]:
    from orbitai.app.annotation.logic import AnnotationLogic

    from orbitai.mrml.scene import new_scene
    from orbitai.app.annotation.priors import DEFAULT_PRIORS
    from orbitai.testing.annotation_effects import annotation_scene, orbit_box

    DEFAULT_PRIORS.clear()
    image, _ = orbit_box()
    ctx = new_scene()
    try:
        vol, seg, ids = annotation_scene(ctx, image, ("eyeball_right",))
        logic = AnnotationLogic(ctx.scene, ctx.app_logic)
        logic.setInputs(seg, vol, ids["eyeball_right"])
        r, start = _timed(logic.startFromModel)
        assert r.details.get("pending"), r.message
        _, status = _timed(logic.priorStatus)
        longest, result, t_end = 0.0, None, time.monotonic() + 300
        while result is None and time.monotonic() < t_end:
            result, dt = _timed(logic.pollPrior)
            if result is None:
                longest = max(longest, dt)
                time.sleep(0.2)
        assert result is not None and result.ok, result
        return {"start_from_model_pending_s": start, "prior_status_s": status, "longest_timer_poll_s": longest}
    finally:
        DEFAULT_PRIORS.clear()
        ctx.close()


def _large_volume() -> dict[str, float]:
    import hashlib

    from orbitai.io import Volume
    from orbitai.orbit.prior import image_key
    from orbitai.jobs.inputs import JobInputWriter, write_job_input

    rng = np.random.default_rng(0)
    vol = Volume(rng.integers(-1024, 2000, (300, 512, 512), dtype=np.int16), (0.5, 0.5, 1.0))
    source_key = (("vtkMRMLScalarVolumeNode1", 123456), "0.5;0;0;0;0;0.5;0;0;0;0;1;0;0;0;0;1;0;511;0;511;0;299;")
    cheap = best_of(lambda: hashlib.blake2b(repr(source_key).encode(), digest_size=16).hexdigest(), 5)
    full = best_of(lambda: image_key(vol), 3)
    with tempfile.TemporaryDirectory() as tmp:
        write = best_of(lambda: write_job_input(vol, Path(tmp) / "image.nrrd"), 3)
        steps: list[float] = []
        t0 = time.perf_counter()
        w = JobInputWriter(vol, Path(tmp) / "slabs.nrrd")
        steps.append(time.perf_counter() - t0)
        while True:
            done, dt = _timed(w.step)
            steps.append(dt)
            if done:
                break
    return {"ct512x300_prior_key_s": cheap, "ct512x300_voxel_checksum_s": full,
            "ct512x300_key_speedup_x": full / max(cheap, 1e-9), "ct512x300_write_at_once_s": write,
            "ct512x300_longest_slab_step_s": max(steps), "ct512x300_slab_steps": float(len(steps))}


def main() -> None:
    sys.path.insert(0, str(REPO / "OrbitSegmentation"))
    metrics = {**_orbit_calls(), **_large_volume()}
    targets = {"start_from_model_pending_s": "<= 0.05", "prior_status_s": "<= 0.05", "longest_timer_poll_s": "<= 0.05",
               "ct512x300_prior_key_s": "<= 0.011", "ct512x300_longest_slab_step_s": "<= 0.05"}
    notes = {"what": "calling-thread cost of the annotation effects' model prior (issue 43 item 9); the child "
                     "computes the prior on the warm worker",
             "slabs": "the image for the child is written 16 MiB per timer tick (orbitai.jobs.inputs.JobInputWriter); "
                      "write_at_once is what one call cost before"}
    write_result("annotation_prior", metrics, targets, notes)


if __name__ == "__main__":
    main()
