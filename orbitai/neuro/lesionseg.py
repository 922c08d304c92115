"""White-matter lesion segmentation on brain FLAIR.

* :func:`threshold_baseline` — voxels brighter than ``median + k * MAD`` of the brain (plus a
  minimum size): the plain reference that the network is measured against.
* :func:`segment_lesions` — the 2.5D MONAI U-Net of a bundle (default ``neuro_lesion_unet_demo``,
  see :mod:`orbitai.neuro.lesionseg_train`), on the shared stages of the segmentation engine. The
  FLAIR is normalised inside the brain mask (:func:`orbitai.preprocess.intensity.masked_zscore`, as in
  training), resampled (linear) onto a 1 mm grid aligned with the patient axes and cropped to the brain
  box (:func:`orbitai.preprocess.grid.box_grid`), so a 3-5 mm clinical FLAIR of any orientation is read
  like the 1 mm phantoms the model was trained on (with simulated thick slices). Batches of axial slices
  are segmented by the engine's Gaussian-blended sliding window
  (:func:`orbitai.engine.windows.blend_windows`, 192 x 192 windows overlapping by a quarter: MONAI's
  ``sliding_window_inference`` numbers), optionally averaged with the left-right mirror, and the lesion
  probability is resampled back onto the FLAIR's own grid: the mask has the input's geometry.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold

from orbitai.boxes import bbox
from orbitai.bundle.models import find_task_bundle
from orbitai.device import select_device
from orbitai.errors import BundleError, InputError
from orbitai.io import Volume, require_finite
from orbitai.neuro.lesion_rules import DEFAULT_RULES, REMOVED_KEY, apply_rules
from orbitai.neuro.second_look import DROPPED_KEY, SecondLook, dropped_json
from orbitai.neuro.seg_configs import ARCHITECTURE, CONTEXT, Z_FLOOR, brain_stats, normalise
from orbitai.preprocess.grid import box_grid
from orbitai.progress import ProgressCallback
from orbitai.engine.windows import blend_windows

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from orbitai.bundle import Bundle

log = logging.getLogger(__name__)

DEFAULT_BUNDLE = "neuro_lesion_unet_demo"
#: Model grid: 1 mm, axes along patient L, A, S (the MNI template's LAS index order).
MODEL_DIRECTION = np.diag([1.0, -1.0, 1.0])
MODEL_SPACING = 1.0
#: Sliding window over each axial slice: size (rows, columns), overlap, blending.
WINDOW_ROI = (192, 192)
WINDOW_OVERLAP = 0.25
#: 26-connected components smaller than this are dropped (mm^3).
MIN_LESION_MM3 = 3.0
BASELINE_K = 4.0
BASELINE_MIN_MM3 = 10.0
MIN_BRAIN_ML = 100.0


def check_pair(flair: Volume, brain: Volume) -> np.ndarray:
    """Validate a FLAIR and its brain mask; return the mask as bool. One-line `InputError` otherwise."""
    if not isinstance(flair, Volume) or not isinstance(brain, Volume):
        raise InputError("The FLAIR and the brain mask must be orbitai.io.Volume objects.")
    if flair.array.ndim != 3 or min(flair.shape) < 2:
        raise InputError(f"The FLAIR must be a 3D volume of several slices, got shape {flair.shape}.")
    require_finite(flair, "FLAIR")
    if not flair.same_geometry(brain, tol=1e-3):
        raise InputError(
            f"The brain mask (shape {brain.shape}, spacing {tuple(round(s, 3) for s in brain.spacing)}) is not on "
            f"the FLAIR's grid (shape {flair.shape}, spacing {tuple(round(s, 3) for s in flair.spacing)}); "
            "resample it onto the FLAIR first.")
    mask = np.asarray(brain.array) > 0
    ml = float(mask.sum()) * flair.voxel_volume_mm3() / 1000.0
    if ml < MIN_BRAIN_ML:
        raise InputError(f"The brain mask holds only {ml:.1f} mL (< {MIN_BRAIN_ML:.0f} mL): "
                         "it is empty or not a brain mask of this FLAIR.")
    return mask


def remove_small(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    """Drop 26-connected components of fewer than ``min_voxels`` voxels."""
    mask = np.asarray(mask, bool)
    if min_voxels <= 1 or not mask.any():
        return mask
    lab, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[lab]


def _min_voxels(vol: Volume, mm3: float) -> int:
    return max(1, int(np.ceil(mm3 / vol.voxel_volume_mm3() - 1e-9)))


def threshold_baseline(flair: Volume, brain: Volume, k: float = BASELINE_K,
                       min_size_mm3: float = BASELINE_MIN_MM3) -> Volume:
    """Lesions = brain voxels above ``median + k * MAD`` of the brain's intensities (MAD not
    scaled), components of at least ``min_size_mm3``; uint8 mask on the FLAIR grid."""
    b = check_pair(flair, brain)
    a = np.asarray(flair.array, np.float32)
    med, mad = brain_stats(a[b])
    mask = b & (a > med + k * mad)
    return flair.with_array(remove_small(mask, _min_voxels(flair, min_size_mm3)).astype(np.uint8))


def model_grid(flair: Volume, brain: np.ndarray, margin_mm: float = 4.0) -> sitk.Image:
    """A 1 mm reference grid aligned with the patient axes (LAS), covering the brain box + margin
    (:func:`orbitai.preprocess.grid.box_grid`: a 1 mm axis-aligned input keeps its lattice)."""
    region = bbox(np.asarray(brain, bool))
    if region is None:
        raise InputError("The brain mask is empty: no brain to segment.")
    return box_grid(flair, region, MODEL_SPACING, MODEL_DIRECTION, margin_mm)


def lesion_bundle(bundle: str | None = None) -> "Bundle":
    """The lesion bundle of that name or folder (default ``neuro_lesion_unet_demo``), architecture checked."""
    b = find_task_bundle(bundle or DEFAULT_BUNDLE, "lesion_segmentation", "a white-matter lesion segmentation model")
    if b.architecture != ARCHITECTURE:
        raise BundleError(f"Bundle '{b.name}' is a {b.architecture or b.metadata.get('task')!r} model, "
                          f"not a lesion segmentation network ({ARCHITECTURE}).")
    return b


def load_lesion_model(bundle: str | None = None, device: "str | torch.device" = "cpu") -> "torch.nn.Module":
    """The network of a lesion bundle (name or folder), weights checksum-verified, eval mode."""
    return lesion_bundle(bundle).load_model(device)


@dataclass(frozen=True)
class Postprocess:
    """How a probability map becomes a lesion mask: voxels ``>= threshold`` whose face-connected region reaches
    ``seed`` somewhere (scikit-image's hysteresis thresholding: a faint blob without a confident core is dropped;
    ``seed <= threshold`` keeps every region), then 26-connected components of at least ``min_size_mm3``."""
    threshold: float = 0.5
    min_size_mm3: float = MIN_LESION_MM3
    seed: float = 0.0

    @classmethod
    def of(cls, meta: dict | None) -> "Postprocess":
        """From a bundle's ``postprocess`` metadata (absent keys: the defaults)."""
        meta = meta or {}
        return cls(float(meta.get("threshold", 0.5)), float(meta.get("min_size_mm3", MIN_LESION_MM3)),
                   float(meta.get("seed", 0.0)))

    def with_(self, threshold: float | None = None, min_size_mm3: float | None = None) -> "Postprocess":
        """This post-processing with the threshold and/or smallest lesion a user asked for."""
        return replace(self, **{k: v for k, v in (("threshold", threshold), ("min_size_mm3", min_size_mm3))
                                if v is not None})

    def apply(self, prob: Volume) -> Volume:
        """The lesion mask (uint8) of ``prob``."""
        a = np.asarray(prob.array)
        if self.seed > self.threshold:
            mask = apply_hysteresis_threshold(a, self.threshold, self.seed)
        else:
            mask = a >= self.threshold
        return prob.with_array(remove_small(mask, _min_voxels(prob, self.min_size_mm3)).astype(np.uint8))


def bundle_postprocess(b: "Bundle") -> Postprocess:
    """The post-processing that the bundle declares (chosen on validation phantoms by
    `orbitai.neuro.lesionseg_eval`); threshold 0.5, ``MIN_LESION_MM3`` and no seed for a bundle without."""
    return Postprocess.of(b.metadata.get("postprocess"))


def postprocess(prob: Volume, threshold: float = 0.5, min_size_mm3: float = MIN_LESION_MM3) -> Volume:
    """Lesion mask (uint8) of a probability map: ``prob >= threshold``, components of at least
    ``min_size_mm3`` (:class:`Postprocess` without a seed)."""
    return Postprocess(threshold, min_size_mm3).apply(prob)


def lesion_probability(flair: Volume, brain: Volume, model: "torch.nn.Module",
                       device: "str | torch.device" = "cpu", mirror: bool = True,
                       progress: ProgressCallback | None = None, batch_slices: int = 8) -> Volume:
    """Lesion probability (float32 [0, 1]) on the FLAIR's grid, 0 outside the brain mask.

    ``batch_slices``: axial slices per network call (per window): 8, as many as MONAI's
    ``sliding_window_inference`` with ``sw_batch_size=8`` gave it (the same numbers, measured on the real
    case); 24 at once ran slower on the CPU."""
    b = check_pair(flair, brain)
    med, mad = brain_stats(np.asarray(flair.array, np.float32)[b])
    if mad <= 0:
        raise InputError("The FLAIR is constant inside the brain mask: no image to segment.")
    z = normalise(flair.array, b, med, mad)
    ref = model_grid(flair, b)
    zi = flair.with_array(z).to_sitk()
    zg = sitk.GetArrayFromImage(sitk.Resample(zi, ref, sitk.Transform(), sitk.sitkLinear, Z_FLOOR, sitk.sitkFloat32))
    bi = flair.with_array(b.astype(np.float32)).to_sitk()
    bg = sitk.GetArrayFromImage(sitk.Resample(bi, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)) > 0.5
    zg = np.where(bg, zg, np.float32(Z_FLOOR)).astype(np.float32)
    depth = zg.shape[0]
    offsets = np.array(CONTEXT)
    prob = np.zeros(zg.shape, np.float32)
    dev = torch.device(device)
    model = model.to(dev).eval()
    starts = list(range(0, depth, batch_slices))
    with torch.no_grad():
        for n, s in enumerate(starts):
            ks = np.arange(s, min(s + batch_slices, depth))
            rows = np.clip(ks[:, None] + offsets[None, :], 0, depth - 1)
            x = torch.from_numpy(zg[rows]).to(dev)                  # [B, C, H, W]: B slices, C context
            logits = blend_windows(x, WINDOW_ROI, model, WINDOW_OVERLAP, "gaussian")
            if mirror:
                flipped = blend_windows(torch.flip(x, dims=[3]), WINDOW_ROI, model, WINDOW_OVERLAP, "gaussian")
                logits = 0.5 * (logits + torch.flip(flipped, dims=[3]))
            prob[ks] = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
            if progress is not None:
                progress(n + 1, len(starts), "lesion segmentation")
    prob[~bg] = 0.0
    pimg = sitk.GetImageFromArray(prob)
    pimg.CopyInformation(ref)
    back = sitk.Resample(pimg, flair.with_array(np.zeros(flair.shape, np.uint8)).to_sitk(), sitk.Transform(),
                         sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    out = np.clip(sitk.GetArrayFromImage(back), 0.0, 1.0)
    return flair.with_array(np.where(b, out, 0.0).astype(np.float32))


def segment_lesions(flair: Volume, brain: Volume, bundle: str | None = None, device: str = "auto",
                    progress: ProgressCallback | None = None, threshold: float | None = None,
                    min_size_mm3: float | None = None, mirror: bool = True) -> Volume:
    """White-matter lesion mask (uint8, 1 = lesion) on the FLAIR's grid.

    ``brain``: the intracranial mask on the FLAIR grid (``image > 0`` for skull-stripped input,
    else `orbitai.neuro.anatomy.extract_brain`). ``bundle``: a bundle name or folder (default
    ``neuro_lesion_unet_demo``). ``threshold`` / ``min_size_mm3``: default, the bundle's own
    (:func:`bundle_postprocess`, with its seed)."""
    check_pair(flair, brain)
    dev = select_device(device)
    b = lesion_bundle(bundle)
    return segment_with(b, b.load_model(dev), flair, brain, dev, progress, threshold, min_size_mm3, mirror)


def segment_with(bundle: "Bundle", model: "torch.nn.Module", flair: Volume, brain: Volume,
                 device: "str | torch.device" = "cpu", progress: ProgressCallback | None = None,
                 threshold: float | None = None, min_size_mm3: float | None = None, mirror: bool = True) -> Volume:
    """:func:`segment_lesions` with the lesion ``bundle``'s network ``model`` loaded on ``device`` already (a
    predictor's, loaded once for every case)."""
    t0 = time.perf_counter()
    prob = lesion_probability(flair, brain, model, device, mirror=mirror, progress=progress)
    mask = lesion_mask(bundle, prob, flair, brain, threshold, min_size_mm3)
    log.info("lesion segmentation: %d voxels in %.1f s", int(mask.array.sum()), time.perf_counter() - t0)
    return mask


def lesion_mask(bundle: "Bundle", prob: Volume, flair: Volume, brain: Volume, threshold: float | None = None,
                min_size_mm3: float | None = None, second_look: bool = True) -> Volume:
    """The lesion mask of the network's probability ``prob`` as the ``bundle`` reads it: with its learned second
    look when it has one (issue 79) and the caller neither set a threshold nor a smallest lesion nor switched it off
    (``second_look``), else its post-processing and the false-positive rules."""
    b = check_pair(flair, brain)
    look = SecondLook.of_bundle(bundle) if second_look and threshold is None and min_size_mm3 is None else None
    if look is not None:
        # issue 79: candidates at a low threshold, each kept or dropped by the bundle's learned second look
        kept_mask, dropped = look.apply(prob, flair, b)
        mask = prob.with_array(kept_mask.astype(np.uint8))
        mask.metadata[DROPPED_KEY] = dropped_json(dropped)
        return mask
    mask = bundle_postprocess(bundle).with_(threshold, min_size_mm3).apply(prob)
    # issue #65: the false-positive rules of orbitai.neuro.lesion_rules (DEFAULT_RULES, chosen on selection phantoms:
    # specks < 20 mm3 of mean probability < 0.8; on the held-out light phantoms lesion F1 0.382 -> 0.385, false
    # components per case median 15.5 -> 15.5, no true lesion lost; patient26 unchanged: F1 0.31, Dice 0.76;
    # benchmarks/results/lesion_false_positives.json); where no rule fires the mask is unchanged
    kept, removed = apply_rules(mask.array > 0, prob.array, flair.array, b, flair.spacing, DEFAULT_RULES,
                                flair.direction)
    if removed:
        mask = mask.with_array(kept.astype(np.uint8))
        mask.metadata[REMOVED_KEY] = json.dumps(removed)
    return mask
