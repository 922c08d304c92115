"""Network architectures, built by name (used by model bundles).

`ARCHITECTURES` maps each network's name to the module whose function of that name builds it; bundles store the
name and the function's keyword arguments in ``metadata.json``. A task registers its own networks
(`register_architectures`) when its package is imported, as it registers its bundle rules: this package names no
task. Only the module of the network asked for is imported.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:   # torch is imported by the network modules: naming networks (a task's import) needs none
    import torch

#: Every architecture a bundle can name -> the module that defines it, as a function of that name taking the
#: bundle's keyword arguments (the shared ones here; the tasks add theirs).
ARCHITECTURES: dict[str, str] = {
    "tiny_conv3d": "orbitai.models.simple",
}


def register_architectures(modules: dict[str, str]) -> None:
    """Add a task's networks: name -> the module defining a function of that name. A name is registered once."""
    for name, module in modules.items():
        if ARCHITECTURES.get(name, module) != module:
            raise ValueError(f"Architecture {name!r} registered twice ({ARCHITECTURES[name]}, {module}).")
        ARCHITECTURES[name] = module


def available() -> list[str]:
    return sorted(ARCHITECTURES)


def factory(name: str) -> Callable[..., "torch.nn.Module"]:
    """The function building architecture ``name`` (`ARCHITECTURES`)."""
    if name not in ARCHITECTURES:
        raise KeyError(f"Unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))} (a task's networks "
                       "are known once its package, e.g. orbitai.orbit, is imported)")
    return getattr(importlib.import_module(ARCHITECTURES[name]), name)


def build_model(name: str, **kwargs) -> "torch.nn.Module":
    return factory(name)(**kwargs)


def count_parameters(model: "torch.nn.Module") -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
