"""One predictor per task: what every front end calls to predict one case.

nnU-Net v2 has one ``nnUNetPredictor`` and TotalSegmentator one ``totalsegmentator()`` that its command line and
Python callers share; OrbitAI likewise has one :class:`Predictor` per task (``seg``, ``tao``, ``ivgc``, ``neuro``),
made once with its model and device and called as ``predict(inputs, out, options, facts)`` by the command line
(one case), the cohort runner (each case, serial or on a Dask worker, one predictor per worker), the warm worker
and the Logic's child process (which run the command line), the Slicer Logic and the browser (through that child)
and the evaluation commands. The predictor reads the case, judges the scan once (:func:`orbitai.scan.scan_facts`,
unless the caller already did and passes ``facts``), runs the task's model(s) and writes the result folder
(staged, moved in complete), whose ``result.json`` names the predictor that made it (``predictor``).

Slicer-free and light to import (no torch at import time): the task's class is imported on first use.
"""
from __future__ import annotations

import abc
import importlib
import os
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional

from orbitai.device import select_device

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback
    from orbitai.result import TaskResult
    from orbitai.scan import ScanFacts

__all__ = ["Predictor", "PREDICTORS", "predictor_class", "predictor_for", "predictor_name"]

#: Each task's predictor class, imported when first asked for ("module:Class").
PREDICTORS: dict[str, str] = {
    "seg": "orbitai.orbit.predictor:OrbitPredictor",
    "tao": "orbitai.tao.predictor:TaoPredictor",
    "ivgc": "orbitai.ivgc.predictor:IvgcPredictor",
    "neuro": "orbitai.neuro.predictor:NeuroPredictor",
}


class Predictor(abc.ABC):
    """A task's model(s) on a device, loaded on first use and kept for every case this object predicts.

    Subclasses set :attr:`task` and implement :meth:`predict`; the result they write carries
    :meth:`stamp` (``result.json``'s ``predictor``)."""

    task: ClassVar[str] = ""

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        self.model = model
        self.device = select_device(device)     # an unusable --device: one line before any case is read

    @abc.abstractmethod
    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Mapping[str, Any],
                facts: "Optional[ScanFacts]" = None,
                progress: "Optional[ProgressCallback]" = None) -> "TaskResult":
        """Predict one case into the folder ``out`` and return its result. ``inputs``: the case's files and values
        by role (``image`` or ``flair``, ``segmentation``, ``lesions``, ``clinical``...); ``options``: the command's
        options that decide the result (the same dict a cohort records per case); ``facts``: what the scan is,
        when the caller has judged it already (else judged here, once)."""

    def stamp(self, result: "TaskResult") -> "TaskResult":
        """Mark ``result`` as made by this predictor (written to ``result.json`` as ``predictor``)."""
        result.made_by = predictor_name(type(self))
        return result


def predictor_name(cls: type) -> str:
    """The name ``result.json`` gives a predictor class: ``module.Class``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def predictor_class(task: str) -> type[Predictor]:
    """The predictor class of ``task`` (``seg``, ``tao``, ``ivgc``, ``neuro``)."""
    try:
        module, name = PREDICTORS[task].split(":")
    except KeyError:
        raise ValueError(f"no predictor for the task {task!r}; tasks: {', '.join(PREDICTORS)}") from None
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Predictor)):
        raise TypeError(f"{PREDICTORS[task]} is not a Predictor")
    return cls


def predictor_for(task: str, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> Predictor:
    """A new predictor of ``task`` with ``model`` (None: the bundled default) on ``device``."""
    return predictor_class(task)(model, device)
