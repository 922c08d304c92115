"""Training on several processes with ``torch.distributed`` (``orbitai <task> train --nproc N``, or under ``torchrun``).

Every rank runs the whole training command on the same manifest. Rank 0 writes to ``--out`` (work folder,
checkpoints, metrics, bundle); every other rank writes to a scratch folder beside it, removed when that rank
ends (`orbitai.training.launch.rank_context`). The training loops (`orbitai.orbit.train`, `orbitai.classify.train`) keep the one-process
recipe -- global batch, learning-rate schedule, seeds -- and:

- split each global batch between the ranks (`local_slice`), every sample drawn and augmented from its own
  seeded generator, so that a sample is the same whichever rank draws it;
- weight each rank's loss (`loss_weight`) so that DDP's gradient average is the gradient of the global batch;
- normalise over the global batch: `torch.nn.SyncBatchNorm` on CUDA, `GlobalBatchNorm` on CPU, and on CPU draw
  the global batch's dropout masks (`GlobalDropout`) (`wrap`);
- resume every rank from rank 0's checkpoint (`share_resume`) and stop together (`any_rank`).

So one step on several CPU processes equals the one-process step to float precision; over epochs the runs drift
as float summation order makes them (tolerances: docs/cli.md, "Training on several processes"). On CUDA the
dropout masks stay each rank's own (its fused kernel draws them otherwise).
``gloo`` is the backend on CPU, ``nccl`` on CUDA. Starting and joining the ranks: `orbitai.training.launch`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Callable, Optional, TypeVar

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from orbitai.errors import ConfigError

T = TypeVar("T")

def active() -> bool:
    """True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


# --------------------------------------------------------------------------------------------- the training loops

def local_slice(items: Sequence[T]) -> list[T]:
    """This rank's contiguous share of one global batch (all of it on one process)."""
    n, w = len(items), world_size()
    if w == 1:
        return list(items)
    if n < w:
        raise ConfigError(f"A batch of {n} sample(s) cannot be shared by {w} processes; run with --nproc {n} or "
                          "fewer, or a larger batch.")
    base, extra = divmod(n, w)
    r = rank()
    start = r * base + min(r, extra)
    return list(items[start:start + base + (1 if r < extra else 0)])


def loss_weight(n_local: int, n_global: int) -> float:
    """The factor of a rank's mean loss over its ``n_local`` samples such that DDP's average of the ranks' gradients
    is the gradient of the mean loss over the ``n_global`` samples of the global batch (1 on one process). Exact for
    losses that are a mean over samples (cross-entropy; MONAI's Dice with ``batch=False``)."""
    return world_size() * n_local / n_global


def sum_over_ranks(values: Sequence[float]) -> list[float]:
    """The element-wise sum of ``values`` over every rank (the values themselves on one process)."""
    if not active():
        return [float(v) for v in values]

    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on one of them (a time limit, a cancel request)."""
    return sum_over_ranks([1.0 if flag else 0.0])[0] > 0


def share_resume(start: int, state: Callable[[], dict], apply: Callable[[dict], Any]) -> int:
    """Rank 0's resumed epoch for every rank: rank 0 sends ``state()`` (its model, optimiser and generators, as
    its checkpoint holds them) and every other rank ``apply``-s it. The other ranks' own checkpoints, if any, are
    never read. On one process: ``start``."""
    if not active():
        return start

    box: list[Any] = [start, state() if rank() == 0 and start else None]
    dist.broadcast_object_list(box, src=0)
    if rank() != 0 and box[0]:
        apply(box[1])
    return int(box[0])


class _SumOverRanks(torch.autograd.Function):
    """A differentiable all-reduce (sum): each rank's gradient is the sum of the ranks' gradients. (torch 2.13
    deprecates ``torch.distributed.nn.functional.all_reduce`` for functional collectives that do not say they
    are differentiable; this is the same few lines.)"""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the global batch of every rank, for CPU processes on gloo.

    Written here because ``torch.nn.SyncBatchNorm`` refuses CPU tensors (torch 2.13,
    ``torch/nn/modules/batchnorm.py``: "SyncBatchNorm expected input tensor to be on GPU"). One all-reduce per
    layer and pass (count, sums, sums of squares in float64), differentiable (`_SumOverRanks`). Running statistics as
    ``nn.BatchNorm``: momentum, unbiased variance. Same parameters and buffers as the layer it replaces."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        # one all-reduce: count, sums and sums of squares, accumulated in float64 so that E[x^2] - E[x]^2 loses
        # nothing that float32 batch norm keeps
        local = torch.cat([input.new_tensor([input.numel() / input.shape[1]], dtype=torch.float64),
                           input.sum(dims, dtype=torch.float64), (input * input).sum(dims, dtype=torch.float64)])
        total = _SumOverRanks.apply(local)
        n, c = total[0], input.shape[1]
        mean64 = total[1:c + 1] / n
        var = (total[c + 1:] / n - mean64 * mean64).clamp_min(0).to(input.dtype)
        mean = mean64.to(input.dtype)
        centred = input - mean.view(shape)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                count = float(n)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (count / max(count - 1, 1.0)), alpha=m)
        return out


class GlobalDropout(nn.Dropout):
    """Dropout whose mask is the one-process mask of the global batch: every rank draws the mask of the whole
    batch from torch's generator (the same state on every rank, as one process has it) and keeps its own rows.
    Written here because DDP leaves each rank its own masks; with this, a run on several processes follows the
    one-process run to float precision. Costs one small all-reduce (the ranks' batch sizes) per layer."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and active()) or self.p == 0:
            return super().forward(input)
        sizes = input.new_zeros(world_size(), dtype=torch.float64)
        sizes[rank()] = input.shape[0]
        sizes = _SumOverRanks.apply(sizes).long().tolist()
        first = sum(sizes[:rank()])
        if self.p == 1:
            return input * 0.0
        # as ATen's dropout on CPU: noise = empty_like(x).bernoulli_(1 - p) / (1 - p); x * noise
        noise = input.new_empty((sum(sizes), *input.shape[1:])).bernoulli_(1 - self.p)[first:first + input.shape[0]]
        return input * noise.div_(1 - self.p)


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _global_bn(bn: nn.modules.batchnorm._BatchNorm) -> GlobalBatchNorm:
    """A `GlobalBatchNorm` sharing ``bn``'s parameter and buffer tensors (updates reach ``bn``)."""
    g = GlobalBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    g.weight, g.bias = bn.weight, bn.bias
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        g._buffers[name] = bn._buffers.get(name)
    g.train(bn.training)
    return g


@contextlib.contextmanager
def wrap(model: nn.Module, device: torch.device | str) -> Iterator[nn.Module]:
    """The module to train ``model`` with: ``model`` itself on one process; otherwise its batch-norm layers
    normalising over the global batch and the whole in ``DistributedDataParallel``. ``model`` (parameters and
    buffers shared with what is yielded) gets its own layers back at the end, so it saves and predicts as built."""
    if not active():
        yield model
        return

    device = torch.device(device)
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new: Optional[nn.Module] = None
            if isinstance(child, _BN) and not isinstance(child, GlobalBatchNorm):
                # torch's own on NCCL
                new = nn.SyncBatchNorm.convert_sync_batchnorm(child) if device.type == "cuda" else _global_bn(child)
            elif type(child) is nn.Dropout and device.type == "cpu":   # CUDA draws its masks otherwise (fused)
                new = GlobalDropout(child.p, child.inplace)
                new.train(child.training)
            if new is not None:
                setattr(parent, name, new)
                swapped.append((parent, name, child))
    try:
        yield DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)
