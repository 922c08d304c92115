"""One cohort runner for every predict command, serial or on ``dask.distributed``.

A task declares only what differs (:class:`CohortTask`): how to predict one case into a folder (a
module-level function, so that it pickles to a Dask worker) and which result class validates that folder.
:func:`run_cohort` does the rest, the same for ``seg``, ``tao``, ``ivgc`` and ``neuro`` predict:

* each case is written to ``OUT/<case_id>/`` only when complete: predicted into the run's own work folder
  ``OUT/.orbitai-cohort-XXXXXXXX/`` (marked as the runner's; removed at the end, or by the next run where a
  kill left it) and moved into place whole. Nothing else in OUT is removed but an incomplete case folder
  holding only files the command writes;
* a case whose folder holds a valid ``result.json`` (and every file it names) made from the same inputs is
  skipped, so a rerun after a kill or a cancel does only the missing cases. Each case records the SHA-256 of
  its input files and the options that decide its result (`INPUTS_FILE`): a case whose image was corrected,
  or whose options changed, is predicted again;
* a failed case is reported by id with its one-line error in ``OUT/failed.csv`` and the others finish;
* a cancel (Ctrl-C, SIGTERM) stops the workers and leaves only complete case folders;
* the serial run (no ``--workers``) and the Dask run call the same per-case function
  (:func:`execute_case`), so their outputs are identical; a worker process keeps its loaded models for
  the next case (:func:`worker_state`, `orbitai.bundle.core.enable_model_cache`).

The rooms beside it: what a case is and records (`orbitai.cohort.records`), moving case folders without removing
the user's files (`orbitai.cohort.folders`), and the Dask machinery, also used by ``ivgc features``
(`orbitai.cohort.cluster`).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import functools
import io
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Mapping, Optional, Sequence, TypeVar

from tqdm import tqdm  # type: ignore[import-untyped]

import orbitai.bundle.core as core
from orbitai.bundle.core import enable_model_cache
from orbitai.cohort.cluster import SCHEDULER_TIMEOUT, WORKER_WAIT, dask_client, map_on
from orbitai.cohort.folders import (WORK_MARKER, abandoned_work_folders, check_only_ours, make_work_folder,
                                    remove_case_folder, replace_case)
from orbitai.cohort.manifest import case_folder_name, folder_key, read_manifest
from orbitai.cohort.records import INPUTS_FILE, CohortCase, bundle_identity, input_record, made_from
from orbitai.errors import BundleError, DeviceError, OrbitAIError, UserError, one_line
from orbitai.progress import emit
from orbitai.result import check_outputs, previous_files
from orbitai.staging import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

#: The list of failed cases written into OUT: ``case_id,error``.
FAILED_FILE = "failed.csv"
#: Options that change how a cohort runs, not what a case's result is (left out of `input_record`).
RUN_ONLY_OPTIONS = frozenset({"manifest", "workers", "scheduler", "device", "verbose", "debug", "func", "command",
                              "image_dests", "nproc"})
#: Options naming a model bundle: recorded by the bundle's identity (`bundle_identity`), not as typed.
BUNDLE_OPTIONS = frozenset({"model", "lesion_model"})
#: Errors that no other case would escape (a bad --model, an unusable --device): the run stops at once.
FATAL_ERRORS: tuple[type[BaseException], ...] = (BundleError, DeviceError)

T = TypeVar("T")


class CohortError(OrbitAIError):
    """Some cases of a cohort failed (the others are complete); exit code 1."""


# --------------------------------------------------------------------------------------------- the task
@dataclass(frozen=True)
class CohortTask:
    """What a predict command declares for a cohort. ``predict(case, folder)`` writes one complete case
    folder (module level, or a `functools.partial` of one: it is sent to Dask workers); ``result`` is the
    task's `orbitai.result.TaskResult` class (its ``result.json`` tells a complete case); ``files`` are the
    names a case folder may hold (an incomplete leftover of only these is replaced)."""

    command: str
    predict: Callable[[CohortCase, Path], Any]
    result: Any
    files: tuple[str, ...]
    #: The options that decide a case's result (default: the dict a `functools.partial` ``predict`` is given,
    #: less `RUN_ONLY_OPTIONS`); a rerun with others predicts every case again.
    options: Optional[Mapping[str, Any]] = None


@dataclass
class CohortReport:
    """What :func:`run_cohort` did; ``seconds``: each case's time in its worker (prediction and writing)."""

    total: int
    skipped: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0


def case_complete(folder: Path, result: Any) -> bool:
    """Whether ``folder`` holds a finished case: a ``result.json`` of the task ``result`` (its
    `TaskResult.read_json` check) naming only files that exist. Cheap: no volume is read."""
    if not (folder / "result.json").is_file():
        return False
    try:
        data = result.read_json(folder)
        for role in data.get("files", {}):
            result.file_of(data, folder, role)
    except (OrbitAIError, OSError, ValueError):
        return False
    return True


_STATE: dict[Hashable, Any] = {}


def worker_state(key: Hashable, make: Callable[[], T]) -> T:
    """The value kept under ``key`` in this process (made by ``make()`` the first time): what a case
    function keeps between the cases a worker runs (a loaded model, a selected device)."""
    if key not in _STATE:
        _STATE[key] = make()
    return _STATE[key]


@contextlib.contextmanager
def _this_process() -> Iterator[None]:
    """A serial run in this process: its worker state (and the bundle model cache, unless it was on) lasts
    for the run only, as a local cluster's worker processes do."""
    was_on = core._model_cache is not None
    _STATE.clear()
    try:
        yield
    finally:
        _STATE.clear()
        if not was_on:
            core.disable_model_cache()


@dataclass
class CaseRun:
    """A finished case, as its worker returns it: seconds and the lines the prediction printed."""

    seconds: float
    lines: list[str]


def execute_case(predict: Callable[[CohortCase, Path], Any], case: CohortCase, out: str,
                 work: Optional[str] = None, options: Optional[Mapping[str, Any]] = None,
                 files: Sequence[str] = (), replaces: bool = False) -> CaseRun:
    """Predict one case into ``out/<case_id>`` (in this process or on a Dask worker: the one per-case step of
    both runs); loaded models stay in this process for its next case. With ``work`` (the run's work folder in
    ``out``) the case is predicted into ``work/<case_id>``, its `input_record` (``options``) added, and the
    complete folder moved into ``out/<case_id>``: replacing the one there only when ``replaces`` (the runner
    found a result there to predict again) and it still holds only the command's ``files``
    (`orbitai.cohort.folders.replace_case`),
    else only while nothing is there. A run that ended (its work folder or marker gone: a cancel, while a
    remote worker still runs) writes nothing, and its work folder is never made again."""
    enable_model_cache()
    buf = io.StringIO()
    t0 = time.perf_counter()
    if work is None:
        with contextlib.redirect_stdout(buf):
            predict(case, Path(out) / case.case_id)
        return CaseRun(time.perf_counter() - t0, buf.getvalue().splitlines())
    work_dir = Path(work)
    gone = OrbitAIError(f"Case {case.case_id}: the run was cancelled or ended (its work folder is gone).")
    if not (work_dir / WORK_MARKER).is_file():
        raise gone
    record = input_record(case, options or {})    # the inputs as read now, before the prediction reads them
    folder = work_dir / case.case_id
    if folder.is_dir() and not folder.is_symlink():     # an earlier attempt at this case (Dask retries a task)
        shutil.rmtree(folder)
    try:
        folder.mkdir()              # never its parents: a work folder removed by the runner stays removed
    except FileNotFoundError:
        raise gone from None
    try:
        with contextlib.redirect_stdout(buf):
            predict(case, folder)

        write_json_atomic(folder / INPUTS_FILE, record, indent=1)
        if not (work_dir / WORK_MARKER).is_file():
            raise gone
        replace_case(folder, Path(out) / case.case_id, work_dir, files, replaces)
    finally:
        if not (work_dir / WORK_MARKER).is_file():   # what this case wrote (a writer may make its parents again)
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                work_dir.rmdir()                      # only if empty: made again by this case's writer
    return CaseRun(time.perf_counter() - t0, buf.getvalue().splitlines())


# --------------------------------------------------------------------------------------------- options
def task_options(task: CohortTask) -> dict[str, Any]:
    """The options that decide a case's result (`CohortTask.options`), as JSON values."""
    given = task.options
    if given is None:
        given = next((a for a in getattr(task.predict, "args", ()) if isinstance(a, Mapping)), None) \
            if isinstance(task.predict, functools.partial) else None
    kept: dict[str, Any] = {}
    for key, value in (given or {}).items():
        if key in RUN_ONLY_OPTIONS or key.endswith("_command") or callable(value):
            continue
        if key in BUNDLE_OPTIONS and isinstance(value, str) and value:
            value = bundle_identity(value)
        kept[str(key)] = json.loads(json.dumps(value, default=str, sort_keys=True))
    return kept


def add_cohort_options(parser: argparse.ArgumentParser, columns: str = "case_id,image") -> None:
    """``--manifest``, ``--workers`` and ``--scheduler`` of a predict command (its cohort form)."""
    parser.add_argument("--manifest", help=f"CSV with {columns}: predict every case into OUT/<case_id>/ (a case is "
                                           "written only when complete; a rerun skips the cases complete from the same "
                                           "inputs and options; failed cases "
                                           f"are listed in OUT/{FAILED_FILE}, exit 1)")
    parser.add_argument("--workers", type=int,
                        help="with --manifest: run the cases on a local Dask cluster of N worker processes, each "
                             "loading the model once and running one case at a time on 1/N of the cores (default: one "
                             "case after another in this process)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --manifest: run the cases on the dask.distributed cluster of this scheduler "
                             f"(e.g. tcp://10.0.0.5:8786; it must answer within {SCHEDULER_TIMEOUT:g} s, and have a "
                             f"worker within {WORKER_WAIT:g} s); its workers must read the inputs and write OUT")


def check_cohort_options(args: argparse.Namespace, single: str = "image") -> bool:
    """Refuse impossible cohort options (one line each); True when the command runs a manifest."""
    manifest = getattr(args, "manifest", None)
    workers, scheduler = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if manifest and getattr(args, single, None):
        raise UserError(f"Give an {single} or --manifest, not both.")
    if workers is not None and workers < 0:
        raise UserError(f"--workers must be 0 or more, got {workers}.")
    if workers and scheduler:
        raise UserError("Give --workers (a local cluster) or --scheduler (an existing one), not both.")
    if not manifest and (workers or scheduler is not None):
        raise UserError("--workers and --scheduler run a cohort: give --manifest.")
    if manifest:      # options of one image that a manifest's cases would not get: refused, never ignored
        if getattr(args, "series", None) is not None:
            raise UserError("--series chooses the series of one image; with --manifest give each case's series "
                            "(its DICOM folder) in the manifest's image column.")
        if getattr(args, "dicom_attributes", None) is not None:
            raise UserError("--dicom-attributes gives the patient and study of one image; it cannot apply to every "
                            "case of --manifest: run those images one by one with it.")
    return bool(manifest)


def image_cases(manifest: str | Path) -> list[CohortCase]:
    """The cases of a ``case_id,image[,segmentation]`` manifest, each reading its image and segmentation."""
    return [CohortCase(c.case_id, {"image": str(c.image), "segmentation": str(c.segmentation) if c.segmentation
                                   else None}, tuple(str(p) for p in (c.image, c.segmentation) if p is not None))
            for c in read_manifest(manifest, need_segmentation=False)]


def check_case_ids(ids: Sequence[str], where: str) -> list[str]:
    """Each id as the folder name it gets under OUT (`orbitai.cohort.manifest.case_folder_name`: portable,
    NFC), one folder each even on a case-insensitive disk, and none the name of the runner's own list of
    failed cases; one `InputError` otherwise."""
    names: list[str] = []
    seen: dict[str, str] = {}
    for cid in ids:
        name = case_folder_name(cid, where)
        key = folder_key(name)
        if key == folder_key(FAILED_FILE):
            raise UserError(f"{where}: case_id {cid!r} is the name of the list of failed cases the run writes into "
                            "--out; rename the case.")
        if key in seen:
            raise UserError(f"{where}: case_ids {seen[key]!r} and {cid!r} would share one folder (they differ "
                            "only in upper/lower case or Unicode normalisation); rename one.")
        seen[key] = cid
        names.append(name)
    return names


# --------------------------------------------------------------------------------------------- the runner
def _why(exc: BaseException) -> str:
    text = one_line(exc)
    return text if isinstance(exc, (OrbitAIError, OSError)) else f"{type(exc).__name__}: {text}"


def _leftover(folder: Path, task: CohortTask) -> bool:
    """Whether ``folder`` (an incomplete case) exists; refuses one holding anything this command does not write."""
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise UserError(f"{folder} is a file; the cohort writes case {folder.name} into a folder of that name.")
    check_only_ours(folder, task.files, task.command, "holds no complete")
    return True


def write_failed(out: Path, failed: Mapping[str, str]) -> Path:
    """``OUT/failed.csv`` (``case_id,error``, one line each), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["case_id", "error"])
    for cid, error in failed.items():
        w.writerow([cid, " ".join(error.split())])
    return write_text_atomic(out / FAILED_FILE, buf.getvalue())


def run_cohort(task: CohortTask, cases: Sequence[CohortCase], out: str | os.PathLike, workers: int = 0,
               scheduler: Optional[str] = None, inputs: Sequence[str | os.PathLike] = (), bar: bool = True,
               on_case: Optional[Callable[[str, Optional[CaseRun], Optional[str]], None]] = None) -> CohortReport:
    """Predict every case of ``cases`` into ``out/<case_id>/`` (see the module docstring): in this process
    (``workers`` 0, no ``scheduler``), on a local Dask cluster of ``workers`` processes, or on the cluster at
    ``scheduler``. ``inputs``: further files the run reads (the manifest). ``on_case(case_id, run, error)``
    after each finished case (a test's hook). Raises `CohortError` (exit 1) when some cases failed (listed in
    ``OUT/failed.csv``), the case's own error when the only case failed, one line naming each when every
    case failed and none is complete (then nothing is written); a cancel leaves only complete cases."""
    t_start = time.perf_counter()
    out = Path(out)
    names = check_case_ids([c.case_id for c in cases], f"The cohort of {task.command}")
    cases = [c if c.case_id == name else dataclasses.replace(c, case_id=name) for c, name in zip(cases, names)]
    options = {"command": task.command, **task_options(task)}
    report = CohortReport(total=len(cases))
    todo: list[CohortCase] = []
    leftovers: list[Path] = []
    changed: list[str] = []
    read = [Path(p).resolve() for p in (*inputs, *(q for c in cases for q in c.paths))]
    for case in cases:
        folder = out / case.case_id
        done_before = case_complete(folder, task.result)
        if done_before and made_from(folder, case, options):
            report.skipped.append(case.case_id)
            continue
        if done_before:     # made from other inputs or options (or by an earlier version): predicted again
            check_only_ours(folder, task.files, task.command, "holds a", also=previous_files(folder))
            changed.append(case.case_id)
        elif _leftover(folder, task):
            leftovers.append(folder)
        held = [p for p in read if folder.resolve() in p.parents]
        if held and (done_before or folder in leftovers):   # a case is replaced as a whole: never one holding an input
            raise UserError(f"Writing case {case.case_id} to {folder} would overwrite the input {held[0]}; "
                            "choose another output folder.")
        check_outputs(folder, [*case.paths, *inputs], () if folder in leftovers else task.files)
        todo.append(case)
    made = next((p for p in reversed([out, *out.parents]) if not p.exists()), None)   # the first folder this run makes
    if leftovers:          # every check passed: an incomplete case is replaced, checked again as it goes
        aside = make_work_folder(out, task.command)
        try:
            for folder in leftovers:
                remove_case_folder(folder, task.files, aside / f".{folder.name}.leftover", previous=False)
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    for folder in abandoned_work_folders(out):    # a killed run's own work folder, marked as such
        shutil.rmtree(folder, ignore_errors=True)
    n = len(cases)
    if report.skipped:
        print(f"{len(report.skipped)} of {n} cases already complete in {out}: skipped", flush=True)
    if changed:
        print(f"{len(changed)} complete case(s) made from other inputs or options, predicted again: "
              f"{', '.join(changed[:10])}{' ...' if len(changed) > 10 else ''}", flush=True)

    pbar = tqdm(total=n, initial=len(report.skipped), desc=task.command, unit="case", file=sys.stderr,
                disable=None if bar else True, leave=False)
    finished_count = len(report.skipped)
    errors: dict[str, BaseException] = {}
    work: Optional[Path] = None      # the run's work folder, made once a case is to run

    def finished(cid: str, run: Optional[CaseRun], error: Optional[BaseException]) -> None:
        nonlocal finished_count
        finished_count += 1
        if error is not None:
            if isinstance(error, FATAL_ERRORS):
                raise error
            errors[cid] = error
            report.failed[cid] = _why(error).removeprefix(f"Case {cid}: ")
            if cid in changed and work is not None:   # no result of the inputs it was made from before stays
                with contextlib.suppress(UserError, OSError):       # unless the user's files are in it: all kept
                    remove_case_folder(out / cid, task.files, work / f".{cid}.failed")
            print(f"failed: case {cid}: {report.failed[cid]}", flush=True)
        else:
            assert run is not None
            report.done.append(cid)
            report.seconds[cid] = run.seconds
            for line in run.lines:
                print(line)
            print(f"case {cid} complete ({run.seconds:.1f} s)", flush=True)
        pbar.update(1)
        emit(finished_count, n, f"{cid} {'failed' if error is not None else 'done'}")
        if on_case is not None:
            on_case(cid, run, report.failed.get(cid))

    def work_folder() -> Path:
        out.mkdir(parents=True, exist_ok=True)
        return make_work_folder(out, task.command)

    try:
        if not todo:
            pass
        elif workers == 0 and scheduler is None:
            work = work_folder()
            with _this_process():
                for i, case in enumerate(todo, start=finished_count + 1):
                    print(f"case {i}/{n}: {case.case_id}", flush=True)
                    try:
                        run = execute_case(task.predict, case, str(out), str(work), options, task.files,
                                           case.case_id in changed)
                    except Exception as exc:  # noqa: BLE001 - a case's failure is that case's (fatal: re-raised)
                        finished(case.case_id, None, exc)
                    else:
                        finished(case.case_id, run, None)
        else:
            with dask_client(workers, scheduler, len(todo)) as client:   # checked before any folder is made
                work = work_folder()
                map_on(client, execute_case, {c.case_id: (task.predict, c, str(out), str(work), options, task.files,
                                                          c.case_id in changed)
                                              for c in todo}, finished, prefix=task.command.replace(" ", "-"))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            kept = report.skipped + report.done
            print(f"cancelled after {len(report.done)} of {len(todo)} cases; complete in {out}: "
                  f"{', '.join(kept) or 'none'}", file=sys.stderr, flush=True)
        raise
    finally:
        pbar.close()
        if work is not None:      # what a stopped worker was writing (complete cases are in place)
            shutil.rmtree(work, ignore_errors=True)
        if made is not None and not report.done:    # folders made for OUT that hold nothing go again
            for p in [out, *out.parents]:
                if not p.is_relative_to(made):
                    break
                with contextlib.suppress(OSError):
                    p.rmdir()
    report.wall = time.perf_counter() - t_start
    complete = len(report.skipped) + len(report.done)
    if not report.failed:
        with contextlib.suppress(FileNotFoundError):
            (out / FAILED_FILE).unlink()       # a rerun that completed the earlier failures
        print(f"cohort: {complete} of {n} cases complete in {out} ({len(report.done)} run, "
              f"{len(report.skipped)} skipped), {report.wall:.1f} s", flush=True)
        return report
    if complete == 0:
        if n == 1:
            error = errors[cases[0].case_id]
            raise error if isinstance(error, (OrbitAIError, OSError)) else OrbitAIError(_why(error))
        detail = "; ".join(f"{cid} ({why})" for cid, why in report.failed.items())
        raise CohortError(f"every case failed, nothing written: {detail}")
    write_failed(out, report.failed)
    raise CohortError(f"{len(report.failed)} of {n} cases failed ({', '.join(report.failed)}; see "
                      f"{out / FAILED_FILE}); the other {complete} are complete in {out}.")
