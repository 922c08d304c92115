"""Training speed per shipped trainer (issue 77): before and after, where a step's time goes, how busy the cores are.

1. **Before / after, the trainers themselves.** Each trainer runs as its own process for a short schedule of its
   recipe (same patch, batch and augmentation) in the tree before issue 77 (``BASELINE``, checked out with
   ``git worktree``) and in this tree (``benchmarks/training_speed_run.py``): steady-state samples per second and
   the CPU time of the process and its batch workers over wall time x cores. This tree runs twice: ``auto``
   (channels-last float32, the default) and, on a CPU with native bfloat16, ``bf16``.
2. **Where a step goes** (this tree, in process): batch synthesis, forward, backward and optimiser per step, in the
   old layout (``plain``) and the new; the convolutions' FLOP rate in training and in inference against the sgemm
   rate measured in the same run (FLOPs counted by ``torch.utils.flop_counter``, convolution time by the profiler).

``python -m benchmarks training_speed`` (about 20 minutes on 2 cores); results in ``results/training_speed.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parent.parent
#: The last commit before issue 77's training changes: "today's" trainers of the issue.
BASELINE = "33cb2a8"
TRAINERS = ("orbit_mri", "orbit_ct", "lesions")
DATA = REPO / "build" / "bench_training_speed"
LESION_SEEDS = range(20000, 20006)


def _data() -> Path:
    """CT and MRI phantom cohorts (held-out seeds) and lesion phantom caches, made once into ``build/``."""
    from orbitai.neuro.lesion_cases import REAL, prepare_data
    from orbitai.phantoms import write_cohort

    for kind, sub, seed in (("orbit-ct", "ct", 9370), ("orbit-mri", "mri", 9380)):
        if not (DATA / sub / "manifest.csv").exists():
            write_cohort(kind, 4, seed, DATA / sub, montage_cases=0)
    prepare_data(DATA / "lesion_prep", [(s, REAL) for s in LESION_SEEDS])
    link = DATA / "lesion_data"
    if not link.exists():
        link.symlink_to(DATA / "lesion_prep" / "data", target_is_directory=True)
    return DATA


@contextmanager
def _baseline_tree() -> Iterator[Path | None]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        yield None
        return
    where = Path(tempfile.mkdtemp(prefix="orbitai-baseline-")) / "tree"
    try:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(where), BASELINE],
                       check=True, capture_output=True)
        yield where
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)
        shutil.rmtree(where.parent, ignore_errors=True)


def _run(tree: Path, trainer: str, data: Path, speed: str | None, cache: Path) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix=f"orbitai-speed-{trainer}-")) / "result.json"
    env = {**os.environ, "PYTHONPATH": str(tree), "ORBITAI_CACHE": str(cache)}
    env.pop("ORBITAI_TRAIN_SPEED", None)
    if speed:
        env["ORBITAI_TRAIN_SPEED"] = speed
    try:
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "training_speed_run.py"), trainer, str(data),
                        str(out)], check=True, env=env, cwd=str(out.parent), capture_output=True, timeout=3600)
        return json.loads(out.read_text())
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{trainer} in {tree}: {e.stderr.decode()[-2000:]}") from None
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


# ---- where a step goes (this tree) ----

def _gemm_gflops(dtype: torch.dtype = torch.float32) -> float:
    """A 2048^3 matrix product's rate on torch's threads (the best of 10: the machine's, not a moment's)."""
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(10))
    return 2 * 2048 ** 3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _conv_flops(fn: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(sum(n for op, n in fc.get_flop_counts()["Global"].items() if "convolution" in str(op)))


def _conv_seconds(fn: Callable[[], Any], repeat: int = 3) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(repeat):
            fn()
    return sum(e.self_cpu_time_total for e in p.key_averages() if "conv" in e.key) / 1e6 / repeat


def _networks() -> dict[str, tuple[Callable[[], torch.nn.Module], Callable[[], tuple], Callable]]:
    """Per trainer: its network at the shipped recipe's width, a batch at its patch and batch size, its loss."""
    import orbitai.neuro  # registers the networks
    import orbitai.orbit
    import orbitai.tao  # noqa: F401
    from monai.losses import DiceCELoss
    from orbitai.models import build_model
    from orbitai.neuro.configs import get_config as neuro_config
    from orbitai.neuro.lesionseg_train import DEFAULT_ARGS
    from orbitai.neuro.seg_configs import ARCHITECTURE
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.train import loss_fn
    from orbitai.tao import preprocess as pp
    from orbitai.tao.configs import get_config as tao_config

    g = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {}
    for name, cfg_name in (("orbit_mri", "svnet-demo-mri-ted-thick-globe"), ("orbit_ct", "svnet-demo-ct-ted")):
        cfg = get_config(cfg_name)
        out[name] = (lambda c=cfg: build_model(c.arch, **c.arch_args),
                     lambda c=cfg: (torch.randn(c.batch_size, 1, *c.spec.patch_dhw, generator=g),
                                    torch.randint(0, c.spec.n_classes + 1, (c.batch_size, *c.spec.patch_dhw),
                                                  generator=g)),
                     lambda o, y, c=cfg: loss_fn(o, y, c.spec.n_classes + 1, c.loss))
    dice = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    out["lesions"] = (lambda: build_model(ARCHITECTURE, **DEFAULT_ARGS),
                      lambda: (torch.randn(16, 5, 96, 96, generator=g), torch.randint(0, 2, (16, 1, 96, 96),
                                                                                      generator=g)),
                      lambda o, y: dice(o, y))
    tc = tao_config("demo-b")
    out["tao"] = (lambda: build_model(tc.arch, base_channels=tc.base_channels),
                  lambda: (torch.randn(tc.settings.batch_size, pp.N_SLICES, pp.NET_PIXELS, pp.NET_PIXELS, generator=g),
                           torch.randint(0, 2, (tc.settings.batch_size,), generator=g)),
                  lambda o, y: torch.nn.functional.cross_entropy(o, y))
    nc = neuro_config("twoview18-demo")
    out["nmosd_ms"] = (lambda: build_model(nc.arch, **nc.kwargs),
                       lambda: (torch.randn(nc.batch_size, 1, nc.size, nc.size, nc.size, generator=g),
                                torch.randint(0, 2, (nc.batch_size,), generator=g)),
                       lambda o, y: torch.nn.functional.cross_entropy(o, y))
    return out


def _split(make_model, make_batch, loss, speed_name: str, steps: int = 5) -> dict[str, float]:
    from orbitai.training.speed import StepSpeed, model_dims

    speed = StepSpeed.auto("cpu", speed_name)
    torch.manual_seed(0)
    model = make_model()
    speed.model(model, model_dims(model))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = make_batch()
    x = speed.inputs(x)
    times = []

    def step(record: bool = False) -> None:
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with speed.autocast("cpu"):
            o = model(x)
        lo = loss(o.float(), y)
        t1 = time.perf_counter()
        lo.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if record:
            times.append((t1 - t0, t2 - t1, t3 - t2))

    for _ in range(2):
        step()
    for _ in range(steps):
        step(True)
    fwd, bwd, optim = (float(v) for v in np.median(np.array(times), 0))
    train_flops = _conv_flops(step)
    train_conv_s = _conv_seconds(step)
    model.eval()

    def infer() -> None:
        with torch.inference_mode(), speed.autocast("cpu"):
            model(x)

    infer()
    infer_flops = _conv_flops(infer)
    infer_conv_s = _conv_seconds(infer)
    return {"forward_s": fwd, "backward_s": bwd, "optimiser_s": optim,
            "train_conv_gflops": train_flops / train_conv_s / 1e9, "infer_conv_gflops": infer_flops / infer_conv_s / 1e9,
            "train_conv_share": train_conv_s / (fwd + bwd + optim)}


def _synthesis_s() -> dict[str, float]:
    """Seconds to make one batch in the loop (what the workers now do beside the steps)."""
    from dataclasses import replace

    from orbitai.cohort.manifest import read_manifest
    from orbitai.neuro import lesionseg_train as L
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.synth import Building, PoolRecipe, SynthPool
    from orbitai.orbit.train import augment, prepare, sample_patch
    from orbitai.training.checkpoint import cache_folder

    out = {}
    cfg = get_config("svnet-demo-mri-ted-thick-globe")
    pool = SynthPool.build(cfg.spec, PoolRecipe(**{**cfg.extra["synth"], "anatomies": 4}),
                           how=Building(cache_folder("synth-heads"), os.cpu_count() or 1))
    rngs = [np.random.default_rng([1, i]) for i in range(20)]
    out["orbit_mri"] = float(np.median([_timed(lambda r=r: pool.sample(r, cfg.spec.patch_dhw, cfg.fg_prob))
                                        for r in rngs])) * cfg.batch_size
    ct = replace(get_config("svnet-demo-ct-ted"))
    prepared = prepare(read_manifest(DATA / "ct" / "manifest.csv"), ct)
    out["orbit_ct"] = float(np.median([_timed(lambda r=r, i=i: augment(*sample_patch(prepared[i % 4], ct.spec.patch_dhw, r,
                                                                               ct.fg_prob), r, ct))
                                       for i, r in enumerate(rngs)])) * ct.batch_size
    cases = L.prepare_data(DATA / "lesion_prep", [(s, L.REAL) for s in LESION_SEEDS])
    out["lesions"] = float(np.median([_timed(lambda r=r: [L.sample(cases[k % len(cases)], r, per_lesion=0.5,
                                                                    contrast_min=0.35) for k in range(16)])
                                      for r in rngs[:8]]))
    return out


def main() -> None:
    cache = Path(tempfile.mkdtemp(prefix="orbitai-speed-cache-"))
    metrics: dict[str, float] = {}
    targets: dict[str, str] = {}
    notes: dict[str, Any] = {"baseline_commit": BASELINE, "runs": {}, "profile": {}}
    try:
        os.environ["ORBITAI_CACHE"] = str(cache)
        data = _data()
        from orbitai.training.speed import native_bf16

        speeds = ["auto"] + (["bf16"] if native_bf16(torch.device("cpu")) else [])
        with _baseline_tree() as base:
            for trainer in TRAINERS:
                runs = {"before": _run(base, trainer, data, None, cache) if base else None}
                for sp in speeds:
                    runs[sp] = _run(REPO, trainer, data, sp, cache)
                notes["runs"][trainer] = runs
                after = max(speeds, key=lambda s: runs[s]["samples_per_s"])
                metrics[f"{trainer}_samples_per_s"] = runs[after]["samples_per_s"]
                metrics[f"{trainer}_cores_busy_pct"] = runs[after]["cores_busy_pct"]
                targets[f"{trainer}_cores_busy_pct"] = ">= 90"
                notes["runs"][trainer]["fastest"] = after
                if runs["before"]:
                    metrics[f"{trainer}_samples_per_s_before"] = runs["before"]["samples_per_s"]
                    metrics[f"{trainer}_speedup"] = runs[after]["samples_per_s"] / runs["before"]["samples_per_s"]
                    metrics[f"{trainer}_speedup_auto"] = runs["auto"]["samples_per_s"] / runs["before"]["samples_per_s"]
                    targets[f"{trainer}_speedup"] = ">= 3"
        sgemm = _gemm_gflops()
        metrics["sgemm_gflops"] = sgemm
        bf16_gemm = _gemm_gflops(torch.bfloat16) if "bf16" in speeds else None
        if bf16_gemm:
            metrics["bf16_gemm_gflops"] = bf16_gemm
        synth = _synthesis_s()
        for trainer, (mm, mb, lo) in _networks().items():
            prof = {sp: _split(mm, mb, lo, sp) for sp in ("plain", *speeds)}
            if trainer in synth:
                prof["synthesis_s_per_batch"] = synth[trainer]     # type: ignore[assignment]
            notes["profile"][trainer] = prof
            # float32 convolutions against the float32 gemm; bfloat16 ones against the bfloat16 gemm
            metrics[f"{trainer}_train_pct_sgemm"] = 100 * prof["auto"]["train_conv_gflops"] / sgemm
            metrics[f"{trainer}_infer_pct_sgemm"] = 100 * prof["auto"]["infer_conv_gflops"] / sgemm
            metrics[f"{trainer}_train_pct_sgemm_plain"] = 100 * prof["plain"]["train_conv_gflops"] / sgemm
            if bf16_gemm:
                metrics[f"{trainer}_train_pct_gemm_bf16"] = 100 * prof["bf16"]["train_conv_gflops"] / bf16_gemm
            if trainer in TRAINERS:
                targets[f"{trainer}_train_pct_sgemm"] = ">= 40"
                targets[f"{trainer}_infer_pct_sgemm"] = ">= 50"
        notes["threads"] = torch.get_num_threads()
        notes["load_1min_at_end"] = os.getloadavg()[0]
        notes["what"] = ("samples_per_s: steady state of each trainer's own loop over a short schedule (orbit: 40 "
                         "iterations, the first 10 not counted; lesions: 100 steps, the first 20 not counted); before: "
                         f"the tree at {BASELINE}; speedup: the fastest of this tree's speeds over before; cores_busy: "
                         "CPU seconds of the process and its batch workers over wall seconds x cores in that window. "
                         "pct_sgemm: float32 convolution FLOPs (torch.utils.flop_counter) over the profiler's "
                         "convolution time in the auto layout, against a 2048^3 float32 sgemm on the same threads in "
                         "the same run (pct_gemm_bf16: the bf16 steps against a bfloat16 gemm); the split of cores "
                         "between the network's threads and the batch workers is the trainers' own "
                         "(orbitai.training.prefetch.split_cores)")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    write_result("training_speed", metrics, targets, notes)


if __name__ == "__main__":
    main()
