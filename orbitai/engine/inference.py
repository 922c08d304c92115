"""Generic segmentation engine: resample a whole scan to the model grid, normalise, run the
network by sliding windows (optionally mirrored), and map class probabilities back onto the
input's own grid exactly. No task rules: orbit segmentation (:mod:`orbitai.orbit.segment`) builds on
:func:`predict`; lesion segmentation (:mod:`orbitai.neuro.lesionseg`, a 2.5D network on batches of axial
slices, its own grid cropped to the brain) on :func:`blend_windows` and the same preprocessing stages
(:func:`orbitai.preprocess.grid.box_grid`, :func:`orbitai.preprocess.intensity.masked_zscore`).

Two window modes over the resampled scan:

* ``step1`` — the SV-net paper's scheme: windows of 32 slices moved along Z one slice at a
  time (every slice is predicted up to 32 times, plain averaging);
* ``overlap`` (default) — overlapped sliding window with Gaussian weighting, a few windows per
  axis. Same masks in a fraction of the time (see benchmarks/bench_segmentation.py).

The windows are placed, weighted and blended as MONAI's ``sliding_window_inference`` does (the same
numbers, tested), in plain torch: importing MONAI costs seconds at every start of a prediction.
"""
from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.boxes import Region, bbox, grow, split_boxes
from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.preprocess.checks import check_input
from orbitai.engine.focus import Focus, focused_part, intersect, shifted
from orbitai.preprocess.grid import empty_image, model_grid, resample_onto, subgrid
from orbitai.preprocess.intensity import normalise
from orbitai.progress import ProgressCallback

log = logging.getLogger(__name__)

#: A region of the input as [(k0, k1), (j0, j1), (i0, i1)] (half-open voxel ranges).
Box = list[tuple[int, int]]

#: How far (mm) beyond a structure's voxels its soft volume (:meth:`EngineResult.soft_volumes`) gathers its class's
#: probability, at least: on thick slices one slice thickness (what a structure fills partly lies in the next
#: slice, and the network's probability fades towards that slice's centre).
SOFT_MARGIN_MM = 3.0


@dataclass
class SegSpec:
    """What a segmentation bundle needs from its input (``metadata.json['input']``)."""

    spacing: tuple[float, float, float]          # model grid spacing (x, y, z) mm
    patch_dhw: tuple[int, int, int]              # sliding window size (slices, rows, cols)
    structures: tuple[str, ...]                  # output channel c+1 -> structure name (channel 0 = background)
    intensity: dict[str, Any] = field(default_factory=lambda: {"mode": "percentile"})
    modality: str = "any"                        # "CT", "MR" or "any"

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> SegSpec:
        inp = meta["input"]
        return cls(tuple(inp["spacing"]), tuple(inp["patch_dhw"]), tuple(inp["structures"]),
                   dict(inp.get("intensity", {"mode": "percentile"})), inp.get("modality", "any"))

    def to_metadata(self) -> dict[str, Any]:
        return {"spacing": list(self.spacing), "patch_dhw": list(self.patch_dhw),
                "structures": list(self.structures), "intensity": self.intensity, "modality": self.modality}

    @property
    def n_classes(self) -> int:
        return len(self.structures)


# ----------------------------------------------------------------------------- windows
#: Voxels in one window of the ``overlap`` mode: 2^23, twice the 64 x 256 x 256 window it replaces. For the
#: bundled width-6 SV-nets a 6.7 M-voxel window (a 1 mm head's search box) peaked 1.4 GB above the
#: loaded model on the CPU (measured with ru_maxrss).
MAX_WINDOW_VOXELS = 2 ** 23


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
                   divisor: int = 16, max_inplane: int = 256,
                   max_window_voxels: int = MAX_WINDOW_VOXELS, channels_last: bool = False) -> torch.Tensor:
    """Logits for a (1, 1, D, H, W) tensor by sliding-window inference (:func:`blend_windows`).

    ``step1`` uses windows spanning the whole slice in-plane and ``patch_dhw[0]`` slices,
    moved one slice at a time with plain averaging (the paper); ``overlap`` uses windows spanning
    up to ``max_inplane`` voxels in-plane and as many slices as ``max_window_voxels`` allows (at least
    the bundle's window), half overlapping, blended with Gaussian weights. ``channels_last`` hands the
    network each window in the channels-last layout (for a model converted to it: faster on a CPU).
    """
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


def grid_region_on_input(region: Region, grid: sitk.Image, vol: Volume, margin_mm: float = 0.0) -> Box:
    """[(k0, k1), (j0, j1), (i0, i1)] of ``vol`` covering the box ``region`` of the model grid
    ``grid`` (three slices [k, j, i]) plus ``margin_mm``, clipped to ``vol``."""
    lo = np.array([region[2].start, region[1].start, region[0].start], float)
    hi = np.array([region[2].stop, region[1].stop, region[0].stop], float) - 1
    m = np.ceil(margin_mm / np.array(grid.GetSpacing())) if margin_mm else np.zeros(3)
    lo, hi = lo - m, hi + m
    corners = [grid.TransformContinuousIndexToPhysicalPoint([float(c) for c in (x, y, z)])
               for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    ijk = np.array([vol.physical_to_index(c) for c in corners])
    size = np.array(vol.size_xyz)
    a = np.clip(np.floor(ijk.min(0)).astype(int), 0, size - 1)
    b = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 1, size)
    return [(int(a[2]), int(b[2])), (int(a[1]), int(b[1])), (int(a[0]), int(b[0]))]


def foreground_box(fg: np.ndarray, grid: sitk.Image, vol: Volume, margin_mm: float = 5.0) -> Box | None:
    """[(k0, k1), (j0, j1), (i0, i1)] of ``vol`` covering the model-grid mask ``fg`` plus a margin;
    None when ``fg`` is empty."""
    region = bbox(fg)
    return None if region is None else grid_region_on_input(region, grid, vol, margin_mm)


def content_box(x: np.ndarray, margin: int = 8) -> tuple[slice, slice, slice]:
    """Slices of ``x`` (a normalised model-grid scan) around every voxel above its minimum, plus
    ``margin`` voxels: what lies outside is the scan's lowest value only (CT air and the fill around a
    resampled tilted series, all 0 after the CT window), which the sliding window pads with anyway,
    so the network runs on the box alone."""
    return bbox(x > x.min() + 1e-6, margin) or (slice(None), slice(None), slice(None))


def input_box_on_grid(box: Box, vol: Volume, grid: sitk.Image, grow: int = 2) -> Region:
    """The box (three slices [k, j, i]) of the model grid ``grid`` covering the part ``box`` of ``vol``
    plus ``grow`` voxels: every grid voxel a linear interpolation there reads. Clipped to ``grid``."""
    corners = [vol.index_to_physical([i, j, k]) for i in (box[2][0], box[2][1] - 1)
               for j in (box[1][0], box[1][1] - 1) for k in (box[0][0], box[0][1] - 1)]
    ijk = np.array([grid.TransformPhysicalPointToContinuousIndex([float(v) for v in c]) for c in corners])
    size = np.array(grid.GetSize())
    lo = np.clip(np.floor(ijk.min(0)).astype(int) - grow, 0, size)
    hi = np.clip(np.ceil(ijk.max(0)).astype(int) + grow + 1, 0, size)
    return cast(Region, tuple(slice(int(lo[a]), int(hi[a])) for a in (2, 1, 0)))


def part_image(vol: Volume, part: Box) -> sitk.Image:
    """An empty image on the part ``part`` of ``vol``'s grid: a resampling target."""
    return empty_image([b - a for a, b in part], vol.spacing, vol.direction,
                       vol.index_to_physical([part[2][0], part[1][0], part[0][0]]))


def class_image(probs: np.ndarray, c: int, grid: sitk.Image) -> sitk.Image:
    """Class ``c`` of the model-grid probabilities ``probs`` (C, k, j, i) as an image on ``grid``."""
    img = sitk.GetImageFromArray(probs[c])
    img.CopyInformation(grid)
    return img


def resample_class(img: sitk.Image, c: int, ref: sitk.Image) -> np.ndarray:
    """Class ``c``'s probability image linearly resampled onto ``ref`` (outside the model grid:
    background, certain)."""
    return sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear,
                                                1.0 if c == 0 else 0.0, sitk.sitkFloat32))


def region_probabilities(logits: torch.Tensor, crop: tuple[slice, ...], shape: tuple[int, ...],
                         region: Region) -> np.ndarray:
    """Softmax of ``logits`` (C, *crop shape: the content box ``crop`` of a model grid of ``shape``) on the
    box ``region`` of that grid, (C, *region shape); outside the crop background, certain."""
    probs = np.zeros((logits.shape[0], *(r.stop - r.start for r in region)), np.float32)
    probs[0] = 1.0
    inside = tuple(slice(max(r.start, c.start or 0), min(r.stop, c.stop if c.stop is not None else n))
                   for r, c, n in zip(region, crop, shape))
    if all(v.stop > v.start for v in inside):           # softmax over that part of the crop only
        part = logits[(slice(None),) + tuple(slice(v.start - (c.start or 0), v.stop - (c.start or 0))
                                             for v, c in zip(inside, crop))]
        probs[(slice(None),) + tuple(slice(v.start - r.start, v.stop - r.start) for v, r in zip(inside, region))] = \
            torch.softmax(part, dim=0).numpy()
    return probs


def map_classes(probs: np.ndarray, grid: sitk.Image, vol: Volume, box: Box,
                images: dict[int, sitk.Image] | None = None) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Class (argmax, ties to the lower class) on the part ``box`` of ``vol`` from the class
    probabilities ``probs`` (C, k, j, i) on the model grid ``grid``, linearly interpolated, and a
    function giving the winning probability there (the confidence: made only when asked for).

    Exact, and fast: an interpolated value is a weighted mean of 8 neighbours and the winner's is at
    least 1/C, so a foreground class can win only within one voxel of where it reaches 1/C on the model
    grid. There (one box per piece, e.g. per orbit) it and the background are resampled; everywhere
    else the class is background. The resamplings run on two threads (SimpleITK releases the GIL) and
    are merged in class order. The probability images made for it (background and each class that can win, on
    ``grid``) are also put into ``images`` when given: the confidence keeps them, so a caller reads them at no
    cost."""
    floor = 1.0 / probs.shape[0] - 1e-4          # below 1/C by more than rounding: never the winner
    parts: list[tuple[int, Box]] = []
    for c in range(1, probs.shape[0]):
        for piece in split_boxes(probs[c] >= floor):
            part = [(max(a, pa), min(b, pb)) for (a, b), (pa, pb)
                    in zip(box, grid_region_on_input(grow(piece, 1, probs[c].shape), grid, vol))]
            if all(b > a for a, b in part):
                parts.append((c, part))

    made = {c: class_image(probs, c, grid) for c in {0, *(c for c, _ in parts)}}   # one copy per class
    if images is not None:
        images.update(made)
    images = made

    def resampled(c: int, part: Box) -> np.ndarray:
        return resample_class(images[c], c, part_image(vol, part))

    with ThreadPoolExecutor(2) as pool:
        maps = list(pool.map(lambda job: (resampled(0, job[1]), resampled(*job)), parts))
    shape = tuple(b - a for a, b in box)
    cls = np.zeros(shape, np.uint8)
    # the best probability so far, over the parts' joint box ``used`` only (-1: no class can win here)
    used = [(min(p[ax][0] for _, p in parts), max(p[ax][1] for _, p in parts)) if parts else (a, a)
            for ax, (a, _) in enumerate(box)]
    best = np.full([b - a for a, b in used], -1.0, np.float32)
    for (c, part), (p0, pc) in zip(parts, maps):   # in class order: ties go to the lower class
        bv = best[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, used))]   # views: updated in place
        cv = cls[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, box))]
        np.maximum(bv, p0, out=bv)
        better = pc > bv
        bv[better] = pc[better]
        cv[better] = c

    def confidence() -> np.ndarray:
        """The winning probability on ``box``: background's where no foreground class can win."""
        out = resampled(0, box)
        inner = out[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(used, box))]
        np.copyto(inner, best, where=best >= 0)
        return out

    return cls, confidence


# --------------------------------------------------------------------------- pipeline
@dataclass
class EngineResult:
    """Classes and confidence of one scan on the input's grid.

    ``classes`` covers only ``box`` (the found foreground plus a margin; None when nothing was
    found) with the geometry of that part of the input; ``box_confidence`` computes the maximum class
    probability there, :attr:`confidence` over the whole input grid (both only when asked for)."""

    classes: Volume | None
    box: Box | None
    box_confidence: Callable[[], np.ndarray] | None
    grid: Volume                         # the input scan: its geometry
    warnings: list[str]
    seconds: float = 0.0
    window_seconds: float = 0.0          # the sliding-window inference alone
    prep_seconds: float = 0.0            # resampling to the model grid and normalising
    # background's and each class's probability that can win somewhere, on the model-grid box around ``box`` (the
    # images the confidence reads; what :meth:`soft_volumes` sums)
    class_probabilities: dict[int, sitk.Image] | None = None

    def _whole(self, part: np.ndarray | None, fill, dtype) -> Volume:
        out = np.full(self.grid.shape, fill, dtype)
        if self.box is not None and part is not None:
            out[tuple(slice(a, b) for a, b in self.box)] = part
        return self.grid.with_array(out)

    def class_map(self) -> Volume:
        """The class map on the whole input grid (0 outside ``box``)."""
        return self._whole(None if self.classes is None else self.classes.array, 0, np.uint8)

    @property
    def confidence(self) -> Volume:
        """The maximum class probability on the whole input grid (1 outside ``box``: background,
        certain); made when asked for (a float copy of the whole scan)."""
        return self._whole(None if self.box_confidence is None else self.box_confidence(), 1.0, np.float32)

    def soft_volumes(self, labels: Volume, class_of: Mapping[int, int],
                     margin_mm: float | None = None) -> dict[int, float]:
        """Partial-volume-aware volumes (cm3) of the regions of ``labels`` (a label map on the input grid, e.g.
        the classes split into sides and cleaned): for each label value ``v`` of ``class_of`` (value -> model
        class), the sum of its class's probability over the model-grid voxels within ``margin_mm`` (default: the
        larger of :data:`SOFT_MARGIN_MM` and the scan's largest spacing) of ``v``'s voxels and nearer to them than
        to any other value of that class, times the model voxel's volume.

        On thick slices the label map keeps only the voxels a structure fills for the most part; the model
        grid (finer, and where the network's probabilities live) keeps the rest. Only the values found on the
        model grid are listed (a structure thinner than a model voxel may be missed there)."""
        out: dict[int, float] = {}
        if margin_mm is None:
            margin_mm = max(SOFT_MARGIN_MM, *self.grid.spacing)
        images = self.class_probabilities
        if not images or self.box is None:
            return out
        if tuple(labels.shape) != tuple(self.grid.shape):
            raise InputError(f"The label map (shape {labels.shape}) does not lie on the scan's grid "
                             f"(shape {self.grid.shape}).")
        part = sitk.GetImageFromArray(np.ascontiguousarray(labels.array[tuple(slice(a, b) for a, b in self.box)],
                                                           np.uint8))
        part.CopyInformation(part_image(self.grid, self.box))
        lab = sitk.GetArrayFromImage(sitk.Resample(part, images[0], sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                   sitk.sitkUInt8))
        spacing = np.array(images[0].GetSpacing(), float)
        voxel_cm3 = float(np.prod(spacing)) / 1000.0
        pad = [int(math.ceil(margin_mm / s)) for s in spacing[::-1]]
        order = list(class_of)
        for v, c in class_of.items():
            box = bbox(lab == v, pad)                 # every voxel within the margin of v's
            if box is None or c not in images:
                continue
            near = _distance_mm(lab[box] == v, spacing) <= margin_mm
            # the same class's other values (the other side): a voxel nearer to one of them is theirs (ties: the
            # value listed first); only their voxels within the margin of this box can be nearer
            rivals = [w for w in order if w != v and class_of[w] == c]
            if rivals:
                big = grow(box, max(pad), lab.shape)
                inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big))
                mine = _distance_mm(lab[big] == v, spacing)[inner]
                for w in rivals:
                    if (lab[big] == w).any():
                        theirs = _distance_mm(lab[big] == w, spacing)[inner]
                        near &= (mine < theirs) | ((mine == theirs) & (order.index(v) < order.index(w)))
            prob = sitk.GetArrayViewFromImage(images[c])     # a view: the image is kept by self
            out[v] = float(prob[box][near].sum(dtype=np.float64)) * voxel_cm3
        return out


def _distance_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel of ``mask``'s grid (spacing x, y, z) to the mask (0 inside)."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    d = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False,
                                                            useImageSpacing=True))
    return np.maximum(d, 0.0, out=d)


@dataclass
class _Logits:
    """The network's logits over the content box ``crop`` of the model grid ``grid`` (shape ``shape``)."""

    grid: sitk.Image
    crop: tuple[slice, slice, slice]
    shape: tuple[int, ...]
    logits: torch.Tensor                 # (1, C, *crop shape), float32 on the CPU
    prep_seconds: float
    window_seconds: float


def cpu_channels_last(model: torch.nn.Module, device: torch.device) -> tuple[torch.nn.Module, bool]:
    """``model`` in the channels-last layout on a CPU, and whether it is: oneDNN's 3D convolutions run faster so
    (bundled SV-nets, measured: 13 % on a 64 x 144 x 208 window, 43 % on a 1 mm head's whole search box). The same
    weights, so every other user of this (cached) model is unaffected; 3D convolutions only."""
    if device.type != "cpu" or any(p.dim() == 4 for p in model.parameters()):
        return model, False
    return model.to(memory_format=torch.channels_last_3d), True  # type: ignore[call-overload]  # torch's stub lacks it


def _network_logits(vol: Volume, model: torch.nn.Module, spec: SegSpec, window: str, device: torch.device | str,
                    progress: ProgressCallback | None, sw_batch_size: int, mirror: bool,
                    focus: Focus | None = None) -> _Logits:
    """Resample to the model grid, normalise, crop to the content (and to ``focus``) and run the
    sliding window (mirrored)."""
    t0 = time.perf_counter()
    ref = model_grid(vol, spec.spacing)
    coarse = focus is not None and focus.grid_factor > 1.0
    part = focused_part(vol, ref, spec.spacing, spec.intensity, focus) if focus is not None and coarse else None
    if part is not None:
        norm, region = part
        local = tuple(slice(*c.indices(n)[:2]) for c, n in zip(content_box(norm), norm.shape))
        crop = shifted(local, region)
        x = torch.from_numpy(np.ascontiguousarray(norm[local]))[None, None]
    else:
        norm = normalise(resample_onto(vol, ref), spec.intensity, reuse=True)     # the resampled copy is ours
        crop = content_box(norm)
        found = focus(norm, spec.spacing) if focus is not None else None
        if found is not None:
            crop = intersect(crop, found, norm.shape)
        x = torch.from_numpy(np.ascontiguousarray(norm[crop]))[None, None]
    full_shape = tuple(ref.GetSize()[::-1])
    del norm
    t1 = time.perf_counter()
    device = torch.device(device)
    model = model.to(device).eval()
    model, channels_last = cpu_channels_last(model, device)
    x = x.to(device)
    logits = sliding_window(x, model, spec.patch_dhw, window, sw_batch_size=sw_batch_size,
                            progress=progress, channels_last=channels_last).float().cpu()
    if mirror:
        # Test-time mirroring across the patient's left-right axis: average the logits of the
        # scan and of its mirror image, as nnU-Net does.
        flipped = sliding_window(torch.flip(x, dims=[4]), model, spec.patch_dhw, window,
                                 sw_batch_size=sw_batch_size, progress=progress,
                                 channels_last=channels_last).float().cpu()
        logits = 0.5 * (logits + torch.flip(flipped, dims=[4]))
        del flipped
    return _Logits(ref, crop, full_shape, logits, t1 - t0, time.perf_counter() - t1)


def model_probabilities(vol: Volume, model: torch.nn.Module, spec: SegSpec, window: str = "overlap",
                        device: torch.device | str = "cpu", progress: ProgressCallback | None = None,
                        mirror: bool = True, focus: Focus | None = None) -> tuple[np.ndarray, sitk.Image]:
    """The network's class probabilities (C, k, j, i) on the model grid over the scan (background,
    certain, outside the content box and ``focus``), and that grid: what :func:`probabilities_on` maps to a scan."""
    net = _network_logits(vol, model, spec, window, device, progress, 1, mirror, focus)
    whole = cast(Region, tuple(slice(0, n) for n in net.shape))
    return region_probabilities(net.logits[0], net.crop, net.shape, whole), net.grid


def probabilities_on(probs: np.ndarray, grid: sitk.Image, vol: Volume, classes: Sequence[int]) -> np.ndarray:
    """The classes' probabilities from the model grid (:func:`model_probabilities`) on the grid of
    ``vol``, linearly interpolated: (len(classes), k, j, i) float32."""
    ref = part_image(vol, [(0, n) for n in vol.shape])
    out = np.empty((len(classes), *vol.shape), np.float32)
    for n, c in enumerate(classes):
        out[n] = resample_class(class_image(probs, c, grid), c, ref)
    return out


def predict(vol: Volume, model: torch.nn.Module, spec: SegSpec, window: str = "overlap",
            device: torch.device | str = "cpu", progress: ProgressCallback | None = None,
            sw_batch_size: int = 1, mirror: bool = True, check: bool = True,
            margin_mm: float = 5.0, focus: Focus | None = None) -> EngineResult:
    """Class probabilities of a whole scan, mapped back onto the input's grid (see :class:`EngineResult`).

    ``mirror`` averages the logits with those of the left-right mirrored scan (twice the window
    time, slightly better masks; classes must be side-agnostic). ``check=False`` skips the input
    checks when the caller has run :func:`orbitai.preprocess.checks.check_input` itself. ``focus``
    limits the network to where the task's structures can lie (:data:`Focus`)."""
    t0 = time.perf_counter()
    warnings = check_input(vol, spec.modality) if check else []
    for w in warnings:
        log.warning(w)
    t_checks = time.perf_counter() - t0
    net = _network_logits(vol, model, spec, window, device, progress, sw_batch_size, mirror, focus)
    ref, crop, full_shape, logits = net.grid, net.crop, net.shape, net.logits
    t_window = net.window_seconds
    # foreground: background's logit below the best other class's (argmax > 0), as a running maximum
    lg = logits[0]
    other = lg[1].clone()
    for c in range(2, lg.shape[0]):
        torch.maximum(other, lg[c], out=other)
    fg = np.zeros(full_shape, bool)
    fg[crop] = (lg[0] < other).numpy()
    del other
    box = foreground_box(fg, ref, vol, margin_mm=margin_mm)
    classes, confidence = None, None
    if box is not None:
        # Map back only the region around what was found, each class where it can win (exact argmax),
        # from the probabilities on the model-grid region it reads (background, certain, outside the crop).
        region = input_box_on_grid(box, vol, ref)
        probs = region_probabilities(lg, crop, full_shape, region)
        images: dict[int, sitk.Image] = {}
        cls, confidence = map_classes(probs, subgrid(ref, region), vol, box, images)
        classes = Volume(cls, vol.spacing, tuple(vol.index_to_physical([box[2][0], box[1][0], box[0][0]])),
                         vol.direction)
        del probs
    else:
        images = {}
    del lg, logits
    return EngineResult(classes, box, confidence, vol, warnings, time.perf_counter() - t0, t_window,
                        net.prep_seconds + t_checks, images)
