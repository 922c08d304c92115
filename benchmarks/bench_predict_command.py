"""Issue 78's bar: ``orbitai seg predict`` of a 1 mm whole-head MRI as a whole command (what a user waits for) in at
most 8 s on 2 quiet cores and at most 1.5x the same command on its orbit crop.

The scans are `benchmarks.bench_whole_head`'s (held-out SynthSeg head 17 at 1 mm with the T1 means, and its orbit
crop), written once as ``.nii.gz`` into ``~/.orbitai/cache/bench-predict-command``. Each command runs as its own
process (``python -m orbitai seg predict IMAGE --out OUT``, ``OMP_NUM_THREADS=2``), ``REPEATS`` times, the head and
the crop alternating; wall seconds and CPU seconds (user + system of the child, ``RUSAGE_CHILDREN``) are kept per
run (median and min recorded). The start-up alone is timed the same way: the interpreter (``python -c pass``), the
command line's imports and parser (``seg predict --help``) and the predictor's imports (torch with them). Then each
scan runs once more in `benchmarks.predict_command_split`, which times each stage inside the command: imports, read,
judge, model load, prediction, result, write, the rest, and the interpreter's start and exit.

``ORBITAI_BASELINE=/path/to/other/checkout``: every run is made with that checkout too, alternating with this one
(before/after in the same run, on the same load), and the outputs of both are compared (``result.json`` less its
timings, every other file byte for byte: `benchmarks.bench_outputs.digest`). The load average is recorded before and
after: the machine is shared, so the seconds are only as quiet as it was.

``python -m benchmarks predict_command`` -> ``benchmarks/results/predict_command.json``.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from benchmarks.bench_outputs import digest
from benchmarks.common import write_result

HERE = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".orbitai" / "cache" / "bench-predict-command"
REPEATS = int(os.environ.get("ORBITAI_BENCH_REPEATS", "3"))
SCANS = ("head", "crop")
#: The in-process split, run by its path (a baseline checkout need not have it).
SPLIT = Path(__file__).resolve().parent / "predict_command_split.py"


def scans() -> dict[str, Path]:
    """The 1 mm T1 head and its orbit crop as files (made once; `benchmarks.bench_whole_head`'s voxels)."""
    paths = {name: CACHE / f"{name}_t1.nii.gz" for name in SCANS}
    if not all(p.is_file() for p in paths.values()):
        from benchmarks.bench_whole_head import HEAD, orbit_crop, whole_head
        from orbitai.io import write_volume

        vol, labels = whole_head(HEAD, "T1")
        write_volume(vol, paths["head"])
        write_volume(orbit_crop(vol, labels), paths["crop"])
    return paths


def timed_process(checkout: Path, args: list[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds, the finished process) of ``python ARGS`` with ``checkout`` first on the path."""
    path = os.pathsep.join(p for p in (str(checkout), str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    return wall, cpu, res


def summary(runs: list[tuple[float, float]]) -> dict[str, float]:
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    return {"wall_median_s": statistics.median(walls), "wall_min_s": min(walls),
            "cpu_median_s": statistics.median(cpus), "cpu_min_s": min(cpus)}


STARTUP = {"interpreter": ["-c", "pass"], "cli_help": ["-m", "orbitai", "seg", "predict", "--help"],
           "predictor_imports": ["-c", "import orbitai.cli, orbitai.orbit.cli, orbitai.orbit.predictor"]}


def measure(checkouts: dict[str, Path], images: dict[str, Path], work: Path) -> dict[str, Any]:
    """Every timing of every checkout, runs alternating between checkouts and scans."""
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {c: {} for c in checkouts}
    splits: dict[str, dict[str, Any]] = {c: {} for c in checkouts}
    outputs: dict[str, dict[str, dict[str, str]]] = {c: {} for c in checkouts}
    for r in range(REPEATS):
        for tag, checkout in checkouts.items():
            for name, args in STARTUP.items():
                wall, cpu, _ = timed_process(checkout, args, work)
                runs[tag].setdefault(name, []).append((wall, cpu))
        for scan in SCANS:
            for tag, checkout in checkouts.items():
                out = work / f"{tag}_{scan}_{r}"
                wall, cpu, _ = timed_process(checkout, ["-m", "orbitai", "seg", "predict", str(images[scan]),
                                                        "--out", str(out)], work)
                runs[tag].setdefault(scan, []).append((wall, cpu))
                outputs[tag][scan] = {p.name: digest(p) for p in sorted(out.iterdir()) if p.is_file()}
    for scan in SCANS:
        for tag, checkout in checkouts.items():
            split_file = work / f"split_{tag}_{scan}.json"
            wall, cpu, _ = timed_process(checkout, [str(SPLIT), str(split_file), "--",
                                                    "seg", "predict", str(images[scan]), "--out",
                                                    str(work / f"split_{tag}_{scan}")], work)
            got = json.loads(split_file.read_text(encoding="utf-8"))
            stages = {k: {"wall_s": round(v[0], 3), "cpu_s": round(v[1], 3)} for k, v in got["stages"].items()}
            stages["start_and_exit"] = {"wall_s": round(wall - got["elapsed"][0], 3),
                                        "cpu_s": round(cpu - got["elapsed"][1], 3)}
            splits[tag][scan] = {"process_wall_s": round(wall, 3), "process_cpu_s": round(cpu, 3), "stages": stages}
    return {"runs": runs, "splits": splits, "outputs": outputs}


def main() -> None:
    checkouts = {"this": Path(os.environ.get("ORBITAI_CHECKOUT", HERE)).resolve()}
    baseline: Optional[str] = os.environ.get("ORBITAI_BASELINE")
    if baseline:
        checkouts = {"baseline": Path(baseline).resolve(), **checkouts}
    images = scans()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="orbitai-bench-predict-command-") as tmp:
        got = measure(checkouts, images, Path(tmp))
    load_after = os.getloadavg()
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"checkouts": {k: str(v) for k, v in checkouts.items()}, "repeats": REPEATS,
                             "scans": {k: str(v) for k, v in images.items()}, "splits": got["splits"], "runs": {}}
    for tag in checkouts:
        prefix = "" if tag == "this" else f"{tag}_"
        for name, runs in got["runs"][tag].items():
            for key, value in summary(runs).items():
                metrics[f"{prefix}{name}_{key}"] = value
            notes["runs"][f"{tag}_{name}"] = [[round(w, 3), round(c, 3)] for w, c in runs]
        metrics[f"{prefix}head_over_crop_wall"] = (metrics[f"{prefix}head_wall_median_s"]
                                                   / metrics[f"{prefix}crop_wall_median_s"])
    if baseline:
        differing = [f"{scan}/{f}" for scan in SCANS
                     for f in sorted(set(got["outputs"]["baseline"][scan]) | set(got["outputs"]["this"][scan]))
                     if got["outputs"]["baseline"][scan].get(f) != got["outputs"]["this"][scan].get(f)]
        metrics["files_differing_from_baseline"] = float(len(differing))
        notes["differing_files"] = differing
    notes["outputs"] = got["outputs"]["this"]
    notes["load_average_before"] = [round(x, 2) for x in load_before]
    notes["load_average_after"] = [round(x, 2) for x in load_after]
    notes["how"] = ("whole processes: python -m orbitai seg predict IMAGE --out OUT (default options, CPU, "
                    f"OMP_NUM_THREADS=2), {REPEATS} runs each, alternating; CPU = user + system of the child")
    targets = {"head_wall_median_s": "<= 8", "head_over_crop_wall": "<= 1.5"}
    if baseline:
        targets["files_differing_from_baseline"] = "== 0"
    write_result("predict_command", metrics, targets, notes)


if __name__ == "__main__":
    main()
