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

The Dask machinery (a local cluster of worker processes, each one case at a time on its share of the cores,
or an existing scheduler's address; quiet logs; clean cancel) is here once, also used by ``ivgc features`` (:func:`dask_map`).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, Mapping, Optional, Sequence, TypeVar

from tqdm import tqdm  # type: ignore[import-untyped]

import orbitai.bundle.core as core
from orbitai.bundle.core import enable_model_cache, find_bundle
from orbitai.cohort.manifest import case_folder_name, folder_key, read_manifest
from orbitai.device import usable_cores
from orbitai.errors import BundleError, DeviceError, InputError, OrbitAIError, UserError, one_line
from orbitai.io.checksums import sha256_input
from orbitai.progress import deferred_cancel, emit
from orbitai.result import check_outputs, previous_files
from orbitai.staging import strict_json, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

#: The list of failed cases written into OUT: ``case_id,error``.
FAILED_FILE = "failed.csv"
#: Seconds to wait for an existing scheduler (``--scheduler``) to answer.
SCHEDULER_TIMEOUT = 10.0
#: Seconds to wait for a first worker on an existing scheduler that has none.
WORKER_WAIT = 60.0
#: What each complete case folder records of what it was made from (`input_record`).
INPUTS_FILE = ".orbitai-inputs.json"
#: The prefix of a run's work folder in OUT, and the file marking it as the runner's own.
WORK_PREFIX, WORK_MARKER = ".orbitai-cohort-", "orbitai-cohort-run.json"
#: Options that change how a cohort runs, not what a case's result is (left out of `input_record`).
RUN_ONLY_OPTIONS = frozenset({"manifest", "workers", "scheduler", "device", "verbose", "debug", "func", "command",
                              "image_dests", "nproc"})
#: Options naming a model bundle: recorded by the bundle's identity (`bundle_identity`), not as typed.
BUNDLE_OPTIONS = frozenset({"model", "lesion_model"})
#: A work folder another machine's run left is removed only once its marker is this old (seconds): that run
#: may still be going (its process cannot be seen from here).
FOREIGN_WORK_AGE = 7 * 24 * 3600.0
#: Errors that no other case would escape (a bad --model, an unusable --device): the run stops at once.
FATAL_ERRORS: tuple[type[BaseException], ...] = (BundleError, DeviceError)

T = TypeVar("T")


class CohortError(OrbitAIError):
    """Some cases of a cohort failed (the others are complete); exit code 1."""


# --------------------------------------------------------------------------------------------- the task
@dataclass(frozen=True)
class CohortCase:
    """One case: its id (its folder's name under OUT), the values its prediction reads (plain, picklable:
    paths as strings), and the files it reads (checked against what is written)."""

    case_id: str
    inputs: Mapping[str, Any]
    paths: tuple[str, ...] = ()


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
    found a result there to predict again) and it still holds only the command's ``files`` (`_replace_case`),
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
        _replace_case(folder, Path(out) / case.case_id, work_dir, files, replaces)
    finally:
        if not (work_dir / WORK_MARKER).is_file():   # what this case wrote (a writer may make its parents again)
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                work_dir.rmdir()                      # only if empty: made again by this case's writer
    return CaseRun(time.perf_counter() - t0, buf.getvalue().splitlines())


def _foreign(folder: Path, allowed: Sequence[str], previous: bool = True) -> list[str]:
    """The names in ``folder`` outside ``allowed`` (the command's files), its `INPUTS_FILE` and (``previous``)
    the files its ``result.json`` names, sorted."""
    ours = {*allowed, INPUTS_FILE, *(_previous_files(folder) if previous else ())}
    return sorted(p.name for p in folder.iterdir() if p.name not in ours)


def _previous_files(folder: Path) -> list[str]:
    return previous_files(folder)


def _foreign_error(folder: Path, foreign: Sequence[str], what: str = "") -> str:
    return (f"{folder} holds {', '.join(foreign[:3])}, not written by this command{what}; move it away and run "
            "again (nothing of it was removed).")


def _put_back(moved: Path, folder: Path) -> Path:
    """Move ``moved`` back to ``folder``; where that is taken again, beside it under a new name. Returns where."""
    try:
        os.rename(moved, folder)      # onto nothing or an empty folder only: never over the user's files
        return folder
    except OSError:
        kept = Path(tempfile.mkdtemp(prefix=f"{folder.name}.kept-", dir=folder.parent))
        os.replace(moved, kept / folder.name)
        return kept / folder.name


def remove_case_folder(folder: Path, files: Sequence[str], aside: Path, previous: bool = True) -> None:
    """Remove the case folder ``folder`` only if it holds nothing but the command's ``files``: moved to ``aside``
    (a path in the run's work folder) first, so that nothing is written into it after the check, checked, then
    removed (``previous``: the files its ``result.json`` names are the command's too). One holding anything else
    is moved back whole: a `UserError` naming what it holds."""
    try:
        os.replace(folder, aside)
    except FileNotFoundError:
        return
    foreign = _foreign(aside, files, previous)
    if foreign:
        where = _put_back(aside, folder)
        raise UserError(_foreign_error(where, foreign))
    shutil.rmtree(aside)


def _replace_case(folder: Path, target: Path, work: Path, files: Sequence[str], replaces: bool) -> None:
    """Move the complete case ``folder`` to ``target``: onto nothing (or an empty folder), or -- with
    ``replaces`` -- over the runner's earlier result there, checked now (not only when the run started) to hold
    nothing but the command's files; a `UserError` otherwise, the folder there untouched."""
    if target.exists() or target.is_symlink():
        if not replaces:
            if not target.is_dir() or target.is_symlink() or any(target.iterdir()):
                raise UserError(f"{target} appeared while the run was predicting case {target.name}; the case was "
                                "not written there (nothing of it was removed): move it away and run again.")
        else:
            if not target.is_dir() or target.is_symlink():
                raise UserError(f"{target} is not a case folder any more; case {target.name} was not written.")
            foreign = _foreign(target, files)
            if foreign:
                raise UserError(_foreign_error(target, foreign, f"; case {target.name} was not written"))
            old = work / f".{target.name}.replaced"   # no case_id begins with a dot: no case folder of the run
            os.replace(target, old)
            foreign = _foreign(old, files)            # written between the check and the move
            if foreign:
                where = _put_back(old, target)
                raise UserError(_foreign_error(where, foreign, f"; case {target.name} was not written"))
            try:
                os.replace(folder, target)
            except OSError:
                _put_back(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return
    try:
        os.replace(folder, target)    # fails (nothing changed) where a folder with content appeared meanwhile
    except OSError as exc:
        if target.exists():
            raise UserError(f"{target} appeared while the run was predicting case {target.name}; the case was not "
                            "written there (nothing of it was removed): move it away and run again.") from None
        raise exc


# --------------------------------------------------------------------------------------------- resume
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


def bundle_identity(model: str) -> Any:
    """What decides the results of the bundle ``model`` (a name or folder as typed): its name and the SHA-256 of
    its metadata (which holds its weights' and files' checksums), so that ``./b``, ``b`` and ``/abs/b`` are one
    model and a bundle retrained in place is another. Text that names no bundle (a task's alias, such as ``B``,
    for a shipped one) stays as it is; the prediction says what is wrong with it."""
    try:
        bundle = find_bundle(model)
    except (OrbitAIError, OSError, ValueError):
        return model
    meta = bundle.metadata
    return {"bundle": bundle.name, "weights_sha256": meta.get("weights_sha256"),
            "metadata_sha256": hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()}


#: A file modified this recently (nanoseconds) may be written again within its time stamp's resolution.
_SETTLE_NS = 2_000_000_000


def _signature(path: Path) -> Optional[list]:
    """What changes when a file or folder is written again: sizes, modification and change times and inodes (a
    copy that keeps the modification time, ``cp -p``, still changes the change time or the inode); None, never
    trusted, where a file was modified in the last two seconds."""
    def stamp(st: os.stat_result) -> list:
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    now = time.time_ns()
    if path.is_dir():
        stats = [(q.relative_to(path).as_posix(), q.stat()) for q in sorted(path.rglob("*")) if q.is_file()]
    else:
        stats = [("", path.stat())]
    if any(now - st.st_mtime_ns < _SETTLE_NS for _, st in stats):
        return None
    if not path.is_dir():
        return stamp(stats[0][1])
    return [[name, *stamp(st)] for name, st in stats]


def input_record(case: CohortCase, options: Mapping[str, Any], previous: Optional[Mapping[str, Any]] = None) -> dict:
    """What a case is made from: each input naming a file or folder by its content's SHA-256 (and its place, size
    and time, so that a rerun reads an unchanged input only when ``previous`` recorded another), each other input
    value as it is, and ``options``. Two records with equal `_record_key` make the same result."""
    inputs: dict[str, Any] = {}
    before = (previous or {}).get("inputs", {})
    for name, value in sorted(case.inputs.items()):
        path = Path(value) if isinstance(value, str) and value else None
        if path is not None and path.exists():
            place, signature = str(path.resolve()), _signature(path)
            old = before.get(name)
            same = (signature is not None and isinstance(old, dict) and old.get("path") == place
                    and old.get("signature") == signature)
            digest = old["sha256"] if same else sha256_input(path)
            inputs[name] = {"path": place, "signature": signature, "sha256": digest}
        else:
            inputs[name] = {"value": json.loads(json.dumps(value, default=str, sort_keys=True))}
    return {"case_id": case.case_id, "inputs": inputs, "options": dict(options)}


def _record_key(record: Mapping[str, Any]) -> str:
    """The part of an `input_record` that decides the result: contents and values, not places or times."""
    inputs = {k: v.get("sha256", v.get("value")) if isinstance(v, dict) else v
              for k, v in record.get("inputs", {}).items()}
    return json.dumps({"inputs": inputs, "options": record.get("options")}, sort_keys=True, default=str)


def made_from(folder: Path, case: CohortCase, options: Mapping[str, Any]) -> bool:
    """Whether the complete case in ``folder`` was made from ``case``'s present inputs and ``options`` (its
    `INPUTS_FILE`; False without one: a case of an earlier version, or not made by the runner)."""
    try:
        previous = json.loads((folder / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(previous, dict):
        return False
    try:
        now = input_record(case, options, previous)
    except OSError:
        return False
    if _record_key(now) != _record_key(previous):
        return False
    if now != previous:      # the same content at another place or time: remember it, not to read it again
        with contextlib.suppress(OSError):

            write_json_atomic(folder / INPUTS_FILE, now, indent=1)
    return True


# --------------------------------------------------------------------------------------------- the work folder
def _host() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True when it cannot be told)."""
    try:
        import psutil  # type: ignore[import-untyped]  # a dependency of dask.distributed

        return bool(psutil.pid_exists(pid))
    except ImportError:
        if os.name != "posix":
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True


def make_work_folder(out: Path, command: str) -> Path:
    """This run's work folder in ``out``, marked as the runner's (`WORK_MARKER`: command, process, machine)."""
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out))
    (work / WORK_MARKER).write_text(strict_json({"command": command, "pid": os.getpid(), "host": _host(),
                                                 "started": time.time()}, indent=None) + "\n")
    return work


def abandoned_work_folders(out: Path) -> list[Path]:
    """Work folders in ``out`` that an earlier run of the runner left when it was killed: named and marked as
    the runner's (`make_work_folder`), by a process that no longer runs on this machine, or on another machine
    (whose processes cannot be seen from here) marked more than `FOREIGN_WORK_AGE` ago; a younger one of another
    machine is kept, with a one-line warning. A folder of any other name or without the marker is never among them."""
    found = []
    try:
        entries = list(out.iterdir())
    except OSError:
        return []
    for p in entries:
        if not (p.name.startswith(WORK_PREFIX) and p.is_dir() and not p.is_symlink()):
            continue
        try:
            mark = json.loads((p / WORK_MARKER).read_text())
            pid, host = int(mark["pid"]), str(mark["host"])
            started = float(mark.get("started") or (p / WORK_MARKER).stat().st_mtime)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if host == _host():
            if not _alive(pid):
                found.append(p)
        elif time.time() - started > FOREIGN_WORK_AGE:
            found.append(p)
        else:
            print(f"warning: kept {p}: the work folder of a run on {host} (process {pid}), which may still be going; "
                  "remove it yourself once that run has ended", file=sys.stderr, flush=True)
    return found


# --------------------------------------------------------------------------------------------- options
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


# --------------------------------------------------------------------------------------------- Dask
@contextlib.contextmanager
def _quiet_children() -> Iterator[None]:
    """Start worker processes with their standard error on the null device (unless -v): a Ctrl-C to the
    process group stops them too, and Python would print each one's KeyboardInterrupt traceback; a
    case's error still reaches the parent through its future. (Ignoring or blocking SIGINT instead
    loses a Ctrl-C given while they start: Dask spawns them from its event-loop thread.)"""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _NoDaskLines(logging.Filter):
    """Drops Dask's (``distributed.*``) log records: on a cancel it logs "Couldn't gather", "Closing
    scheduler", "killed by signal" and the like, at any level and from loggers with levels of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("distributed")


_NO_DASK_LINES = _NoDaskLines()


def _silence_dask() -> None:
    """Without -v, no Dask log line reaches stderr for the rest of the process: the filter sits on the
    handlers themselves (Dask's own on ``distributed`` and the root's), so neither a level Dask sets again
    (``silence_logs``) nor the cluster closing at exit after a cancel brings its lines back."""
    for name in ("distributed", ""):
        for handler in logging.getLogger(name).handlers:
            if _NO_DASK_LINES not in handler.filters:
                handler.addFilter(_NO_DASK_LINES)


def _start_local_cluster(**kwargs: Any) -> Any:
    """A `LocalCluster`; a cancel (or failure) while it starts closes what was started there and then, so that
    Dask's exit hook does not close a half-started cluster later and print its traceback."""
    from dask.distributed import LocalCluster
    from distributed.deploy.spec import SpecCluster

    before = set(SpecCluster._instances)
    try:
        return LocalCluster(**kwargs)
    except BaseException:
        for cluster in set(SpecCluster._instances) - before:
            SpecCluster._instances.discard(cluster)
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)
        raise


_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls)://)?\[?(?P<host>[^\]/\s]+?)\]?:(?P<port>\d+)/?$")
#: The largest first message a Dask scheduler sends (its handshake: a few hundred bytes).
_HANDSHAKE_MAX = 1 << 20


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _is_http(sock: socket.socket) -> bool:
    """Whether the server on ``sock`` (silent so far) answers an HTTP request as a web server does."""
    try:
        sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
        sock.settimeout(min(2.0, SCHEDULER_TIMEOUT))
        return _recv_exactly(sock, 5) == b"HTTP/"
    except OSError:
        return False


def check_scheduler(address: str) -> None:
    """One line, within `SCHEDULER_TIMEOUT`, for a ``--scheduler`` address that is no Dask scheduler: nobody
    listening, a web (HTTP) server such as Dask's dashboard, a port that accepts and never answers, or one that
    answers something else (Dask's own connect would wait on without a bound, or read a web page's first bytes as
    a message length). A Dask scheduler speaks first on a new connection: its handshake must come in time."""
    text = address.strip()
    m = _ADDRESS.match(text)
    if not m:
        if "://" not in text:
            raise UserError(f"--scheduler {address!r} is not a Dask scheduler address (e.g. tcp://10.0.0.5:8786).")
        return        # another transport (ucx://, inproc://): Dask's own connect says
    port = int(m["port"])
    if not 0 < port < 65536:
        raise UserError(f"--scheduler {address!r}: the port must be 1 to 65535, got {port}.")
    try:
        sock = socket.create_connection((m["host"], port), timeout=min(5.0, SCHEDULER_TIMEOUT))
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address}: "
                         f"{getattr(exc, 'strerror', None) or one_line(exc)}.") from None
    use = "give the scheduler's address (e.g. tcp://HOST:8786; its dashboard, 8787, is a web page)"
    with sock:
        if m["scheme"] == "tls":
            return    # a TLS server waits for the client's hello
        sock.settimeout(SCHEDULER_TIMEOUT)
        try:
            head = _recv_exactly(sock, 8)
        except socket.timeout:
            if _is_http(sock):
                raise InputError(f"{address} is a web (HTTP) server, not a Dask scheduler; {use}.") from None
            raise InputError(f"{address} accepted the connection but did not answer as a Dask scheduler within "
                             f"{SCHEDULER_TIMEOUT:g} s; {use}, and check that it runs.") from None
        except OSError as exc:
            raise InputError(f"Cannot reach the Dask scheduler at {address}: "
                             f"{exc.strerror or one_line(exc)}.") from None
    if len(head) < 8:
        raise InputError(f"{address} closed the connection without answering as a Dask scheduler; {use}.")
    size = int.from_bytes(head, "little")
    if not 0 < size <= _HANDSHAKE_MAX:
        what = "a web (HTTP) server" if head.startswith(b"HTTP/") else f"something else (it sent {head!r})"
        raise InputError(f"{address} is {what}, not a Dask scheduler; {use}.")


def _wait_for_a_worker(client: Any, address: str) -> None:
    """Return once the scheduler at ``address`` has a worker; say that it is waited for, and give up after
    `WORKER_WAIT` seconds with one line (the cases would wait for ever)."""
    if client.nthreads():
        return
    print(f"waiting up to {WORKER_WAIT:g} s for a worker of the Dask scheduler at {address} (it has none)",
          file=sys.stderr, flush=True)
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT)
    except (TimeoutError, asyncio.TimeoutError, OSError):   # distinct classes on Python 3.9 and 3.10
        raise InputError(f"The Dask scheduler at {address} has no workers (none came in {WORKER_WAIT:g} s); start "
                         f"some with 'dask worker {address}', or leave out --scheduler (--workers N runs a local "
                         "cluster).") from None


@contextlib.contextmanager
def dask_client(workers: int, scheduler: Optional[str], n_tasks: int) -> Iterator[Any]:
    """A Dask client: on the scheduler at ``scheduler``, or on a local cluster of ``workers`` (at most
    ``n_tasks``) worker processes running one case at a time on their share of the cores, closed on leaving (also on a cancel: its processes stop).
    A local cluster's scratch space (and lock files) live in a temporary folder removed with it; Dask's
    own log lines show only with -v."""
    import dask
    from dask.distributed import Client

    with contextlib.ExitStack() as stack:    # closed in reverse: client, cluster, config, scratch folder, log level
        dask_log = logging.getLogger("distributed")
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # Dask's own lines only in a verbose run: its worker errors (with tracebacks) reach each case's
            # future, and a cancel or a busy machine makes it log "still alive, killing" and the like.
            stack.callback(dask_log.setLevel, dask_log.level)
            dask_log.setLevel(logging.CRITICAL)
            _silence_dask()
        if scheduler is not None:
            check_scheduler(scheduler)
            try:
                client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT:g}s")
            except (OSError, TimeoutError, asyncio.TimeoutError, ValueError, MemoryError) as exc:
                raise InputError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
            stack.callback(client.close)
            _wait_for_a_worker(client, scheduler)
        else:
            scratch = tempfile.mkdtemp(prefix="orbitai-dask-")
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            # one thread per worker for the numerical libraries, as Dask sets them; but not its MALLOC_TRIM_THRESHOLD_:
            # a fixed threshold turns off glibc's adaptive one, and every large array then costs fresh page faults
            # (measured: each case about 10 % slower, benchmarks/bench_cohort.py)
            environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                       if k != "MALLOC_TRIM_THRESHOLD_"}
            # each worker runs one case at a time on its share of the cores (Dask's default of one thread would
            # leave cores idle with fewer workers than cores); a larger setting of the user's Dask config stays
            n_workers = max(1, min(workers, n_tasks))
            share = max(1, usable_cores() // n_workers)
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                environ[key] = max(share, int(environ.get(key) or 1))
            stack.enter_context(dask.config.set({"temporary-directory": scratch,
                                                 "distributed.nanny.pre-spawn-environ": environ}))
            # a cancel while the cluster starts takes effect once it is up (and registered to be closed): closing
            # a half-started cluster leaves processes behind or prints Dask's traceback
            with _quiet_children(), deferred_cancel():
                cluster = _start_local_cluster(n_workers=n_workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
                                               local_directory=scratch)
                stack.callback(cluster.close)
            if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
                _silence_dask()   # the cluster may have set up Dask's handlers anew
            client = Client(cluster)
            stack.callback(client.close)
        yield client


def dask_map(fn: Callable[..., Any], items: Mapping[str, tuple], workers: int, scheduler: Optional[str],
             finished: Callable[[str, Any, Optional[BaseException]], None], prefix: str = "orbitai") -> None:
    """``fn(*items[key])`` for every key on a Dask cluster (:func:`dask_client`); ``finished(key, value,
    error)`` as each completes, in the order they complete. An exception ``finished`` raises (or a cancel)
    closes the client and the local cluster, stopping the other tasks."""
    with dask_client(workers, scheduler, len(items)) as client:
        map_on(client, fn, items, finished, prefix)


def map_on(client: Any, fn: Callable[..., Any], items: Mapping[str, tuple],
           finished: Callable[[str, Any, Optional[BaseException]], None], prefix: str = "orbitai") -> None:
    """`dask_map` on an open ``client``."""
    from dask.distributed import as_completed

    futures = {client.submit(fn, *args, key=f"{prefix}-{i}-{key}", pure=False): key
               for i, (key, args) in enumerate(items.items())}
    for fut in as_completed(futures):
        key = futures[fut]
        try:
            value = fut.result()
        except Exception as exc:  # noqa: BLE001 - a task's failure (or its worker's death) is that task's
            finished(key, None, exc)
        else:
            finished(key, value, None)


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
    _check_only_ours(folder, task, "holds no complete")
    return True


def _check_only_ours(folder: Path, task: CohortTask, what: str, also: Sequence[str] = ()) -> None:
    """Refuse (one line, nothing changed) to replace ``folder`` when it holds anything this command does not write."""
    ours = {*task.files, INPUTS_FILE, *also}
    foreign = [p.name for p in folder.iterdir() if p.name not in ours]
    if foreign:
        raise UserError(f"{folder} {what} {task.command} result but holds {', '.join(sorted(foreign)[:3])}, not "
                        "written by this command; move it away or choose another --out (nothing was changed).")


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
            _check_only_ours(folder, task, "holds a", also=previous_files(folder))
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
