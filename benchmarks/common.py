"""Shared benchmark plumbing: machine facts, timing, peak memory and the JSON result format.

Every benchmark writes ``benchmarks/results/<area>.json``::

    {"area": ..., "date": ..., "machine": {"cpu", "cores", "gpu"},
     "metrics": {"name_with_unit": value}, "targets": {"name_with_unit": "<= 1.0"}}

and prints a table with each metric, its target and whether it is met. A quality figure measured on a
cohort keeps its 95 % interval in ``notes["ci95"][metric]`` (:func:`record_interval`: estimate, [low, high],
n, method), computed with ``orbitai.metrics.intervals``.
"""
from __future__ import annotations

import datetime as _dt
import json
import operator
import os
import platform
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

RESULTS = Path(__file__).resolve().parent / "results"
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


def _rounded(v: float) -> float:
    """Six decimals, but three significant digits for tiny values (a 1e-7 difference must not read 0)."""
    return round(v, 6) if abs(v) >= 1e-3 or v == 0 else float(f"{v:.3g}")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu}


@contextmanager
def timer() -> Iterator[dict[str, float]]:
    """``with timer() as t: ...`` then ``t["s"]`` holds the elapsed wall seconds."""
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - t0


def best_of(fn, repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls of ``fn()`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check(value: float, target: str) -> bool:
    op, num = target.split()
    return _OPS[op](value, float(num))


def record_interval(notes: dict[str, Any], metric: str, interval: Any, method: str) -> None:
    """Keep the 95 % interval of ``metric`` (an ``orbitai.metrics.intervals.Interval``) in ``notes["ci95"]``:
    ``{"estimate", "ci95": [low, high], "n", "method"}``, so that every figure quoted from a result file comes
    with its cohort size and interval."""
    notes.setdefault("ci95", {})[metric] = {"estimate": _rounded(float(interval.estimate)), "ci95": interval.bounds(),
                                            "n": int(interval.n), "method": method}


def write_result(area: str, metrics: dict[str, float], targets: dict[str, str],
                 notes: dict[str, Any] | None = None, measured: dict[str, Any] | None = None,
                 derived: str = "notes.ci95 computed from the stored values; the metrics as measured at the date above"
                 ) -> Path:
    """Write ``results/<area>.json``. ``measured``: the earlier result whose figures this run did not measure again
    (a run that only adds intervals, or one part): its date and machine are kept, and this run's date and machine
    are noted under ``notes["derived"]`` with ``derived`` saying what it added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    doc = {
        "area": area,
        "date": measured["date"] if measured else now,
        "machine": measured["machine"] if measured else machine(),
        "metrics": {k: (_rounded(v) if isinstance(v, float) else v) for k, v in metrics.items()},
        "targets": targets,
    }
    if measured:
        notes = {**(notes or {}), "derived": {"date": now, "machine": machine()["cpu"], "what": derived}}
    if notes:
        doc["notes"] = notes
    path = RESULTS / f"{area}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n{area}  ({doc['machine']['cpu']}, {doc['machine']['cores']} cores, gpu={doc['machine']['gpu']})")
    print(f"{'metric':<40} {'value':>14}  {'target':<10} ok")
    for k, v in metrics.items():
        t = targets.get(k, "")
        ok = ("yes" if check(v, t) else "NO") if t else ""
        print(f"{k:<40} {v:>14.4g}  {t:<10} {ok}")
    print(f"-> {path}")
    return path
