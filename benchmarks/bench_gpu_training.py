"""The bundled recipes trained whole on a lent GPU (``scripts/gpu_session.sh``) against the same recipes' CPU runs.

Read from the bundles' own metadata (their ``training``: seconds, steps, precision): the GPU bundles that the session
brought back (``ORBITAI_GPU_BUNDLES``, default ``build/models/neuro_lesion_unet_gpu`` and
``build/models/orbit_svnet_mri_gpu``) and, for each, the bundled model whose last stage ran the same recipe on a CPU.
The quality of the GPU bundles is measured by the task benchmarks (``orbit_mri_ted``, ``orbit_thick``,
``orbit_mri_variants``, ``lesion_second_look``), each naming the bundle it ran.

``python -m benchmarks gpu_training`` -> ``benchmarks/results/gpu_training.json``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "orbitai" / "resources" / "models"
#: GPU bundle -> (the bundled model whose last stage is the same recipe, the key of the figures)
PAIRS = {"neuro_lesion_unet_gpu": ("neuro_lesion_unet_demo", "lesions"),
         "orbit_svnet_mri_gpu": ("orbit_svnet_mri_demo", "orbit_mri")}


def _seconds(training: dict[str, Any]) -> float:
    """A bundle's training seconds (lesion bundles record minutes)."""
    return float(training["seconds"]) if "seconds" in training else 60.0 * float(training["minutes"])


def main() -> None:
    default = ",".join(str(ROOT / "build" / "models" / n) for n in PAIRS)
    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {}
    for folder in filter(None, os.environ.get("ORBITAI_GPU_BUNDLES", default).split(",")):
        path = Path(folder)
        if path.name not in PAIRS or not (path / "metadata.json").is_file():
            print(f"bench_gpu_training: no GPU bundle at {path}; skipped")
            continue
        cpu_name, key = PAIRS[path.name]
        gpu_meta = json.loads((path / "metadata.json").read_text())
        cpu_meta = json.loads((MODELS / cpu_name / "metadata.json").read_text())
        gpu, cpu = gpu_meta["training"], cpu_meta["training"]
        same = ("iterations", "batch_size", "lr", "epochs", "iterations_per_epoch", "config")
        diff = {k: (cpu.get(k), gpu.get(k)) for k in same if cpu.get(k) != gpu.get(k)}
        metrics[f"{key}_gpu_seconds"] = _seconds(gpu)
        metrics[f"{key}_cpu_seconds"] = _seconds(cpu)
        metrics[f"{key}_gpu_speedup"] = _seconds(cpu) / _seconds(gpu)
        notes[key] = {"gpu_bundle": path.name, "cpu_bundle": f"{cpu_name} (the bundled model's last stage)",
                      "gpu_steps": gpu.get("steps"), "cpu_steps": cpu.get("steps", "float32 (plain)"),
                      "recipe_differences": diff or "none (the same schedule, batch and learning rate)",
                      "gpu_initial_weights": gpu.get("initial_weights", "the bundled model"),
                      "gpu_training_data": gpu_meta.get("training_data", ""),
                      "cpu_training_data": cpu_meta.get("training_data", ""),
                      "cpu_machine": "the 2-core AMD EPYC of the project's runs, shared with other jobs",
                      "gpu_machine": "one NVIDIA H200 and 16 cores (the workplace's device tool), two trainings "
                                     "and bench_gpu sharing them"}
    if not metrics:
        print("bench_gpu_training: no GPU bundles here (they come back from scripts/gpu_session.sh)")
        return
    write_result("gpu_training", metrics, {}, notes)


if __name__ == "__main__":
    main()
