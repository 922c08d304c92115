"""Generic, resumable, seeded training of a classifier over a dataset of named inputs.

Shared by TAOActivity, IVGCResponse and NeuroDifferential: cross-entropy, Adam with per-group L2
(the model's ``weight_decay_groups`` when it has one), a piecewise-constant learning rate
(``lr`` until ``decay_epoch``, then ``lr_after`` — the schedules of paper 000's Table 1), an
augmentation callable, one CSV row per epoch, and a checksummed checkpoint after every epoch from
which an interrupted run resumes bit for bit (:mod:`orbitai.training.checkpoint`: a corrupt one is named and
training starts over).

:func:`fit` takes any dataset of the :mod:`orbitai.classify.data` protocol (in memory or streaming
from disk, one or several named inputs) and reads it through a ``DataLoader``; the loader's
workers only read cases, while the seeded augmentation runs in this process, so a run gives the
same weights whatever ``num_workers`` is. :func:`train_classifier` is the in-memory single-image
form (TAO).
"""
from __future__ import annotations

import copy
import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from orbitai.training import distributed
from orbitai.training.checkpoint import resume, save_checkpoint
from orbitai.staging import strict_json, trim_epoch_log
from orbitai.classify.data import (LABEL, ArrayDataset, Batch, ClassificationDataset, Sample, check_inputs,
                                   collate, input_names)
from orbitai.errors import ConfigError, InputError
from orbitai.progress import ProgressCallback

#: Augments one input array (TAO: a (5, 164, 164) eye stack) with the trainer's generator.
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
#: Augments one sample (all its named inputs together) with the trainer's generator.
SampleAugment = Callable[[Sample, np.random.Generator], Sample]


@dataclass
class TrainSettings:
    epochs: int
    lr: float
    lr_after: float
    decay_epoch: int
    batch_size: int = 64
    conv_weight_decay: float = 0.01
    fc_weight_decay: float = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    #: "adam" (papers 000/001) or "sgd" (paper 003), with ``momentum`` for SGD.
    optimizer: str = "adam"
    momentum: float = 0.0
    #: Step decay (paper 003: lr x 0.9 every ten epochs) when ``lr_step`` > 0; it replaces the one drop.
    lr_step: int = 0
    lr_gamma: float = 1.0


def lr_at(epoch: int, s: TrainSettings) -> float:
    """The learning rate of ``epoch`` (0-based): ``lr * lr_gamma ** (epoch // lr_step)`` with a step
    decay, else ``lr`` until ``decay_epoch`` and ``lr_after`` from then on."""
    if s.lr_step > 0:
        return s.lr * s.lr_gamma ** (epoch // s.lr_step)
    return s.lr if epoch < s.decay_epoch else s.lr_after


def make_optimizer(model: torch.nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    weight_decay_groups = getattr(model, "weight_decay_groups", None)
    if weight_decay_groups is not None:
        groups = weight_decay_groups(s.conv_weight_decay, s.fc_weight_decay)
    else:
        groups = [{"params": list(model.parameters()), "weight_decay": s.fc_weight_decay}]
    if s.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum)
    if s.optimizer != "adam":
        raise ConfigError(f"Unknown optimizer {s.optimizer!r}; use 'adam' or 'sgd'.")
    return torch.optim.Adam(groups, lr=s.lr, betas=s.betas)


def _loader_generator() -> torch.Generator:
    """A DataLoader's own generator: without one, each pass over a loader draws its workers' base
    seed from torch's global generator and so shifts the dropout masks of the training that follows."""
    return torch.Generator().manual_seed(0)


def _model_inputs(batch: Batch, names: Sequence[str], device,
                  layout: torch.memory_format = torch.contiguous_format) -> list[torch.Tensor]:
    """The model's inputs from a batch, on ``device``; 4D (2D image) batches in ``layout``."""
    out = []
    for name in names:
        value = batch[name]
        if not isinstance(value, torch.Tensor):
            raise InputError(f"The model's input {name!r} holds text in the dataset's samples; give it arrays.")
        t = value.to(device)
        out.append(t.contiguous(memory_format=layout) if t.ndim == 4 else t)
    return out


@torch.no_grad()
def predict_proba(model: torch.nn.Module, data: np.ndarray | ClassificationDataset, device="cpu",
                  batch_size: int = 64, num_workers: int = 0) -> np.ndarray:
    """Softmax probabilities (N, classes) in eval mode; the model's training flag is restored.
    ``data``: an array of single inputs (N, ...) or a dataset of named inputs."""
    names = input_names(model)
    dataset = ArrayDataset({names[0]: data}) if isinstance(data, np.ndarray) else data
    was = model.training
    model.eval()
    out = []
    loader: DataLoader = DataLoader(dataset, batch_size=batch_size, shuffle=False,  # type: ignore[arg-type]
                                    collate_fn=collate, num_workers=num_workers, generator=_loader_generator())
    for batch in loader:
        out.append(torch.softmax(model(*_model_inputs(batch, names, device)), 1).float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, 2), np.float32)


@dataclass(frozen=True)
class BundleWriting:
    """The bundle a task's trainer writes once trained: where (``out``, ``overwrite``), its training data as the
    metadata says it, and when the training began (``t0``, `time.perf_counter`'s: its minutes)."""

    out: Path
    training_data: str
    overwrite: bool
    t0: float


@dataclass(frozen=True)
class TrainHooks:
    """How a training tells its caller how far it is (``progress``) and learns that it should stop after the epoch
    it is running (``should_stop``)."""

    progress: Optional[ProgressCallback] = None
    should_stop: Optional[Callable[[], bool]] = None


def train_classifier(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, settings: TrainSettings,
                     workdir: Path, augment: Optional[Augment] = None,
                     val: Optional[tuple[np.ndarray, np.ndarray]] = None, seed: int = 0, device="cpu",
                     hooks: TrainHooks = TrainHooks()) -> dict:
    """:func:`fit` on in-memory single-input arrays: ``x`` (N, ...) with labels ``y``, ``val`` (inputs, labels)
    the same way; ``augment`` transforms one input array. Same weights as :func:`fit` on the equivalent
    :class:`~orbitai.classify.data.ArrayDataset`."""
    name = input_names(model)[0]
    sample_augment: Optional[SampleAugment] = None
    if augment is not None:
        def sample_augment(sample: Sample, rng: np.random.Generator) -> Sample:
            return {**sample, name: augment(sample[name], rng)}
    val_set = ArrayDataset({name: val[0]}, val[1]) if val is not None and len(val[0]) else None
    return fit(model, ArrayDataset({name: x}, y), settings, workdir, val=val_set, augment=sample_augment, seed=seed,
               device=device, hooks=hooks)


def fit(model: torch.nn.Module, train: ClassificationDataset, settings: TrainSettings, workdir: Path, *,
        val: Optional[ClassificationDataset] = None, augment: Optional[SampleAugment] = None, seed: int = 0,
        device="cpu", num_workers: int = 0, hooks: TrainHooks = TrainHooks()) -> dict:
    """Train ``model`` in place on ``train`` (samples of named inputs, see :mod:`orbitai.classify.data`);
    returns a summary. ``workdir`` holds ``checkpoint.pt`` and ``epochs.csv``; a rerun with the same
    arguments resumes after the last finished epoch. ``val`` adds validation loss and accuracy per
    epoch; ``num_workers`` processes read the cases (0: this process); ``hooks``: progress and stop (`TrainHooks`)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if train.labels is None:
        raise InputError("The training set has no labels; give the dataset one label per case.")
    if len(np.unique(train.labels)) < 2:
        raise InputError("The training set holds one class only; a classifier needs both classes.")
    if val is not None and len(val) and val.labels is None:
        raise InputError("The validation set has no labels; give the dataset one label per case.")
    names = input_names(model)
    torch.manual_seed(seed)
    first = train[0]
    check_inputs(first, names)
    # 2D images train channels-last: Network B (width 16) trained 1.15-1.3x faster per epoch on 2 CPU
    # cores (measured, three pairs of runs); the model is handed back in the default layout
    layout = torch.channels_last if np.ndim(first[names[0]]) == 3 else torch.contiguous_format
    model.to(device=device, memory_format=layout)  # type: ignore[call-overload]
    try:
        return _train(model, _Fit(train, settings, workdir, val, augment, seed, device, num_workers, hooks.progress,
                                  hooks.should_stop, layout))
    finally:
        model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]


@dataclass(frozen=True)
class _Fit:
    """One call of :func:`fit`, as its epochs read it: the data, the settings, the work folder, the seed and
    device, the loader's workers, how it reports and stops, and the memory layout of the model's 2D inputs."""

    train: ClassificationDataset
    settings: TrainSettings
    workdir: Path
    val: Optional[ClassificationDataset]
    augment: Optional[SampleAugment]
    seed: int
    device: Any
    num_workers: int
    progress: Optional[ProgressCallback]
    should_stop: Optional[Callable[[], bool]]
    layout: torch.memory_format


def _train(model: torch.nn.Module, job: _Fit) -> dict:
    """The epochs of :func:`fit`, on a model already in ``job.layout``."""
    ckpt_path = job.workdir / "checkpoint.pt"
    csv_path = job.workdir / "epochs.csv"
    device = job.device
    opt = make_optimizer(model, job.settings)
    rng = np.random.default_rng(job.seed)
    initial = ({k: v.clone() for k, v in model.state_dict().items()}, copy.deepcopy(opt.state_dict()),
               rng.bit_generator.state, torch.get_rng_state())

    def apply(state: dict) -> int:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        return int(state["epoch"]) + 1

    def reset() -> None:   # a checkpoint that does not fit leaves nothing of itself behind
        model.load_state_dict(initial[0])
        opt.load_state_dict(initial[1])
        rng.bit_generator.state = initial[2]
        torch.set_rng_state(initial[3])

    resumed = resume(ckpt_path, apply, reset, map_location=device)
    if resumed is None:
        csv_path.unlink(missing_ok=True)
    start = resumed or 0
    trim_epoch_log(csv_path, start)   # rows of epochs after the checkpoint are redone, not logged twice
    start = distributed.share_resume(start, lambda: _state(model, opt, rng, start - 1), apply)
    with distributed.wrap(model, device) as net:
        return _epochs(model, net, opt, rng, start, job)


def history(epochs_csv: Path) -> list[dict]:
    """Every epoch's training loss and accuracy (and validation loss and accuracy, where run) from a training's
    ``epochs.csv``, resumed runs included: what a bundle's metadata records as its loss curve."""
    if not epochs_csv.is_file():
        return []
    with epochs_csv.open(newline="") as f:
        return [{k: (round(float(r[k]), 6) if r.get(k) not in (None, "") else None)
                 for k in ("train_loss", "train_acc", "val_loss", "val_acc")} | {"epoch": int(r["epoch"]) + 1}
                for r in csv.DictReader(f)]


def _state(model: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator, epoch: int) -> dict:
    """What a checkpoint holds after ``epoch`` (0-based)."""
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}


def _epochs(model: torch.nn.Module, net: torch.nn.Module, opt: torch.optim.Optimizer, rng: np.random.Generator,
            start: int, job: _Fit) -> dict:
    """The epochs from ``start`` on, training ``net`` (``model``, or its DDP wrapper on several processes: each
    takes its share of every global batch, `orbitai.training.distributed`). Each sample is augmented by a generator of its
    own, seeded by (seed, epoch, position in the epoch), so that any number of processes draws the same."""
    train, settings, workdir, augment, val = job.train, job.settings, job.workdir, job.augment, job.val
    seed, device, num_workers, progress, should_stop = job.seed, job.device, job.num_workers, job.progress, job.should_stop
    layout = job.layout
    ckpt_path, csv_path = workdir / "checkpoint.pt", workdir / "epochs.csv"
    names = input_names(model)
    fields = ["epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    t_start = time.perf_counter()
    last: dict = {}
    for epoch in range(start, settings.epochs):
        if distributed.any_rank(bool(should_stop and should_stop())):
            break
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(epoch, settings)
        model.train()
        order = rng.permutation(len(train))
        # global batches of positions in the epoch's order; batch norm needs two samples
        batches = [list(range(b, min(b + settings.batch_size, len(order))))
                   for b in range(0, len(order), settings.batch_size)]
        batches = [pos for pos in batches if len(pos) >= 2]
        mine = [distributed.local_slice(pos) for pos in batches]      # this process's share of each
        # the loader only reads: a batch arrives as a list of samples, augmented here
        loader: DataLoader = DataLoader(train, batch_sampler=[[int(order[i]) for i in pos] for pos in mine],  # type: ignore[arg-type]
                                        collate_fn=list, num_workers=num_workers, generator=_loader_generator())
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for samples, pos, whole in zip(loader, mine, batches):
            if augment:
                samples = [augment(s, np.random.default_rng([seed, epoch, i])) for s, i in zip(samples, pos)]
            batch = collate(samples)
            yb_t = cast(torch.Tensor, batch[LABEL]).to(device)
            logits = net(*_model_inputs(batch, names, device, layout))
            loss_sum = F.cross_entropy(logits, yb_t, reduction="sum")
            # the mean over the global batch: on several processes, DDP averages their weighted gradients
            loss = loss_sum / len(samples) * distributed.loss_weight(len(samples), len(whole))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += loss_sum.item()
            tot_ok += int((logits.argmax(1) == yb_t).sum())
            seen += len(samples)
        tot_loss, ok, n = distributed.sum_over_ranks([tot_loss, tot_ok, seen])
        row = {"epoch": epoch, "lr": lr_at(epoch, settings), "train_loss": tot_loss / max(n, 1),
               "train_acc": ok / max(n, 1), "val_loss": "", "val_acc": ""}
        if val is not None and len(val):
            p = predict_proba(model, val, device, num_workers=num_workers)
            yv = np.asarray(val.labels).astype(int)
            row["val_loss"] = float(-np.mean(np.log(np.clip(p[np.arange(len(yv)), yv], 1e-7, 1))))
            row["val_acc"] = float(np.mean(p.argmax(1) == yv))
        row["seconds"] = round(time.perf_counter() - t0, 2)
        new = not csv_path.exists()
        with csv_path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if new:
                w.writeheader()
            w.writerow(row)
        save_checkpoint(_state(model, opt, rng, epoch), ckpt_path)
        last = row
        if progress:
            msg = f"epoch {epoch + 1}/{settings.epochs} loss {row['train_loss']:.3f}"
            if row["val_acc"] != "":
                msg += f" val acc {row['val_acc']:.3f}"
            progress(epoch + 1, settings.epochs, msg)
    summary = {"settings": asdict(settings), "seed": seed, "last_epoch": last,
               "finished": (last.get("epoch", start - 1) + 1) >= settings.epochs or start >= settings.epochs,
               "seconds_this_run": round(time.perf_counter() - t_start, 1),
               "processes": distributed.world_size(), "history": history(csv_path)}
    (workdir / "summary.json").write_text(strict_json(summary))
    return summary
