"""Grad-CAM (Selvaraju et al. 2017) through captum's LayerGradCam, upsampled to the input grid."""
from __future__ import annotations

import numpy as np
import torch


def grad_cam(model: torch.nn.Module, x: torch.Tensor, target: int, layer: torch.nn.Module) -> np.ndarray:
    """Non-negative Grad-CAM of class ``target`` at ``layer`` for one input (1, C, ...), upsampled to
    the input's spatial shape and scaled to [0, 1] (all zeros when no location supports the class)."""
    from captum.attr import LayerAttribution, LayerGradCam

    if x.shape[0] != 1:
        raise ValueError(f"Expected one input (batch of 1), got a batch of {x.shape[0]}.")
    was = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        cam = LayerGradCam(model, layer).attribute(x, target=int(target), relu_attributions=True)
        mode = "bilinear" if x.ndim == 4 else "trilinear"
        up = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode=mode)
    finally:
        model.train(was)
    a = up[0, 0].detach().cpu().numpy().astype(np.float32)
    a = np.clip(a, 0, None)
    peak = float(a.max())
    return a / peak if peak > 0 else a
