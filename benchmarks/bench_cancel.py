"""Cancel of a warm job from Slicer's GUI thread (#43): how long ``WarmJob.cancel()`` holds the calling thread,
with the worker started through a launcher that forwards no signal (the stand-in for ``PythonSlicer``,
`orbitai.testing.launcher`) and as a plain interpreter.

For each: a worker is started and warmed with ``orbitai info``; a long ``orbitai phantom`` job is started and,
once it reports progress, cancelled. Measured: ``cancel()`` on the calling thread (max of ``REPEATS``), the time
until the job has ended (on the background thread), its exit code (130: interrupted inside the worker; -9:
killed), and whether the next job ran on the same worker. For comparison, the cancel of the code before #43
(SIGINT to the started process, then up to 0.9 s waiting on the calling thread before a kill) is replayed
on the same machine (``before_*``).

Quality bar: ``cancel()`` <= 0.1 s on the calling thread through the launcher, and the worker kept.

Run: ``python -m benchmarks cancel`` (writes benchmarks/results/cancel.json; about a minute on 2 cores; POSIX).
"""
from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import write_result

LONG = ["phantom", "orbit-ct", "--n", "300", "--montage-cases", "0", "--out", "{out}/cohort"]
REPEATS = 3


def _before_43(job: Any, grace_s: float = 0.9) -> None:
    """The cancel of the code before #43: SIGINT to the process started (the launcher), wait, then kill."""
    proc = job._proc_w
    job._cancelled = True
    try:
        os.kill(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    if job._done.wait(grace_s):
        return
    os.killpg(proc.pid, signal.SIGKILL)
    job._done.wait(5)


def _measure(python: str, cancel: Callable[[Any], None]) -> dict[str, float]:
    from orbitai.jobs.warm import WarmJob, WarmWorker

    worker = WarmWorker(python=python, preload=False)
    calls, ends, codes, kept = [], [], [], []
    try:
        for _ in range(REPEATS):
            assert WarmJob(["info"], worker=worker, python=python).run().ok
            pid = worker.pid
            job = WarmJob(LONG, worker=worker, python=python).start()
            while not job.poll() and not job.finished:
                time.sleep(0.02)
            t0 = time.perf_counter()
            cancel(job)
            calls.append(time.perf_counter() - t0)
            res = job.result()
            ends.append(time.perf_counter() - t0)
            codes.append(float(res.returncode))
            nxt = WarmJob(["info"], worker=worker, python=python)
            kept.append(float(nxt.run().ok and worker.pid == pid))
    finally:
        worker.shutdown()
    return {"cancel_call_max_s": max(calls), "cancel_call_median_s": statistics.median(calls),
            "job_ended_after_max_s": max(ends), "exit_code_last": codes[-1],
            "worker_kept_fraction": sum(kept) / len(kept), "worker_starts": float(worker.starts)}


def main() -> None:
    import sys

    from orbitai.testing.launcher import write_launcher

    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        launcher = str(write_launcher(Path(tmp)))
        for name, python in (("launcher", launcher), ("plain", sys.executable)):
            for k, v in _measure(python, lambda job: job.cancel()).items():
                metrics[f"{name}_{k}"] = v
            for k, v in _measure(python, _before_43).items():
                metrics[f"before_{name}_{k}"] = v
    targets = {"launcher_cancel_call_max_s": "<= 0.1", "plain_cancel_call_max_s": "<= 0.1",
               "launcher_worker_kept_fraction": "== 1", "plain_worker_kept_fraction": "== 1"}
    notes = {"repeats": REPEATS, "launcher": "orbitai.testing.launcher stand-in (forwards no signal, like CTKAppLauncher)",
             "before": "before_*: the pre-#43 cancel replayed (SIGINT to the started process, 0.9 s wait, kill)"}
    write_result("cancel", metrics, targets, notes)


if __name__ == "__main__":
    main()
