"""One cohort runner for every predict command, serial or on ``dask.distributed``.

A task declares only what differs (:class:`CohortTask`): how to predict one case into a folder (a
module-level function, so that it pickles to a Dask worker) and which result class validates that folder.
:func:`run_cohort` does the rest, the same for ``seg``, ``tao``, ``ivgc`` and ``neuro`` predict:

* each case is written to ``OUT/<case_id>/`` only when complete (the task's staged `TaskResult.write`: a
  fresh folder moved into place whole);
* a case whose folder already holds a valid ``result.json`` (and every file it names) is skipped, so a
  rerun after a kill or a cancel does only the missing cases; an incomplete leftover is replaced;
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
import contextlib
import csv
import io
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

from orbitai.errors import BundleError, DeviceError, InputError, OrbitAIError, UserError, one_line

log = logging.getLogger(__name__)

#: The list of failed cases written into OUT: ``case_id,error``.
FAILED_FILE = "failed.csv"
#: Seconds to wait for an existing scheduler (``--scheduler``).
SCHEDULER_TIMEOUT = 10.0
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
    import orbitai.bundle.core as core

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


def execute_case(predict: Callable[[CohortCase, Path], Any], case: CohortCase, out: str) -> CaseRun:
    """Predict one case into ``out/<case_id>`` (in this process or on a Dask worker: the one per-case step of
    both runs); loaded models stay in this process for its next case."""
    from orbitai.bundle.core import enable_model_cache

    enable_model_cache()
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        predict(case, Path(out) / case.case_id)
    return CaseRun(time.perf_counter() - t0, buf.getvalue().splitlines())


# --------------------------------------------------------------------------------------------- options
def add_cohort_options(parser: argparse.ArgumentParser, columns: str = "case_id,image") -> None:
    """``--manifest``, ``--workers`` and ``--scheduler`` of a predict command (its cohort form)."""
    parser.add_argument("--manifest", help=f"CSV with {columns}: predict every case into OUT/<case_id>/ (a case is "
                                           "written only when complete; a rerun skips complete cases; failed cases "
                                           f"are listed in OUT/{FAILED_FILE}, exit 1)")
    parser.add_argument("--workers", type=int,
                        help="with --manifest: run the cases on a local Dask cluster of N worker processes, each "
                             "loading the model once and running one case at a time on 1/N of the cores (default: one "
                             "case after another in this process)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --manifest: run the cases on the dask.distributed cluster of this scheduler "
                             "(e.g. tcp://10.0.0.5:8786); its workers must read the inputs and write OUT")


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
    return bool(manifest)


def image_cases(manifest: str | Path) -> list[CohortCase]:
    """The cases of a ``case_id,image[,segmentation]`` manifest, each reading its image and segmentation."""
    from orbitai.cohort.manifest import read_manifest

    return [CohortCase(c.case_id, {"image": str(c.image), "segmentation": str(c.segmentation) if c.segmentation
                                   else None}, tuple(str(p) for p in (c.image, c.segmentation) if p is not None))
            for c in read_manifest(manifest, need_segmentation=False)]


def check_case_ids(ids: Sequence[str], where: str) -> None:
    """Each id names one folder under OUT, distinct even on a case-insensitive disk."""
    seen: dict[str, str] = {}
    for cid in ids:
        if not cid or cid in (".", "..") or Path(cid).name != cid or "\\" in cid:
            raise UserError(f"{where}: case_id {cid!r} cannot name a folder under --out (one folder name: no '/', "
                            "'\\', '.' or '..').")
        if cid.casefold() in seen:
            raise UserError(f"{where}: case_ids {seen[cid.casefold()]!r} and {cid!r} would share one folder on a "
                            "case-insensitive disk; rename one.")
        seen[cid.casefold()] = cid


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


def _check_reachable(address: str) -> None:
    """A one-line error at once for a scheduler address nobody listens on (no wait for Dask's timeout)."""
    m = re.match(r"^(?:tcp|tls)://\[?([^\]/]+?)\]?:(\d+)/?$", address.strip())
    if not m:
        if "://" not in address and not re.match(r"^[^/:]+:\d+$", address.strip()):
            raise UserError(f"--scheduler {address!r} is not a Dask scheduler address (e.g. tcp://10.0.0.5:8786).")
        return
    try:
        with socket.create_connection((m.group(1), int(m.group(2))), timeout=min(5.0, SCHEDULER_TIMEOUT)):
            pass
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address}: {getattr(exc, 'strerror', None) or one_line(exc)}.") from None


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
            _check_reachable(scheduler)
            try:
                client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT:g}s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
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
            from orbitai.launch import usable_cores

            share = max(1, usable_cores() // n_workers)
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                environ[key] = max(share, int(environ.get(key) or 1))
            stack.enter_context(dask.config.set({"temporary-directory": scratch,
                                                 "distributed.nanny.pre-spawn-environ": environ}))
            from orbitai.cli import deferred_cancel

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
    from dask.distributed import as_completed

    with dask_client(workers, scheduler, len(items)) as client:
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


def _stages(out: Path, case_id: str) -> list[Path]:
    """Hidden stage folders a killed writer of ``case_id`` left in ``out`` (`orbitai.staging.staged_folder`)."""
    pattern = re.compile(rf"^\.{re.escape(case_id)}-[a-z0-9_]{{8}}$")
    try:
        return [p for p in out.iterdir() if p.is_dir() and pattern.match(p.name)]
    except OSError:
        return []


def _leftover(folder: Path, task: CohortTask) -> bool:
    """Whether ``folder`` (an incomplete case) exists; refuses one holding anything this command does not write."""
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise UserError(f"{folder} is a file; the cohort writes case {folder.name} into a folder of that name.")
    foreign = [p.name for p in folder.iterdir() if p.name not in task.files]
    if foreign:
        raise UserError(f"{folder} holds no complete {task.command} result but holds {', '.join(sorted(foreign)[:3])},"
                        " not written by this command; move it away or choose another --out (nothing was changed).")
    return True


def write_failed(out: Path, failed: Mapping[str, str]) -> Path:
    """``OUT/failed.csv`` (``case_id,error``, one line each), written atomically."""
    from orbitai.staging import write_text_atomic

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
    from orbitai.progress import emit
    from orbitai.result import check_outputs

    t_start = time.perf_counter()
    out = Path(out)
    check_case_ids([c.case_id for c in cases], f"The cohort of {task.command}")
    report = CohortReport(total=len(cases))
    todo: list[CohortCase] = []
    leftovers: list[Path] = []
    read = [Path(p).resolve() for p in (*inputs, *(q for c in cases for q in c.paths))]
    for case in cases:
        folder = out / case.case_id
        if case_complete(folder, task.result):
            report.skipped.append(case.case_id)
            continue
        if _leftover(folder, task):
            held = [p for p in read if folder.resolve() in p.parents]
            if held:      # an incomplete case is replaced as a whole: never one holding an input
                raise UserError(f"Writing case {case.case_id} to {folder} would overwrite the input {held[0]}; "
                                "choose another output folder.")
            leftovers.append(folder)
        check_outputs(folder, [*case.paths, *inputs], () if folder in leftovers else task.files)
        todo.append(case)
    existed = out.exists()
    for folder in leftovers:          # every check passed: an incomplete case is replaced
        shutil.rmtree(folder)
    for case in todo:
        for stage in _stages(out, case.case_id):
            shutil.rmtree(stage, ignore_errors=True)
    n = len(cases)
    if report.skipped:
        print(f"{len(report.skipped)} of {n} cases already complete in {out}: skipped", flush=True)

    from tqdm import tqdm  # type: ignore[import-untyped]

    pbar = tqdm(total=n, initial=len(report.skipped), desc=task.command, unit="case", file=sys.stderr,
                disable=None if bar else True, leave=False)
    finished_count = len(report.skipped)
    errors: dict[str, BaseException] = {}

    def finished(cid: str, run: Optional[CaseRun], error: Optional[BaseException]) -> None:
        nonlocal finished_count
        finished_count += 1
        if error is not None:
            if isinstance(error, FATAL_ERRORS):
                raise error
            errors[cid] = error
            report.failed[cid] = _why(error).removeprefix(f"Case {cid}: ")
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

    try:
        if not todo:
            pass
        elif workers == 0 and scheduler is None:
            with _this_process():
                for i, case in enumerate(todo, start=finished_count + 1):
                    print(f"case {i}/{n}: {case.case_id}", flush=True)
                    try:
                        run = execute_case(task.predict, case, str(out))
                    except Exception as exc:  # noqa: BLE001 - a case's failure is that case's (fatal: re-raised)
                        finished(case.case_id, None, exc)
                    else:
                        finished(case.case_id, run, None)
        else:
            dask_map(execute_case, {c.case_id: (task.predict, c, str(out)) for c in todo}, workers, scheduler,
                     finished, prefix=task.command.replace(" ", "-"))
    except BaseException as exc:
        for case in todo:           # what a stopped worker was writing (complete cases stay)
            for stage in _stages(out, case.case_id):
                shutil.rmtree(stage, ignore_errors=True)
        if isinstance(exc, KeyboardInterrupt):
            kept = report.skipped + report.done
            print(f"cancelled after {len(report.done)} of {len(todo)} cases; complete in {out}: "
                  f"{', '.join(kept) or 'none'}", file=sys.stderr, flush=True)
        raise
    finally:
        pbar.close()
    report.wall = time.perf_counter() - t_start
    complete = len(report.skipped) + len(report.done)
    if not report.failed:
        with contextlib.suppress(FileNotFoundError):
            (out / FAILED_FILE).unlink()       # a rerun that completed the earlier failures
        print(f"cohort: {complete} of {n} cases complete in {out} ({len(report.done)} run, "
              f"{len(report.skipped)} skipped), {report.wall:.1f} s", flush=True)
        return report
    if complete == 0:
        if not existed:
            with contextlib.suppress(OSError):
                out.rmdir()
        if n == 1:
            error = errors[cases[0].case_id]
            raise error if isinstance(error, (OrbitAIError, OSError)) else OrbitAIError(_why(error))
        detail = "; ".join(f"{cid} ({why})" for cid, why in report.failed.items())
        raise CohortError(f"every case failed, nothing written: {detail}")
    write_failed(out, report.failed)
    raise CohortError(f"{len(report.failed)} of {n} cases failed ({', '.join(report.failed)}; see "
                      f"{out / FAILED_FILE}); the other {complete} are complete in {out}.")
