"""The Logic side of every OrbitAI module panel: a model run in a child process, results into the scene.

`JobLogic` is the base of each module's Logic (no Qt, so it runs headless on a real scene). A module
declares only what differs:

* ``job_title`` and ``requirements`` (its requirements file: version ranges in sync with
  ``pyproject.toml``, read by `ensureDependencies`);
* ``models``: its task's models (`orbitai.bundle.models.TaskModels`, declared in ``orbitai/<task>/models.py``),
  behind the panel's model choice (`JobLogic.modelChoices`, `modelLabels`, `defaultModelLabel`, `resolveModel`);
* the start hook `JobLogic.jobArguments`: check the inputs, name their files in the job's temporary folder
  (`JobFolder.write_input`: written by the job's poll, a slab per timer tick, before the child starts), return the
  ``orbitai ...`` command line (``{out}`` is the child's output folder);
* the finish hook `JobLogic.importResults`: read the child's output folder and add nodes.

The base starts the job (`ModuleJob`) on the session's warm worker (`orbitai.jobs.warm.shared_worker`, started by
the first Apply: torch and the models stay loaded between Applies; ``warm_worker = False`` on a Logic class, or ``ORBITAI_WARM_WORKER=0``
in the environment, starts a fresh child per job instead), remembers the input node and options the job started on,
refuses to import when that input left the scene meanwhile, and imports inside
`orbitai.mrml.transaction.rollback_on_error`, so a failure or a cancel leaves the scene as it was.
"""
from __future__ import annotations

import inspect
import json
import logging
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

from orbitai.bundle.registry import Entry, human_size, model_to_install
from orbitai.device import DEVICE_CHOICES
from orbitai.errors import DeviceError, InputError, OrbitAIError
from orbitai.mrml import get_context, labels_from_segmentation_node, volume_from_volume_node
from orbitai.mrml.label_slabs import LabelSlabs, label_slabs_from_segmentation_node
from orbitai.mrml.dependencies import ensure_requirements, import_name, read_requirements
from orbitai.mrml.dicom_export import file_beside_input
from orbitai.mrml.transaction import node_ids, rollback_on_error, temporary_nodes
from orbitai.mrml.results import mark_results, segmentations_of, watch_imports
from orbitai.progress import ProgressCallback
from orbitai.jobs.child import JobError, OrbitaiJob
from orbitai.jobs.inputs import JobFolder, JobInputs
from orbitai.jobs.process import JobResult, child_error
from orbitai.jobs.warm import WarmJob, shared_worker, warm_worker_enabled

if TYPE_CHECKING:  # pragma: no cover
    from orbitai.bundle.core import Bundle
    from orbitai.bundle.models import TaskModels

__all__ = ["ModuleJob", "ModelOffer", "JobLogic", "child_error"]

log = logging.getLogger(__name__)


def _is_node(value: Any) -> bool:
    return hasattr(value, "GetScene") and hasattr(value, "GetID")


@dataclass
class ModuleJob:
    """A child, its temporary input folder, and the input node and options it started on. The child starts once its
    input files are written (``inputs``: a slab of them per `poll`, so that Slicer's main thread is not blocked for a
    whole scan, issue 63); until then `poll` writes and reports that."""

    job: OrbitaiJob
    workdir: Path
    input_node: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    inputs: JobInputs = field(default_factory=JobInputs)
    #: why the inputs could not be written (the child was never started)
    failure: Optional[str] = None
    #: cancelled before the child started (while its inputs were written)
    cancelled_early: bool = False
    #: the registry model this job installs (`JobLogic.startInstall`); None for a module's own job
    install: Optional[str] = None

    @property
    def writing(self) -> bool:
        """The inputs are being written; the child has not started."""
        return not self.job.started and self.failure is None and not self.cancelled_early

    def poll(self) -> list[tuple[int, int, str]]:
        """Progress since the last call; while the inputs are written, the next slab of them (at most
        `orbitai.jobs.inputs.TICK_BYTES`), then the child's start."""
        if not self.writing:
            return self.job.poll() if self.job.started else []
        try:
            if self.inputs.step():
                self.job.start()
                return self.job.poll()
        except Exception as exc:  # noqa: BLE001 - said as the job's failure; nothing was started
            self.inputs.close()
            self.failure = (str(exc) if isinstance(exc, OrbitAIError) else   # e.g. a label map that does not fit
                            f"The input files could not be written for the child ({exc}); nothing was started.")
            return []
        done, total = self.inputs.progress
        return [(done, total, "Writing the input for the model")]

    @property
    def finished(self) -> bool:
        if self.writing:
            return False
        return not self.job.started or self.job.finished

    def cancel(self) -> None:
        if self.writing:
            self.cancelled_early = True
            self.inputs.close()
            return
        if self.job.started:
            self.job.cancel()

    def cleanup(self) -> None:
        """Remove the child's output folder and the temporary inputs."""
        self.inputs.close()
        self.job.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def checkedResult(self, what: str) -> JobResult:
        """The finished child's result; raises :class:`JobError` with its last error lines if it failed."""
        if self.cancelled_early:
            raise JobError("Cancelled; the scene was not changed.")
        if self.failure is not None:
            raise JobError(f"{what} failed: {self.failure}")
        res = self.job.result()
        if res.cancelled:
            raise JobError("Cancelled; the scene was not changed.")
        if not res.ok:
            raise JobError(child_error(what, self.job.args, res))
        return res

    def wait(self, progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None) -> None:
        """Block until the child ends (scripts and tests); a set ``cancel`` kills it and raises."""
        try:
            if self.writing:
                self.inputs.finish()
            self.job.run(progress, cancel=cancel, check=False)
        except BaseException:
            self.cancel()
            self.cleanup()
            raise
        if cancel is not None and cancel.is_set():
            self.cleanup()
            raise JobError("Cancelled; the scene was not changed.")


class JobLogic:
    """Base of a module Logic that runs one ``orbitai`` command per Apply (see module docstring)."""

    #: What the job does, for messages ("Segmentation", "TAO activity prediction").
    job_title: ClassVar[str] = "The job"
    #: The module's requirements file: version ranges in sync with pyproject.toml (third-party packages;
    #: torch through the PyTorch extension).
    requirements: ClassVar[Optional[Path]] = None
    #: Run jobs on the shared warm worker (unless ``ORBITAI_WARM_WORKER=0``); False: a fresh child per job.
    warm_worker: ClassVar[bool] = True
    #: The task's models: the panel's model choices (see the ``models`` section below).
    models: ClassVar["TaskModels"]
    #: Whether a job works on the panel's input volume (False: on what the scene holds, e.g. the finished
    #: segmentations a fine-tuning learns from; the results are then imported without one).
    needs_input: ClassVar[bool] = True

    def __init__(self, context=None) -> None:
        self.ctx = context or get_context()
        watch_imports(self.ctx.scene)     # old ID links of scenes loaded from now on become node references

    def segmentationChoices(self, input_node) -> list[Any]:
        """The segmentations a panel may offer with ``input_node`` as the input volume: its own and those of no scan
        (`orbitai.mrml.results.segmentations_of`); a segmentation of another scan is refused by the Logic anyway."""
        return segmentations_of(self.ctx.scene, input_node)

    # ------------------------------------------------------------------ hooks (per module)
    def jobArguments(self, folder: JobFolder, input_node, *args: Any, **options: Any) -> list[str]:
        """Start hook: check the inputs, write them into ``folder`` (`JobFolder.write_input`: from `start`, written
        later by the job's poll), return the ``orbitai`` arguments."""
        raise NotImplementedError

    def importResults(self, out_dir: Path, input_node, **options: Any) -> Any:
        """Finish hook: read the child's output folder and add the result nodes; returns the outputs."""
        raise NotImplementedError

    # ------------------------------------------------------------------------ models
    @classmethod
    def modelChoices(cls) -> dict[str, str]:
        """Panel label -> bundle name of every installed model of the task: the declared ones first (in the
        paper's order), then the others by name."""
        return cls.models.choices()

    @classmethod
    def availableModels(cls) -> list[str]:
        """The bundle names of `modelChoices`."""
        return list(cls.modelChoices().values())

    @classmethod
    def modelLabels(cls) -> list[str]:
        """The panel's model choices (the labels of `modelChoices`); the default's label when none is installed."""
        return cls.models.labels()

    @classmethod
    def defaultModelLabel(cls, labels: Optional[list[str]] = None) -> str:
        """The panel's default among ``labels`` (default: `modelLabels`): the task's default model when it is
        listed, else the first."""
        labels = cls.modelLabels() if labels is None else labels
        return cls.models.default_label if cls.models.default_label in labels else labels[0]

    @classmethod
    def modelsAvailable(cls) -> bool:
        """Whether Apply can have a model: one is installed, or the task's default is a registry model that the
        first Apply offers to download (`modelOffer`)."""
        return bool(cls.availableModels()) or model_to_install(cls.models.default) is not None

    def neededModel(self, input_node: Any, options: dict[str, Any]) -> Optional[str]:
        """The bundle name this Apply's ``model`` option means (None when the job picks one itself or takes none);
        a module whose job picks by the scan (OrbitSegmentation's "Automatic") says which it will pick."""
        if "model" not in options:
            return None
        try:
            return self.models.resolve(options["model"])
        except OrbitAIError:
            return None

    def modelOffer(self, input_node: Any, options: dict[str, Any]) -> Optional["ModelOffer"]:
        """What to offer before this Apply: the registry model it needs when that is installed nowhere
        (`orbitai.bundle.registry.model_to_install`), else None. Both front ends ask this (Slicer, the browser)."""
        entry = model_to_install(self.neededModel(input_node, options))
        return ModelOffer(entry) if entry is not None else None

    def startInstall(self, offer: "ModelOffer", source: Optional[str] = None, input_node: Any = None,
                     uploaded: bool = False) -> ModuleJob:
        """A job that installs the offered model (``orbitai models install NAME``, or ``FILE``: an archive chosen
        offline) in a child process of its own, with progress lines (size, time left); Cancel kills it and leaves
        nothing installed (a partial download waits in the user folder's ``.downloads`` for the next try).
        ``uploaded``: ``source`` came from a browser (not this machine's user): it must be the registry's very archive
        (its SHA-256), and it is moved into the job's folder, removed with the job."""
        if source is not None and not Path(source).expanduser().is_file():
            raise InputError(f"{source} is not a file; choose the model's archive ({offer.entry.asset}).")
        workdir = Path(tempfile.mkdtemp(prefix="orbitai-install-"))
        args = ["models", "install", str(Path(source).expanduser()) if source is not None else offer.entry.name]
        if source is not None and uploaded:
            archive = workdir / offer.entry.asset
            shutil.move(str(source), str(archive))
            args = ["models", "install", str(archive), "--sha256", offer.entry.sha256]
        return ModuleJob(OrbitaiJob(args), workdir, input_node, {}, install=offer.entry.name)

    @classmethod
    def resolveModel(cls, model: Optional[str]) -> "Bundle":
        """The bundle for ``model`` (a panel label, an alias, a bundle name or folder; empty: the task's default);
        one clear line when it is not installed or is another task's."""
        return cls.models.find(model)

    # ------------------------------------------------------------------------ dependencies
    @classmethod
    def requirementLines(cls) -> list[str]:
        """The requirement specifiers of the module's requirements file (comments dropped)."""
        return read_requirements(cls.requirements) if cls.requirements is not None else []

    @classmethod
    def requiredModules(cls) -> list[str]:
        """Import names of the packages the module needs (from its requirements file)."""
        return [import_name(r) for r in cls.requirementLines()]

    @classmethod
    def ensureDependencies(cls, ask: bool = True) -> bool:
        """True when every requirement is met; inside Slicer offers to install what is missing.
        Raises ImportError (one clear line) when something is missing and cannot be installed here."""
        return ensure_requirements(cls.requirementLines(), ask=ask)

    # ------------------------------------------------------------------------ inputs
    @staticmethod
    def inputVolume(input_node, what: str):
        """The input node's voxels as a `Volume`; one line asking for ``what`` (e.g. "a brain FLAIR volume") when
        none is selected or it is a label map (the child checks the rest: 3D, finite, the modality). A read-only view
        of the node's voxels: no copy of a whole scan on Slicer's main thread (its file is written a slab per tick)."""
        if input_node is None or input_node.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputError(f"Select {what}" +
                             (f"; '{input_node.GetName()}' is a label map." if input_node is not None else "."))
        return volume_from_volume_node(input_node, copy=False)

    def segmentationLabels(self, segmentation_node, input_node, what: str, table=None):
        """A segmentation node as a label map on the input's grid (the export's helper nodes removed again);
        one line starting with ``what`` when it does not fit the input."""
        try:
            with temporary_nodes(self.ctx.scene):   # the export adds helper nodes
                return labels_from_segmentation_node(segmentation_node, input_node, table=table)
        except ValueError as exc:
            raise InputError(f"{what}: {exc}") from None

    def segmentationLabelSlabs(self, segmentation_node, input_node, what: str,
                               table=None) -> "LabelSlabs | Callable[[], Any]":
        """`segmentationLabels` for `write_job_input`, read from Slicer's main thread without blocking it: the segment
        names are checked now (one line starting with ``what``), no voxel is read; the label map is made a slab per
        poll tick as its file is written (`orbitai.mrml.label_slabs.LabelSlabs`: the same voxels as the export).
        Where only the whole export makes that map (a layer on another grid, another transform: see
        `label_slabs_from_segmentation_node`), a function that exports it, called in a poll tick of its own."""
        try:
            slabs = label_slabs_from_segmentation_node(segmentation_node, input_node, table=table)
        except ValueError as exc:
            raise InputError(f"{what}: {exc}") from None
        if slabs is not None:
            return slabs
        return lambda: self.segmentationLabels(segmentation_node, input_node, what, table=table)

    # ---------------------------------------------------------------------------- run
    @staticmethod
    def checkDevice(device: Optional[str]) -> str:
        """``device`` normalised (``auto|cpu|cuda[:N]|mps``); a clear error for anything else."""
        d = (device or "auto").strip().lower()
        if not (d in DEVICE_CHOICES or d.startswith("cuda:")):
            raise DeviceError(f"Unknown device {device!r}; use one of {', '.join(DEVICE_CHOICES)}.")
        return d

    def makeJob(self, args: list[str]) -> OrbitaiJob:
        """The job for ``args`` (``orbitai ...``): on the warm worker, or a fresh ``python -m orbitai`` child."""
        if self.warm_worker and warm_worker_enabled():
            return WarmJob(args)
        return OrbitaiJob(args)

    @classmethod
    def prewarm(cls) -> None:
        """Start the warm worker now (no-op when it runs), so that its imports run while the inputs are written.
        Called by `start`, the first Apply: opening a module starts no worker (a 547 MB process with torch for
        the rest of the Slicer session, for a user who may never press Apply)."""
        if cls.warm_worker and warm_worker_enabled():
            try:
                shared_worker().start()
            except OSError as exc:   # the job says why when it starts (a one-shot child then)
                log.warning("OrbitAI: the warm worker did not start: %s", exc)

    def start(self, input_node, *args: Any, **options: Any) -> ModuleJob:
        """Check the inputs (start hook) and return the job at once; its input files are written by its `poll`
        (a slab per timer tick), then the child starts. The scene is not changed; the job remembers
        ``input_node`` and the options."""
        workdir = Path(tempfile.mkdtemp(prefix="orbitai-job-in-"))
        inputs = JobInputs()
        try:
            # the folder names the job's inputs: its volumes are written later, by ModuleJob.poll
            bound = inspect.signature(self.jobArguments).bind(JobFolder(workdir, inputs), input_node, *args, **options)
            bound.apply_defaults()                 # the options the import gets: named, defaults included
            cli_args = self.jobArguments(*bound.args, **bound.kwargs)
            kept = dict(list(bound.arguments.items())[2:])
            job = ModuleJob(self.makeJob(cli_args), workdir, input_node, kept, inputs)
        except BaseException:
            inputs.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.prewarm()
        return job

    def finish(self, job: ModuleJob) -> Any:
        """Import a finished child's results for the input it started on (raises, scene unchanged,
        if it failed, was cancelled, or its input left the scene)."""
        try:
            res = job.checkedResult(self.job_title)
            if res.out_dir is None:
                raise JobError(f"{self.job_title} wrote no output folder.")
            return self.loadResults(res.out_dir, job.input_node, **job.options)
        finally:
            job.cleanup()

    def run(self, input_node, *args: Any, progress: Optional[ProgressCallback] = None,
            cancel: Optional[threading.Event] = None, **options: Any) -> Any:
        """Blocking run (scripts and tests): progress callback, optional cancel event."""
        job = self.start(input_node, *args, **options)
        job.wait(progress, cancel)
        return self.finish(job)

    def loadResults(self, out_dir: str | Path, input_node, **options: Any) -> Any:
        """Import an output folder for ``input_node``: all of its nodes or, on any error, none."""
        if input_node is None and self.needs_input:
            raise JobError("The input volume is gone from the scene; nothing was added.")
        gone = [n for n in [input_node, *options.values()] if _is_node(n) and n.GetScene() is not self.ctx.scene]
        if gone:
            raise JobError(f"'{gone[0].GetName()}' was removed from the scene while the {self.job_title.lower()} "
                           "ran; nothing was added. Apply again.")
        with rollback_on_error(self.ctx.scene):
            before = node_ids(self.ctx.scene)
            outputs = self.importResults(Path(out_dir), input_node, **options)
            # beside the input in its DICOM study, exportable by Slicer's own DICOM export (orbitai.mrml.dicom_export)
            if input_node is not None:
                added = [self.ctx.scene.GetNodeByID(i) for i in sorted(node_ids(self.ctx.scene) - before)]
                file_beside_input(self.ctx.scene, input_node, added, _result_model(Path(out_dir)))
                mark_results(added, input_node)       # the scan they belong to (orbitai.mrml.results)
            return outputs


@dataclass(frozen=True)
class ModelOffer:
    """A registry model that an Apply needs and that is not installed: what the panel offers (download, a file, or
    Cancel)."""

    entry: Entry

    @property
    def source(self) -> str:
        """Where the download comes from (``$ORBITAI_MODELS_URL`` when set, else the registry's first address)."""
        urls = self.entry.download_urls()
        return urls[0] if urls else self.entry.asset

    def question(self) -> str:
        """The offer in words: the model, its size and source."""
        return (f"The model '{self.entry.name}' (version {self.entry.version}) is not installed. Download it "
                f"({human_size(self.entry.size)}, checked by SHA-256) from {self.source}, or choose its archive "
                f"({self.entry.asset}) if you downloaded it already?")

    def declined(self) -> str:
        return f"Not started: the model '{self.entry.name}' is not installed; nothing was downloaded."


def _result_model(out_dir: Path) -> Optional[str]:
    """The model a result folder names in its result.json (``model``), or None."""
    try:
        model = json.loads((out_dir / "result.json").read_text()).get("model")
    except (OSError, ValueError, AttributeError):
        return None
    return str(model) if model else None
