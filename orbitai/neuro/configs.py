"""NeuroDifferential model configurations: the paper's (003) and a demo per architecture.

Paper recipe ("Implementation Details"): SGD, initial learning rate 0.01, "reduced by 10% every
ten steps" (lr = 0.01 x 0.9^floor(step / 10)), dropout 0.15 before the final fully connected layer,
augmentation by shifting (and flipping, "Data Processing"). The paper does not say whether a step
is an epoch or an iteration; here it is an epoch (a PyTorch ``StepLR`` stepped once per epoch, the
usual reading), ``lr_step_unit`` records it. Epochs and batch size are not given in the text: the
paper configurations use 100 epochs and batch 8 (one 1080 Ti), the demos fewer epochs and, for the
3D ResNets, a quarter of the width, so that each trains in <= 30 min on two CPU cores.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from orbitai.errors import ConfigError
from orbitai.neuro.data import DEFAULT_MODE

ARCHITECTURES: tuple[str, ...] = ("twoview18", "twoview34", "resnet3d18", "resnet3d34")


@dataclass(frozen=True)
class NeuroConfig:
    name: str
    architecture: str            # one of ARCHITECTURES (result.json "architecture")
    arch: str                    # orbitai.models registry name
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_mode: str = DEFAULT_MODE
    size: int = 100
    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.0        # the paper names plain SGD
    lr_step: int = 10            # "reduced by 10 % every ten steps"
    lr_gamma: float = 0.9
    lr_step_unit: str = "epoch"
    weight_decay: float = 0.0
    imagenet: bool = False       # initialise the 2D ResNet from a local torchvision ImageNet file
    demo: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _paper(architecture: str) -> NeuroConfig:
    depth = int(architecture[-2:])
    if architecture.startswith("twoview"):
        return NeuroConfig(name=architecture, architecture=architecture, arch="neuro_twoview",
                           kwargs={"depth": depth, "in_size": 100, "dropout": 0.15, "width": 1.0},
                           imagenet=True)
    return NeuroConfig(name=architecture, architecture=architecture, arch="neuro_resnet3d",
                       kwargs={"depth": depth, "width": 1.0})


def _demo(architecture: str) -> NeuroConfig:
    p = _paper(architecture)
    if architecture.startswith("twoview"):
        # a quarter of the 2D trunk's width keeps the bundled weights small (the phantoms sit at the ceiling
        # at any width; the full-width two-view ResNet-18 is 45 MB of weights)
        return replace(p, name=f"{architecture}-demo", epochs=15, imagenet=False, demo=True,
                       kwargs={**p.kwargs, "width": 0.25})
    # a quarter of the width and 8 epochs: 15 epochs took 30-40 min per 3D demo on two shared cores
    return replace(p, name=f"{architecture}-demo", epochs=8, kwargs={**p.kwargs, "width": 0.25}, demo=True)


CONFIGS: dict[str, NeuroConfig] = {c.name: c for a in ARCHITECTURES for c in (_paper(a), _demo(a))}


def get_config(name: str, **overrides: Any) -> NeuroConfig:
    """A configuration by name (``twoview18``, ``twoview18-demo``, ...), optionally with fields replaced."""
    if name not in CONFIGS:
        raise ConfigError(f"Unknown NeuroDifferential configuration {name!r}; choose one of "
                          f"{', '.join(CONFIGS)}.")
    try:
        return replace(CONFIGS[name], **overrides)
    except TypeError as exc:
        raise ConfigError(f"Bad override for configuration {name!r}: {exc}.") from exc
