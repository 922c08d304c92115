"""MindGrab: brainchop's any-modality brain extraction (a MeshNet), ported to PyTorch (issue 65).

Source: ``neuroneural/brainchop`` at commit 4c87885, ``public/models/mindgrab/`` (MIT licence, notice in the
bundle folder ``orbitai/resources/models/mindgrab_meshnet``; converted by ``scripts/convert_mindgrab.py``).

The network (its ``model.json``): 25 dilated 3x3x3 convolutions of 15 channels without bias (dilations 16, 8, 4,
2, 1, five times), each followed, as brainchop's ``inference-logic.js`` does for layers named ``*_gn``, by a
normalisation of each channel over the volume (``LayerNormInPlace``: mean/variance over the three spatial axes,
epsilon 1e-5, no affine) and a GELU (tfjs ``gelu``: exact, erf); then a 1x1x1 convolution to 2 classes
(background, brain) and an argmax.

Preprocessing as brainchop does it: the image is conformed (niivue ``conform``, FastSurfer's conform: 256^3 at
1 mm, LIA orientation, trilinear, values scaled to 0-255 from the minimum to the 99.9th percentile and clipped);
min-max scaled to [0, 1]; cropped to the box of voxels above 0.5 (``autoThreshold``) with 20 voxels' margin;
the axes are reversed (``enableTranspose``). The label is put back into the 256^3 volume, its largest
26-connected component kept (brainchop's post-processing), and resampled onto the input's grid (linear
interpolation of the mask, >= 0.5).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage as ndi
from torch import nn
from torch.nn import functional as F

from orbitai.bundle.models import find_task_bundle
from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.scan.features import why_no_head

if TYPE_CHECKING:
    from orbitai.bundle.core import Bundle

BUNDLE = "mindgrab_meshnet"
#: the dilations of the 25 convolutions (model.json)
DILATIONS = (16, 8, 4, 2, 1) * 5
CHANNELS = 15
CONFORM_SIZE = 256
#: brainchop's model entry for MindGrab (brainchop-parameters.js, id 16)
AUTO_THRESHOLD = 0.5
CROP_PADDING = 20
#: the conformed image's values: 0 at the minimum, 255 at this quantile (FastSurfer getscale, f_high)
HIGH_QUANTILE = 0.999
#: LIA in LPS terms: the i, j, k axes point Left, Inferior, Anterior (direction matrix, columns = axes)
LIA_DIRECTION = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -1.0, 0.0)


class MeshNet(nn.Module):
    """MindGrab's MeshNet: dilated 3D convolutions, per-channel volume normalisation, GELU; 2 output classes."""

    def __init__(self, channels: int = CHANNELS, dilations: tuple[int, ...] = DILATIONS, classes: int = 2) -> None:
        super().__init__()
        convs = []
        c_in = 1
        for d in dilations:
            convs.append(nn.Conv3d(c_in, channels, 3, padding=d, dilation=d, bias=False))
            c_in = channels
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv3d(channels, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.gelu(F.instance_norm(conv(x), eps=1e-5))
        return self.out(x)


def mindgrab_meshnet(channels: int = CHANNELS, dilations: "list[int] | tuple[int, ...]" = DILATIONS,
                     classes: int = 2) -> MeshNet:
    """The bundle's architecture (``orbitai.models.build_model`` name ``mindgrab_meshnet``)."""
    return MeshNet(channels, tuple(dilations), classes)


def conform(img: sitk.Image) -> sitk.Image:
    """``img`` on brainchop's 256^3 1 mm LIA grid centred on the image's centre, values scaled to uint8 0-255."""
    img = sitk.Cast(img, sitk.sitkFloat32)
    a = sitk.GetArrayViewFromImage(img)
    lo = float(a.min())
    hi = float(np.quantile(a, HIGH_QUANTILE))
    if not hi > lo:
        hi = float(a.max())
    if not hi > lo:
        raise InputError("The image is constant: there is no head to extract a brain from.")
    centre = img.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in img.GetSize()])
    d = np.array(LIA_DIRECTION).reshape(3, 3)
    origin = np.array(centre) - d @ np.full(3, (CONFORM_SIZE - 1) / 2.0)
    out = sitk.Resample(img, [CONFORM_SIZE] * 3, sitk.Transform(), sitk.sitkLinear, origin.tolist(), (1.0,) * 3,
                        LIA_DIRECTION, lo, sitk.sitkFloat32)
    scaled = np.clip((sitk.GetArrayFromImage(out) - lo) * (255.0 / (hi - lo)), 0, 255)
    res = sitk.GetImageFromArray(np.rint(scaled).astype(np.uint8))
    res.CopyInformation(out)
    return res


def _crop_box(mask: np.ndarray, pad: int) -> tuple[slice, ...]:
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return tuple(slice(0, n) for n in mask.shape)
    return tuple(slice(max(0, int(i.min()) - pad), min(n, int(i.max()) + pad + 1)) for i, n in zip(idx, mask.shape))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    if n <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


@torch.no_grad()
def conformed_mask(conformed: sitk.Image, model: nn.Module, bfloat16: bool = False) -> np.ndarray:
    """MindGrab's brain label (bool, SimpleITK array order) of a conformed uint8 image. ``bfloat16``: the
    convolutions in bfloat16 (CPU autocast; about half the time on a CPU with AVX512-BF16, a few voxels in
    10^5 differ: `benchmarks/results/brain_mask.json`)."""
    a = sitk.GetArrayFromImage(conformed).astype(np.float32)
    a = (a - a.min()) / max(float(a.max() - a.min()), 1e-6)
    box = _crop_box(a > AUTO_THRESHOLD * a.max(), CROP_PADDING)
    x = torch.from_numpy(np.ascontiguousarray(a[box].transpose(2, 1, 0)))[None, None]
    p = next(model.parameters())
    with torch.autocast(p.device.type, dtype=torch.bfloat16, enabled=bfloat16):
        logits = model(x.to(device=p.device, dtype=p.dtype))
    label = (logits.argmax(1)[0] > 0).cpu().numpy().transpose(2, 1, 0)
    full = np.zeros(a.shape, bool)
    full[box] = label
    return _largest_component(full)


def load_mindgrab(bundle: str | None = None, device: "str | torch.device" = "cpu") -> nn.Module:
    """MindGrab's network from its bundle (checksum verified before the weights load)."""
    return mindgrab_bundle(bundle).load_model(device)


def mindgrab_bundle(bundle: str | None = None) -> "Bundle":
    """MindGrab's bundle (a ``brain_extraction`` bundle of that name or folder)."""
    return find_task_bundle(bundle or BUNDLE, "brain_extraction", "a brain extraction model")


#: A brain MindGrab finds (mL): an adult's is 900-1700, a child's from ~400 (a cut one less); outside, no brain was
#: found. A mask filling more than ``MAX_BRAIN_SHARE`` of the field of view is no brain either (a brain cropped tight
#: fills half of its box: an ellipsoid is 52 % of it).
BRAIN_ML = (200.0, 3000.0)
MAX_BRAIN_SHARE = 0.8


def mindgrab_brain_mask(image: Volume, model: nn.Module, bfloat16: bool = False) -> Volume:
    """MindGrab's brain mask (uint8, 1 = brain) of a head or brain MR/CT image, on the image's own grid
    (``bfloat16``: see `conformed_mask`). One-line `InputError` before the network runs for an image that cannot hold
    a head (too small, or noise: `orbitai.scan.features.why_no_head`), and after it when what it found is no brain
    (outside :data:`BRAIN_ML`, or more than :data:`MAX_BRAIN_SHARE` of the image)."""
    arr = np.asarray(image.array)
    if arr.ndim != 3 or not np.all(np.isfinite(arr)):
        raise InputError("The image must be a 3D volume of finite values to extract the brain.")
    if float(arr.max()) <= float(arr.min()):
        raise InputError("The image is constant: there is no head to extract a brain from.")
    why = why_no_head(image)
    if why:
        raise InputError(f"No head to extract a brain from: {why}; load a head or brain MR/CT image.")
    src = image.to_sitk()
    conf = conform(src)
    label = conformed_mask(conf, model, bfloat16)
    lab = sitk.GetImageFromArray(label.astype(np.float32))
    lab.CopyInformation(conf)
    back = sitk.Resample(lab, src, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    mask = (sitk.GetArrayFromImage(back) >= 0.5).astype(np.uint8)
    ml = float(mask.sum()) * image.voxel_volume_mm3() * 1e-3
    share = float(mask.mean())
    if not BRAIN_ML[0] <= ml <= BRAIN_ML[1] or share > MAX_BRAIN_SHARE:
        raise InputError(f"No brain found: MindGrab's mask holds {ml:.0f} mL, {100 * share:.0f} % of the image (a brain "
                         f"is {BRAIN_ML[0]:.0f}-{BRAIN_ML[1]:.0f} mL, at most {100 * MAX_BRAIN_SHARE:.0f} % of it); "
                         "load a head or brain MR/CT image.")
    return image.with_array(mask)


#: Below this Dice between the pipeline's brain mask and MindGrab's, the two disagree grossly (the raw clinical
#: FLAIRs of the benchmark agree at 0.95 or more: `benchmarks/results/brain_mask.json`)
CHECK_MIN_DICE = 0.85


def mask_agreement(brain: Volume, mindgrab: Volume) -> tuple[float, float]:
    """(Dice, MindGrab brain outside ``brain`` in mL) of two masks on the same grid."""
    if not brain.same_geometry(mindgrab):
        raise InputError("The two brain masks are not on the same grid; resample one onto the other first.")
    a, b = np.asarray(brain.array) > 0, np.asarray(mindgrab.array) > 0
    s = int(a.sum()) + int(b.sum())
    dice = 2.0 * float(np.logical_and(a, b).sum()) / s if s else 1.0
    return dice, float((b & ~a).sum()) * brain.voxel_volume_mm3() * 1e-3


def check_brain_mask(brain: Volume, mindgrab: Volume, min_dice: float = CHECK_MIN_DICE) -> str | None:
    """A one-sentence warning when the pipeline's brain mask and MindGrab's disagree grossly, else None."""
    dice, outside = mask_agreement(brain, mindgrab)
    if dice >= min_dice:
        return None
    return (f"The brain mask and MindGrab's disagree (Dice {dice:.2f} < {min_dice:.2f}; {outside:.0f} mL of "
            "MindGrab's brain lie outside the mask): check the brain extraction before trusting the lesions.")
