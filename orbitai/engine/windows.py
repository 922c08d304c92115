"""Sliding-window inference over a resampled scan, in plain torch: the windows are placed, weighted and blended
as MONAI's ``sliding_window_inference`` does (the same numbers, tested); importing MONAI costs seconds at every
start of a prediction.

Two window modes (:func:`sliding_window`):

* ``step1`` — the SV-net paper's scheme: windows of 32 slices moved along Z one slice at a
  time (every slice is predicted up to 32 times, plain averaging);
* ``overlap`` (default) — overlapped sliding window with Gaussian weighting, a few windows per
  axis. Same masks in a fraction of the time (see benchmarks/bench_segmentation.py).

:func:`blend_windows` is the blending itself, for any network and window (the lesion segmentation's 2.5D one too).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch

from orbitai.errors import InputError
from orbitai.progress import ProgressCallback

#: Voxels in one window of the ``overlap`` mode: 2^23, twice the 64 x 256 x 256 window it replaces. For the
#: bundled width-6 SV-nets a 6.7 M-voxel window (a 1 mm head's search box) peaked 1.4 GB above the
#: loaded model on the CPU (measured with ru_maxrss).
MAX_WINDOW_VOXELS = 2 ** 23


@dataclass(frozen=True)
class WindowLimits:
    """How large :func:`sliding_window`'s windows grow: sides a multiple of ``divisor`` (the network's downsampling),
    at most ``max_inplane`` voxels in-plane and ``max_window_voxels`` in all (``overlap`` mode)."""

    divisor: int = 16
    max_inplane: int = 256
    max_window_voxels: int = MAX_WINDOW_VOXELS


def _divisible(n: int, d: int) -> int:
    return int(math.ceil(n / d) * d)


def window_starts(n: int, roi: int, overlap: float) -> list[int]:
    """Start indices of the windows of length ``roi`` covering ``n >= roi`` voxels, each
    ``int(roi * (1 - overlap))`` (at least 1) after the previous one, the last one ending at ``n``."""
    step = roi if roi == n else max(1, int(roi * (1 - overlap)))
    count = next((d + 1 for d in range(math.ceil(n / step)) if d * step + roi >= n), 1)
    return [i * step - max(i * step + roi - n, 0) for i in range(count)]


def window_weights(roi: tuple[int, ...], mode: str, sigma_scale: float = 0.125,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The blending weight of each voxel of a window: 1 (``constant``) or a separable Gaussian of
    sigma ``sigma_scale * roi``, highest in the centre (``gaussian``), never below 1e-3."""
    w = torch.ones(roi, dtype=torch.float32, device=device)
    if mode == "gaussian":
        for i, n in enumerate(roi):
            x = torch.arange(-(n - 1) / 2.0, (n - 1) / 2.0 + 1, dtype=torch.float32, device=device)
            g = torch.exp(x ** 2 / (-2 * (n * sigma_scale) ** 2))
            w = g if i == 0 else w.unsqueeze(-1) * g
    elif mode != "constant":
        raise InputError(f"Unknown blending mode {mode!r}; use 'constant' or 'gaussian'.")
    return w.clamp(min=max(float(w.min()), 1e-3))


def blend_windows(x: torch.Tensor, roi: tuple[int, ...], predictor: Callable[[torch.Tensor], torch.Tensor],
                  overlap: float, mode: str, sw_batch_size: int = 1) -> torch.Tensor:
    """Predictions of ``predictor`` over windows of size ``roi`` on ``x`` (N, C, *spatial), blended by
    :func:`window_weights`: (N, classes, *spatial). A scan smaller than ``roi`` is padded with zeros around
    it (half before, half after) and the padding cropped off again.

    Each call of ``predictor`` receives ``sw_batch_size`` windows (fewer for the last call) concatenated
    along the batch axis, each window with the N items of ``x`` (window-major: N * windows items), and
    returns one prediction per item in that order. The windows and weights are MONAI's
    ``sliding_window_inference`` (which batches (item, window) pairs instead: the same blended numbers)."""
    spatial = x.shape[2:]
    items = x.shape[0]
    before = [max(r - n, 0) // 2 for n, r in zip(spatial, roi)]
    after = [max(r - n, 0) - b for n, r, b in zip(spatial, roi, before)]
    if any(before) or any(after):   # F.pad lists the last axis first
        x = torch.nn.functional.pad(x, [d for k in reversed(range(len(roi))) for d in (before[k], after[k])])
    size = x.shape[2:]
    all_: tuple[slice, ...] = (slice(None), slice(None))
    boxes = [all_ + tuple(slice(s, s + r) for s, r in zip(st, roi))
             for st in itertools.product(*(window_starts(n, r, overlap) for n, r in zip(size, roi)))]
    weights = window_weights(roi, mode, device=x.device)[None, None]
    count = torch.zeros((1, 1, *size), dtype=x.dtype, device=x.device)
    for b in boxes:
        count[b] += weights
    out: torch.Tensor | None = None
    for first in range(0, len(boxes), sw_batch_size):
        batch = boxes[first:first + sw_batch_size]
        pred = predictor(torch.cat([x[b] for b in batch])) * weights
        if pred.shape[0] != items * len(batch):
            raise InputError(f"The predictor returned {pred.shape[0]} predictions for {len(batch)} window(s) "
                             f"of {items} item(s).")
        if out is None:
            out = torch.zeros((items, pred.shape[1], *size), dtype=x.dtype, device=x.device)
        for w, b in enumerate(batch):                  # window w: items w * N .. (w + 1) * N - 1
            out[b] += pred[w * items:(w + 1) * items]
    assert out is not None       # at least one window covers any scan
    out /= count
    return out[all_ + tuple(slice(b, b + n) for b, n in zip(before, spatial))]


def sliding_window(x: torch.Tensor, model: torch.nn.Module, patch_dhw, window: str = "overlap",
                   overlap: float = 0.5, sw_batch_size: int = 1, progress: ProgressCallback | None = None,
                   limits: WindowLimits = WindowLimits(), channels_last: bool = False) -> torch.Tensor:
    """Logits for a (1, 1, D, H, W) tensor by sliding-window inference (:func:`blend_windows`).

    ``step1`` uses windows spanning the whole slice in-plane and ``patch_dhw[0]`` slices,
    moved one slice at a time with plain averaging (the paper); ``overlap`` uses windows spanning
    up to ``limits.max_inplane`` voxels in-plane and as many slices as ``limits.max_window_voxels`` allows (at least
    the bundle's window), half overlapping, blended with Gaussian weights. ``channels_last`` hands the
    network each window in the channels-last layout (for a model converted to it: faster on a CPU).
    """
    divisor, max_inplane, max_window_voxels = limits.divisor, limits.max_inplane, limits.max_window_voxels
    D, H, W = x.shape[2:]
    roi: tuple[int, ...]
    if window == "step1":
        roi = (patch_dhw[0], _divisible(H, divisor), _divisible(W, divisor))
        ov, mode = (roi[0] - 1) / roi[0], "constant"
    elif window == "overlap":
        # The network is fully convolutional: the window grows to the whole slice in-plane (up to
        # max_inplane voxels), then through-plane within the voxel budget, so a voxel is seen by one
        # window (a 1 mm whole head: by one instead of two, for 55 % of the network time) rather than
        # step-1's 32; larger scans are covered by half-overlapping, Gaussian-blended windows.
        hw = [max(p, min(_divisible(n, divisor), max_inplane)) for p, n in zip(patch_dhw[1:], (H, W))]
        slices = max(divisor, max_window_voxels // (hw[0] * hw[1]) // divisor * divisor)
        roi = (max(patch_dhw[0], min(_divisible(D, divisor), slices)), *hw)
        ov, mode = overlap, "gaussian"
    else:
        raise InputError(f"Unknown window mode {window!r}; use 'overlap' or 'step1'.")
    total = math.prod(len(window_starts(max(n, r), r, ov)) for n, r in zip((D, H, W), roi))
    done = [0]
    batches = int(math.ceil(total / sw_batch_size))

    def predictor(patch: torch.Tensor) -> torch.Tensor:
        out = model(patch.contiguous(memory_format=torch.channels_last_3d) if channels_last else patch)
        done[0] += 1
        if progress:
            progress(min(done[0], batches), batches, f"window batch {done[0]}/{batches}")
        return out

    with torch.inference_mode():
        return blend_windows(x, roi, predictor, ov, mode, sw_batch_size)
