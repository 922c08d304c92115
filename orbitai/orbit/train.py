"""Training of orbit segmentation models on a manifest (``orbitai seg train``).

The recipe follows SV-net (paper 002): voxel-wise sigmoid cross-entropy on one-hot labels,
Adam (lr 1e-4), batch 4, random 32-slice sub-volumes, augmentation by translation (random
crops), rotation and Gaussian noise; k-fold cross-validation picks the validation fold.
Configurations (``orbitai.orbit.configs``) name the architecture, its grid and the recipe;
demo configurations shrink width and patch so they train on a laptop CPU.

Training is deterministic for a seed, writes per-epoch metrics to ``metrics.csv``, keeps a
resumable, checksummed ``checkpoint.pt`` (:mod:`orbitai.training.checkpoint`: a corrupt one is named and training
starts over) and ends by saving a bundle.
"""
from __future__ import annotations

import copy
import csv
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from monai.transforms import Rotate

from orbitai.training import distributed
from orbitai.bundle import save_bundle
from orbitai.bundle.models import find_task_bundle
from orbitai.training.checkpoint import resume as resume_checkpoint
from orbitai.training.checkpoint import cache_folder, save_checkpoint
from orbitai.training.finite import FiniteSteps
from orbitai.training.prefetch import batches_ahead
from orbitai.training.speed import StepSpeed, model_dims
from orbitai.cohort.manifest import Case
from orbitai.cohort.splits import kfold_split
from orbitai.errors import ConfigError, InputError
from orbitai.io import read_volume
from orbitai.metrics.segmentation import Overlap
from orbitai.models import build_model, count_parameters
from orbitai.orbit.configs import SegConfig
from orbitai.orbit.data import resample_pair, to_classes
from orbitai.orbit.rules import class_lut
from orbitai.orbit.synth import Building, PoolRecipe, SynthPool, template_sources
from orbitai.preprocess.intensity import normalise
from orbitai.progress import ProgressCallback, emit
from orbitai.engine.windows import sliding_window
from orbitai.staging import training_folder, training_work_folder, trim_epoch_log

log = logging.getLogger(__name__)

#: Share of a step's CPU work that making its batch takes (2 patches 0.07 s on one core, the SV-net's step 0.67 core-s;
#: `benchmarks/results/training_speed.json`): how the cores are split (`orbitai.training.prefetch.split_cores`).
SYNTHESIS_SHARE = 0.1


@dataclass
class Prepared:
    case_id: str
    image: np.ndarray   # normalised, model grid [D, H, W]
    classes: np.ndarray  # uint8 classes, model grid


def prepare(cases: list[Case], cfg: SegConfig, progress: Optional[ProgressCallback] = None) -> list[Prepared]:
    out = []
    lut = class_lut(cfg.spec.structures)
    for n, c in enumerate(cases, 1):
        img, lab = resample_pair(read_volume(c.image), c.labels(), cfg.spec.spacing,
                                 f"Case {c.case_id}: the segmentation {Path(c.segmentation or '').name}")
        out.append(Prepared(c.case_id, normalise(img, cfg.spec.intensity), to_classes(lab, lut)))
        if progress:
            progress(n, len(cases), f"prepared {c.case_id}")
    return out


def _pad_to(a: np.ndarray, shape, value) -> np.ndarray:
    pads = [(0, max(0, s - n)) for n, s in zip(a.shape, shape)]
    return np.pad(a, pads, constant_values=value) if any(p[1] for p in pads) else a


def sample_patch(p: Prepared, patch, rng: np.random.Generator, fg_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """A random sub-volume (translation augmentation); with ``fg_prob`` centred near a structure."""
    img = _pad_to(p.image, patch, float(p.image.min()))
    lab = _pad_to(p.classes, patch, 0)
    starts = []
    fg = None
    if rng.random() < fg_prob:
        idx = np.flatnonzero(lab)
        if len(idx):
            fg = np.unravel_index(idx[rng.integers(len(idx))], lab.shape)
    for ax in range(3):
        hi = lab.shape[ax] - patch[ax]
        if fg is not None:
            s = int(np.clip(fg[ax] - patch[ax] // 2 + rng.integers(-patch[ax] // 4, patch[ax] // 4 + 1), 0, hi))
        else:
            s = int(rng.integers(0, hi + 1))
        starts.append(s)
    sl = tuple(slice(s, s + n) for s, n in zip(starts, patch))
    return img[sl], lab[sl]


def augment(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator, cfg: SegConfig):
    """In-plane rotation, left-right flip and Gaussian noise (MONAI array transforms)."""
    if cfg.rotate_deg > 0:
        ang = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
        # Rotate about the slice axis (in-plane), as the paper's 2D-style augmentation.
        # MONAI's array transforms take numpy arrays too (its annotation names only tensors)
        img = np.asarray(Rotate((ang, 0, 0), keep_size=True, mode="bilinear",
                                padding_mode="border")(img[None])[0])  # type: ignore[arg-type]
        lab = np.asarray(Rotate((ang, 0, 0), keep_size=True, mode="nearest",
                                padding_mode="zeros")(lab[None])[0])  # type: ignore[arg-type]
    if cfg.flip_lr and rng.random() < 0.5:  # classes are side-agnostic, so a mirrored orbit is valid
        img, lab = img[..., ::-1], lab[..., ::-1]
    if cfg.noise_std > 0:
        img = img + rng.normal(0, rng.uniform(0, cfg.noise_std), img.shape).astype(np.float32)
    return np.ascontiguousarray(img, np.float32), np.ascontiguousarray(lab, np.uint8)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, n_channels: int, kind: str) -> torch.Tensor:
    if kind in ("bce", "bce_dice"):
        onehot = F.one_hot(target.long(), n_channels).permute(0, 4, 1, 2, 3).float()
        bce = F.binary_cross_entropy_with_logits(logits, onehot)  # SV-net Eq. 1-2 (mean over voxels)
    if kind == "bce":
        return bce
    if kind == "bce_dice":  # improvement for thin muscles on small CPU budgets: add soft Dice (over the
        # batch as a whole: on several processes each takes its own share's Dice, close to but not the global one)
        p = torch.sigmoid(logits)
        dims = (0, 2, 3, 4)
        inter = (p * onehot).sum(dims)
        den = p.sum(dims) + onehot.sum(dims)
        dice = 1 - ((2 * inter + 1) / (den + 1))[1:].mean()
        return bce + dice
    if kind == "ce_dice":  # softmax cross-entropy + soft Dice (nnU-Net's default); converges far
        # faster on thin muscles than per-channel sigmoid CE, so the CPU demo models use it
        return DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)(logits, target[:, None].long())
    raise ConfigError(f"Unknown loss {kind!r}; use 'bce', 'bce_dice' or 'ce_dice'.")


def _init_bundle(name: str, cfg: SegConfig):
    """The bundle whose weights start the training, refused unless it has the configuration's architecture."""
    b = find_task_bundle(name, "segmentation", "a segmentation model")
    arch = b.metadata.get("architecture", {})
    if arch.get("name") != cfg.arch or arch.get("args") != cfg.arch_args:
        raise InputError(f"--init {name}: its network ({arch.get('name')} {arch.get('args')}) is not the "
                         f"configuration's ({cfg.arch} {cfg.arch_args}); start from a bundle of the same architecture.")
    return b


@torch.no_grad()
def validate(model: torch.nn.Module, val: list[Prepared], cfg: SegConfig, device) -> dict[str, float]:
    """Dice per structure on the validation cases (whole model-grid volumes, overlapped window)."""
    model.eval()
    scores: dict[str, list[float]] = {s: [] for s in cfg.spec.structures}
    for p in val:
        x = torch.from_numpy(p.image)[None, None].to(device)
        pred = sliding_window(x, model, cfg.spec.patch_dhw, "overlap").argmax(1)[0].cpu().numpy()
        for c, s in enumerate(cfg.spec.structures, 1):
            scores[s].append(Overlap.of(pred == c, p.classes == c).dice)
    model.train()
    return {s: float(np.mean(v)) for s, v in scores.items()}


@dataclass(frozen=True)
class _Stepper:
    """What a training step runs: ``net`` (the model, or its DDP wrapper) with its optimiser ``opt`` on ``device``,
    in the layout and precision of ``speed`` (`orbitai.training.speed`)."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    device: Any
    speed: StepSpeed


def _epochs(model: torch.nn.Module, steps: _Stepper, start: int, cfg: SegConfig,
            draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], va: list[Prepared],
            files: tuple[Path, Path], progress: ProgressCallback,
            time_limit_s: Optional[float]) -> tuple[int, dict[str, float]]:
    """Epochs ``start`` to ``cfg.epochs`` of training ``steps.net`` (``model``, or its DDP wrapper: each process draws
    its share of every global batch, `orbitai.training.distributed`); returns the epochs run and the last validation
    Dice. Every patch is drawn from a generator of its own, seeded by (``cfg.seed``, epoch, iteration, place in the
    batch), so that any number of processes draws the same global batch, and a resumed run the same epochs;
    ``files``: the metrics CSV and the checkpoint."""
    net, opt, device, speed = steps.net, steps.opt, steps.device, steps.speed
    epochs, seed = cfg.epochs, cfg.seed
    metrics_path, ckpt_path = files
    t_start = time.perf_counter()
    total_iters = epochs * cfg.iters_per_epoch
    last_val: dict[str, float] = {}
    done_epochs = start
    finite = FiniteSteps(model, what="seg train")   # a non-finite step is skipped, never applied
    net.train()

    def batch(key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """This process's share of the global batch of (epoch, iteration) ``key``."""
        epoch, it = key
        drawn = [draw(np.random.default_rng([seed, epoch, it, b])) for b in distributed.local_slice(range(cfg.batch_size))]
        return np.stack([d[0] for d in drawn]), np.stack([d[1] for d in drawn])

    # batches made ahead by worker processes while the network steps (`orbitai.training.prefetch`): the same batches;
    # the workers end with the block, also on a time limit or an error
    keys = [(e, it) for e in range(start, epochs) for it in range(cfg.iters_per_epoch)]
    with batches_ahead(batch, keys, SYNTHESIS_SHARE) as batches:
        for epoch in range(start, epochs):
            decayed = cfg.lr_decay_epoch and epoch + 1 >= cfg.lr_decay_epoch
            for group in opt.param_groups:  # step schedule, set from the epoch so a resume matches
                group["lr"] = cfg.lr * (cfg.lr_decay_factor if decayed else 1.0)
            torch.manual_seed(seed * 100003 + epoch)
            t0 = time.perf_counter()
            losses = []
            for it in range(cfg.iters_per_epoch):
                xb, yb = next(batches)
                x = speed.inputs(torch.from_numpy(xb)[:, None].to(device))
                y = torch.from_numpy(yb).to(device)
                opt.zero_grad(set_to_none=True)
                finite.begin()
                with speed.autocast(device):
                    logits = net(x)
                # the mean over the global batch: on several processes, DDP averages their weighted gradients
                loss = loss_fn(logits.float(), y, cfg.spec.n_classes + 1, cfg.loss) * distributed.loss_weight(
                    len(xb), cfg.batch_size)
                loss.backward()
                if finite.step(opt, f"epoch {epoch + 1} iteration {it + 1}"):
                    losses.append(float(loss.detach()))
                done = epoch * cfg.iters_per_epoch + it + 1
                if it % 5 == 4 or it == cfg.iters_per_epoch - 1:
                    progress(done, total_iters, f"epoch {epoch + 1}/{epochs} loss "
                             f"{np.mean(losses[-5:]) if losses else float('nan'):.4f}")
            mean_loss = distributed.sum_over_ranks([float(np.sum(losses))])[0] / (max(len(losses), 1)
                                                                                  * distributed.world_size())
            if va and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == epochs):
                last_val = validate(model, va, cfg, device)
            with metrics_path.open("a", newline="") as f:
                csv.writer(f).writerow([epoch + 1, f"{mean_loss:.5f}", f"{time.perf_counter() - t0:.1f}"]
                                       + [f"{last_val.get(s, float('nan')):.4f}" for s in cfg.spec.structures])
            save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1}, ckpt_path)
            done_epochs = epoch + 1
            if distributed.any_rank(bool(time_limit_s and time.perf_counter() - t_start > time_limit_s)):
                log.warning("time limit reached after epoch %d", epoch + 1)
                break
    return done_epochs, last_val


@dataclass(frozen=True)
class TrainRun:
    """How one :func:`train` run goes: fold ``fold`` of ``folds`` of the cases validates (``folds`` 1: none); with
    ``resume`` it goes on from the work folder's checkpoint; it stops after the epoch that passes ``time_limit_s``
    (None: none)."""

    folds: int = 1
    fold: int = 0
    resume: bool = True
    time_limit_s: Optional[float] = None


def train(cases: list[Case], cfg: SegConfig, out: Path, run: TrainRun = TrainRun(),
          device: str | torch.device = "cpu", progress: Optional[ProgressCallback] = None, training_data: str = "",
          init: Optional[str] = None, overwrite: bool = False) -> Path:
    """Train the recipe ``cfg`` (its epochs, at least 1, and its seed: e.g. ``replace(get_config(name), epochs=2,
    seed=1)``) on ``cases`` as ``run`` says (`TrainRun`: the validation fold, resume, time limit) and write a bundle
    to ``out`` (returns its path); the bundle's metadata records the epochs actually run (fewer after the time
    limit).

    A configuration with ``extra['synth']`` also renders patches on the fly from a pool of deformed
    atlas heads (:mod:`orbitai.orbit.synth`); the cases then make up ``extra['manifest_share']`` of the
    patches (none are needed). ``init`` starts from a bundle's weights (same architecture). The configuration's
    ``speed`` says how the steps use the CPU (`orbitai.training.speed`)."""
    folds, fold, resume, time_limit_s = run.folds, run.fold, run.resume, run.time_limit_s
    epochs, seed = cfg.epochs, cfg.seed
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs must be a whole number of at least 1, got {epochs!r}.")
    out = Path(out)
    work = training_work_folder(out)
    progress = progress or (lambda d, t, m: emit(d, t, m))
    # every argument and case is checked before the work folder exists, so a refusal leaves nothing
    synth_opts = cfg.extra.get("synth")
    if not cases and synth_opts is None:
        raise InputError(f"Configuration {cfg.name} trains on a manifest's cases, and none were given.")
    if folds > max(len(cases), 1):
        raise InputError(f"--folds {folds} needs at least {folds} cases, the manifest has {len(cases)}; "
                         "give more cases or fewer folds.")
    train_idx, val_idx = kfold_split(len(cases), folds, fold, seed) if cases else ([], [])
    if not train_idx and synth_opts is None:
        raise InputError(f"{len(cases)} case(s) leave none for training with --folds {folds}; "
                         "give more cases or fewer folds.")
    torch.manual_seed(seed)
    np.random.seed(seed)
    device = torch.device(device)
    step_speed = StepSpeed.auto(device, cfg.speed)
    log.info("preparing %d cases", len(cases))
    data = prepare(cases, cfg)
    tr, va = [data[i] for i in train_idx], [data[i] for i in val_idx]
    init_bundle = _init_bundle(init, cfg) if init else None
    pool = None     # built once the checkpoint says epochs are left (a finished one only writes its bundle)
    share = float(cfg.extra.get("manifest_share", 1.0)) if synth_opts is not None else 1.0

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One training patch: a case's (translation, rotation, flip, noise) or a synthetic render."""
        if pool is not None and (not tr or rng.random() >= share):
            return pool.sample(rng, cfg.spec.patch_dhw, cfg.fg_prob)
        img, lab = sample_patch(tr[rng.integers(len(tr))], cfg.spec.patch_dhw, rng, cfg.fg_prob)
        return augment(img, lab, rng, cfg)
    metrics_path = out.parent / f"{out.name}-metrics.csv"
    # a failure or a cancel before the first checkpoint removes the work folder and the metrics file
    done_epochs = 0   # what the model has run (a checkpoint may hold more than asked)
    # a success removes the work folder too, unless --time-limit cut the schedule short (a rerun goes on)
    with training_folder(work, beside=[metrics_path], finished=lambda: done_epochs >= epochs):
        work.mkdir(parents=True, exist_ok=True)
        model = build_model(cfg.arch, **cfg.arch_args).to(device)
        if init_bundle is not None:
            model.load_state_dict(init_bundle.load_model("cpu").state_dict())
        step_speed.model(model, model_dims(model))     # the layout of the steps (in place: same parameters)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        initial = ({k: v.clone() for k, v in model.state_dict().items()}, copy.deepcopy(opt.state_dict()))

        def apply(ck: dict) -> int:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            return int(ck["epoch"])

        def reset() -> None:   # a checkpoint that does not fit leaves nothing of itself behind
            model.load_state_dict(initial[0])
            opt.load_state_dict(initial[1])

        ckpt_path = work / "checkpoint.pt"
        start_epoch = (resume_checkpoint(ckpt_path, apply, reset, map_location=device) if resume else None) or 0
        # several processes: every one goes on from rank 0's checkpoint (`orbitai.training.distributed`)
        start_epoch = distributed.share_resume(start_epoch, lambda: {"model": model.state_dict(),
                                                                     "optimizer": opt.state_dict(),
                                                                     "epoch": start_epoch}, apply)
        if start_epoch:
            log.info("resumed from epoch %d", start_epoch)
        if synth_opts is not None and start_epoch < epochs:
            log.info("building the synthetic head pool")
            # heads kept on disk between runs (a resumed run reads them back), the missing ones built on every core
            pool = SynthPool.build(cfg.spec, PoolRecipe(**synth_opts),
                                   how=Building(cache_folder("synth-heads"), os.cpu_count() or 1,
                                                lambda d, t, m: progress(0, 1, m)))
        header = ["epoch", "train_loss", "seconds"] + [f"val_dice_{s}" for s in cfg.spec.structures]
        if start_epoch == 0 or not metrics_path.exists():
            with metrics_path.open("w", newline="") as f:
                csv.writer(f).writerow(header)
        else:   # rows after the checkpoint (an interrupt between row and checkpoint) are redone, not doubled
            trim_epoch_log(metrics_path, start_epoch + 1)
        t_start = time.perf_counter()
        if start_epoch >= epochs:
            log.info("the checkpoint has already run %d of %d epochs", start_epoch, epochs)
        done_epochs = start_epoch   # what the model has run (a checkpoint may hold more than asked)
        with distributed.wrap(model, device) as net:
            done_epochs, last_val = _epochs(model, _Stepper(step_speed.stepping(net), opt, device, step_speed),
                                            start_epoch, cfg, draw, va,
                                            (metrics_path, ckpt_path), progress, time_limit_s)
        step_speed.release(model)     # the bundle's weights in the usual layout
        meta: dict[str, Any] = {
            "name": out.name, "version": "0.1.0", "task": "segmentation",
            "description": cfg.description,
            "architecture": {"name": cfg.arch, "args": cfg.arch_args},
            "parameters": count_parameters(model),
            "input": cfg.spec.to_metadata(),
            "labels": {str(c): s for c, s in enumerate(cfg.spec.structures, 1)},
            "training": {"config": cfg.name, "cases": len(tr), "validation_cases": len(va), "seed": seed,
                         "processes": distributed.world_size(),
                         **({"synthetic_heads": dict(synth_opts or {}), "case_share": share,
                             "anatomy_sources": template_sources((synth_opts or {}).get("templates", (0,)))}
                            if synth_opts is not None else {}),
                         "epochs": done_epochs, "planned_epochs": epochs, "iterations_per_epoch": cfg.iters_per_epoch,
                         "batch_size": cfg.batch_size, "lr": cfg.lr, "lr_decay_epoch": cfg.lr_decay_epoch,
                         "lr_decay_factor": cfg.lr_decay_factor, "loss": cfg.loss,
                         "seconds": round(time.perf_counter() - t_start, 1), "steps": step_speed.describe()},
            "training_data": training_data or f"{len(tr)} cases",
            **({"initialised_from": {"bundle": init_bundle.name,
                                     "weights_sha256": init_bundle.metadata.get("weights_sha256")}}
               if init_bundle is not None else {}),
            "metrics": {"validation_dice": last_val} if last_val else {},
        }
        save_bundle(model.cpu(), out, meta, overwrite)
    return out
