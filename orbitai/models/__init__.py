"""Network architectures, built by name through one registry (used by model bundles).

A module defining a network decorates its factory with ``@register("name")``; bundles
store that name and the factory's keyword arguments in ``metadata.json``.
"""
from __future__ import annotations

import importlib
from typing import Callable

import torch

_REGISTRY: dict[str, Callable[..., torch.nn.Module]] = {}
#: Modules imported on first use so that their @register decorators run.
_ARCH_MODULES = ("orbitai.models.svnet", "orbitai.models.sequnet", "orbitai.models.volume_wrappers",
                 "orbitai.models.tao_nets", "orbitai.models.ivgc_nets", "orbitai.models.neuro_nets",
                 "orbitai.models.lesion_unet", "orbitai.models.simple")


def register(name: str):
    def deco(factory):
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ValueError(f"Architecture {name!r} registered twice.")
        _REGISTRY[name] = factory
        return factory
    return deco


def _load_all(until: str | None = None) -> None:
    """Import the architecture modules in order, stopping once ``until`` is registered: building an
    SV-net imports svnet alone, not the modules (and heavy packages) of the other networks."""
    for mod in _ARCH_MODULES:
        if until is not None and until in _REGISTRY:
            return
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if not (exc.name and (mod == exc.name or mod.startswith(exc.name + "."))):
                raise


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def build_model(name: str, **kwargs) -> torch.nn.Module:
    _load_all(until=name)
    if name not in _REGISTRY:
        raise KeyError(f"Unknown architecture {name!r}; known: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name](**kwargs)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
