"""Exact incremental occlusion for 2D CNNs (Nakandala et al., "Incremental and Approximate Inference
for Faster Occlusion-based Deep CNN Explanations", SIGMOD 2019).

An occluding patch changes the input only inside the patch, so each early feature map changes only
inside the patch's growing footprint. The unoccluded input is run once; for every occluded copy
only that footprint is recomputed, layer by layer, from small crops of the unoccluded activations
with the new values laid over them. When the footprint covers most of a feature map the copies
are completed to full maps and the rest of the network runs on them in batches. The arithmetic is
the network's own (the same kernels on crops, each batch norm folded into the convolution before
it), so the map equals the plain loop's to rounding.

Speed on CPU: the windows of a batch form whole rows of the occlusion grid, so while their corners
stay evenly spaced all crops of a layer are one strided view of the (padded, channels-last) map and
are taken with one copy; everything runs channels-last, the faster layout for CPU convolutions.

Why hand-written: captum and MONAI occlude by running every occluded copy through the whole
network; neither reuses the unoccluded activations.

Supported modules: ``Conv2d`` (dilation 1), ``BatchNorm2d`` in eval mode with running statistics,
``ReLU``, ``MaxPool2d`` (no padding, floor mode), ``Dropout``/``Identity`` (eval), ``Sequential`` of
these, and residual blocks that declare ``forward_is_act_of_x_plus_body`` (``body`` a
``Sequential`` of these, ``act`` a ReLU). The model must declare ``forward_is_head_of_features``
with ``features`` a ``Sequential``; :func:`supports` says whether a model qualifies.
"""
from __future__ import annotations

import copy
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

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
    if isinstance(m, nn.BatchNorm2d):           # pointwise only with running statistics
        return m.running_mean is not None and m.running_var is not None
    if isinstance(m, _POINTWISE):
        return True
    if isinstance(m, nn.Sequential):
        return all(_supported(c) for c in m)
    if _is_residual(m):
        return _supported(m.get_submodule("body")) and isinstance(m.get_submodule("act"), (nn.ReLU, nn.Identity))
    return False


def supports(model: nn.Module) -> bool:
    """True when ``model`` declares ``forward_is_head_of_features`` (its forward is exactly
    ``head(features(x))``) and its ``features`` is a ``Sequential`` starting with a supported module."""
    feats = getattr(model, "features", None)
    return (bool(getattr(model, "forward_is_head_of_features", False)) and isinstance(feats, nn.Sequential)
            and len(feats) > 0 and isinstance(getattr(model, "head", None), nn.Module) and _supported(feats[0]))


def _folded_sequence(m: nn.Sequential) -> nn.Sequential:
    """:func:`_folded` of a Sequential."""
    kids, out = list(m), list[nn.Module]()
    while kids:
        a = kids.pop(0)
        bn = kids[0] if kids else None
        if isinstance(a, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and _supported(bn):
            del kids[0]
            out.append(fuse_conv_bn_eval(a, bn))
        else:
            out.append(_folded(a))
    return nn.Sequential(*out)


def _folded(m: nn.Module) -> nn.Module:
    """``m`` with every Conv2d that a BatchNorm2d follows in a Sequential merged with it into one
    convolution (torch's ``fuse_conv_bn_eval``; eval mode): one pass over each map instead of two.
    The weights of ``m`` are not touched; unchanged children are shared, not copied."""
    if isinstance(m, nn.Sequential):
        return _folded_sequence(m)
    if _is_residual(m):
        block = copy.copy(m)
        block._modules = dict(m._modules)
        block._modules["body"] = _folded(m.get_submodule("body"))
        return block
    return m


class _Tiles(NamedTuple):
    """New values of every occluded copy on a box of the same size: ``v`` (n, C, h, w), box corners
    ``y``/``x`` (n,) in the coordinates of the current feature map, which may reach past its edges
    (entries there are meaningless and read as zero padding). ``grid`` (rows, cols): the copies are
    a row-major grid of windows (their corners may or may not be evenly spaced on this map)."""

    v: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    grid: tuple[int, int]


def _even_steps(y: torch.Tensor, x: torch.Tensor, grid: tuple[int, int]) -> tuple[int, int] | None:
    """Steps (sy, sx) when the corners of a row-major ``grid`` are evenly spaced; None otherwise
    (e.g. after a stride that does not divide the spacing). The copies of a grid row share their y
    and those of a grid column their x (each is a function of the window's row resp. column), so
    one value per row and per column says it."""
    rows, cols = grid
    ys, xs = y[::cols].tolist(), x[:cols].tolist()
    sy = ys[1] - ys[0] if rows > 1 else 1
    sx = xs[1] - xs[0] if cols > 1 else 1
    even = all(b - a == sy for a, b in zip(ys, ys[1:])) and all(b - a == sx for a, b in zip(xs, xs[1:]))
    return (sy, sx) if even and sy >= 1 and sx >= 1 else None


def _once(memo: dict, m: nn.Module, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The unoccluded output of ``m``: computed for the first batch of copies, reused after."""
    if id(m) not in memo:
        memo[id(m)] = compute()
    return memo[id(m)]


def _unoccluded(m: nn.Module, base: torch.Tensor, memo: dict) -> torch.Tensor:
    # an in-place layer gets a copy: its input is kept in the memo too
    return _once(memo, m, lambda: m(base.clone() if getattr(m, "inplace", False) else base))


def _padded(base: torch.Tensor, margin: int, memo: dict) -> torch.Tensor:
    """``base[0]`` (C, H, W) with ``margin`` zeros around it, made once per map and margin."""
    key = ("pad", id(base), margin)
    if key not in memo or memo[key][0] is not base:
        memo[key] = (base, F.pad(base, (margin,) * 4).contiguous(memory_format=torch.channels_last)[0])
    return memo[key][1]


def _gather(base: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int, grid: tuple[int, int],
            memo: dict) -> torch.Tensor:
    """Crops (n, C, h, w) of ``base`` (1, C, H, W) at corners (y, x) of a row-major ``grid``, zero
    outside the map."""
    margin = max(h, w, int(-min(int(y.min()), int(x.min()), 0))) + 1
    pad = _padded(base, margin, memo)
    steps = _even_steps(y, x, grid)
    if steps is not None:   # evenly spaced crops are one strided view of the map: one copy for all
        y0, x0 = int(y[0]) + margin, int(x[0]) + margin
        rows, cols = grid
        win = pad[:, y0:, x0:].unfold(1, h, steps[0]).unfold(2, w, steps[1])[:, :rows, :cols]
        if win.shape[1:3] != (rows, cols):
            raise RuntimeError("incremental occlusion: crop grid runs past the padded map")
        # clone: a reshape may return a view into the shared padded map, which the tiles then overwrite
        return win.permute(1, 2, 3, 4, 0).clone(memory_format=torch.contiguous_format).view(
            rows * cols, h, w, base.shape[1]).permute(0, 3, 1, 2)
    return torch.stack([pad[:, a:a + h, b:b + w] for a, b in zip((y + margin).tolist(), (x + margin).tolist())])


def _zero_outside(t: _Tiles, shape) -> torch.Tensor:
    """``t.v`` with the entries that lie past the edges of a map of ``shape`` set to zero (in place:
    they are meaningless, and the next layer must read zero padding there). The copies of a grid
    row share their y and those of a grid column their x, so this is a few strip assignments."""
    rows, cols = t.grid
    th, tw = t.v.shape[-2:]
    v = t.v.unflatten(0, (rows, cols))
    for r, y in enumerate(t.y[::cols].tolist()):
        if y < 0:
            v[r, :, :, :min(-y, th)] = 0
        if y + th > shape[-2]:
            v[r, :, :, max(shape[-2] - y, 0):] = 0
    for c, x in enumerate(t.x[:cols].tolist()):
        if x < 0:
            v[:, c, :, :, :min(-x, tw)] = 0
        if x + tw > shape[-1]:
            v[:, c, :, :, max(shape[-1] - x, 0):] = 0
    return t.v


def _overlay(base: torch.Tensor, t: _Tiles, y: torch.Tensor, x: torch.Tensor, h: int, w: int,
             memo: dict) -> torch.Tensor:
    """The occluded copies' feature map on boxes (y, x, h, w): unoccluded values with the tiles'
    new values laid over them; zero outside the map."""
    return _lay_tiles(_gather(base, y, x, h, w, t.grid, memo), t, y, x, base.shape)


def _lay_tiles(crop: torch.Tensor, t: _Tiles, y: torch.Tensor, x: torch.Tensor, shape) -> torch.Tensor:
    """Write the tiles' values (zero where a tile reaches past the map of ``shape``) into ``crop``,
    the copies' boxes with corners (y, x)."""
    h, w = crop.shape[-2:]
    v = _zero_outside(t, shape)
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


def _pair(v: int | tuple[int, ...]) -> tuple[int, ...]:
    return v if isinstance(v, tuple) else (v, v)


def _window_op(m: nn.Conv2d | nn.MaxPool2d, base: torch.Tensor, t: _Tiles, memo: dict) -> tuple[torch.Tensor, _Tiles]:
    """A convolution or max pool on the footprint of the tiles."""
    if isinstance(m.padding, str):
        raise TypeError("incremental occlusion does not support string padding")   # _supported refuses it
    k, s, p = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    h, w = t.v.shape[-2:]
    # outputs whose window meets the tile: ceil((a + p - k + 1) / s) .. floor((a + size - 1 + p) / s)
    oy = -((-(t.y + p[0] - k[0] + 1)) // s[0])
    ox = -((-(t.x + p[1] - k[1] + 1)) // s[1])
    oh = int(((t.y + h - 1 + p[0]) // s[0] - oy).max()) + 1
    ow = int(((t.x + w - 1 + p[1]) // s[1] - ox).max()) + 1
    crop = _overlay(base, t, oy * s[0] - p[0], ox * s[1] - p[1], (oh - 1) * s[0] + k[0], (ow - 1) * s[1] + k[1], memo)
    if isinstance(m, nn.Conv2d):
        v = F.conv2d(crop, m.weight, m.bias, s, 0, 1, m.groups)
    else:
        v = F.max_pool2d(crop, k, s, 0)
    return _unoccluded(m, base, memo), _Tiles(v, oy, ox, t.grid)


def _step(m: nn.Module, base: torch.Tensor, t: _Tiles, memo: dict) -> tuple[torch.Tensor, _Tiles]:
    """Apply ``m`` to the unoccluded map ``base`` (once per call, ``memo``) and to the tiles;
    returns both results."""
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
        return _window_op(m, base, t, memo)
    if isinstance(m, _POINTWISE):
        return _unoccluded(m, base, memo), _Tiles(m(t.v), t.y, t.x, t.grid)
    if isinstance(m, nn.Sequential):
        for c in m:
            base, t = _step(c, base, t, memo)
        return base, t
    if _is_residual(m):
        body_base, bt = _step(m.get_submodule("body"), base, t, memo)
        h, w = bt.v.shape[-2:]
        skip = _overlay(base, t, bt.y, bt.x, h, w, memo)
        act = m.get_submodule("act")
        return _once(memo, m, lambda: act(base + body_base)), _Tiles(act(skip + bt.v), bt.y, bt.x, t.grid)
    raise TypeError(f"incremental occlusion does not support {type(m).__name__}")


def _full(base: torch.Tensor, t: _Tiles) -> torch.Tensor:
    """The occluded copies' whole feature maps, channels-last (the faster layout for the convolutions
    that follow on CPU)."""
    n = len(t.y)
    # clone, not contiguous(): for one copy that would hand back ``base`` itself, and the tiles
    # would then be written into the kept unoccluded activations
    crop = base.expand(n, -1, -1, -1).clone(memory_format=torch.channels_last)
    zero = torch.zeros_like(t.y)
    return _lay_tiles(crop, t, zero, zero, base.shape)


def _grid_batches(rows: int, cols: int, batch_size: int) -> list[tuple[slice, slice]]:
    """Split a rows x cols grid of windows into rectangles of at most ``batch_size``: whole rows
    together where a row fits, otherwise pieces of one row."""
    if cols <= batch_size:
        k = batch_size // cols
        return [(slice(r, min(r + k, rows)), slice(0, cols)) for r in range(0, rows, k)]
    return [(slice(r, r + 1), slice(c, min(c + batch_size, cols)))
            for r in range(rows) for c in range(0, cols, batch_size)]


def window_starts(shape: Sequence[int], patch: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """Corners of the occlusion windows (captum's placement: 0, s, ..., ceil((n - p) / s) * s; the
    last one may be cut by the far edge), one row per window."""
    starts = [range(0, -(-(n - p) // s) * s + 1, s) for n, p, s in zip(shape, patch, stride)]
    return np.stack(np.meshgrid(*starts, indexing="ij"), -1).reshape(-1, len(shape))


def _grid_rows(t: _Tiles, r0: int, r1: int) -> _Tiles:
    """The copies of grid rows r0..r1-1."""
    cols = t.grid[1]
    sl = slice(r0 * cols, r1 * cols)
    return _Tiles(t.v[sl], t.y[sl], t.x[sl], (r1 - r0, cols))


#: copies per pass when the caller gives none: the incremental path holds only each copy's footprint
#: until the maps are small, so it can take many more than a pass of whole copies
DEFAULT_BATCH = 256
#: the most bytes of whole feature maps made at once after the switch (larger batches go in pieces)
FULL_MAP_BYTES = 256 * 2 ** 20


def incremental_occlusion(model: nn.Module, x: torch.Tensor, target: int, patch: Sequence[int],
                          stride: Sequence[int], baseline: float = 0.0, batch_size: int = DEFAULT_BATCH,
                          switch_fraction: float = 0.5) -> np.ndarray:
    """Occlusion map (mean over covering windows of p_target(x) - p_target(occluded)) of a model
    that :func:`supports`; ``model`` in eval mode, called under ``torch.no_grad``. Feature modules
    run incrementally until a footprint covers more than ``switch_fraction`` of its map, then on
    whole maps, at most :data:`FULL_MAP_BYTES` of them at a time."""
    shape = tuple(x.shape[2:])
    corners = window_starts(shape, patch, stride)
    total = torch.zeros(shape, dtype=torch.float64)
    count = torch.zeros(shape, dtype=torch.float64)
    features, head = model.get_submodule("features"), model.get_submodule("head")
    if not isinstance(features, nn.Sequential):
        raise TypeError("incremental occlusion needs model.features to be a Sequential (see supports())")
    feats = list(_folded_sequence(features))
    p0 = float(torch.softmax(head(features(x)), 1)[0, target])
    memo: dict[int, torch.Tensor] = {}   # unoccluded activations, by module
    x_cl = x.contiguous(memory_format=torch.channels_last)   # channels-last: the faster layout on CPU
    ys, xs = (np.unique(corners[:, k]) for k in (0, 1))
    for rs, cs in _grid_batches(len(ys), len(xs), batch_size):
        by, bx = np.meshgrid(ys[rs], xs[cs], indexing="ij")
        cb = np.stack([by.ravel(), bx.ravel()], 1)
        n = len(cb)
        # the occluded input on the patch box: baseline inside the image
        t = _Tiles(torch.full((n, x.shape[1], *patch), float(baseline), dtype=x.dtype),
                   torch.as_tensor(cb[:, 0]), torch.as_tensor(cb[:, 1]), by.shape)
        base, start = x_cl, len(feats)
        for i, m in enumerate(feats):
            if not _supported(m):
                start = i
                break
            base, t = _step(m, base, t, memo)
            if t.v.shape[-2] * t.v.shape[-1] > switch_fraction * base.shape[-2] * base.shape[-1]:
                start = i + 1
                break
        rows, cols = t.grid
        step = max(1, FULL_MAP_BYTES // (cols * base[0].numel() * base.element_size()))
        parts = []
        for r0 in range(0, rows, step):
            h = _full(base, _grid_rows(t, r0, min(r0 + step, rows)))
            for m in feats[start:]:
                h = m(h)
            parts.append(head(h))
        p = torch.softmax(torch.cat(parts), 1)[:, target].double()
        for (a, c), pi in zip(cb, p):
            sl = (slice(int(a), int(a) + patch[0]), slice(int(c), int(c) + patch[1]))
            total[sl] += p0 - float(pi)
            count[sl] += 1
    return (total / count).numpy().astype(np.float32)
