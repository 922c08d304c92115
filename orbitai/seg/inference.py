"""Whole-scan orbit segmentation: resample to the model grid, sliding-window inference,
map back to the input geometry exactly, post-process per orbit.

Two window modes over the resampled scan:

* ``step1`` — the SV-net paper's scheme: windows of 32 slices moved along Z one slice at a
  time (every slice is predicted up to 32 times, plain averaging);
* ``overlap`` (default) — MONAI's overlapped sliding window with Gaussian weighting, a few
  windows per axis. Same masks in a fraction of the time (see benchmarks/bench_segmentation.py).

No manual crop: the window covers the whole scan, and each orbit is found from the
predicted eyeballs (left/right split at the midline between them).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.io import Volume, VolumeError, require_finite
from orbitai.labels import GROUPS, ORBIT_LABELS, values_for
from orbitai.seg.postprocess import classes_to_orbit_labels

log = logging.getLogger(__name__)
ProgressFn = Callable[[int, int, str], None]


class OrbitNotFoundError(VolumeError):
    """The scan shows no orbit (e.g. a brain-only field of view)."""


@dataclass
class SegSpec:
    """What a segmentation bundle needs from its input (``metadata.json['input']``)."""

    spacing: tuple[float, float, float]          # model grid spacing (x, y, z) mm
    patch_dhw: tuple[int, int, int]              # sliding window size (slices, rows, cols)
    structures: tuple[str, ...]                  # output channel c+1 -> structure name (channel 0 = background)
    intensity: dict[str, Any] = field(default_factory=lambda: {"mode": "percentile"})
    modality: str = "any"                        # "CT", "MR" or "any"

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> "SegSpec":
        inp = meta["input"]
        return cls(tuple(inp["spacing"]), tuple(inp["patch_dhw"]), tuple(inp["structures"]),
                   dict(inp.get("intensity", {"mode": "percentile"})), inp.get("modality", "any"))

    def to_metadata(self) -> dict[str, Any]:
        return {"spacing": list(self.spacing), "patch_dhw": list(self.patch_dhw),
                "structures": list(self.structures), "intensity": self.intensity, "modality": self.modality}

    @property
    def n_classes(self) -> int:
        return len(self.structures)

    def class_values(self) -> dict[int, tuple[int, int]]:
        """class -> (left, right) output label values."""
        return {c: values_for(s) for c, s in enumerate(self.structures, start=1)}

    def class_lut(self) -> np.ndarray:
        """Label value -> class index (structures not in the model -> 0); group labels such as
        ``extraocular_muscles`` collect all their members' values."""
        lut = np.zeros(max(ORBIT_LABELS) + 1 + 2 * len(GROUPS), np.uint8)
        for c, s in enumerate(self.structures, start=1):
            for member in GROUPS.get(s, (s,)):
                lv, rv = values_for(member)
                lut[lv] = lut[rv] = c
        return lut



# ----------------------------------------------------------------------------- checks
def looks_like_ct(vol: Volume) -> bool:
    """CT in Hounsfield units has air near -1000 and soft tissue near 0-100."""
    a = vol.array
    sample = a.ravel()[:: max(1, a.size // 200_000)].astype(np.float32)
    return float(np.percentile(sample, 1)) < -500 and float(np.percentile(sample, 99)) > 0


def check_input(vol: Volume, spec: SegSpec) -> list[str]:
    """Raise for unusable input; return warnings for doubtful input."""
    require_finite(vol, "image")
    if min(vol.shape) < 3:
        raise VolumeError(f"The image has only {min(vol.shape)} slices along one axis; a 3D scan is needed.")
    extent = np.array(vol.size_xyz) * np.array(vol.spacing)
    warnings = []
    if np.any(extent < 20):
        warnings.append(f"The field of view is very small ({extent.round(1).tolist()} mm); an orbit is ~40 mm wide.")
    ct = looks_like_ct(vol)
    if spec.modality == "CT" and not ct:
        warnings.append("This model expects CT in Hounsfield units but the image does not look like CT.")
    if spec.modality == "MR" and ct:
        warnings.append("This model expects MRI but the image looks like CT (Hounsfield units).")
    return warnings


# ------------------------------------------------------------------------- resampling
def model_grid(vol: Volume, spacing) -> sitk.Image:
    """An axis-aligned (LPS) grid at ``spacing`` covering the input's physical bounding box."""
    corners = np.array([[i, j, k] for i in (0, vol.size_xyz[0] - 1) for j in (0, vol.size_xyz[1] - 1)
                        for k in (0, vol.size_xyz[2] - 1)], float)
    pts = np.array([vol.index_to_physical(c) for c in corners])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    spacing = np.asarray(spacing, float)
    size = np.maximum(1, np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1)
    ref = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    ref.SetSpacing(tuple(spacing))
    ref.SetOrigin(tuple(lo))
    ref.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return ref


def normalise(arr: np.ndarray, intensity: dict[str, Any]) -> np.ndarray:
    """Intensity normalisation named in the bundle: ``ct_window``, ``percentile`` or ``zscore``
    (float32 out, whatever the input type)."""
    return _normalise(arr, intensity).astype(np.float32, copy=False)


def _normalise(arr: np.ndarray, intensity: dict[str, Any]) -> np.ndarray:
    mode = intensity.get("mode", "percentile")
    arr = arr.astype(np.float32, copy=False)
    if mode == "ct_window":  # SEQ-UNET: level 48 HU, width 400 HU
        lo = intensity.get("level", 48) - intensity.get("width", 400) / 2
        return (np.clip(arr, lo, lo + intensity.get("width", 400)) - lo) / intensity.get("width", 400)
    if mode == "percentile":
        sample = arr.ravel()[:: max(1, arr.size // 500_000)]
        lo, hi = np.percentile(sample, [intensity.get("low", 0.5), intensity.get("high", 99.5)])
        return np.clip((arr - lo) / max(hi - lo, 1e-6), 0, 1)
    if mode == "zscore":
        fg = arr[arr > np.percentile(arr, 5)]
        return (arr - fg.mean()) / max(float(fg.std()), 1e-6)
    raise ValueError(f"Unknown intensity normalisation {mode!r}.")


# ----------------------------------------------------------------------------- windows
def _divisible(n: int, d: int) -> int:
    return int(math.ceil(n / d) * d)


def sliding_window(x: torch.Tensor, model: torch.nn.Module, patch_dhw, window: str = "overlap",
                   overlap: float = 0.5, sw_batch_size: int = 1, progress: Optional[ProgressFn] = None,
                   divisor: int = 16, max_inplane: int = 256, max_slices: int = 64) -> torch.Tensor:
    """Logits for a (1, 1, D, H, W) tensor by MONAI's sliding-window inference.

    ``step1`` uses windows spanning the whole slice in-plane and ``patch_dhw[0]`` slices,
    moved one slice at a time with plain averaging (the paper); ``overlap`` uses windows spanning
    up to ``max_slices`` slices and ``max_inplane`` voxels in-plane (at least the bundle's window),
    half overlapping, blended with Gaussian weights.
    """
    from monai.inferers import sliding_window_inference

    D, H, W = x.shape[2:]
    if window == "step1":
        roi = (patch_dhw[0], _divisible(H, divisor), _divisible(W, divisor))
        ov, mode = (roi[0] - 1) / roi[0], "constant"
        total = max(1, D - roi[0] + 1)
    elif window == "overlap":
        # The network is fully convolutional: the window grows to the whole slice in-plane (up to
        # max_inplane voxels) and to max_slices slices, so a voxel is seen by 1-2 windows instead
        # of step-1's 32; larger scans are covered by half-overlapping, Gaussian-blended windows.
        roi = tuple(max(p, min(_divisible(n, divisor), cap))
                    for p, n, cap in zip(patch_dhw, (D, H, W), (max_slices, max_inplane, max_inplane)))
        ov, mode = overlap, "gaussian"
        total = 1
        for n, r in zip((D, H, W), roi):
            step = max(1, int(r * (1 - ov)))
            total *= 1 if n <= r else int(math.ceil((n - r) / step)) + 1
    else:
        raise ValueError(f"Unknown window mode {window!r}; use 'overlap' or 'step1'.")
    done = [0]
    batches = int(math.ceil(total / sw_batch_size))

    def predictor(patch: torch.Tensor) -> torch.Tensor:
        out = model(patch)
        done[0] += 1
        if progress:
            progress(min(done[0], batches), batches, f"window batch {done[0]}/{batches}")
        return out

    with torch.inference_mode():
        return sliding_window_inference(x, roi, sw_batch_size, predictor, overlap=ov, mode=mode,
                                        padding_mode="constant", cval=0.0)


def foreground_box(fg: np.ndarray, grid: sitk.Image, vol: Volume, margin_mm: float = 5.0):
    """[(k0, k1), (j0, j1), (i0, i1)] of ``vol`` covering the model-grid mask ``fg`` plus a margin;
    None when ``fg`` is empty."""
    idx = np.argwhere(fg)
    if not len(idx):
        return None
    lo, hi = idx.min(0)[::-1], idx.max(0)[::-1]          # (i, j, k) on the model grid
    m = np.ceil(margin_mm / np.array(grid.GetSpacing())).astype(int)
    lo, hi = lo - m, hi + m
    corners = [grid.TransformContinuousIndexToPhysicalPoint([float(c) for c in (x, y, z)])
               for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    ijk = np.array([vol.physical_to_index(c) for c in corners])
    size = np.array(vol.size_xyz)
    a = np.clip(np.floor(ijk.min(0)).astype(int), 0, size - 1)
    b = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 1, size)
    return [(int(a[2]), int(b[2])), (int(a[1]), int(b[1])), (int(a[0]), int(b[0]))]


# --------------------------------------------------------------------------- pipeline
@dataclass
class SegResult:
    labels: Volume                     # orbit-scheme label map on the input grid
    warnings: list[str]
    seconds: float = 0.0
    confidence: Optional[Volume] = None  # max class probability per voxel (input grid)
    window_seconds: float = 0.0          # the sliding-window inference alone


def segment(vol: Volume, model: torch.nn.Module, spec: SegSpec, window: str = "overlap",
            device: torch.device | str = "cpu", progress: Optional[ProgressFn] = None,
            sw_batch_size: int = 1, min_eyeball_ml: float = 2.0, mirror: bool = True) -> SegResult:
    """Segment the orbits of a whole CT/MRI; returns labels in the input's geometry.

    ``mirror`` averages the prediction with that of the left-right mirrored scan (twice the
    window time, slightly better masks); it applies to both window modes alike."""
    import time

    t0 = time.perf_counter()
    warnings = check_input(vol, spec)
    for w in warnings:
        log.warning(w)
    img = vol.to_sitk()
    if img.GetPixelID() != sitk.sitkFloat32:
        img = sitk.Cast(img, sitk.sitkFloat32)
    ref = model_grid(vol, spec.spacing)
    fill = float(np.min(vol.array))
    grid = sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, fill))
    x = torch.from_numpy(normalise(grid, spec.intensity))[None, None]
    t1 = time.perf_counter()
    device = torch.device(device)
    model = model.to(device).eval()
    x = x.to(device)
    logits = sliding_window(x, model, spec.patch_dhw, window, sw_batch_size=sw_batch_size,
                            progress=progress).float().cpu()
    if mirror:
        # Test-time mirroring across the patient's left-right axis (classes are side-agnostic):
        # average the logits of the scan and of its mirror image, as nnU-Net does.
        flipped = sliding_window(torch.flip(x, dims=[4]), model, spec.patch_dhw, window,
                                 sw_batch_size=sw_batch_size, progress=progress).float().cpu()
        logits = 0.5 * (logits + torch.flip(flipped, dims=[4]))
        del flipped
    probs = torch.softmax(logits[0], dim=0).numpy()
    del logits
    t_window = time.perf_counter() - t1
    labels_arr = np.zeros(vol.shape, np.uint8)
    confidence = np.ones(vol.shape, np.float32)   # outside the orbit region: background, certain
    box = foreground_box(probs.argmax(0) > 0, ref, vol, margin_mm=5.0)
    eye_class = spec.structures.index("eyeball") + 1 if "eyeball" in spec.structures else -1
    if box is not None:
        # Map back only the region around what was found: each class probability is resampled
        # onto that part of the input grid (running argmax), then post-processed there.
        sub = tuple(slice(a, b) for a, b in box)
        sub_vol = Volume(np.zeros([b - a for a, b in box], np.uint8), vol.spacing,
                         vol.index_to_physical([box[2][0], box[1][0], box[0][0]]), vol.direction)
        ref_sub = sub_vol.to_sitk()
        best = np.full(sub_vol.shape, -1.0, np.float32)
        classes = np.zeros(sub_vol.shape, np.uint8)
        for c in range(probs.shape[0]):
            p = sitk.GetImageFromArray(probs[c])
            p.CopyInformation(ref)
            pc = sitk.GetArrayFromImage(sitk.Resample(p, ref_sub, sitk.Transform(), sitk.sitkLinear,
                                                      1.0 if c == 0 else 0.0, sitk.sitkFloat32))
            better = pc > best
            best[better] = pc[better]
            classes[better] = c
        labels_arr[sub] = classes_to_orbit_labels(sub_vol.with_array(classes), spec.class_values(),
                                                  eyeball_class=eye_class).array
        confidence[sub] = best
    del probs
    labels = vol.with_array(labels_arr)
    if eye_class > 0:
        eye_ml = sum(np.count_nonzero(labels.array == v) for v in values_for("eyeball")) * vol.voxel_volume_mm3() / 1000
        if eye_ml < min_eyeball_ml:
            raise OrbitNotFoundError(
                f"No orbit found: the model detected {eye_ml:.2f} mL of eyeball (both eyes are ~13 mL). "
                "Is this an orbital CT/MRI with the eyes in the field of view?")
    elif not labels.array.any():
        raise OrbitNotFoundError("No orbit structure found. Is this an orbital CT/MRI?")
    return SegResult(labels, warnings, time.perf_counter() - t0, vol.with_array(confidence), t_window)


def structure_volumes(labels: Volume, structures: Optional[tuple[str, ...]] = None) -> list[dict[str, Any]]:
    """One row per orbit label: name, side, voxels, volume (cm^3). With ``structures`` (the
    model's), every side of each is listed, 0 when not found; otherwise the labels present."""
    rows = []
    vv = labels.voxel_volume_mm3() / 1000.0
    counts = {v: int(np.count_nonzero(labels.array == v)) for v in ORBIT_LABELS}  # no int64 copy of the map
    for value, lab in ORBIT_LABELS.items():
        if (lab.structure in structures) if structures is not None else counts[value]:
            rows.append({"label": value, "name": lab.name, "structure": lab.structure, "side": lab.side,
                         "voxels": int(counts[value]), "volume_cm3": float(counts[value] * vv)})
    return rows
