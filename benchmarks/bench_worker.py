"""Warm worker (#20): what a second Apply costs when the child process is already running.

On the 512x512x100 orbital CT phantom of the segmentation benchmark (new images of the same kind for each
warm run) and on axial T2 TAO phantoms, CPU:

* one-shot: ``orbitai seg predict`` / ``tao predict`` as a fresh ``python -m orbitai`` child (`OrbitaiJob`);
* warm first / second: the same commands on one `WarmWorker` (started just before the first job, so the first
  pays the imports), each on an image the worker has not seen.

Quality bar: the second warm prediction costs at most the work the command reports + 0.5 s (segmentation:
its sliding-window time; TAO: the prediction with maps, ``seconds`` of result.json). Where ``seg predict``
prints its stages (read, model, preprocess, window, postprocess, volumes, write), ``outside_stages_s`` is the
wall time none of them accounts for: process start, imports, the worker's hand-over. Also measured: how long
a cancel during a warm segmentation takes to return, whether the worker survives it, and that every warm
job ran in the same worker process.

Run: ``python -m benchmarks worker`` (writes benchmarks/results/worker.json; about 2 minutes on 2 cores).
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

SEG_MODEL = "orbit_svnet_ct_demo"
SEEDS = (424242, 424243, 424244)  # the segmentation benchmark's CT, then two new images for the warm runs
TAO_SEEDS = (9101, 9102, 9103)


def _timed(job: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    res = job.run()
    return time.perf_counter() - t0, res


def _seg(job_cls: Any, img: Path, **kw: Any) -> dict[str, float]:
    job = job_cls(["seg", "predict", str(img), "--out", "{out}/seg", "--model", SEG_MODEL, "--device", "cpu"], **kw)
    wall, res = _timed(job)
    try:
        m = re.search(r"timing: window ([0-9.]+) s, total ([0-9.]+) s", "\n".join(res.stdout))
        doc = json.loads((res.out_dir / "seg" / "result.json").read_text())
    finally:
        job.cleanup()
    window_json = float(_find(doc, "window_seconds") or float("nan"))
    out = {"wall_s": wall, "window_s": float(m.group(1)) if m else float("nan"),
           "total_s": float(m.group(2)) if m else float("nan"), "window_json_s": window_json}
    # the command's own breakdown, where it prints one ("timing stages: read 0.41 s, window 5.90 s, ...")
    stages = next((ln.split(":", 1)[1] for ln in res.stdout if ln.startswith("timing stages:")), "")
    for name, secs in re.findall(r"([\w -]+?) ([0-9.]+) s", stages):
        out[f"stage_{name.strip().replace(' ', '_')}_s"] = float(secs)
    if stages:  # what neither the command's stages nor the window account for: start-up, imports, hand-over
        out["outside_stages_s"] = wall - sum(v for k, v in out.items() if k.startswith("stage_"))
    return out


def _find(doc: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in a result.json."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for v in doc.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _tao(job_cls: Any, img: Path, seg: Path, **kw: Any) -> dict[str, float]:
    job = job_cls(["tao", "predict", str(img), "--segmentation", str(seg), "--model", "B", "--device", "cpu",
                   "--out", "{out}/tao"], **kw)
    wall, res = _timed(job)
    try:
        doc = json.loads((res.out_dir / "tao" / "result.json").read_text())
    finally:
        job.cleanup()
    return {"wall_s": wall, "work_s": float(_find(doc, "seconds"))}


def main() -> None:
    from orbitai.io.segfile import write_segmentation
    from orbitai.jobs.child import OrbitaiJob
    from orbitai.jobs.inputs import write_job_input
    from orbitai.jobs.warm import WarmJob, WarmWorker
    from orbitai.phantoms import orbit_case

    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {
        "seg_volume": f"512x512x100 CT phantoms (seeds {SEEDS}), 0.3x0.3x0.5 mm, model {SEG_MODEL}, CPU, window overlap; "
                      "inputs written as the modules hand them to a job (uncompressed NRRD)",
        "tao_volume": f"axial T2 TAO phantoms (seeds {TAO_SEEDS}), Network B with maps, given segmentation, CPU",
        "window_s": "the sliding-window seconds the command prints ('timing: window X s'); window_json_s: "
                    "result.json window_seconds; tao work_s: result.json seconds (prediction with maps)",
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        # written as the Slicer modules hand a scene volume to a job (orbitai.jobs.inputs.write_job_input)
        cts = [write_job_input(orbit_case(s, modality="ct", size=(512, 512, 100), spacing=(0.3, 0.3, 0.5),
                                       oblique=False).image, tmp / f"ct{s}.nrrd") for s in SEEDS]
        t2s = []
        for s in TAO_SEEDS:
            case = orbit_case(s, "t2", tao="active", orientation="axial")
            t2s.append((write_job_input(case.image, tmp / f"t2_{s}.nrrd"),
                        write_segmentation(case.labels, tmp / f"t2_{s}.seg.nrrd")))

        for k, v in _seg(OrbitaiJob, cts[0]).items():
            metrics[f"seg_oneshot_{k}"] = v
        for k, v in _tao(OrbitaiJob, *t2s[0]).items():
            metrics[f"tao_oneshot_{k}"] = v

        worker = WarmWorker()
        try:
            worker.start()
            pids = set()
            for name, img in (("first", cts[1]), ("second", cts[2])):
                for k, v in _seg(WarmJob, img, worker=worker).items():
                    metrics[f"seg_warm_{name}_{k}"] = v
                pids.add(worker.pid)
            for name, (img, seg) in (("first", t2s[1]), ("second", t2s[2])):
                for k, v in _tao(WarmJob, img, seg, worker=worker).items():
                    metrics[f"tao_warm_{name}_{k}"] = v
                pids.add(worker.pid)
            metrics["warm_worker_processes"] = float(len(pids))

            # cancel a warm segmentation while its window runs
            job = WarmJob(["seg", "predict", str(cts[0]), "--out", "{out}/seg", "--model", SEG_MODEL,
                           "--device", "cpu"], worker=worker).start()
            while not any(m.startswith("window batch") for _, _, m in job.poll()) and not job.finished:
                time.sleep(0.01)
            time.sleep(0.5)
            pid = worker.pid
            t0 = time.perf_counter()
            job.cancel()
            metrics["cancel_warm_seg_s"] = time.perf_counter() - t0
            res = job.result()
            metrics["cancel_exit_code"] = float(res.returncode)
            metrics["cancel_left_output"] = float(job.tmp is not None and job.tmp.exists())
            wall, after = _timed(WarmJob(["info"], worker=worker))
            metrics["after_cancel_next_job_ok"] = float(after.ok)
            metrics["after_cancel_next_job_s"] = wall
            metrics["after_cancel_same_worker"] = float(worker.pid == pid)
            metrics["worker_starts"] = float(worker.starts)
        finally:
            worker.shutdown()

    for task, work in (("seg", "window_s"), ("tao", "work_s")):
        metrics[f"{task}_warm_second_overhead_s"] = metrics[f"{task}_warm_second_wall_s"] - metrics[f"{task}_warm_second_{work}"]
        metrics[f"{task}_oneshot_overhead_s"] = metrics[f"{task}_oneshot_wall_s"] - metrics[f"{task}_oneshot_{work}"]
        metrics[f"{task}_warm_second_vs_oneshot_speedup"] = (metrics[f"{task}_oneshot_wall_s"]
                                                             / metrics[f"{task}_warm_second_wall_s"])
    targets = {
        "seg_warm_second_overhead_s": "<= 0.5",
        "seg_warm_second_outside_stages_s": "<= 0.5",
        "tao_warm_second_overhead_s": "<= 0.5",
        "cancel_warm_seg_s": "<= 1.0",
        "after_cancel_next_job_ok": "== 1",
        "warm_worker_processes": "== 1",
    }
    write_result("worker", metrics, targets, notes)


if __name__ == "__main__":
    main()
