"""Optimiser steps only on finite gradients, for every trainer.

A step whose loss or gradients hold a NaN or an infinity (a bfloat16 or float32 overflow, a degenerate patch) would
write NaN into every weight at once, and each later epoch, checkpoint and bundle would carry it: the MRI ninth stage's
first run (2026-11-28) turned to NaN in epoch 53 of 120 and its checkpoint with it. As PyTorch's ``GradScaler`` does for
float16 (which bfloat16 and float32 steps do not use), such a step is skipped: its gradients are dropped, and the
weights, the optimiser state and the buffers its forward pass updated (batch-norm running statistics) stay as they
were; finite steps run exactly as before (bit-identical). Gradients are
checked after ``backward``, so on several processes every rank sees the same all-reduced gradients and skips alike.
Too many skipped steps in a row end the run with a :class:`~orbitai.errors.TrainingError`, its last checkpoint (written
from finite weights only) kept for a resume.
"""
from __future__ import annotations

import logging

import torch

from orbitai.errors import TrainingError

log = logging.getLogger(__name__)


class FiniteSteps:
    """Runs ``opt.step()`` only when every gradient and buffer of ``model`` is finite (:meth:`begin` before each forward
    pass, :meth:`step` after ``backward``); counts the steps skipped."""

    def __init__(self, model: torch.nn.Module, limit: int = 20, what: str = "training") -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = list(model.buffers())
        self._kept: list[torch.Tensor] = []
        self.limit, self.what = int(limit), what
        self.skipped = 0          # in all
        self.in_a_row = 0

    def begin(self) -> None:
        """Call before the forward pass: keeps the buffers it may update (a few kB: running statistics, counts)."""
        self._kept = [b.detach().clone() for b in self.buffers]

    def gradients_finite(self) -> bool:
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return True
        # one reduction: a norm is finite only if every element is
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum()))

    def step(self, opt: torch.optim.Optimizer, where: str = "") -> bool:
        """Step ``opt`` if the gradients are finite (True); otherwise drop them and count the skip (False)."""
        buffers_finite = all(bool(torch.isfinite(b).all()) for b in self.buffers if b.is_floating_point())
        if buffers_finite and self.gradients_finite():
            opt.step()
            self.in_a_row = 0
            return True
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            for b, kept in zip(self.buffers, self._kept):
                b.copy_(kept)
        self.skipped += 1
        self.in_a_row += 1
        log.warning("%s: a step with non-finite gradients skipped%s (%d so far)", self.what,
                    f" at {where}" if where else "", self.skipped)
        if self.in_a_row >= self.limit:
            raise TrainingError(f"{self.what} stopped: {self.in_a_row} steps in a row gave non-finite gradients"
                                f"{f' (at {where})' if where else ''}; the last checkpoint is kept: lower the learning "
                                "rate or use --speed plain, then run the same command to go on.")
        return False
