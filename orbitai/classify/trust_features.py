"""The features a classifier's out-of-distribution distance is measured in (issue 51), and its logits.

The features are the mean and standard deviation over space of each channel of the Grad-CAM layer (``cam_layer``: the
last feature block, where the image's content and texture are still seen; measured on TAO Network B, noise and a T2
without fat suppression lie 6-13 from the training data there against 2-3 for a phantom, while the 16 inputs of its
last linear layer place noise as close as a phantom), or a ResNet's last stage (``layer4``), else the input of the
last linear layer. The distance itself, its threshold and the calibration: `orbitai.classify.trust`.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` (its classification layer)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear layer to take penultimate features from")
    return linears[-1]


def _feature_layer(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The layer whose pooled channels are the out-of-distribution features (see the module docstring), None when
    they are the input of the last linear layer."""
    cam = getattr(model, "cam_layer", None)
    if not isinstance(cam, torch.nn.Module):      # a ResNet without a named Grad-CAM layer: its last stage
        cam = getattr(model, "layer4", None)
    return cam if isinstance(cam, torch.nn.Module) else None


def feature_size(model: Any) -> Optional[int]:
    """How many features :func:`features_and_logits` gives for ``model``, read from its layers (twice the channels of
    the feature layer's last convolution or normalisation, else the inputs of its last linear layer); None for a
    model that is no network or whose layers do not say."""
    if not isinstance(model, torch.nn.Module):
        return None
    layer = _feature_layer(model)
    if layer is not None:
        kinds = (torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm)
        sizes = [int(getattr(m, "out_channels", 0) or getattr(m, "num_features", 0) or getattr(m, "num_channels", 0))
                 for m in layer.modules() if isinstance(m, kinds)]
        return 2 * sizes[-1] if sizes and sizes[-1] > 0 else None
    try:
        return int(last_linear(model).in_features)
    except ValueError:
        return None


def class_count(model: Any) -> Optional[int]:
    """How many classes ``model`` gives logits of (its last linear layer's outputs); None for a model that is no
    network (the radiomics SVM's two-class logits are made by `orbitai.classify.calibration.binary_logits`: 2)."""
    if not isinstance(model, torch.nn.Module):
        return 2 if hasattr(model, "predict_proba") else None
    try:
        return int(last_linear(model).out_features)
    except ValueError:
        return None


def _pooled(a: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and (population) standard deviation over the spatial axes of an (N, C, ...) activation
    (0 where the activation has one position, as a 3D ResNet's last stage may)."""
    dims = tuple(range(2, a.ndim))
    return torch.cat([a.mean(dims), a.std(dims, correction=0)], 1) if dims else a


Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]


def features_and_logits(model: torch.nn.Module, x: Inputs, device: Any = "cpu", batch: int = 32
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The features of the out-of-distribution score (see the module docstring) and the logits of ``x`` (N, ...),
    or of named inputs ``{name: (N, ...)}`` given to the model in the order of its ``input_names``, in eval mode."""
    names: Sequence[str] = tuple(getattr(model, "input_names", ("image",)))
    arrays = [x] if isinstance(x, np.ndarray) else [np.asarray(x[n]) for n in names]
    seen: list[torch.Tensor] = []
    cam = _feature_layer(model)
    if cam is not None:
        hook = cam.register_forward_hook(lambda _m, _i, out: seen.append(_pooled(out.detach())))
    else:
        hook = last_linear(model).register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach()))
    was = model.training
    model.eval()
    logits = []
    try:
        with torch.no_grad():
            for i in range(0, len(arrays[0]), batch):
                part = [torch.from_numpy(np.ascontiguousarray(a[i:i + batch], dtype=np.float32)).to(device)
                        for a in arrays]
                logits.append(model(*part).cpu())
    finally:
        hook.remove()
        model.train(was)
    feats = torch.cat([f.flatten(1).cpu() for f in seen]).double().numpy()
    return feats, torch.cat(logits).double().numpy()
