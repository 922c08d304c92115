"""Occlusion sensitivity. The value at each position is the mean, over the patches covering it, of
p_target(original) - p_target(occluded), p the softmax probability; all channels are occluded
together (the five slices of a TAO crop are one image). With z-scored input the grey value 0 is
the image mean.

Window placement is captum's: along an axis of length n with patch p and stride s, patches start at
0, s, 2s, ..., ceil((n - p) / s) * s. When s does not divide n - p the last patch sticks out over the
far edge and is cut there (it covers fewer than p positions), so every position is covered at least
once. The loop reference places its windows the same way."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from captum.attr import Occlusion

from orbitai.errors import InputError
from orbitai.explain.incremental import DEFAULT_BATCH, incremental_occlusion, supports, window_starts

#: whole occluded copies per forward pass of the batched (captum) method when the caller gives none
WHOLE_COPY_BATCH = 64


def _window(x: torch.Tensor, patch: int | Sequence[int],
            stride: int | Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    nsp = x.ndim - 2
    if x.ndim not in (4, 5) or x.shape[0] != 1:
        raise InputError(f"Expected one input of shape (1, C, H, W) or (1, C, D, H, W), got {tuple(x.shape)}.")
    patches = (patch,) * nsp if isinstance(patch, int) else tuple(patch)
    strides = (stride,) * nsp if isinstance(stride, int) else tuple(stride)
    if len(patches) != nsp or len(strides) != nsp:
        raise InputError(f"Patch {patches} and stride {strides} need {nsp} values for a {nsp}D input.")
    if any(p > n for p, n in zip(patches, x.shape[2:])):
        raise InputError(f"Patch {patches} is larger than the input {tuple(x.shape[2:])}.")
    if any(s < 1 or s > p for p, s in zip(patches, strides)):
        raise InputError(f"Stride {strides} must be between 1 and the patch {patches} (a larger stride leaves gaps).")
    return patches, strides


class _Prob(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class _eval_mode:
    def __init__(self, model: torch.nn.Module):
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()

    def __exit__(self, *exc):
        self.model.train(self.was)


def occlusion_map(model: torch.nn.Module, x: torch.Tensor, target: int, patch: int | Sequence[int] = 16,
                  stride: int | Sequence[int] = 8, baseline: float = 0.0, batch_size: int | None = None,
                  method: str = "auto") -> np.ndarray:
    """Occlusion map over the spatial grid of ``x`` (1, C, ...), ``batch_size`` occluded copies per
    forward pass (default: 256 for the incremental method, which holds only each copy's changed
    footprint until the maps are small; 64 whole copies for the batched one).

    ``method``: ``"incremental"`` reuses the unoccluded activations and recomputes only what each
    patch changes (2D models that :func:`orbitai.explain.incremental.supports`, e.g. the TAO
    networks); ``"batched"`` runs every occluded copy through the whole model (captum's
    :class:`~captum.attr.Occlusion`); ``"auto"`` takes the first that applies. Both compute exactly
    the definition above.
    """
    patch, stride = _window(x, patch, stride)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    if method not in ("auto", "incremental", "batched"):
        raise InputError(f"method must be 'auto', 'incremental' or 'batched', got {method!r}.")
    can = x.ndim == 4 and supports(model)
    if method == "incremental" and not can:
        raise InputError("Incremental occlusion needs a 2D model whose forward is head(features(x)) of supported "
                         "layers (see orbitai.explain.incremental); use method='batched'.")
    with _eval_mode(model), torch.no_grad():
        if can and method != "batched":
            return incremental_occlusion(model, x, int(target), patch, stride, baseline,
                                         int(batch_size or DEFAULT_BATCH))
        c = x.shape[1]
        attr = Occlusion(_Prob(model)).attribute(
            x, sliding_window_shapes=(c, *patch), strides=(c, *stride), baselines=baseline, target=int(target),
            perturbations_per_eval=int(batch_size or WHOLE_COPY_BATCH))
    return attr[0, 0].detach().cpu().numpy().astype(np.float32)


def occlusion_map_loop(model: torch.nn.Module, x: torch.Tensor, target: int, patch: int | Sequence[int] = 16,
                       stride: int | Sequence[int] = 8, baseline: float = 0.0) -> np.ndarray:
    """The naive reference: one occluded input per forward pass, written out plainly."""
    patch, stride = _window(x, patch, stride)
    shape = x.shape[2:]
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    prob = _Prob(model)
    with _eval_mode(model), torch.no_grad():
        p0 = float(prob(x)[0, target])
        for corner in window_starts(shape, patch, stride):      # the last may be cut by the edge
            sl = tuple(slice(int(a), int(a) + p) for a, p in zip(corner, patch))
            occluded = x.clone()
            occluded[(0, slice(None)) + sl] = baseline
            total[sl] += p0 - float(prob(occluded)[0, target])
            count[sl] += 1
    return (total / count).numpy().astype(np.float32)
