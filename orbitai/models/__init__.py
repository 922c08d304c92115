"""Network architectures, built by name through one registry (used by model bundles).

`ARCHITECTURES` names each network and the module whose function of that name builds it; bundles store the name and
the function's keyword arguments in ``metadata.json``.
"""
from __future__ import annotations

import importlib
from typing import Callable

import torch

#: Every architecture a bundle can name -> the module that defines it, as a function of that name taking the
#: bundle's keyword arguments. Only the module of the network asked for is imported (and its packages).
ARCHITECTURES: dict[str, str] = {
    "svnet": "orbitai.models.svnet", "sunet": "orbitai.models.svnet", "vnet": "orbitai.models.svnet",
    "sequnet": "orbitai.models.sequnet",
    "sunet_volume": "orbitai.models.volume_wrappers", "sequnet_volume": "orbitai.models.volume_wrappers",
    "tao_network_a": "orbitai.models.tao_nets", "tao_network_b": "orbitai.models.tao_nets",
    "ivgc_resnet50": "orbitai.models.ivgc_nets", "ivgc_rdinet": "orbitai.models.ivgc_nets",
    "neuro_twoview": "orbitai.models.neuro_nets", "neuro_resnet3d": "orbitai.models.neuro_nets",
    "neuro_lesion_unet25d": "orbitai.models.lesion_unet",
    "tiny_conv3d": "orbitai.models.simple",
}


def available() -> list[str]:
    return sorted(ARCHITECTURES)


def factory(name: str) -> Callable[..., torch.nn.Module]:
    """The function building architecture ``name`` (`ARCHITECTURES`)."""
    if name not in ARCHITECTURES:
        raise KeyError(f"Unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return getattr(importlib.import_module(ARCHITECTURES[name]), name)


def build_model(name: str, **kwargs) -> torch.nn.Module:
    return factory(name)(**kwargs)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
