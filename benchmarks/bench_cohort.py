"""Cohort runner (#34): ``seg predict --manifest`` serial vs on 2 local Dask workers, same machine, same run.

16 orbital CT phantoms (distinct anatomies, seeds never used for training), the bundled CT demo model on the
CPU, no mirroring, with the plain label map and the uncertainty map written:

* serial: ``python -m orbitai seg predict --manifest M --out S`` (one process, cases one after another, torch
  with its default threads);
* dask: the same command with ``--workers 2`` (a local cluster of 2 worker processes, one thread each, each
  loading the model once).

Quality bars: identical outputs (every label map byte for byte; uncertainty maps within 1e-6), Dask wall time
at most 1.1 x the serial one. The scheduler overhead per case is
``(dask wall - sum of the cases' own seconds in their workers / workers) / cases``: what the cluster (start,
hand-over, imports in the workers, gathering) adds to each case beyond its own work, on the critical path.

Training on several processes (torch DDP, gloo, ``--nproc 2``) vs one process of 2 threads, same global batch:

* TAO Network B (8 TAO phantoms = 16 eyes, 3 epochs, no hold-out): every epoch's mean training loss, and a
  third run of one process on 1 thread, whose drift from the 2-thread run is float summation order alone;
* SV-net (``svnet-demo-ct``, 2 CT phantoms, 1 epoch of 30 iterations of batch 2): the epoch's mean loss.

Wall times are reported (fresh processes, from start to exit). Bar: equal losses within the tolerance of
the README ("Training on several processes": first epoch 1e-5, later epochs 2 %).

Run: ``python -m benchmarks cohort`` (writes benchmarks/results/cohort.json; about 11 minutes on 2 cores).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import write_result

N_CASES = 16
SEEDS = tuple(734000 + i for i in range(N_CASES))   # never used for training cohorts
WORKERS = 2
MODEL = "orbit_svnet_ct_demo"
PAIRS = 3
SERIAL_THREADS = 2   # torch's default on this 2-core machine: the serial run's intra-op threads


def _run(manifest: Path, out: Path, *extra: str, env: dict | None = None) -> tuple[float, dict[str, float]]:
    """(wall seconds, each case's own seconds) of one ``seg predict --manifest`` in a fresh process."""
    cmd = [sys.executable, "-m", "orbitai", "seg", "predict", "--manifest", str(manifest), "--out", str(out),
           "--device", "cpu", "--no-mirror", "--model", MODEL, "--labelmap", "--uncertainty", *extra]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    seconds = {m.group(1): float(m.group(2)) for m in re.finditer(r"^case (\S+) complete \(([0-9.]+) s\)$",
                                                                  res.stdout, re.M)}
    return wall, seconds


def _timed(*args: str, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "orbitai", *args], capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    if res.returncode != 0:
        raise RuntimeError(f"orbitai {' '.join(args)} failed: {res.stderr.strip()[-500:]}")
    return time.perf_counter() - t0


def ddp_metrics(d: Path) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Losses and wall times of the TAO and SV-net trainings on 1 and 2 processes (see the module's text)."""
    import json

    from orbitai.phantoms.cohort import write_cohort

    tao = write_cohort("tao", 8, 734100, d / "tao", montage_cases=0)
    ct = write_cohort("orbit-ct", 2, 734101, d / "ct", montage_cases=0)
    out: dict = {}
    runs = {"1 process": ("1", {}), "2 processes": ("2", {}), "1 process 1 thread": ("1", {"OMP_NUM_THREADS": "1"})}
    for name, (n, env) in runs.items():
        b = d / f"tao-{n}-{len(env)}"
        wall = _timed("tao", "train", "--manifest", str(tao), "--network", "B", "--epochs", "3", "--holdout", "0",
                      "--device", "cpu", "--out", str(b), "--nproc", n, env=env)
        hist = json.loads((b / "metadata.json").read_text())["training"]["history"]
        out[f"tao_{name.replace(' ', '_')}"] = {"wall_s": round(wall, 1), "losses": [h["train_loss"] for h in hist]}
    for n in ("1", "2"):
        b = d / f"seg-{n}"
        wall = _timed("seg", "train", "--manifest", str(ct), "--config", "svnet-demo-ct", "--epochs", "1",
                      "--device", "cpu", "--out", str(b), "--nproc", n)
        loss = float((d / f"seg-{n}-metrics.csv").read_text().splitlines()[1].split(",")[1])
        out[f"seg_{n}_process{'es' if n == '2' else ''}"] = {"wall_s": round(wall, 1), "losses": [loss]}
    one, two = out["tao_1_process"]["losses"], out["tao_2_processes"]["losses"]
    thread = out["tao_1_process_1_thread"]["losses"]
    s1, s2 = out["seg_1_process"]["losses"][0], out["seg_2_processes"]["losses"][0]
    flat = {
        "ddp_tao_first_epoch_difference": abs(one[0] - two[0]),
        "ddp_tao_max_relative_difference": max(abs(a - b) / a for a, b in zip(one, two)),
        "ddp_tao_max_relative_difference_1_vs_2_threads": max(abs(a - b) / a for a, b in zip(one, thread)),
        "ddp_seg_relative_difference": abs(s1 - s2) / s1,
        **{f"ddp_{k}_wall_s": float(v["wall_s"]) for k, v in out.items()},
        "ddp_tao_2_over_1_wall": out["tao_2_processes"]["wall_s"] / out["tao_1_process"]["wall_s"],
        "ddp_seg_2_over_1_wall": out["seg_2_processes"]["wall_s"] / out["seg_1_process"]["wall_s"],
    }
    return flat, {k: v["losses"] for k, v in out.items()}


def main() -> None:
    from orbitai.io import read_volume, write_volume
    from orbitai.phantoms import orbit_case

    with tempfile.TemporaryDirectory(prefix="bench-cohort-") as tmp:
        d = Path(tmp)
        (d / "images").mkdir()
        t0 = time.perf_counter()
        rows = []
        for i, seed in enumerate(SEEDS):
            write_volume(orbit_case(seed, modality="ct", oblique=False).image, d / "images" / f"ct{seed}.nrrd")
            rows.append(f"case{i:02d},images/ct{seed}.nrrd\n")
        (d / "m.csv").write_text("case_id,image\n" + "".join(rows))
        phantoms_s = time.perf_counter() - t0
        # PAIRS alternating serial / Dask runs: this machine's speed drifts by 10-20 % between minutes, so one pair
        # can say 0.95x or 1.19x for the same code; the median pair is the figure, every pair is kept
        pairs = []
        for k in range(PAIRS):
            sw, sc = _run(d / "m.csv", d / f"serial{k}")
            dw, dc = _run(d / "m.csv", d / f"dask{k}", "--workers", str(WORKERS))
            pairs.append((dw / sw, sw, dw, sc, dc))
            if k:   # the next pairs only time: their outputs are the first pair's
                shutil.rmtree(d / f"serial{k}")
                shutil.rmtree(d / f"dask{k}")
        (d / "serial0").rename(d / "serial")
        (d / "dask0").rename(d / "dask")
        ratio, serial_wall, dask_wall, serial_cases, dask_cases = sorted(pairs, key=lambda q: q[0])[PAIRS // 2]
        # the same with as many torch threads in each worker as the serial process has (2), through Dask's own
        # configuration (a user's ~/.config/dask/*.yaml does the same): oversubscribed, but the same summation order
        (d / "dask-config").mkdir()
        (d / "dask-config" / "threads.yaml").write_text(
            "distributed:\n  nanny:\n    pre-spawn-environ:\n" + "".join(
                f"      {k}: {SERIAL_THREADS}\n" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")))
        same_wall, _ = _run(d / "m.csv", d / "dask-same-threads", "--workers", str(WORKERS),
                            env={"DASK_CONFIG": str(d / "dask-config")})
        max_unc_same = max(float(np.max(np.abs(read_volume(d / "serial" / c / "uncertainty.nrrd").array
                                               - read_volume(d / "dask-same-threads" / c / "uncertainty.nrrd").array)))
                           for c in [f"case{i:02d}" for i in range(N_CASES)])
        ids = [f"case{i:02d}" for i in range(N_CASES)]
        identical = sum((d / "serial" / c / "labels.nrrd").read_bytes() == (d / "dask" / c / "labels.nrrd").read_bytes()
                        for c in ids)
        seg_identical = sum((d / "serial" / c / "segmentation.seg.nrrd").read_bytes()
                            == (d / "dask" / c / "segmentation.seg.nrrd").read_bytes() for c in ids)
        max_unc = max(float(np.max(np.abs(read_volume(d / "serial" / c / "uncertainty.nrrd").array
                                          - read_volume(d / "dask" / c / "uncertainty.nrrd").array))) for c in ids)
        shape = read_volume(d / "images" / f"ct{SEEDS[0]}.nrrd").shape
        ddp, ddp_losses = ddp_metrics(d)
    dask_sum = sum(dask_cases.values())
    overhead = (dask_wall - dask_sum / WORKERS) / N_CASES
    metrics = {
        "cases": N_CASES,
        "identical_label_maps": identical,
        "identical_segmentations": seg_identical,
        "max_uncertainty_difference": max_unc,
        "serial_wall_s": serial_wall,
        "dask_wall_s": dask_wall,
        "dask_over_serial": ratio,
        "serial_case_sum_s": sum(serial_cases.values()),
        "dask_case_sum_s": dask_sum,
        "scheduler_overhead_per_case_s": overhead,
        "max_uncertainty_difference_same_threads": max_unc_same,
        "dask_same_threads_over_serial": same_wall / serial_wall,
        **ddp,
    }
    targets = {"identical_label_maps": f">= {N_CASES}", "identical_segmentations": f">= {N_CASES}",
               "max_uncertainty_difference": "<= 1e-6", "dask_over_serial": "<= 1.1",
               "ddp_tao_first_epoch_difference": "<= 1e-5", "ddp_tao_max_relative_difference": "<= 0.02",
               "ddp_seg_relative_difference": "<= 0.02"}
    notes = {
        "what": f"orbitai seg predict --manifest ({N_CASES} CT phantoms {' x '.join(map(str, shape))} voxels, model "
                f"{MODEL}, CPU, --no-mirror --labelmap --uncertainty), each run a fresh python -m orbitai process: "
                f"serial (one process) vs --workers {WORKERS} (local Dask cluster, one thread per worker)",
        "wall": "from starting the command to its exit (imports, cluster start and close included)",
        "case_sum": "sum over cases of each case's own seconds in its process (prediction and writing; the first "
                    "case of each process includes loading the model)",
        "scheduler_overhead_per_case_s": f"(dask wall - dask case sum / {WORKERS} workers) / {N_CASES} cases: what "
                                         "the cluster adds per case beyond the cases' own work on the critical path "
                                         "(cluster start, worker imports, hand-over, gathering, close)",
        "phantoms_s": round(phantoms_s, 1),
        "pairs": f"{PAIRS} alternating serial / Dask runs; the figures are the pair of median ratio; all ratios: "
                 + ", ".join(f"{q[0]:.3f} ({q[1]:.1f} s / {q[2]:.1f} s)" for q in pairs),
        "max_uncertainty_difference": "largest |serial - dask| over every voxel of the 16 uncertainty maps (1 - the "
                                      "winning class probability, float32): torch adds in another order with 2 "
                                      "intra-op threads (serial) than with 1 (each Dask worker); 1.19e-6 is 10 float32 "
                                      "steps at 1.0. The label maps are identical.",
        "same_threads": f"the Dask run again with {SERIAL_THREADS} torch threads in each of the {WORKERS} workers (Dask "
                        "configuration distributed.nanny.pre-spawn-environ, a YAML file in DASK_CONFIG): the serial "
                        "process's thread count, so the same summation order, on more threads than cores",
    }
    notes["ddp"] = ("orbitai tao|seg train --nproc 2 (torch DDP on gloo, one thread a process) vs one process of 2 "
                    "threads, the same global batch: losses are each epoch's mean training loss over the global "
                    "batch; wall_s from start to exit of a fresh process (imports, preprocessing, rendezvous "
                    "included). On one 2-core machine two processes are slower than one of 2 threads: a batch of "
                    "2 patches costs one thread about as much as one patch (small convolutions), and the batch "
                    "statistics are exchanged at every batch-norm layer; DDP pays off across machines or GPUs.")
    notes["ddp_losses"] = ddp_losses
    write_result("cohort", metrics, targets, notes)


if __name__ == "__main__":
    main()
