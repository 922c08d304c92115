"""Grad-CAM of the IVGC deep models on the MRI: ResNet-50's trunk, or RDINet's image branch with the
case's radiomics (and clinical) features held fixed, at the last residual stage (``model.cam_layer``),
upsampled to the 128 x 128 x 32 input by :func:`orbitai.explain.grad_cam` and placed back on the
T2's grid through the crop (:meth:`orbitai.ivgc.data.RoiCrop.to_volume`): zero outside the ROI box."""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from orbitai.classify.data import input_names
from orbitai.errors import InputError
from orbitai.explain import grad_cam
from orbitai.io import Volume
from orbitai.ivgc.data import RoiCrop


def network_cam(model: torch.nn.Module, inputs: Mapping[str, np.ndarray | torch.Tensor], target: int = 1,
                device: str | torch.device = "cpu") -> np.ndarray:
    """Grad-CAM of class ``target`` (1 = responder) on the network's input grid, in [0, 1].
    ``inputs`` holds one case's named inputs without a batch axis (``image`` (1, D, H, W), ``radiomics``,
    ``clinical``), as :class:`orbitai.ivgc.data.IvgcImageDataset` gives them."""
    names = input_names(model)
    missing = [n for n in names if n not in inputs]
    if missing:
        raise InputError(f"The model takes inputs {list(names)}; missing {missing}.")
    layer = getattr(model, "cam_layer", None)
    if not isinstance(layer, torch.nn.Module):
        raise InputError(f"{type(model).__name__} names no Grad-CAM layer (cam_layer).")
    model.to(device)
    batch = [torch.as_tensor(np.asarray(inputs[n], dtype=np.float32))[None].to(device) for n in names]
    return grad_cam(model, batch[0], target, layer, extra_inputs=batch[1:])


def grad_cam_on_mri(model: torch.nn.Module, inputs: Mapping[str, np.ndarray | torch.Tensor], crop: RoiCrop,
                    target: int = 1, device: str | torch.device = "cpu") -> Volume:
    """:func:`network_cam` placed on the MRI's grid (same shape, spacing, origin and direction)."""
    return crop.to_volume(network_cam(model, inputs, target, device))
