"""Exact incremental occlusion for 2D CNNs (Nakandala et al., "Incremental and Approximate Inference
for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019).

An occluding patch changes the input only inside the patch, so each early feature map changes only
inside the patch's growing footprint. The unoccluded input is run once; for every occluded copy
only that footprint is recomputed, layer by layer, from small crops of the unoccluded activations
with the new values laid over them. When the footprint covers most of a feature map the copies
are completed to full maps and the rest of the network runs on them in batches. The arithmetic is
the network's own (the same kernels on crops), so the map equals the plain loop's to rounding.

Why hand-written: captum and MONAI occlude by running every occluded copy through the whole
network; neither reuses the unoccluded activations.

Supported modules: ``Conv2d`` (dilation 1), ``BatchNorm2d`` in eval mode, ``ReLU``, ``MaxPool2d``
(no padding, floor mode), ``Dropout``/``Identity`` (eval), ``Sequential`` of these, and residual
blocks that declare ``forward_is_act_of_x_plus_body`` (``body`` a ``Sequential`` of these, ``act``
a ReLU). The model must declare ``forward_is_head_of_features`` with ``features`` a ``Sequential``;
:func:`supports` says whether a model qualifies.
"""
from __future__ import annotations

import copy
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

_POINTWISE = (nn.BatchNorm2d, nn.ReLU, nn.Dropout, nn.Identity)


def _is_residual(m: nn.Module) -> bool:
    """A block that declares ``forward_is_act_of_x_plus_body``: its forward is ``act(x + body(x))``."""
    return (bool(getattr(m, "forward_is_act_of_x_plus_body", False)) and isinstance(getattr(m, "body", None), nn.Sequential)
            and isinstance(getattr(m, "act", None), nn.Module))


def _supported(m: nn.Module) -> bool:
    if isinstance(m, nn.Conv2d):
        return m.dilation == (1, 1) and m.padding_mode == "zeros" and not isinstance(m.padding, str)
    if isinstance(m, nn.MaxPool2d):
        return m.padding in (0, (0, 0)) and m.dilation in (1, (1, 1)) and not m.ceil_mode
    if isinstance(m, _POINTWISE):
        return True
    if isinstance(m, nn.Sequential):
        return all(_supported(c) for c in m)
    if _is_residual(m):
        return _supported(m.body) and isinstance(m.act, (nn.ReLU, nn.Identity))
    return False


def supports(model: nn.Module) -> bool:
    """True when ``model`` declares ``forward_is_head_of_features`` (its forward is exactly
    ``head(features(x))``) and its ``features`` is a ``Sequential`` starting with a supported module."""
    feats = getattr(model, "features", None)
    return (bool(getattr(model, "forward_is_head_of_features", False)) and isinstance(feats, nn.Sequential)
            and len(feats) > 0 and isinstance(getattr(model, "head", None), nn.Module) and _supported(feats[0]))


class _Tiles(NamedTuple):
    """New values of every occluded copy on a box of the same size: ``v`` (n, C, h, w), box corners
    ``y``/``x`` (n,) in the coordinates of the current feature map, which may reach past its edges
    (entries there are meaningless and read as zero padding)."""

    v: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor


def _once(memo: dict, m: nn.Module, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The unoccluded output of ``m``: computed for the first batch of copies, reused after."""
    if id(m) not in memo:
        memo[id(m)] = compute()
    return memo[id(m)]


def _unoccluded(m: nn.Module, base: torch.Tensor, memo: dict) -> torch.Tensor:
    # an in-place layer gets a copy: its input is kept in the memo too
    return _once(memo, m, lambda: m(base.clone() if getattr(m, "inplace", False) else base))


def _gather(base: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int, margin: int) -> torch.Tensor:
    """Crops (n, C, h, w) of ``base`` (1, C, H, W) at corners (y, x), zero outside the map."""
    pad = F.pad(base[0], (margin, margin, margin, margin))
    return torch.stack([pad[:, a:a + h, b:b + w] for a, b in zip((y + margin).tolist(), (x + margin).tolist())])


def _valid(t: _Tiles, shape) -> torch.Tensor:
    h, w = t.v.shape[-2:]
    ry = t.y[:, None] + torch.arange(h)
    rx = t.x[:, None] + torch.arange(w)
    ok_y = (ry >= 0) & (ry < shape[-2])
    ok_x = (rx >= 0) & (rx < shape[-1])
    return (ok_y[:, :, None] & ok_x[:, None, :])[:, None]               # (n, 1, h, w)


def _overlay(base: torch.Tensor, t: _Tiles, y: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The occluded copies' feature map on boxes (y, x, h, w): unoccluded values with the tiles'
    new values laid over them; zero outside the map."""
    margin = int(max(h, w, *t.v.shape[-2:])) + 1
    crop = _gather(base, y, x, h, w, margin)
    v = t.v * _valid(t, base.shape).to(t.v.dtype)
    th, tw = t.v.shape[-2:]
    dys, dxs = t.y - y, t.x - x
    if bool((dys == dys[0]).all() and (dxs == dxs[0]).all()):   # one offset for all: one assignment
        dy, dx = int(dys[0]), int(dxs[0])
        y0, x0, y1, x1 = max(dy, 0), max(dx, 0), min(dy + th, h), min(dx + tw, w)
        if y1 > y0 and x1 > x0:
            crop[:, :, y0:y1, x0:x1] = v[:, :, y0 - dy:y1 - dy, x0 - dx:x1 - dx]
        return crop
    for i in range(len(y)):                         # each copy's tile sits at its own offset
        dy, dx = int(t.y[i] - y[i]), int(t.x[i] - x[i])
        y0, x0 = max(dy, 0), max(dx, 0)
        y1, x1 = min(dy + th, h), min(dx + tw, w)
        if y1 > y0 and x1 > x0:
            crop[i, :, y0:y1, x0:x1] = v[i, :, y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return crop


def _window_op(m: nn.Module, base: torch.Tensor, t: _Tiles, memo: dict) -> tuple[torch.Tensor, _Tiles]:
    """A convolution or max pool on the footprint of the tiles."""
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 2
    s = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 2
    p = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 2
    h, w = t.v.shape[-2:]
    # outputs whose window meets the tile: ceil((a + p - k + 1) / s) .. floor((a + size - 1 + p) / s)
    oy = -((-(t.y + p[0] - k[0] + 1)) // s[0])
    ox = -((-(t.x + p[1] - k[1] + 1)) // s[1])
    oh = int(((t.y + h - 1 + p[0]) // s[0] - oy).max()) + 1
    ow = int(((t.x + w - 1 + p[1]) // s[1] - ox).max()) + 1
    crop = _overlay(base, t, oy * s[0] - p[0], ox * s[1] - p[1], (oh - 1) * s[0] + k[0], (ow - 1) * s[1] + k[1])
    if isinstance(m, nn.Conv2d):
        v = F.conv2d(crop, m.weight, m.bias, s, 0, 1, m.groups)
    else:
        v = F.max_pool2d(crop, k, s, 0)
    return _unoccluded(m, base, memo), _Tiles(v, oy, ox)


def _step(m: nn.Module, base: torch.Tensor, t: _Tiles, memo: dict) -> tuple[torch.Tensor, _Tiles]:
    """Apply ``m`` to the unoccluded map ``base`` (once per call, ``memo``) and to the tiles;
    returns both results."""
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
        return _window_op(m, base, t, memo)
    if isinstance(m, _POINTWISE):
        return _unoccluded(m, base, memo), _Tiles(m(t.v), t.y, t.x)
    if isinstance(m, nn.Sequential):
        for c in m:
            base, t = _step(c, base, t, memo)
        return base, t
    if _is_residual(m):
        body_base, bt = _step(m.body, base, t, memo)
        h, w = bt.v.shape[-2:]
        skip = _overlay(base, t, bt.y, bt.x, h, w)
        return _once(memo, m, lambda: m.act(base + body_base)), _Tiles(m.act(skip + bt.v), bt.y, bt.x)
    raise TypeError(f"incremental occlusion does not support {type(m).__name__}")


def _full(base: torch.Tensor, t: _Tiles) -> torch.Tensor:
    """The occluded copies' whole feature maps."""
    return _overlay(base, t, torch.zeros_like(t.y), torch.zeros_like(t.x), base.shape[-2], base.shape[-1])


def window_starts(shape: Sequence[int], patch: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """Corners of the occlusion windows (captum's placement: 0, s, ..., ceil((n - p) / s) * s; the
    last one may be cut by the far edge), one row per window."""
    starts = [range(0, -(-(n - p) // s) * s + 1, s) for n, p, s in zip(shape, patch, stride)]
    return np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape))


def incremental_occlusion(model: nn.Module, x: torch.Tensor, target: int, patch: Sequence[int],
                          stride: Sequence[int], baseline: float = 0.0, batch_size: int = 64,
                          switch_fraction: float = 0.5) -> np.ndarray:
    """Occlusion map (mean over covering windows of p_target(x) - p_target(occluded)) of a model
    that :func:`supports`; ``model`` in eval mode, called under ``torch.no_grad``. Feature modules
    run incrementally until a footprint covers more than ``switch_fraction`` of its map."""
    shape = tuple(x.shape[2:])
    corners = window_starts(shape, patch, stride)
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    feats = list(model.features)
    p0 = float(torch.softmax(model.head(model.features(x)), 1)[0, target])
    rest: dict[int, nn.Module] = {}      # channels-last copies of what runs on whole maps (faster on CPU)
    memo: dict[int, torch.Tensor] = {}   # unoccluded activations, by module
    for b0 in range(0, len(corners), batch_size):
        cb = corners[b0:b0 + batch_size]
        n = len(cb)
        # the occluded input on the patch box: baseline inside the image
        t = _Tiles(torch.full((n, x.shape[1], *patch), float(baseline), dtype=x.dtype),
                   torch.as_tensor(cb[:, 0]), torch.as_tensor(cb[:, 1]))
        base, h = x, None
        for i, m in enumerate(feats):
            if h is None and _supported(m):
                base, t = _step(m, base, t, memo)
                if t.v.shape[-2] * t.v.shape[-1] > switch_fraction * base.shape[-2] * base.shape[-1]:
                    h = _full(base, t).contiguous(memory_format=torch.channels_last)
                continue
            if h is None:
                h = _full(base, t).contiguous(memory_format=torch.channels_last)
            if i not in rest:
                rest[i] = copy.deepcopy(m).to(memory_format=torch.channels_last)
            h = rest[i](h)
        if h is None:
            h = _full(base, t)
        p = torch.softmax(model.head(h), 1)[:, target].double()
        for (a, c), pi in zip(cb, p):
            sl = (slice(int(a), int(a) + patch[0]), slice(int(c), int(c) + patch[1]))
            total[sl] += p0 - float(pi)
            count[sl] += 1
    return (total / count).numpy().astype(np.float32)
