"""The CUDA and mixed-precision paths, on a lent GPU machine (``scripts/gpu_session.sh`` runs this there).

1. **Parity**: the phantom predictions of `benchmarks.bench_outputs` that the carried tree can run (orbit CT and
   MRI segmentation, the atlas prior, white-matter lesions with brain extraction and the second look) run twice on
   the same phantoms, ``--device cpu`` and ``--device cuda``, and every output file is compared with the
   tolerances of `benchmarks.bench_half_precision` (`compare_file`: label agreement and Dice, float maps against
   their range, numbers relative and absolute).
2. **Steps**: each trainer's network at its shipped recipe's patch and batch (`bench_training_speed._networks`),
   one training step on the GPU in each of the trainers' speed modes (`orbitai.training.speed`: ``plain``
   channels-first float32, ``auto`` channels-last float32, ``bf16`` channels-last under bfloat16 autocast): network
   samples per second, and the first loss of each mode on the same batch.

``ORBITAI_GPU_PARTS`` (default ``steps,parity``) picks the parts; ``ORBITAI_GPU_CONTENDED=1`` records that other work
shared the GPU and its cores (the session script's trainings). Writes ``gpu_<parts>.json`` (to ``$OUT`` when set, else
``benchmarks/results``). Without CUDA it says so and stops.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.bench_outputs import HERE, run_outputs

#: The predictions whose bundles the GPU machine's tree carries (its size limit leaves the classifiers out).
COMMANDS = ("seg_ct", "seg_mri", "seg_prior", "neuro_lesions")


def parity(work: Path) -> dict[str, Any]:
    """Every output of `COMMANDS` on the CPU and on CUDA, file by file."""
    from benchmarks.bench_half_precision import compare_file

    runs = {dev: run_outputs(HERE, work, f"out_{dev}", device=dev, commands=COMMANDS) for dev in ("cpu", "cuda")}
    out: dict[str, Any] = {}
    for name in COMMANDS:
        a, b = runs["cpu"][name], runs["cuda"][name]
        if "error" in a or "error" in b:
            out[name] = {"error": a.get("error") or b.get("error")}
            continue
        files = {f: compare_file(work / "out_cpu" / name / f, work / "out_cuda" / name / f) for f in a["files"]}
        out[name] = {"seconds_cpu": a["seconds"], "seconds_cuda": b["seconds"],
                     "n_files": len(files), "n_outside": sum(int(v.get("n_outside", 0)) for v in files.values()),
                     "outside": {f: v["outside"] for f, v in files.items() if v.get("n_outside")}}
    return out


def _step_rate(make_model: Callable[[], torch.nn.Module], batch: tuple[torch.Tensor, torch.Tensor],
               loss: Callable[..., torch.Tensor], mode: str, repeat: int, dev: torch.device) -> dict[str, Any]:
    """One network's training step on ``dev`` in the trainers' ``mode`` (`orbitai.training.speed`): its time, samples
    per second and the loss of the first step."""
    from orbitai.training.speed import StepSpeed, model_dims

    speed = StepSpeed.auto(dev, mode)
    torch.manual_seed(0)
    model = make_model().to(dev)
    speed.model(model, model_dims(model))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x0, y0 = batch
    x, y = speed.inputs(x0.to(dev)), y0.to(dev)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with speed.autocast(dev):
            o = model(x)
        lo = loss(o.float(), y)
        lo.backward()
        opt.step()
        return float(lo.detach())

    first = step()
    for _ in range(3):
        step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(repeat):
        step()
    sync()
    dt = (time.perf_counter() - t0) / repeat
    return {"precision": speed.describe()["precision"], "step_s": dt, "samples_per_s": x0.shape[0] / dt,
            "batch": int(x0.shape[0]), "input": list(x0.shape[1:]), "first_loss": first,
            "finite": bool(np.isfinite(first))}


def steps(repeat: int = 20, device: str = "cuda") -> dict[str, Any]:
    """Network samples per second of one training step per trainer, float32 and bfloat16 autocast, on CUDA (the
    same seed and batch for both, so their first losses differ by the precision alone)."""
    from benchmarks.bench_training_speed import _networks

    out: dict[str, Any] = {}
    for name, (make_model, make_batch, loss) in _networks().items():
        batch = make_batch()
        row = {mode: _step_rate(make_model, batch, loss, mode, repeat, torch.device(device))
               for mode in ("plain", "auto", "bf16")}
        row["bf16_speedup"] = row["auto"]["step_s"] / row["bf16"]["step_s"]
        row["first_loss_difference"] = abs(row["auto"]["first_loss"] - row["bf16"]["first_loss"])
        out[name] = row
    return out


def main() -> None:
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; run it on a GPU machine (scripts/gpu_session.sh)")
        return
    doc: dict[str, Any] = {"area": "gpu_paths", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "machine": {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                                       "cuda": torch.version.cuda, "cpus": os.cpu_count(),
                                       "python": platform.python_version()}}
    parts = os.environ.get("ORBITAI_GPU_PARTS", "steps,parity").split(",")
    doc["contended"] = os.environ.get("ORBITAI_GPU_CONTENDED", "") == "1"
    t0 = time.perf_counter()
    if "steps" in parts:
        doc["steps"] = steps()
    if "parity" in parts:
        with tempfile.TemporaryDirectory(prefix="orbitai-gpu-") as tmp:
            doc["parity"] = parity(Path(tmp))
    doc["seconds"] = round(time.perf_counter() - t0, 1)
    dest = Path(os.environ.get("OUT") or HERE / "benchmarks" / "results") / f"gpu_{'_'.join(parts)}.json"
    dest.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    print(json.dumps(doc, indent=1, default=float))


if __name__ == "__main__":
    main()
