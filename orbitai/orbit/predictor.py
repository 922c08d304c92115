"""`OrbitPredictor`: the orbit segmentation predictor (task ``seg``) that every front end calls for one case: the
command line (``orbitai seg predict``, one image or each case of a cohort, serial or on a Dask worker), and through
it the warm worker, the Logic's child, the Slicer module and the browser."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.orbit.predict import ModelCache, predict
from orbitai.orbit.result import SegmentationResult
from orbitai.predictor import Predictor

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback
    from orbitai.scan import ScanFacts

__all__ = ["OrbitPredictor"]


class OrbitPredictor(Predictor):
    """The segmentation model(s) on a device: the one ``--model`` names, or the bundled default of each modality
    met (a batch mixing CT and MRI loads both), each loaded once for every case this predictor segments.

    ``predict(inputs={"image": path}, out, options)``: ``options`` are ``window`` (overlap or step1), ``mirror``,
    ``uncertainty``, ``labelmap`` and ``modality`` (the ``--modality`` value), as `orbitai.orbit.predict.predict`
    reads them."""

    task = "seg"

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self.models = ModelCache(model, self.device)

    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Mapping[str, Any],
                facts: "Optional[ScanFacts]" = None,
                progress: "Optional[ProgressCallback]" = None) -> SegmentationResult:
        return predict(inputs["image"], out, self.models, options, facts=facts, progress=progress, stamp=self.stamp)
