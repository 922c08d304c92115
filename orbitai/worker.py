"""The warm worker's own side: a long-lived ``python -m orbitai.worker`` child that runs ``orbitai`` commands one
after another. Its parent's side is `orbitai.jobs.warm`.

The parent's side: `WarmJob` has `orbitai.jobs.child.OrbitaiJob`'s interface and result but runs the command on a
warm worker (`WarmWorker`, one per process from `shared_worker`), started once, which keeps torch and the
loaded models between jobs. One job at a time per worker: a job started while the worker is busy (another
module's Apply still running), or one whose environment needs a fresh interpreter (a different PYTHONPATH,
CUDA_VISIBLE_DEVICES, thread counts, ...: `STARTUP_ENV`), runs as a one-shot child instead. Cancel interrupts
the command inside the worker (SIGINT: exit 130, outputs discarded) and kills the worker if it has not stopped
within about a second; a dead worker is started again by the next job.

Inside Slicer the child is ``PythonSlicer``, a launcher (CTKAppLauncher) that starts the real interpreter
(``python-real``) with the same standard streams and forwards no signal. The worker therefore names its own
process id in its ready line, and the interrupt goes to that process, not to the launcher; a kill reaches both.
`WarmJob.cancel` only sends the signal on the calling thread (the GUI's): waiting for the end and killing a
worker that does not stop happen on a background thread.

The child's side (`serve`, `main`): started once per Slicer session by `WarmWorker`, it imports torch,
SimpleITK and the command modules once, and keeps the models it loaded
(`orbitai.bundle.core.enable_model_cache`), so a second Apply pays neither the imports nor the model loading.

Protocol (text lines):

* stdin, one JSON object a job: ``{"id": 7, "argv": ["seg", "predict", ...], "env": {...}, "cwd": "..."}``
  (``{out}`` already replaced; ``env`` is the whole environment the command runs with; ``cwd`` its folder).
  End of stdin (the parent closed the pipe or died) ends the worker, after interrupting a running job.
* The job runs in-process as `orbitai.cli.main(argv)` and writes to the worker's own stdout and stderr,
  which belong to that job until its end markers: ``MARK end ID RC`` on stdout and ``MARK end ID`` on
  stderr (``MARK`` = `MARK`, possibly after an unterminated line of the job). ``MARK ready PID`` on stdout
  says the imports are done.
* SIGINT interrupts the running job (``KeyboardInterrupt`` inside the command: exit 130, "cancelled");
  between jobs it is ignored.

Between jobs nothing leaks: the working folder, environment, ``sys.argv``/``sys.path``, logging, warnings
filters, signal handlers, umask, torch threads and grad mode, and the random generators (torch's as a fresh
process has it) are put back as they were before the first job.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import random
import signal
import sys
import tempfile
import threading
import warnings
from typing import Any, Callable, Optional, TextIO, cast

from orbitai.bundle.core import enable_model_cache
from orbitai.cli import main as cli_main
from orbitai.jobs.warm import MARK
from orbitai.progress import set_cancel_pending

__all__ = ["main", "serve"]

log = logging.getLogger(__name__)

#: Imported at start so the first job does not pay them (each optional: a missing one is imported,
#: and reported, by the command that needs it).
PRELOAD = ("numpy", "torch", "SimpleITK", "scipy.ndimage", "orbitai.cli", "orbitai.io", "orbitai.models",
           "orbitai.orbit.models", "orbitai.orbit.segment", "orbitai.engine.inference", "orbitai.tao.predict")


class _State:
    """What a command may change in the process, captured before the first job and put back after each."""

    def __init__(self) -> None:
        self.cwd = os.getcwd()
        self.environ = dict(os.environ)
        self.argv = list(sys.argv)
        self.path = list(sys.path)
        self.stdout, self.stderr = sys.stdout, sys.stderr
        root = logging.getLogger()
        self.root_level = root.level
        self.root_handlers = list(root.handlers)
        # loggers that exist now; those first created by a command keep what their module's import gave them
        self.logger_levels = {name: lg.level for name, lg in logging.Logger.manager.loggerDict.items()
                              if isinstance(lg, logging.Logger)}
        self.logging_disable = logging.root.manager.disable
        self.filters = list(warnings.filters)
        self.showwarning = warnings.showwarning
        self.signals = {s: signal.getsignal(s) for s in _signals()}
        self.umask = os.umask(0)
        os.umask(self.umask)
        self.torch: dict[str, Any] = {}
        torch = sys.modules.get("torch")
        if torch is not None:
            self.torch = {"threads": torch.get_num_threads(), "grad": torch.is_grad_enabled(),
                          "rng": torch.random.get_rng_state(), "seed": torch.initial_seed(),
                          "dtype": torch.get_default_dtype()}

    def before_job(self, env: dict[str, str], cwd: str) -> None:
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again, as a fresh process does
        os.chdir(cwd)
        # a fresh process's generators: torch's fixed default seed, numpy's and Python's from the OS
        torch = sys.modules.get("torch")
        if torch is not None and self.torch:
            torch.random.set_rng_state(self.torch["rng"])
            if torch.cuda.is_initialized():
                torch.cuda.manual_seed_all(self.torch["seed"])
        np = sys.modules.get("numpy")
        if np is not None:
            np.random.seed()
        random.seed()

    def restore(self) -> None:
        sys.stdout, sys.stderr = self.stdout, self.stderr
        os.chdir(self.cwd)
        os.environ.clear()
        os.environ.update(self.environ)
        tempfile.tempdir = None
        sys.argv[:] = self.argv
        sys.path[:] = self.path
        root = logging.getLogger()
        for h in list(root.handlers):
            if h not in self.root_handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(self.root_level)
        for name, level in self.logger_levels.items():
            logging.getLogger(name).setLevel(level)
        logging.disable(self.logging_disable)
        cast(list, warnings.filters)[:] = self.filters
        warnings.showwarning = self.showwarning
        mutated = getattr(warnings, "_filters_mutated", None)
        if mutated is not None:  # forget which warnings were shown: the next job sees them again
            mutated()
        for sig, handler in self.signals.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
        os.umask(self.umask)
        torch = sys.modules.get("torch")
        if torch is not None and self.torch:
            torch.set_num_threads(self.torch["threads"])
            torch.set_grad_enabled(self.torch["grad"])
            torch.set_default_dtype(self.torch["dtype"])


def _signals() -> list[int]:
    return [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]


class _Interrupt:
    """SIGINT handler: ``KeyboardInterrupt`` while a job runs, nothing between jobs."""

    def __init__(self) -> None:
        self.running = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.running:
            set_cancel_pending(True)   # as orbitai.cli's handler: a swallowed interrupt comes back at the next progress line
            raise KeyboardInterrupt("cancelled by the parent")


def _run(argv: list[str], interrupt: _Interrupt) -> int:
    """One command in-process, every outcome an exit code (as ``python -m orbitai`` would end)."""
    try:
        interrupt.running = True
        return cli_main(argv)
    except KeyboardInterrupt:  # before or after cli.main's own handling (parsing, building the parser)
        print("orbitai: cancelled", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), its message already printed
        code = exc.code
        if code is None or isinstance(code, int):
            return int(code or 0)
        print(code, file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - cli.main turns command errors into one line; this is the rest
        print(f"orbitai: error: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        interrupt.running = False


def imports_cut_short(modules: Optional[dict[str, Any]] = None) -> list[str]:
    """Modules whose package is not imported: what an import cut short by a cancel leaves (the package taken out of
    ``sys.modules``, its submodules kept), on which the next import of that package fails ("partially initialized
    module 'pydicom' has no attribute 'uid'", seen after a cancelled job in the browser)."""
    names = set(sys.modules if modules is None else modules)
    return sorted(n for n in names if "." in n and n.rpartition(".")[0] not in names)


def _reader(stream: TextIO, jobs: "queue.Queue[Optional[str]]", on_eof: Callable[[], None]) -> None:
    for line in stream:
        jobs.put(line)
    jobs.put(None)
    on_eof()


def serve(stdin: TextIO, preload: bool = True) -> int:
    """Read jobs from ``stdin`` until it ends; returns the worker's exit code."""
    interrupt = _Interrupt()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)

    def parent_gone() -> None:
        # stdin ended (the parent closed it or died): stop a running job now rather than finish it for
        # nobody; idle (or still importing), leave at once
        if interrupt.running:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            os._exit(0)

    # stdin is read by a thread, from the start, so that its end is noticed during the imports and jobs
    jobs: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(target=_reader, args=(stdin, jobs, parent_gone), daemon=True).start()
    if preload:
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the command that needs it reports the failure itself
                pass
    enable_model_cache()
    state = _State()
    out, err = sys.stdout, sys.stderr
    print(f"{MARK} ready {os.getpid()}", file=out, flush=True)
    while True:
        try:
            line = jobs.get()
        except KeyboardInterrupt:
            continue
        if line is None:
            return 0
        if not line.strip():
            continue
        try:
            job = json.loads(line)
            job_id, argv = int(job["id"]), [str(a) for a in job["argv"]]
            env = {str(k): str(v) for k, v in (job.get("env") or state.environ).items()}
            cwd = str(job.get("cwd") or state.cwd)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            print(f"orbitai worker: error: a job line that is not a job ({exc}): {line[:200]!r}", file=err, flush=True)
            continue
        try:
            state.before_job(env, cwd)
            sys.argv[:] = ["orbitai", *argv]
            rc = _run(argv, interrupt)
        except OSError as exc:  # the job's folder is gone, say
            print(f"orbitai: error: {exc}", file=sys.stderr)
            rc = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            state.restore()
        # the markers close the job's output on both streams; a job line left without its newline is fine
        try:
            print(f"{MARK} end {job_id} {rc}", file=out, flush=True)
            print(f"{MARK} end {job_id}", file=err, flush=True)
        except OSError:  # BrokenPipeError: the parent is gone
            return 0
        if rc == 130 and imports_cut_short():
            return 0        # a cancel cut an import short: the parent starts a fresh worker for the next job


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m orbitai.worker [--no-preload]`` (without preloading, each module is imported by the first
    job that needs it)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        return serve(sys.stdin, preload="--no-preload" not in args)
    except KeyboardInterrupt:  # a SIGINT in the instant between two jobs' bookkeeping
        return 130
    except BrokenPipeError:  # the parent went away while the worker wrote to it
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
