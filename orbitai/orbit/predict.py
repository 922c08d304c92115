"""What `orbitai.orbit.predictor.OrbitPredictor` keeps and reads besides the skeleton of `orbitai.predictor`: the
segmentation models a run needs (`ModelCache`), the typed options of ``seg predict`` (`SegOptions`) and what one run
of the network made (`SegRun`). Light to import (no torch): ``seg evaluate``'s scoring is read on the Slicer side."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.orbit.anatomy import DEFAULT_POPULATION, checked_range
from orbitai.orbit.models import load_seg_model

if TYPE_CHECKING:
    from orbitai.orbit.segment import SegResult

__all__ = ["ModelCache", "PriorRun", "SegOptions", "SegRun"]


class ModelCache:
    """The segmentation models a run needs, each loaded once: the one named by --model, or the
    bundled default of each modality met (a batch mixing CT and MRI loads both)."""

    def __init__(self, name: str | None, device) -> None:
        self.name, self.device = name, device
        self.loaded: dict[bool | None, tuple] = {}

    def get(self, is_ct: bool) -> tuple:
        key = None if self.name else is_ct
        if key not in self.loaded:
            self.loaded[key] = load_seg_model(self.name, is_ct, self.device)
        return self.loaded[key]


@dataclass(frozen=True)
class SegOptions:
    """The options that decide one segmentation besides the model and the image (``seg predict``'s)."""

    window: str = "overlap"                  # the sliding window: overlap or step1
    mirror: bool = True                      # averaged with the left-right mirrored scan
    uncertainty: bool = False                # write the uncertainty map
    labelmap: bool = False                   # write a plain label map too
    population: str = DEFAULT_POPULATION     # whose volume ranges the checks use (ted or healthy)
    modality: Optional[str] = None           # what the user says the scan is (``--modality``)
    prior: bool = False                      # the network's class probabilities (the annotation tools' model prior)

    def __post_init__(self) -> None:
        checked_range("eyeball", self.population)       # an unknown population: one line before any work

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> "SegOptions":
        """From a command's options as `orbitai.orbit.cli.predict_options` names them."""
        return cls(options.get("window") or "overlap", bool(options.get("mirror", True)),
                   bool(options.get("uncertainty")), bool(options.get("labelmap")),
                   options.get("population") or DEFAULT_POPULATION, options.get("modality"))


@dataclass
class SegRun:
    """What `OrbitPredictor.run` made of one scan: the segmentation and the model that made it."""

    seg: "SegResult"
    bundle: Any
    spec: Any


@dataclass
class PriorRun:
    """What `OrbitPredictor.run` made of one scan when asked for the prior (`SegOptions.prior`): the network's class
    probabilities on its grid and the midline between its eyeballs (`orbitai.orbit.prior.ModelPrior` is made of it)."""

    bundle: str
    structures: tuple[str, ...]
    probs: Any                  # (C + 1, k, j, i) on ``grid``, background first
    grid: Any                   # a SimpleITK image
    midline_x: Optional[float]  # LPS x between the network's two eyeballs (None: not two found)
