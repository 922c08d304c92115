"""Named IVGC deep-learning configurations: the paper's recipe (paper 001) and the phantom demos,
for ResNet-50, RDINet and RDINet (clinical).

Paper: PyTorch, Adam, lr 1e-3 fixed, 100 epochs, batch 16, 128 x 128 x 32 input, online random
noise / rotation / scaling, 5-fold cross-validation in the training cohort, 4:1 stratified split
into training and test cohorts (117/30). No weight decay is reported, so none is used.

Demo: the same recipe at ResNet width 1/8 (stage widths 8-16-32-64 instead of 64-128-256-512),
sized so that each model trains on two CPU cores in at most 30 minutes (see ``DEMO_EPOCHS``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import torch

from orbitai.classify.train import TrainSettings
from orbitai.errors import ConfigError
from orbitai.ivgc.data import TARGET_SHAPE, AugmentSpec
from orbitai.ivgc.kinds import DEEP_KINDS
from orbitai.ivgc.nets import DEMO_WIDTH, PAPER_WIDTH
from orbitai.models import build_model

#: The three deep models of paper 001's Table 2.
MODELS: tuple[str, ...] = DEEP_KINDS
#: Number of clinical features RDINet (clinical) takes (:data:`orbitai.cohort.clinical.IVGC_CLINICAL`).
N_CLINICAL = 16
#: Demo schedule, sized from a measurement on 60 phantom cases at width 1/8, 128 x 128 x 32, batch 16,
#: with augmentation and the per-case preprocessing cache (``IvgcImageDataset(cache_dir=...)``), one
#: torch thread, nice 10, on two CPU cores shared with other jobs (load average 7-10): an epoch took
#: 13.3 s (ResNet-50), 11.6 s (RDINet) and 13.2 s (RDINet clinical) once cached, 15-54 s for the
#: first, uncached epoch; about 0.22 s per case and epoch (at load average 3-4: 6.3-6.8 s per
#: RDINet (clinical) epoch with roi_only, 0.11 s per case). 50 epochs over a 120-case training
#: cohort are about 22 minutes. With two torch threads on the same loaded machine the first
#: ResNet-50 epoch took 147 s (OpenMP threads waiting on each other), so train with one thread
#: when the cores are shared.
DEMO_EPOCHS = 50


def _settings(epochs: int) -> TrainSettings:
    """Adam at a fixed lr 1e-3 (``decay_epoch`` = ``epochs``: no decay), batch 16, no weight decay."""
    return TrainSettings(epochs=epochs, lr=1e-3, lr_after=1e-3, decay_epoch=epochs, batch_size=16,
                         conv_weight_decay=0.0, fc_weight_decay=0.0)


@dataclass(frozen=True)
class IvgcConfig:
    name: str
    model: str                 # one of MODELS
    width: float               # ResNet-50 widen_factor (1.0 = the paper's network)
    settings: TrainSettings
    description: str
    folds: int = 5             # cross-validation folds in the training cohort
    test_fraction: float = 0.2  # 4:1 stratified split into training and test cohorts
    shape: tuple[int, int, int] = TARGET_SHAPE
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    dim: int = 64              # RDINet: width of z and of the dynamic mapping (W is dim x dim)
    #: The network sees the ROI's muscles alone (``orbitai.ivgc.data.preprocess(roi_only=True)``): our
    #: reading of the paper's four steps "region segmentation, region image cropping, slice image
    #: selection and intensity normalization". Measured on phantoms (demo ResNet-50, 30 epochs on 60
    #: cases, tested on 40 others, one thread): AUC 0.80 (95 % CI 0.65-0.94) with it, 0.32 with the
    #: whole bounding box, whose training loss fell while the held-out accuracy stayed near chance.
    roi_only: bool = True
    seed: int = 0              # the holdout or folds, the initial weights, the batches and the augmentation

    def for_run(self, seed: int = 0, epochs: Optional[int] = None, holdout: Optional[float] = None) -> IvgcConfig:
        """This recipe as one training runs it: with ``seed``, ``epochs`` (None: the configuration's; a fixed
        learning rate over them, as the paper's) and ``holdout``, the share of the cases held out for the bundle's
        metrics (None: ``test_fraction``)."""
        settings = self.settings if epochs is None else replace(self.settings, epochs=epochs, decay_epoch=epochs)
        return replace(self, seed=seed, settings=settings,
                       test_fraction=self.test_fraction if holdout is None else holdout)

    @property
    def arch(self) -> str:
        """Registered architecture name (:mod:`orbitai.models`)."""
        return "ivgc_resnet50" if self.model == "resnet50" else "ivgc_rdinet"

    @property
    def uses_radiomics(self) -> bool:
        return self.model != "resnet50"

    @property
    def uses_clinical(self) -> bool:
        return self.model == "rdinet_clinical"

    def architecture(self, n_radiomics: int = 0) -> dict[str, Any]:
        """The bundle's ``architecture`` block: registered name and keyword arguments."""
        if not self.uses_radiomics:
            return {"name": self.arch, "args": {"width": self.width}}
        if n_radiomics < 1:
            raise ConfigError(f"Configuration {self.name!r} ({self.model}) needs the selected radiomics "
                              "features; none were given.")
        return {"name": self.arch, "args": {"n_radiomics": int(n_radiomics),
                                            "n_clinical": N_CLINICAL if self.uses_clinical else 0,
                                            "width": self.width, "dim": self.dim}}

    def build(self, n_radiomics: int = 0) -> torch.nn.Module:
        """A freshly initialised network of this configuration."""
        arch = self.architecture(n_radiomics)
        return build_model(arch["name"], **arch["args"])


_LABEL = {"resnet50": "ResNet-50", "rdinet": "RDINet", "rdinet_clinical": "RDINet (clinical)"}

CONFIGS: dict[str, IvgcConfig] = {c.name: c for c in [
    *(IvgcConfig(f"paper-{m.replace('_', '-')}", m, PAPER_WIDTH, _settings(100),
                 f"paper 001 {_LABEL[m]}: full-width ResNet-50, Adam lr 1e-3, 100 epochs, batch 16, "
                 "noise/rotation/scaling augmentation, 5-fold CV, 4:1 stratified split") for m in MODELS),
    *(IvgcConfig(f"demo-{m.replace('_', '-')}", m, DEMO_WIDTH, _settings(DEMO_EPOCHS),
                 f"phantom demo {_LABEL[m]}: ResNet-50 at width 1/8, the paper's recipe for {DEMO_EPOCHS} epochs "
                 "(<= 30 min on 2 CPU cores)") for m in MODELS),
]}


def get_config(name: str) -> IvgcConfig:
    """A configuration by name (``paper-rdinet``, ``demo-rdinet-clinical``; ``_`` and ``-`` alike)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in CONFIGS:
        raise ConfigError(f"Unknown IVGC configuration {name!r}; known: {', '.join(CONFIGS)}.")
    return CONFIGS[key]
