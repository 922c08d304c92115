"""Generic segmentation engine: resample a whole scan to the model grid, normalise, run the
network by sliding windows (optionally mirrored), and map class probabilities back onto the
input's own grid exactly. No task rules: orbit segmentation (:mod:`orbitai.orbit.segment`) builds on
:func:`predict`; lesion segmentation (:mod:`orbitai.neuro.lesionseg`, a 2.5D network on batches of axial
slices, its own grid cropped to the brain) on :func:`orbitai.engine.windows.blend_windows` and the same
preprocessing stages (:func:`orbitai.preprocess.grid.box_grid`, :func:`orbitai.preprocess.intensity.masked_zscore`).

This module is the pipeline (`SegSpec`, :func:`predict`, :func:`model_probabilities`); its stages are
:mod:`orbitai.engine.windows` (the sliding windows, ``step1`` or ``overlap``), :mod:`orbitai.engine.mapping`
(the model grid's probabilities mapped back onto the input's grid) and :mod:`orbitai.engine.result`
(`EngineResult`, with its partial-volume-aware soft volumes).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.boxes import Region
from orbitai.engine.focus import Focus, focused_part, intersect, shifted
from orbitai.engine.mapping import (
    class_image,
    content_box,
    foreground_box,
    input_box_on_grid,
    map_classes,
    part_image,
    region_probabilities,
    resample_class,
)
from orbitai.engine.result import EngineResult
from orbitai.engine.windows import sliding_window
from orbitai.io import Volume
from orbitai.preprocess.checks import check_input
from orbitai.preprocess.grid import model_grid, resample_onto, subgrid
from orbitai.preprocess.intensity import normalise
from orbitai.progress import ProgressCallback

log = logging.getLogger(__name__)

#: The margin (mm) around what the network found within which :func:`predict` maps the classes back.
BOX_MARGIN_MM = 5.0


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
            focus: Focus | None = None) -> EngineResult:
    """Class probabilities of a whole scan, mapped back onto the input's grid (see :class:`EngineResult`).

    ``mirror`` averages the logits with those of the left-right mirrored scan (twice the window
    time, slightly better masks; classes must be side-agnostic). ``check=False`` skips the input
    checks when the caller has run :func:`orbitai.preprocess.checks.check_input` itself. ``focus``
    limits the network to where the task's structures can lie (:data:`Focus`). The classes are mapped back within
    `BOX_MARGIN_MM` of what was found."""
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
    box = foreground_box(fg, ref, vol, margin_mm=BOX_MARGIN_MM)
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
