"""NMOSD-vs-MS networks of paper 003: the two-view compression network and the 3D ResNet baselines.

**TwoViewNet** (paper's Figure 3 and Eq. 3-4). Input (B, 1, D, H, W), D = H = W = 100, axes in the
canonical orientation of :mod:`orbitai.neuro.data` (superior, posterior, left). A compression
block "changes one axis of 3D data to a channel": the volume is read as a 2D image whose channels
are the 100 slices along that axis, and a Conv2d(100 -> 32, kernel 7, stride 3) + BN + ReLU
extracts each view's features (32 x 32 x 32: (100 - 7) // 3 + 1 = 32). View 0 takes the
superior axis as channels (axial slices), view 1 the posterior axis (coronal slices); the paper
does not say which two axes, ``views`` chooses. The two outputs are concatenated along channels
(64 x 32 x 32) and fed to a 2D ResNet-18/34 whose first convolution takes 64 channels, with
dropout 0.15 before the final fully connected layer, 2 classes.

The 2D ResNet is MONAI's (``spatial_dims=2``, stride-2 7x7 stem, 3x3 max-pool, downsampling
convolutions without bias): the same layers and parameter names as torchvision's resnet18/34
(11,689,512 / 21,797,672 parameters at 3 channels, 1000 classes), so a torchvision ImageNet
state dict loads into it (:func:`load_imagenet`) without torchvision installed.

**resnet3d**: MONAI's 3D ResNet-18/34, one input channel, 2 classes, stride-2 stem (MONAI's
stride-1 default comes from video networks and would run the 7x7x7 stem at the full 100^3).

``width`` (MONAI's ``widen_factor``) 1.0 is the paper's network; the demo configurations in
:mod:`orbitai.neuro.configs` may narrow it to train on two CPU cores.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, cast

import torch
from monai.networks.nets import resnet18, resnet34
from torch import nn

from orbitai.errors import InputError
from orbitai.io.checksums import sha256_file

N_CLASSES = 2
IN_SIZE = 100
COMPRESS_CHANNELS = 32
COMPRESS_KERNEL = 7
COMPRESS_STRIDE = 3
DROPOUT = 0.15
DEPTHS = (18, 34)


def _check_depth(depth: int) -> None:
    if depth not in DEPTHS:
        raise InputError(f"depth must be 18 or 34, got {depth!r}.")


def _check_width(width: float) -> None:
    if not (isinstance(width, (int, float)) and int(64 * width) >= 4):
        raise InputError(f"width must be at least 1/16 (stage widths of 4 channels or more), got {width!r}.")


class CompressionBlock(nn.Module):
    """One view: the slices along ``axis`` (1, 2 or 3 of a (B, 1, D, H, W) input) become the channels
    of a Conv2d(in_size -> 32, kernel 7, stride 3) + BN + ReLU."""

    def __init__(self, axis: int, in_size: int = IN_SIZE, out_channels: int = COMPRESS_CHANNELS):
        super().__init__()
        if axis not in (1, 2, 3):
            raise InputError(f"A view's axis must be 1, 2 or 3 (D, H or W of the volume), got {axis!r}.")
        self.axis = axis
        self.conv = nn.Conv2d(in_size, out_channels, COMPRESS_KERNEL, stride=COMPRESS_STRIDE, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, 0]                                   # (B, D, H, W)
        v = v.movedim(self.axis, 1)                   # the chosen axis first: the channels
        return cast(torch.Tensor, self.act(self.bn(self.conv(v))))


def resnet2d(depth: int, in_channels: int, width: float = 1.0, n_classes: int = N_CLASSES) -> nn.Module:
    """MONAI's 2D ResNet-18/34 with torchvision's layout (stride-2 stem, no downsample bias)."""
    _check_depth(depth)
    _check_width(width)
    f = resnet18 if depth == 18 else resnet34
    return cast(nn.Module, f(spatial_dims=2, n_input_channels=in_channels, num_classes=n_classes,
                             conv1_t_stride=2, widen_factor=float(width), bias_downsample=False))


class TwoViewNet(nn.Module):
    """Paper 003's two-view compression network (see the module docstring)."""

    input_names: tuple[str, ...] = ("image",)

    def __init__(self, depth: int = 18, in_size: int = IN_SIZE, dropout: float = DROPOUT, width: float = 1.0,
                 views: Sequence[int] = (1, 2), n_classes: int = N_CLASSES):
        super().__init__()
        _check_depth(depth)
        if len(views) != 2 or len(set(views)) != 2:
            raise InputError(f"views must name two different axes of (1, 2, 3), got {tuple(views)!r}.")
        if in_size < COMPRESS_KERNEL:
            raise InputError(f"in_size must be at least {COMPRESS_KERNEL}, got {in_size!r}.")
        self.depth, self.in_size, self.views = depth, in_size, tuple(int(v) for v in views)
        self.compress = nn.ModuleList([CompressionBlock(a, in_size) for a in self.views])
        self.trunk = resnet2d(depth, COMPRESS_CHANNELS * len(self.views), width, n_classes)
        self.dropout = nn.Dropout(dropout)

    @property
    def cam_layer(self) -> nn.Module:
        """The last residual stage, where Grad-CAM is taken."""
        return cast(nn.Module, self.trunk.layer4)

    def stages(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output, in order (for tests and explanation)."""
        t: Any = self.trunk
        out: dict[str, torch.Tensor] = {}
        for i, block in enumerate(self.compress):
            out[f"view{i}"] = block(image)
        x = torch.cat([out[f"view{i}"] for i in range(len(self.compress))], 1)
        out["concat"] = x
        x = t.act(t.bn1(t.conv1(x)))
        out["stem"] = x
        x = t.maxpool(x)
        out["maxpool"] = x
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(t, name)(x)
            out[name] = x
        x = torch.flatten(t.avgpool(x), 1)
        out["pool"] = x
        out["logits"] = t.fc(self.dropout(x))
        return out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 5 or tuple(image.shape[1:]) != (1,) + (self.in_size,) * 3:
            raise InputError(f"TwoViewNet takes (B, 1, {self.in_size}, {self.in_size}, {self.in_size}); "
                             f"got {tuple(image.shape)}.")
        return self.stages(image)["logits"]


def resnet3d(depth: int = 18, width: float = 1.0, n_classes: int = N_CLASSES) -> nn.Module:
    """MONAI 3D ResNet-18/34 baseline: one input channel, ``n_classes`` outputs, stride-2 stem."""
    _check_depth(depth)
    _check_width(width)
    f = resnet18 if depth == 18 else resnet34
    return cast(nn.Module, f(spatial_dims=3, n_input_channels=1, num_classes=n_classes, conv1_t_stride=2,
                             widen_factor=float(width)))


def neuro_twoview(depth: int = 18, in_size: int = IN_SIZE, dropout: float = DROPOUT, width: float = 1.0,
                  views: Sequence[int] = (1, 2)) -> TwoViewNet:
    return TwoViewNet(depth, in_size, dropout, width, views)


def neuro_resnet3d(depth: int = 18, width: float = 1.0) -> nn.Module:
    return resnet3d(depth, width)


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """An RGB first-convolution weight (out, 3, k, k) for ``in_channels`` inputs: the mean over RGB,
    repeated over the C channels and scaled by 3 / C (timm's ``adapt_input_conv`` scaling; for C = 1
    it is timm's sum over RGB). A constant image then gives exactly the response of a constant RGB
    image, whatever C is, so the pretrained trunk sees activations of the scale it was trained on."""
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise InputError(f"Expected an RGB first convolution (out, 3, k, k); got {tuple(weight.shape)}.")
    if in_channels < 1:
        raise InputError(f"in_channels must be at least 1, got {in_channels!r}.")
    mean = weight.float().mean(1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1) * (3.0 / in_channels)


def load_imagenet(model: TwoViewNet, path: Optional[str | os.PathLike], sha256: Optional[str] = None) -> dict:
    """Initialise ``model``'s 2D ResNet from a LOCAL torchvision ImageNet state dict (resnet18/34).

    The file's SHA-256 must equal ``sha256`` (when given) and it is read with
    ``torch.load(weights_only=True)``. The 3-channel first convolution is mapped to the trunk's
    channel count by :func:`adapt_first_conv`; the 1000-class ``fc`` is not loaded (the 2-class head
    and the compression blocks keep their random initialisation). Without a file (``path`` None or
    missing) nothing changes and the result says the model trains from scratch."""
    if path is None or not os.path.exists(path):
        where = f" at {path}" if path is not None else ""
        return {"pretrained": False, "loaded": 0,
                "note": f"No ImageNet weights file{where}; the model trains from scratch."}

    digest = sha256_file(path)
    if sha256 is not None and digest.lower() != sha256.lower():
        raise InputError(f"The ImageNet weights file {path} has SHA-256 {digest}, expected {sha256}; "
                         "it is not the file named, give the right one.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:   # any unreadable file is the same user error
        raise InputError(f"Cannot read the ImageNet weights file {path} as a PyTorch state dict "
                         f"({type(exc).__name__}).") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise InputError(f"{path} is not a torchvision ResNet state dict (no conv1.weight).")
    own = model.trunk.state_dict()
    extra = [k for k in state if k not in own and not k.startswith("fc.")]
    if extra:
        raise InputError(f"{path} holds {len(extra)} tensors a ResNet-{model.depth} has not (e.g. {extra[0]}); "
                         f"give torchvision resnet{model.depth} weights.")
    new = {}
    for k, v in state.items():
        if k.startswith("fc.") or k not in own:
            continue
        if k == "conv1.weight":
            v = adapt_first_conv(v, own[k].shape[1])
        if tuple(v.shape) != tuple(own[k].shape):
            raise InputError(f"{path}: {k} has shape {tuple(v.shape)}, the model's is {tuple(own[k].shape)}; "
                             f"give torchvision resnet{model.depth} weights for a full-width model.")
        new[k] = v.to(own[k].dtype)
    missing = [k for k in own if k not in new and not k.startswith("fc.")]
    if missing:
        raise InputError(f"{path} lacks {len(missing)} of the trunk's tensors (e.g. {missing[0]}); give "
                         f"torchvision resnet{model.depth} weights.")
    model.trunk.load_state_dict({**own, **new})
    return {"pretrained": True, "loaded": len(new), "sha256": digest,
            "note": f"2D ResNet-{model.depth} initialised from ImageNet ({path}); first convolution mapped "
                    f"from 3 to {own['conv1.weight'].shape[1]} channels (RGB mean repeated, scaled by 3/C)."}
