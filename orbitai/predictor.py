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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Generic, Mapping, Optional, Sequence, TypeVar, cast

from orbitai.cohort.runner import worker_state
from orbitai.device import run_with_fallback, select_device
from orbitai.io import Acquisition, read_scan
from orbitai.result import check_outputs
from orbitai.scan import scan_facts

if TYPE_CHECKING:
    import torch

    from orbitai.io import Volume
    from orbitai.progress import ProgressCallback
    from orbitai.result import TaskResult
    from orbitai.scan import ScanFacts

__all__ = ["Case", "CaseInputs", "Predictor", "predictor_name"]

@dataclass
class CaseInputs:
    """What a task's `Predictor.read_inputs` makes of one case's inputs: ``given``, the image as the user gave it (for
    the DICOM outputs); ``scan``, the file or DICOM folder the model reads; ``reads``, every input path, which no output
    may overwrite; ``inputs``, the task's other inputs by role (read, not the scan)."""

    given: str | os.PathLike
    scan: str | os.PathLike
    reads: Sequence[Optional[str | os.PathLike]] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    """One case as the hooks see it: the scan as the skeleton read it (``volume``, its ``acquisition`` with the DICOM
    tags) and judged it (``facts``; None where a caller of `Predictor.run` does not judge, as ``seg evaluate``), with
    the `CaseInputs` (``given``, ``scan``, ``inputs``); ``values``: the image values' evidence when a task measured it
    before the judge (`Predictor.check_scan`); ``stages``: seconds per step (the command line's timing lines)."""

    volume: "Volume"
    facts: "Optional[ScanFacts]" = None
    acquisition: "Acquisition" = field(default_factory=lambda: Acquisition("file"))
    given: str | os.PathLike = ""
    scan: str | os.PathLike = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    values: Any = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def judged(self) -> "ScanFacts":
        """The scan's facts, for a hook that needs them (the skeleton judges the scan before any hook runs on it)."""
        if self.facts is None:
            raise ValueError("the scan of this case was not judged (orbitai.scan.scan_facts)")
        return self.facts


P = TypeVar("P", bound="Predictor")
OptionsT = TypeVar("OptionsT")
MadeT = TypeVar("MadeT")
ResultT = TypeVar("ResultT", bound="TaskResult")


class Predictor(abc.ABC, Generic[OptionsT, MadeT, ResultT]):
    """A task's model(s) on a device, loaded on first use and kept for every case this object predicts.

    :meth:`predict` is the one per-case skeleton of every task (as MONAI Label's ``BasicInferTask`` and nnU-Net's
    ``nnUNetPredictor``): it checks the outputs, reads the scan with its tags, judges it (once), runs the model(s)
    with the device fallback, builds the result, stamps it, adds the DICOM files and writes the folder. A task sets
    :attr:`task`, :attr:`Options` (its typed options), :attr:`result_task` and :attr:`case_files` and fills the
    hooks :meth:`read_inputs`, :meth:`run` and :meth:`result` (and, where it has them, :meth:`prepare`,
    :meth:`check_scan`, :meth:`extra_files`, and ``dicom_report`` through `orbitai.dicom.export.DicomOutputs`).
    Nothing here prints: the command line says what a result holds."""

    task: ClassVar[str] = ""
    #: The task's options (a frozen dataclass with ``of(mapping)``: a command's options as its parser names them).
    Options: ClassVar[Any] = object
    #: The result's task (`orbitai.result.TaskResult.task`) and the files one case may write into its folder.
    result_task: ClassVar[str] = ""
    case_files: ClassVar[tuple[str, ...]] = ()

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "predict" in vars(cls):
            raise TypeError(f"{cls.__name__} overrides Predictor.predict, the one per-case skeleton; fill its hooks")

    def options(self, options: Any) -> OptionsT:
        """``options`` as this task's :attr:`Options` (a mapping is read by ``Options.of``)."""
        return cast(OptionsT, options if isinstance(options, self.Options) else self.Options.of(options or {}))

    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Any,
                facts: "Optional[ScanFacts]" = None,
                progress: "Optional[ProgressCallback]" = None) -> ResultT:
        """Predict one case into the folder ``out`` and return its result. ``inputs``: the case's files and values
        by role (``image`` or ``flair``, ``segmentation``, ``lesions``, ``clinical``...); ``options``: the task's
        :attr:`Options` or the command's options that decide the result (the same dict a cohort records per case);
        ``facts``: what the scan is, when the caller has judged it already (else judged here, once). Nothing is
        written on an error. The result carries ``facts`` and ``stages`` for the command line (not written)."""
        opts = self.options(options)
        given = self.read_inputs(inputs, opts)
        folder = check_outputs(out, given.reads, self.case_files, task=self.result_task)
        self.prepare(opts)
        t0 = time.perf_counter()
        volume, acquisition = read_scan(given.scan)
        case = Case(volume, None, acquisition, given.given, given.scan, given.inputs)
        self.check_scan(case, opts, facts)
        case.facts = facts if facts is not None else scan_facts(volume, acquisition.tags, given.scan,
                                                                 getattr(opts, "modality", None), values=case.values)
        t1 = case.stages["read"] = time.perf_counter() - t0
        made = run_with_fallback(lambda device: self.run(case, opts, device, progress), self.device)
        t2 = time.perf_counter()
        case.stages["run"] = t2 - t0 - t1
        result = self.stamp(self.result(made, case, opts))
        dicom = self.dicom_files(made, result, case)
        extra = self.extra_files(made, result, case, opts)
        t3 = time.perf_counter()
        case.stages["result"] = t3 - t2
        result.write(folder, extra=_both(extra, dicom))    # staged beside OUT, moved into place when complete
        case.stages["write"] = time.perf_counter() - t3
        result.facts, result.stages = case.facts, case.stages
        return result

    # ------------------------------------------------------------------------------------------ the hooks
    @abc.abstractmethod
    def read_inputs(self, inputs: Mapping[str, Any], options: OptionsT) -> CaseInputs:
        """The case the inputs name (`CaseInputs`): its paths checked to exist, its other inputs read (not the scan)."""

    def prepare(self, options: OptionsT) -> None:
        """What must fail before the scan is read (a bad ``--model``): by default nothing."""
        return None

    def check_scan(self, case: Case, options: OptionsT, facts: "Optional[ScanFacts]") -> None:
        """What no model reads, refused before the judge asks what ``case.volume`` is: by default nothing."""
        return None

    @abc.abstractmethod
    def run(self, case: Case, options: OptionsT, device: "torch.device",
            progress: "Optional[ProgressCallback]" = None) -> MadeT:
        """The task's model(s) on the judged case on ``device`` (run again on the CPU when a GPU runs out of
        memory): what :meth:`result` makes the result of. Evaluations call it too."""

    @abc.abstractmethod
    def result(self, made: MadeT, case: Case, options: OptionsT) -> ResultT:
        """The result of what :meth:`run` made."""

    def extra_files(self, made: MadeT, result: ResultT, case: Case, options: OptionsT
                    ) -> Optional[Callable[[Path], dict[str, str]]]:
        """The task's optional files (written into the staged folder: ``{role: name}``); None: none."""
        return None

    def dicom_files(self, made: MadeT, result: ResultT, case: Case) -> Optional[Callable[[Path], dict[str, str]]]:
        """The DICOM files a DICOM input gets beside the result (its SEG and SR; a missing writer or a failure said in
        the result's warnings); None: none. The one implementation: `orbitai.dicom.export.DicomOutputs`, which a task
        mixes in and feeds with its ``dicom_report``."""
        return None

    def stamp(self, result: ResultT) -> ResultT:
        """Mark ``result`` as made by this predictor (written to ``result.json`` as ``predictor``)."""
        result.made_by = predictor_name(type(self))
        return result


def _both(a: Optional[Callable[[Path], dict[str, str]]], b: Optional[Callable[[Path], dict[str, str]]]
          ) -> Optional[Callable[[Path], dict[str, str]]]:
    """One ``extra`` hook of `orbitai.result.TaskResult.write` writing ``a``'s files then ``b``'s (None: neither)."""
    if a is None or b is None:
        return a or b
    return lambda tmp: {**a(tmp), **b(tmp)}


def predictor_name(cls: type) -> str:
    """The name ``result.json`` gives a predictor class: ``module.Class``."""
    return f"{cls.__module__}.{cls.__qualname__}"
