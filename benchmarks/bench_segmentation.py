"""Orbit segmentation: accuracy of the bundled models on held-out phantoms, and the speed and
memory of the overlapped window against the paper's step-1 window on a 512x512x100 CT.

Run: ``python -m benchmarks segmentation`` (writes benchmarks/results/segmentation.json), or
``python -m benchmarks.bench_segmentation speed`` / ``accuracy`` for one part.
Held-out phantoms use seeds never used by the training commands (training: 1000/2000/3000).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result

TEST_SEED, TEST_N = 9000, 8
MODELS = {"svnet": "orbit_svnet_ct_demo", "sunet": "orbit_sunet_ct_demo", "sequnet": "orbit_sequnet_ct_demo"}
PAPER_FIVE = ("superior_rectus_muscle", "lateral_rectus_muscle", "medial_rectus_muscle",
              "inferior_rectus_muscle", "optic_nerve")
SHORT = {"superior_rectus_muscle": "sr", "lateral_rectus_muscle": "lr", "medial_rectus_muscle": "mr",
         "inferior_rectus_muscle": "ir", "optic_nerve": "on", "eyeball": "eyeball"}


def run_child(args: list[str]) -> tuple[float, float, float]:
    """Run ``python -m orbitai ARGS``; return (wall seconds, peak RSS MiB, sliding-window seconds)
    of that child alone (the window time is what the child reports on its ``timing:`` line)."""
    import re

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, "-m", "orbitai", *args], stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"orbitai {' '.join(args[:2])} failed: {proc.stderr.read().decode()[-500:]}")
        out.seek(0)
        m = re.search(r"timing: window ([0-9.]+) s", out.read())
    return wall, usage.ru_maxrss / 1024.0, float(m.group(1)) if m else float("nan")


def accuracy(tmp: Path, metrics: dict, notes: dict) -> None:
    from orbitai.bundle import BundleError, find_bundle
    from orbitai.phantoms import write_cohort
    from orbitai.seg.evaluate import evaluate

    manifest = write_cohort("orbit-ct", TEST_N, TEST_SEED, tmp / "test", montage_cases=0)
    for short, name in MODELS.items():
        try:
            find_bundle(name)
        except BundleError:
            notes[f"{short}_missing"] = f"bundle {name} not found; not evaluated"
            continue
        summary = evaluate(manifest, name, tmp / f"eval_{short}", device="cpu", progress=lambda *a: None)
        ps = summary["per_structure"]
        for s, e in ps.items():
            metrics[f"{short}_iou_{SHORT[s]}"] = e["iou"]
            metrics[f"{short}_dice_{SHORT[s]}"] = e["dice"]
        metrics[f"{short}_miou_five"] = float(np.mean([ps[s]["iou"] for s in PAPER_FIVE]))
        metrics[f"{short}_dice_eyeball"] = ps["eyeball"]["dice"]
        metrics[f"{short}_volume_r_min"] = float(min(ps[s]["pearson_r"] for s in PAPER_FIVE))
        metrics[f"{short}_volume_re_pct_mean"] = float(np.mean([ps[s]["relative_error_pct"] for s in PAPER_FIVE]))


def speed(tmp: Path, metrics: dict, notes: dict) -> None:
    import torch

    from orbitai.io import write_volume
    from orbitai.metrics.segmentation import dice
    from orbitai.phantoms import orbit_case
    from orbitai.segfile import read_segmentation

    case = orbit_case(424242, modality="ct", size=(512, 512, 100), spacing=(0.3, 0.3, 0.5), oblique=False)
    img = write_volume(case.image, tmp / "ct512.nrrd")
    notes["speed_volume"] = "512x512x100 CT phantom, 0.3x0.3x0.5 mm; model orbit_svnet_ct_demo"
    outs = {}
    for window in ("overlap", "step1"):
        out = tmp / window     # seg predict --out DIR: DIR/segmentation.seg.nrrd, volumes.csv, result.json
        wall, rss, win = run_child(["seg", "predict", str(img), "--out", str(out), "--window", window,
                                    "--model", MODELS["svnet"], "--device", "cpu"])
        metrics[f"{window}_cpu_s"] = wall          # whole command: start-up, I/O, resampling, post-processing
        metrics[f"{window}_window_cpu_s"] = win    # the sliding-window inference alone
        metrics[f"{window}_cpu_peak_mb"] = rss
        outs[window] = read_segmentation(out / "segmentation.seg.nrrd")[0].array
    metrics["overlap_vs_step1_speedup"] = metrics["step1_window_cpu_s"] / metrics["overlap_window_cpu_s"]
    metrics["overlap_vs_step1_end_to_end_speedup"] = metrics["step1_cpu_s"] / metrics["overlap_cpu_s"]
    metrics["overlap_vs_step1_dice"] = dice(outs["overlap"] > 0, outs["step1"] > 0)
    per = [dice(outs["overlap"] == v, outs["step1"] == v) for v in np.unique(outs["step1"]) if v]
    metrics["overlap_vs_step1_dice_min_label"] = float(min(per))
    if torch.cuda.is_available():
        for window in ("overlap", "step1"):
            wall, _, win = run_child(["seg", "predict", str(img), "--out", str(tmp / f"gpu_{window}"),
                                      "--window", window, "--model", MODELS["svnet"], "--device", "cuda"])
            metrics[f"{window}_gpu_s"] = wall
            metrics[f"{window}_window_gpu_s"] = win


def main(parts: tuple[str, ...] = ("accuracy", "speed")) -> None:
    """Run the named parts; metrics of parts not run are kept from the last result file."""
    import json

    from benchmarks.common import RESULTS

    metrics: dict[str, float] = {}
    notes: dict[str, str] = {"threads": str(os.environ.get("OMP_NUM_THREADS", "default"))}
    previous = RESULTS / "segmentation.json"
    if previous.exists() and set(parts) != {"accuracy", "speed"}:
        old = json.loads(previous.read_text())
        metrics.update(old.get("metrics", {}))
        notes.update(old.get("notes", {}))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "accuracy" in parts:
            accuracy(tmp, metrics, notes)
        if "speed" in parts:
            speed(tmp, metrics, notes)
    targets = {
        "svnet_miou_five": ">= 0.82",
        "svnet_dice_eyeball": ">= 0.95",
        "overlap_vs_step1_speedup": ">= 10",
        "overlap_vs_step1_dice": ">= 0.98",
    }
    write_result("segmentation", metrics, targets, notes)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("accuracy", "speed"))
