"""Issue 77's inference bar: the 8 phantom predictions of `benchmarks.bench_outputs` no slower than before the
training-speed work, with outputs within the tolerances of `benchmarks.bench_half_precision`.

Two checkouts run the same commands on the same phantoms: the commit before issue 77's first change
(``ORBITAI_BEFORE_COMMIT``, default ``d96da2b^``, checked out as a temporary git worktree) and this one. Both read the
same model weights, this tree's bundled models put first on ``ORBITAI_MODEL_PATH``, so what differs is the code alone
(models bundled since would otherwise make the outputs differ for reasons of their own). The checkouts alternate,
``ORBITAI_ROUNDS`` rounds (default 3); each command's time is the whole process (`run_outputs`: start-up, reading,
prediction, writing), its median over the rounds. Outputs of the last round are compared file by file with
`compare_file` (`TOLERANCE`). Run on a quiet machine: the figures are ratios of the same commands in one run.

``neuro lesions`` changed on purpose between the two (issue 79's learned second look, read from the lesion bundle,
which the earlier code does not know): so its outputs are compared a second time like for like, both checkouts on
a copy of the bundles whose lesion bundle has no second look (its single-threshold path, what the earlier code runs):
``like_for_like_outside_tolerance``.

``python -m benchmarks inference_times`` -> ``benchmarks/results/inference_times.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_half_precision import MODELS, TOLERANCE, compare_runs
from benchmarks.bench_outputs import HERE, checkout_commit, run_outputs
from benchmarks.common import write_result

BEFORE = os.environ.get("ORBITAI_BEFORE_COMMIT", "d96da2b^")
ROUNDS = int(os.environ.get("ORBITAI_ROUNDS", "3"))


def _without_second_look(models: Path, dest: Path) -> Path:
    """A copy of ``models`` whose lesion bundle has no second look (`orbitai.neuro.second_look`: such a bundle keeps
    the single-threshold path)."""
    shutil.copytree(models, dest)
    meta_path = dest / "neuro_lesion_unet_demo" / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    for f in meta.pop("files", {}).values():
        (meta_path.parent / f["path"]).unlink()
    meta.pop("second_look", None)
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return dest


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orbitai-bench-inference-") as tmp:
        work = Path(tmp)
        old = work / "before"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(old), BEFORE], check=True,
                       capture_output=True)
        try:
            models = work / "models"
            shutil.copytree(HERE / MODELS, models)
            env = {"ORBITAI_MODEL_PATH": str(models)}
            seconds: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
            runs: dict[str, dict[str, Any]] = {}
            for r in range(ROUNDS):
                for label, checkout in (("before", old), ("after", HERE)) if r % 2 == 0 else \
                        (("after", HERE), ("before", old)):
                    runs[label] = run_outputs(checkout, work, f"outputs_{label}", env)
                    for name, out in runs[label].items():
                        if "seconds" in out:
                            seconds[label].setdefault(name, []).append(out["seconds"])
                    if r < ROUNDS - 1:          # the last round's outputs are compared
                        shutil.rmtree(work / f"outputs_{label}")
                print(f"round {r + 1}/{ROUNDS}: " + ", ".join(
                    f"{n} {seconds['before'].get(n, [0])[-1]:.1f}/{seconds['after'].get(n, [0])[-1]:.1f} s"
                    for n in runs["after"]))
            compared = compare_runs(runs["before"], work / "outputs_before", runs["after"], work / "outputs_after")
            plain = _without_second_look(models, work / "models_plain")
            like: dict[str, Any] = {}
            for label, checkout in (("before", old), ("after", HERE)):
                like[label] = run_outputs(checkout, work, f"plain_{label}", {"ORBITAI_MODEL_PATH": str(plain)},
                                          commands=["neuro_lesions"])["neuro_lesions"]
            like_compared = compare_runs({"neuro_lesions": like["before"]}, work / "plain_before",
                                         {"neuro_lesions": like["after"]}, work / "plain_after")["neuro_lesions"]
            before_commit = checkout_commit(old)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(old)], capture_output=True)
    medians = {label: {n: float(np.median(v)) for n, v in s.items()} for label, s in seconds.items()}
    common = sorted(set(medians["before"]) & set(medians["after"]))
    ratios = {n: medians["after"][n] / medians["before"][n] for n in common}
    outside = sum(v.get("n_outside", 0) for files in compared.values() if "error" not in files for v in files.values())
    metrics: dict[str, float] = {f"{n}_after_over_before": round(ratios[n], 3) for n in common}
    metrics.update({
        "commands_timed": float(len(common)),
        "commands_slower_over_5pct": float(sum(r > 1.05 for r in ratios.values())),
        "total_after_over_before": round(sum(medians["after"][n] for n in common)
                                         / max(sum(medians["before"][n] for n in common), 1e-9), 3),
        "outputs_outside_tolerance": float(outside),
        "commands_failed": float(sum("error" in v for v in compared.values())),
        "like_for_like_outside_tolerance": 1.0 if "error" in like_compared
        else float(sum(v.get("n_outside", 0) for v in like_compared.values())),
        "like_for_like_files": float(len(like_compared)),
    })
    write_result("inference_times", metrics,
                 {"total_after_over_before": "<= 1.0", "like_for_like_outside_tolerance": "== 0", "commands_failed": "== 0"},
                 {"before": before_commit, "after": checkout_commit(HERE), "rounds": ROUNDS,
                  "models": "this tree's bundled models for both (ORBITAI_MODEL_PATH)", "seconds": seconds,
                  "median_seconds": medians, "tolerance": TOLERANCE, "compared": compared,
                  "like_for_like": {"what": "neuro lesions, both checkouts, the lesion bundle without its second "
                                            "look", "compared": like_compared,
                                    "seconds": {k: v.get("seconds") for k, v in like.items()}},
                  "timing": "whole processes (python -m orbitai ...), OMP_NUM_THREADS=2, checkouts alternating"})


if __name__ == "__main__":
    main()
