"""The task table: one row per task (``seg``, ``tao``, ``ivgc``, ``neuro``) naming its command, predictor, options,
result and case files.

The table sits above the tasks, with the command line and the warm worker that dispatch to them: the shared stages
(`orbitai.predictor` among them) name no task, and a task folder never imports this module (it names its own
classes). A row names each part as a ``"module:name"`` string and imports it on first use (`resolve`), so reading the
table (``orbitai --help``, `orbitai.cli.COMMANDS`, the design test) imports no task and no torch; the design test
counts these strings as imports by name. `predictor_for` gives a task's predictor by the task's name, one per worker
process for each model and device (`orbitai.predictor.Predictor.shared`).

As nnU-Net v2's trainer and predictor classes found by name and MONAI Label's ``infers`` table: one place that says
which classes make a task, read by whoever runs it by name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import torch

    from orbitai.predictor import Predictor
    from orbitai.result import TaskResult

__all__ = ["Task", "TASKS", "resolve", "task", "predictor_class", "predictor_for"]


def resolve(name: str) -> Any:
    """The object a ``"module:name"`` string names, its module imported now."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class Task:
    """One task: ``orbitai <name> ...``, its one predictor and what one predicted case is. Every part but the help
    is a ``"module:name"`` string (`resolve`)."""

    name: str                     # the task's word: ``orbitai <name>``, ``Predictor.task``, a result's task prefix
    help: str                     # its one line in ``orbitai --help``
    command: str                  # the module whose ``add_parser(sub, help_text)`` adds ``orbitai <name>``
    predictor: str                # its `orbitai.predictor.Predictor` class
    result: str                   # its `orbitai.result.TaskResult` class (``result.json``)
    case_files: str               # the names one predicted case may write into its folder
    options: Optional[str] = None  # the typed options its predictor reads (its ``Options``)

    def predictor_class(self) -> "type[Predictor]":
        cls = resolve(self.predictor)
        if getattr(cls, "task", None) != self.name:
            raise TypeError(f"{self.predictor} is not the {self.name} task's Predictor")
        return cls

    def result_class(self) -> "type[TaskResult]":
        return resolve(self.result)

    def files(self) -> tuple[str, ...]:
        return tuple(resolve(self.case_files))

    def options_class(self) -> Optional[type]:
        return resolve(self.options) if self.options else None


#: The tasks, in the order ``orbitai --help`` lists them.
TASKS: dict[str, Task] = {t.name: t for t in (
    Task("seg", "orbit segmentation: train, predict, evaluate", "orbitai.orbit.cli",
         "orbitai.orbit.predictor:OrbitPredictor", "orbitai.orbit.result:SegmentationResult",
         "orbitai.orbit.result:CASE_FILES", "orbitai.orbit.predict:SegOptions"),
    Task("tao", "TAO activity (active vs inactive) on orbital T2 MRI: train, predict, evaluate", "orbitai.tao.cli",
         "orbitai.tao.predictor:TaoPredictor", "orbitai.tao.result:TaoResult", "orbitai.tao.result:CASE_FILES",
         "orbitai.tao.predictor:TaoOptions"),
    Task("ivgc", "IVGC response in thyroid eye disease from coronal T2 MRI: radiomics, selection, train, predict, "
                 "evaluate", "orbitai.ivgc.cli",
         "orbitai.ivgc.predictor:IvgcPredictor", "orbitai.ivgc.result:IvgcResult", "orbitai.ivgc.predictor:CASE_FILES",
         "orbitai.ivgc.predict:IvgcOptions"),
    Task("neuro", "brain FLAIR: white-matter lesions, lesion table, NMOSD vs MS", "orbitai.neuro.cli",
         "orbitai.neuro.predictor:NeuroPredictor", "orbitai.neuro.result:NeuroResult",
         "orbitai.neuro.predictor:CASE_FILES", "orbitai.neuro.predict:NeuroOptions"),
)}


def task(name: str) -> Task:
    """The row of task ``name``."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"no task {name!r}; tasks: {', '.join(TASKS)}") from None


def predictor_class(name: str) -> "type[Predictor]":
    """The predictor class of task ``name`` (``seg``, ``tao``, ``ivgc``, ``neuro``)."""
    return task(name).predictor_class()


def predictor_for(name: str, model: Optional[str] = None, device: "str | torch.device | None" = "auto",
                  **models: Optional[str]) -> "Predictor":
    """This worker process's predictor of task ``name`` with ``model`` (None: the bundled default) and the task's
    other models (neuro's ``lesion_model``) on ``device``: made the first time, the same one afterwards."""
    return predictor_class(name).shared(model, device, **models)
