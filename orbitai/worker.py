"""The warm worker: a long-lived ``python -m orbitai.worker`` child that runs ``orbitai`` commands one after another.

The parent's side: `WarmJob` has `orbitai.runner.OrbitaiJob`'s interface and result but runs the command on a
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

import atexit
import importlib
import json
import logging
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TextIO, cast

from orbitai.cli import main as cli_main
from orbitai.runner import OUT_TOKEN, OrbitaiJob, child_env, default_python, how_it_ended, kill_tree, popen_group

__all__ = ["MARK", "STARTUP_ENV", "WarmJob", "WarmWorker", "main", "serve", "shared_worker", "warm_worker_enabled"]

log = logging.getLogger(__name__)

#: Prefix of the worker's protocol lines on stdout and stderr (an ASCII record separator first: no
#: command prints it).
MARK = "\x1eorbitai-worker"

#: Imported at start so the first job does not pay them (each optional: a missing one is imported,
#: and reported, by the command that needs it).
PRELOAD = ("numpy", "torch", "SimpleITK", "scipy.ndimage", "orbitai.cli", "orbitai.io", "orbitai.models",
           "orbitai.orbit.models", "orbitai.orbit.segment", "orbitai.seg.engine", "orbitai.tao.predict")


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
            from orbitai.progress import set_cancel_pending

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


def _reader(stream: TextIO, jobs: "queue.Queue[Optional[str]]", on_eof: Callable[[], None]) -> None:
    for line in stream:
        jobs.put(line)
    jobs.put(None)
    on_eof()


def serve(stdin: TextIO, preload: bool = True) -> int:
    """Read jobs from ``stdin`` until it ends; returns the worker's exit code."""
    from orbitai.bundle.core import enable_model_cache

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


# ------------------------------------------------------------------------------- the parent's side
#: Variables read when an interpreter or a library starts: a job that needs other values than the worker
#: started with runs in a fresh child.
STARTUP_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTORCH_CUDA_ALLOC_CONF",
               "PYTORCH_ENABLE_MPS_FALLBACK", "LD_LIBRARY_PATH", "LD_PRELOAD", "DYLD_LIBRARY_PATH")


def warm_worker_enabled() -> bool:
    """False when ``ORBITAI_WARM_WORKER`` is 0/false/no/off: module jobs then start a fresh child each."""
    return os.environ.get("ORBITAI_WARM_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


class _WorkerProcess:
    """One ``python -m orbitai.worker`` child: its pipes, reader threads and the job it is running. ``pid`` is
    the process started (a launcher inside Slicer); ``real_pid`` the interpreter that runs the jobs, from its
    ready line (the same process without a launcher)."""

    def __init__(self, python: str, env: dict[str, str], preload: bool = True) -> None:
        self.mark = MARK
        self.env = env
        argv = [python, "-m", "orbitai.worker"] + ([] if preload else ["--no-preload"])
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                      env=env, **popen_group())
        self.real_pid: Optional[int] = None
        self.ready = threading.Event()
        self.killed_by: Optional[int] = None   # the signal this side killed it with
        self.job: Optional[WarmJob] = None
        self._lock = threading.Lock()
        self._eof: set[str] = set()
        self._threads = [threading.Thread(target=self._read, args=(name,), daemon=True, name=f"orbitai-worker-{name}")
                         for name in ("out", "err")]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None and not self._eof

    def send(self, job: "WarmJob", payload: dict) -> None:
        """Hand ``job`` to the worker (the caller made sure it is idle)."""
        assert self.popen.stdin is not None
        with self._lock:
            self.job = job
        try:
            self.popen.stdin.write(json.dumps(payload) + "\n")
            self.popen.stdin.flush()
        except OSError:
            # it died just now; its readers see the end of its output and fail the job with how it ended
            log.debug("orbitai worker %s: could not send job %s", self.pid, payload.get("id"))

    def _read(self, name: str) -> None:
        stream = self.popen.stdout if name == "out" else self.popen.stderr
        assert stream is not None
        for line in stream:
            text, sep, control = line.partition(self.mark)
            if text and text != "\n":
                self._deliver(name, text if sep else line)
            if sep:
                self._control(name, control.split())
        self._ended(name)

    def _deliver(self, name: str, line: str) -> None:
        job = self.job
        if job is None:  # between jobs: warnings of the worker's own imports
            log.debug("orbitai worker %s: %s", self.pid, line.rstrip())
        elif name == "out":
            job._on_stdout(line)
        else:
            job._on_stderr(line)

    def _control(self, name: str, words: list[str]) -> None:
        if name == "out" and len(words) == 2 and words[0] == "ready" and words[1].isdigit():
            self.real_pid = int(words[1])
            self.ready.set()
            return
        if len(words) < 2 or words[0] != "end":
            return
        with self._lock:
            job = self.job
            if job is None or str(job.job_id) != words[1]:
                return
            if name == "out" and len(words) > 2:
                job._rc = int(words[2])
            job._ends.add(name)
            if job._ends != {"out", "err"}:
                return
            self.job = None  # idle again before the job says it is done: its caller may submit the next one
        job._done.set()

    def _ended(self, name: str) -> None:
        with self._lock:
            self._eof.add(name)
            if self._eof != {"out", "err"}:
                return
            job, self.job = self.job, None
        try:
            rc: Optional[int] = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        if self.killed_by is not None:   # through a launcher rc is the launcher's (1): say what this side sent
            rc = -self.killed_by
        if job is not None and not job._done.is_set():
            if not job._cancelled:
                how = how_it_ended(rc, "".join(job._stderr))
                job._on_stderr(f"orbitai worker: the worker process ended during the job ({how}); "
                               "the next job starts a new one.\n")
            job._rc = rc if rc is not None else -signal.SIGKILL
            job._done.set()

    def interrupt(self) -> bool:
        """Interrupt the running command (``KeyboardInterrupt`` in it; the worker stays): SIGINT to the real
        interpreter. False when it cannot be sent: before the ready line (its process id unknown; never to a
        launcher, which would die of it or ignore it), or on Windows (no SIGINT for one process)."""
        if sys.platform == "win32" or self.real_pid is None:
            return False
        try:
            os.kill(self.real_pid, signal.SIGINT)
        except OSError:   # it has just ended
            pass
        return True

    def kill(self) -> None:
        """Kill the worker and everything it started, the real interpreter behind a launcher included (no
        clean-up inside: its job is discarded). Never raises."""
        self.killed_by = getattr(signal, "SIGKILL", signal.SIGTERM)
        kill_tree(self.popen, [p for p in (self.real_pid,) if p is not None and p != self.pid])

    def close(self, timeout: float = 3.0) -> None:
        """Let the worker end (stdin closed: it interrupts a running job and exits); kill it if it lingers."""
        try:
            if self.popen.stdin is not None:
                self.popen.stdin.close()
        except OSError:
            pass
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait()
        for t in self._threads:
            t.join(timeout=2)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


class WarmWorker:
    """A warm ``orbitai`` worker child, started on the first job and again after it died (see
    `orbitai.worker`). Runs one `WarmJob` at a time; `submit` says None while it is busy. ``preload``: import
    torch and the command modules at start (the default), not when the first job needs them."""

    def __init__(self, python: str | None = None, env: dict[str, str] | None = None, preload: bool = True) -> None:
        self.python = python or default_python()
        self.env = env
        self.preload = preload
        self.starts = 0  # worker processes started so far (restarts included)
        self._proc: Optional[_WorkerProcess] = None
        self._lock = threading.Lock()
        self._next_id = 0

    @property
    def pid(self) -> Optional[int]:
        """The worker's process id (None before the first start)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def busy(self) -> bool:
        proc = self._proc
        return proc is not None and proc.job is not None and proc.alive()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def start(self) -> "WarmWorker":
        """Start the worker now (its imports then run while nothing waits for them); no-op when running."""
        with self._lock:
            self._ensure()
        return self

    def _ensure(self) -> _WorkerProcess:
        if self._proc is None or not self._proc.alive():
            if self._proc is not None:
                log.info("orbitai worker %s ended (%s); starting a new one", self._proc.pid,
                         how_it_ended(self._proc.popen.poll()))
                self._proc.close(timeout=1)
            self._proc = _WorkerProcess(self.python, child_env(self.env), self.preload)
            self.starts += 1
        return self._proc

    def accepts(self, python: str, env: dict[str, str]) -> bool:
        """Whether a job for ``python`` with environment ``env`` can run in this worker's interpreter."""
        if os.path.realpath(python) != os.path.realpath(self.python):
            return False
        started = self._proc.env if self._proc is not None else child_env(self.env)
        return all(env.get(k) == started.get(k) for k in STARTUP_ENV)

    def submit(self, job: "WarmJob", argv: list[str], env: dict[str, str], cwd: str) -> Optional[_WorkerProcess]:
        """Run ``job`` (``argv`` with ``{out}`` replaced) in the worker, starting it first if needed;
        None (nothing done) when busy with another job or when ``env`` needs a fresh interpreter."""
        with self._lock:
            if self.busy:
                return None
            proc = self._ensure()
            if not all(env.get(k) == proc.env.get(k) for k in STARTUP_ENV):
                return None
            self._next_id += 1
            job.job_id = self._next_id
            proc.send(job, {"id": job.job_id, "argv": argv, "env": env, "cwd": cwd})
            return proc

    def shutdown(self, timeout: float = 3.0) -> None:
        """Stop the worker (a running job is interrupted and discarded); the next job starts a new one."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.close(timeout)


_shared: Optional[WarmWorker] = None
_shared_lock = threading.Lock()


def shared_worker() -> WarmWorker:
    """This process's warm worker (one per Slicer session), shut down when the process exits."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = WarmWorker()
            atexit.register(_shared.shutdown)
        return _shared


class WarmJob(OrbitaiJob):
    """`OrbitaiJob`'s interface and semantics (``{out}`` folder handed over only on success, progress, cancel,
    `JobResult`) for a command run on a warm worker (default: `shared_worker`). Started while the worker is
    busy, or with an environment or interpreter the worker cannot take, it runs as a one-shot child."""

    def __init__(self, args: Sequence[str], dest: str | os.PathLike | None = None, python: str | None = None,
                 env: dict[str, str] | None = None, keep_stdout_lines: int = 200, module: str = "orbitai",
                 worker: Optional[WarmWorker] = None):
        super().__init__(args, dest, python, env, keep_stdout_lines, module)
        self.worker = worker
        self.job_id = 0
        self.worker_pid: Optional[int] = None  # the worker that ran it (None: a one-shot child)
        self._proc_w: Optional[_WorkerProcess] = None
        self._done = threading.Event()
        self._ends: set[str] = set()
        self._rc: Optional[int] = None

    @property
    def warm(self) -> bool:
        """Whether the job runs on the warm worker (False before start and for a one-shot child)."""
        return self._proc_w is not None

    @property
    def started(self) -> bool:
        return self.warm or self.proc is not None

    def start(self) -> "WarmJob":
        if self.started:
            raise RuntimeError("This job was already started.")
        worker = self.worker or shared_worker()
        env = child_env(self.env)
        if self.module != "orbitai" or not worker.accepts(self.python, env):
            super().start()
            return self
        self.tmp = Path(tempfile.mkdtemp(prefix="orbitai-job-"))
        argv = [a.replace(OUT_TOKEN, str(self.tmp)) for a in self.args]
        try:
            proc = worker.submit(self, argv, env, os.getcwd())
        except BaseException:
            self.cleanup()
            raise
        if proc is None:  # busy with another module's job: this one runs in its own child
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
            super().start()
            return self
        self._proc_w, self.worker_pid = proc, proc.pid
        return self

    @property
    def finished(self) -> bool:
        return self._done.is_set() if self.warm else super().finished

    def cancel(self, grace_s: float = 0.9) -> None:
        """Interrupt the command (SIGINT to the worker's real interpreter); kill the worker if it has not
        stopped within ``grace_s`` (the next job starts a new one); the outputs are discarded. Returns at once:
        only the signal is sent on the calling thread, the wait and the kill run on a background thread."""
        if not self.warm:
            super().cancel(grace_s)
            return
        if self._cancelled:       # pressed again: one interrupt, one background stop
            return
        self._cancelled = True
        proc = self._proc_w
        assert proc is not None
        if self._done.is_set():
            return
        sent = proc.interrupt()
        threading.Thread(target=self._stop, args=(proc, grace_s, sent), daemon=True,
                         name=f"orbitai-cancel-{self.job_id}").start()

    def _stop(self, proc: _WorkerProcess, grace_s: float, sent: bool) -> None:
        """Background side of `cancel`: interrupt once the worker is ready (if not yet done), wait ``grace_s``
        for the job to end, else kill the worker; then remove what the command wrote."""
        if sys.platform == "win32":  # pragma: no cover - no SIGINT for one process on Windows: stop the worker
            proc.kill()
        elif not sent and proc.ready.wait(grace_s):
            proc.interrupt()
        if not self._done.wait(grace_s):
            log.info("orbitai worker %s did not stop within %.1f s of the interrupt; killing it", proc.pid, grace_s)
            proc.kill()
            self._done.wait(10)
        if self.tmp is not None:   # written by the command after the caller's cleanup
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _wait(self) -> int:
        if not self.warm:
            return super()._wait()
        self._done.wait()
        return self._rc if self._rc is not None else -signal.SIGKILL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
