"""One trainer's steady-state speed, run as its own process inside a given source tree (``bench_training_speed``).

    python benchmarks/training_speed_run.py TRAINER DATA OUT.json

Only entry points that every release has are used (``orbitai.orbit.train.train`` with a progress callback,
``orbitai.neuro.lesionseg_train.train`` with its step log), so the same file times the tree before issue 77 (put
first on ``PYTHONPATH``) and today's. The layout and precision of today's steps come from ``ORBITAI_TRAIN_SPEED``.
Samples per second are counted between the first report after ``WARM`` steps and the last; the cores' use is the CPU
time of this process and its children (the batch workers) over the same window.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import psutil

WARM = {"orbit": 10, "lesions": 20}


def _cpu_seconds() -> float:
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for c in me.children(recursive=True):
        try:
            total += sum(c.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


class _Window:
    """Marks (wall time, CPU time, samples done) at each report."""

    def __init__(self, batch: int) -> None:
        self.batch, self.marks = batch, []

    def mark(self, steps: int) -> None:
        self.marks.append((time.perf_counter(), _cpu_seconds(), steps * self.batch))

    def result(self, warm_steps: int) -> dict:
        marks = [m for m in self.marks if m[2] >= warm_steps * self.batch]
        (t0, c0, s0), (t1, c1, s1) = marks[0], marks[-1]
        cores = len(psutil.Process().cpu_affinity() or []) or psutil.cpu_count()
        return {"samples_per_s": (s1 - s0) / (t1 - t0), "seconds_per_step": (t1 - t0) / ((s1 - s0) / self.batch),
                "cores_busy_pct": 100.0 * (c1 - c0) / ((t1 - t0) * cores), "window_samples": s1 - s0,
                "window_s": t1 - t0}


def orbit(kind: str, data: Path, out: Path) -> dict:
    import orbitai.orbit  # noqa: F401  (registers the networks)
    from orbitai.cohort.manifest import read_manifest
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.train import train

    if kind == "orbit_mri":
        cfg = get_config("svnet-demo-mri-ted-thick-globe")
        cfg = replace(cfg, extra={**cfg.extra, "synth": {**cfg.extra["synth"], "anatomies": 4}})
        cases = read_manifest(data / "mri" / "manifest.csv")
    else:
        cfg = get_config("svnet-demo-ct-ted")
        cases = read_manifest(data / "ct" / "manifest.csv")
    cfg = replace(cfg, epochs=1, iters_per_epoch=40, seed=5)
    w = _Window(cfg.batch_size)
    t0 = time.perf_counter()
    first: list[float] = []

    def progress(done: int, total: int, msg: str) -> None:
        if msg.startswith("epoch"):
            if not first:
                first.append(time.perf_counter() - t0)
            w.mark(done)

    train(cases, cfg, out / "bundle", progress=progress)
    return {**w.result(WARM["orbit"]), "setup_s": first[0] if first else None, "batch": cfg.batch_size,
            "patch": list(cfg.spec.patch_dhw), "config": cfg.name}


def lesions(data: Path, out: Path) -> dict:
    from orbitai.neuro import lesionseg_train as L

    work = out / "work"
    work.mkdir(parents=True)
    (work / "data").symlink_to(data / "lesion_data", target_is_directory=True)
    recipe = L.LesionTrainRecipe(real_seeds=tuple(range(20000, 20006)), iterations=100, batch=16, lr=1e-3, seed=7,
                                 per_lesion=0.5, contrast_min=0.35, checkpoint_every=1000)
    w = _Window(recipe.batch)

    class Marks(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if msg.startswith("step "):
                w.mark(int(msg.split()[1].split("/")[0]))

    L.log.addHandler(Marks())
    L.log.setLevel(logging.INFO)
    L.train(out / "bundle", work, recipe)
    return {**w.result(WARM["lesions"]), "batch": recipe.batch, "patch": [len(L.CONTEXT), L.PATCH, L.PATCH]}


def main() -> None:
    trainer, data, result = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out = result.parent / f"{result.stem}-work"
    out.mkdir(parents=True)
    r = lesions(data, out) if trainer == "lesions" else orbit(trainer, data, out)
    result.write_text(json.dumps(r))


if __name__ == "__main__":
    main()
