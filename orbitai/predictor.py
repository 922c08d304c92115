"""One predictor per task: what every front end calls to predict one case.

nnU-Net v2 has one ``nnUNetPredictor`` and TotalSegmentator one ``totalsegmentator()`` that its command line and
Python callers share; OrbitAI likewise has one :class:`Predictor` per task (``seg``, ``tao``, ``ivgc``, ``neuro``),
made once with its model and device and called as ``predict(inputs, out, options, facts)`` by the command line
(one case), the cohort runner (each case, serial or on a Dask worker, one predictor per worker), the warm worker
and the Logic's child process (which run the command line), the Slicer Logic and the browser (through that child)
and the evaluation commands. The predictor reads the case, judges the scan once (:func:`orbitai.scan.scan_facts`,
unless the caller already did and passes ``facts``), runs the task's model(s) and writes the result folder
(staged, moved in complete), whose ``result.json`` names the predictor that made it (``predictor``).

Slicer-free, no torch at import time. :meth:`Predictor.shared` keeps one predictor per worker process for each model
and device (`orbitai.cohort.runner.worker_state`); `orbitai.tasks.predictor_for` gives it by the task's name.
"""
from __future__ import annotations

import abc
import os
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional, TypeVar

from orbitai.cohort.runner import worker_state
from orbitai.device import select_device

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback
    from orbitai.result import TaskResult
    from orbitai.scan import ScanFacts

__all__ = ["Predictor", "predictor_name"]

P = TypeVar("P", bound="Predictor")


class Predictor(abc.ABC):
    """A task's model(s) on a device, loaded on first use and kept for every case this object predicts.

    Subclasses set :attr:`task` and implement :meth:`predict`; the result they write carries
    :meth:`stamp` (``result.json``'s ``predictor``)."""

    task: ClassVar[str] = ""

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        self.model = model
        self.device = select_device(device)     # an unusable --device: one line before any case is read

    @classmethod
    def shared(cls: type[P], model: Optional[str] = None, device: "str | torch.device | None" = "auto",
               **models: Optional[str]) -> P:
        """This worker process's predictor of this class with ``model``, the task's other ``models`` (neuro's
        ``lesion_model``) and ``device``: made the first time, the same one (models loaded) for every later case
        (`orbitai.cohort.runner.worker_state`: a serial cohort's run, a Dask worker's life)."""
        given = {role: name for role, name in sorted(models.items()) if name is not None}    # None: the default
        return worker_state((predictor_name(cls), model, str(device), tuple(given.items())),
                            lambda: cls(model, device, **given))

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
