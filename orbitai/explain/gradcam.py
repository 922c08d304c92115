"""Grad-CAM (Selvaraju et al. 2017) through captum's LayerGradCam, upsampled to the input grid."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam

from orbitai.errors import InputError


def grad_cam(model: torch.nn.Module, x: torch.Tensor, target: int, layer: torch.nn.Module,
             extra_inputs: Sequence[torch.Tensor] = ()) -> np.ndarray:
    """Non-negative Grad-CAM of class ``target`` at ``layer`` for one input (1, C, ...), upsampled to
    the input's spatial shape and scaled to [0, 1] (all zeros when no location supports the class).

    ``extra_inputs`` are the model's further inputs after the image (one case each, e.g. RDINet's
    radiomics and clinical vectors): the map explains the image with them held fixed."""
    if x.shape[0] != 1:
        raise InputError(f"Expected one input (batch of 1), got a batch of {x.shape[0]}.")
    if any(t.shape[0] != 1 for t in extra_inputs):
        raise InputError("Expected one case (batch of 1) in each extra input.")
    was = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        extra = tuple(t.detach() for t in extra_inputs) or None
        cam = LayerGradCam(model, layer).attribute(x, target=int(target), relu_attributions=True,
                                                   additional_forward_args=extra)
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
    finally:
        model.train(was)
    a = up[0, 0].detach().cpu().numpy().astype(np.float32)
    a = np.clip(a, 0, None)
    peak = float(a.max())
    return a / peak if peak > 0 else a
