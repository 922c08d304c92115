"""Run an ``orbitai`` CLI command in a child process, with progress and cancel.

Slicer modules run models this way so that the GUI stays responsive, a crash cannot take
the application down, and *Cancel* can kill the work at any moment. The child writes its
outputs into a fresh temporary folder (the token ``{out}`` in the argument list is replaced
by it); they are handed over (moved to ``dest``) only when the child exits with status 0,
so a cancel or a failure never leaves half-written results where the caller looks.

Two ways to use it::

    result = OrbitaiJob(["seg", "predict", img, "--out", "{out}/seg.seg.nrrd"]).run(callback)

    job = OrbitaiJob([...]); job.start()          # from a GUI: poll on a timer
    for done, total, msg in job.poll(): ...       # progress events since the last poll
    if job.finished: result = job.result()
    job.cancel()                                  # kills the whole process tree

`run` stops the child and removes its folder when the caller is interrupted (``KeyboardInterrupt``,
which `orbitai.cli` also raises on SIGTERM), so a cancelled parent leaves no orphan behind.

`WarmJob` has the same interface and result but runs the command on a warm worker (`WarmWorker`, one per
process from `shared_worker`): a ``python -m orbitai.worker`` child started once, which keeps torch and the
loaded models between jobs (see `orbitai.worker`). One job at a time per worker: a job started while the
worker is busy (another module's Apply still running), or one whose environment needs a fresh interpreter
(a different PYTHONPATH, CUDA_VISIBLE_DEVICES, thread counts, ...), runs as a one-shot child instead.
Cancel interrupts the command inside the worker (SIGINT: exit 130, outputs discarded) and kills the worker
if it has not stopped within about a second; a dead worker is started again by the next job.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from orbitai.errors import JobError
from orbitai.progress import ProgressCallback, parse

__all__ = ["OUT_TOKEN", "JobError", "JobResult", "OrbitaiJob", "WarmJob", "WarmWorker", "default_python",
           "shared_worker", "warm_worker_enabled", "write_job_input", "child_error"]

log = logging.getLogger(__name__)

OUT_TOKEN = "{out}"


def write_job_input(vol, path: str | os.PathLike) -> Path:
    """Write a volume handed to a job (a scene volume in the job's temporary folder), uncompressed: the
    file lives seconds, and compressing a 512x512x100 CT costs about a second to write and 0.2 s to read."""
    from orbitai.io import write_volume

    return write_volume(vol, path, compress=False)


@dataclass
class JobResult:
    returncode: int
    out_dir: Optional[Path]
    stdout: list[str] = field(default_factory=list)
    stderr: str = ""
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.cancelled


#: The one error line of an ``orbitai`` command (see `orbitai.cli.main`).
_CLI_ERROR = re.compile(r"^orbitai [a-z][\w -]*?: error: (?P<message>.+)$")
#: Lines of a Python traceback or crash report that say where, not what.
_STACK_LINES = ("Traceback (most recent call last)", "Current thread", "Thread 0x", "Stack (most recent call first)",
                "Extension modules:", "During handling of the above exception", "The above exception was")


def child_error(what: str, args: list[str], res: JobResult) -> str:
    """One line for a failed child: its own error line (``orbitai ...: error: MESSAGE``) as ``WHAT failed:
    MESSAGE``; for a crash (a traceback, a fatal error, a signal) what stopped it and where to read more.
    Stack lines never reach the message; a crash's whole stderr goes to the log."""
    lines = [ln.rstrip() for ln in res.stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        m = _CLI_ERROR.match(ln)
        if m:
            return f"{what} failed: {m.group('message')}"
    log.error("%s: the orbitai child %s ended with %s; its stderr:\n%s", what, args, res.returncode, res.stderr)
    if res.returncode < 0:
        try:
            how = f"killed by signal {signal.Signals(-res.returncode).name}"
        except ValueError:
            how = f"killed by signal {-res.returncode}"
    else:
        how = f"exit code {res.returncode}"
    fatal = [ln for ln in lines if ln.startswith("Fatal Python error")]
    said = fatal or [ln for ln in lines if not ln[0].isspace() and not ln.startswith(_STACK_LINES)]
    cause = f": {said[-1]}" if said else ""
    command = " ".join(a for a in args[:2] if a.isidentifier())
    return (f"{what} stopped unexpectedly ({how}{cause}). Its output is in the application log; "
            f"'orbitai --debug {command} ...' on the same input shows the details.")


def default_python() -> str:
    """The interpreter for child runs: Slicer's ``PythonSlicer`` when inside Slicer, else this one."""
    here = Path(sys.executable).parent
    for name in ("PythonSlicer", "PythonSlicer.exe"):
        cand = here / name
        if cand.exists():
            return str(cand)
    return sys.executable


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an ``orbitai`` child: this one, ``extra`` on top, unbuffered output, and this very
    orbitai package first on PYTHONPATH (e.g. the copy inside the extension)."""
    env = dict(os.environ)
    env.update(extra or {})
    env.setdefault("PYTHONUNBUFFERED", "1")
    pkg_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _popen_group() -> dict:
    """Popen options giving the child its own process group, so that a kill reaches all of it."""
    if sys.platform != "win32":
        return {"start_new_session": True}
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # pragma: no cover - Windows


class OrbitaiJob:
    """One ``python -m orbitai <args>`` child process (see module docstring)."""

    def __init__(self, args: Sequence[str], dest: str | os.PathLike | None = None,
                 python: str | None = None, env: dict[str, str] | None = None,
                 keep_stdout_lines: int = 200, module: str = "orbitai"):
        self.module = module
        self.args = [str(a) for a in args]
        self.dest = Path(dest) if dest is not None else None
        self.python = python or default_python()
        self.env = env
        self.keep = keep_stdout_lines
        self.tmp: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self._events: "queue.Queue[tuple[int, int, str]]" = queue.Queue()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._threads: list[threading.Thread] = []
        self._cancelled = False
        self._result: Optional[JobResult] = None

    # ------------------------------------------------------------------ control
    def start(self) -> "OrbitaiJob":
        if self.proc is not None:
            raise RuntimeError("This job was already started.")
        self.tmp = Path(tempfile.mkdtemp(prefix="orbitai-job-"))
        argv = [self.python, "-m", self.module] + [a.replace(OUT_TOKEN, str(self.tmp)) for a in self.args]
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         stdin=subprocess.DEVNULL, text=True, bufsize=1, env=child_env(self.env),
                                         **_popen_group())
        except BaseException:
            self.cleanup()
            raise
        self._threads = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self._on_stdout(line)

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self._on_stderr(line)

    def _on_stdout(self, line: str) -> None:
        ev = parse(line)
        if ev is not None:
            self._events.put(ev)
        else:
            self._stdout.append(line.rstrip("\n"))
            del self._stdout[:-self.keep]

    def _on_stderr(self, line: str) -> None:
        self._stderr.append(line)
        del self._stderr[:-self.keep]

    @property
    def started(self) -> bool:
        return self.proc is not None

    def poll(self) -> list[tuple[int, int, str]]:
        """Progress events received since the last call (never blocks)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    @property
    def finished(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def cancel(self, grace_s: float = 2.0) -> None:
        """Stop the child and everything it started; its outputs are discarded."""
        if self.proc is None or self.proc.poll() is not None:
            self._cancelled = True
            return
        self._cancelled = True
        try:
            if sys.platform != "win32":
                os.killpg(self.proc.pid, signal.SIGTERM)
            else:  # pragma: no cover
                self.proc.send_signal(signal.CTRL_BREAK_EVENT)
            self.proc.wait(timeout=grace_s)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        if self.proc.poll() is None:
            try:
                if os.name == "posix":
                    os.killpg(self.proc.pid, signal.SIGKILL)
                else:  # pragma: no cover
                    self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()

    def abort(self) -> None:
        """Cancel the child (if still running) and discard its outputs, whatever state the job is in."""
        if not self.started:
            self.cleanup()
            return
        self.cancel()
        self.result()

    def _wait(self) -> int:
        """Block until the command has ended and all its output is read; its exit code."""
        assert self.proc is not None
        rc = self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def result(self) -> JobResult:
        """Finish up a completed job: hand outputs over on success, discard them otherwise."""
        if self._result is not None:
            return self._result
        if not self.started:
            raise RuntimeError("The job was never started.")
        rc = self._wait()
        out_dir: Optional[Path] = None
        ok = rc == 0 and not self._cancelled
        if ok and self.tmp is not None:
            if self.dest is not None:
                self.dest.mkdir(parents=True, exist_ok=True)
                for item in self.tmp.iterdir():
                    target = self.dest / item.name
                    if target.is_dir():
                        shutil.rmtree(target)
                    shutil.move(str(item), str(target))
                shutil.rmtree(self.tmp, ignore_errors=True)
                out_dir = self.dest
            else:
                out_dir = self.tmp  # the caller reads it, then calls cleanup()
        elif self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._result = JobResult(rc, out_dir, list(self._stdout), "".join(self._stderr), self._cancelled)
        return self._result

    def cleanup(self) -> None:
        """Remove the temporary output folder (when no ``dest`` was given)."""
        if self.tmp is not None and self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ----------------------------------------------------------------- blocking
    def run(self, callback: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None,
            poll_s: float = 0.05, check: bool = True) -> JobResult:
        """Start, stream progress to ``callback``, honour ``cancel``; raise `JobError` on failure."""
        try:   # the start too: an interrupt between the output folder's creation and the child's must clean up
            if not self.started:
                self.start()
            while not self.finished:
                if cancel is not None and cancel.is_set():
                    self.cancel()
                    break
                for ev in self.poll():
                    if callback:
                        callback(*ev)
                time.sleep(poll_s)
        except BaseException:  # Ctrl-C, SIGTERM (see orbitai.cli) or a failing callback: no orphan, no files
            while True:
                try:
                    self.abort()
                    break
                except KeyboardInterrupt:  # a second Ctrl-C must not cut the clean-up short
                    continue
            raise
        for t in self._threads:
            t.join(timeout=5)
        for ev in self.poll():
            if callback:
                callback(*ev)
        res = self.result()
        if check and not res.ok:
            if res.cancelled:
                raise JobError("Cancelled; nothing was written.")
            tail = [ln for ln in res.stderr.strip().splitlines() if ln.strip()][-5:]
            raise JobError(f"orbitai {' '.join(self.args[:2])} failed (exit {res.returncode}): " + " | ".join(tail))
        return res


# ---------------------------------------------------------------------------------------------- warm worker
#: Variables read when an interpreter or a library starts: a job that needs other values than the worker
#: started with runs in a fresh child.
STARTUP_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTORCH_CUDA_ALLOC_CONF",
               "PYTORCH_ENABLE_MPS_FALLBACK", "LD_LIBRARY_PATH", "LD_PRELOAD", "DYLD_LIBRARY_PATH")


def warm_worker_enabled() -> bool:
    """False when ``ORBITAI_WARM_WORKER`` is 0/false/no/off: module jobs then start a fresh child each."""
    return os.environ.get("ORBITAI_WARM_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


def _how_it_ended(rc: Optional[int]) -> str:
    if rc is None:
        return "it did not exit"
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


class _WorkerProcess:
    """One ``python -m orbitai.worker`` child: its pipes, reader threads and the job it is running."""

    def __init__(self, python: str, env: dict[str, str], preload: bool = True) -> None:
        from orbitai.worker import MARK

        self.mark = MARK
        self.env = env
        argv = [python, "-m", "orbitai.worker"] + ([] if preload else ["--no-preload"])
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                      env=env, **_popen_group())
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
        if len(words) < 2 or words[0] != "end":
            return  # "ready PID"
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
        if job is not None and not job._done.is_set():
            if not job._cancelled:
                job._on_stderr(f"orbitai worker: the worker process ended during the job ({_how_it_ended(rc)}); "
                               "the next job starts a new one.\n")
            job._rc = rc if rc is not None else -signal.SIGKILL
            job._done.set()

    def interrupt(self) -> None:
        """Interrupt the running command (``KeyboardInterrupt`` in it); the worker stays."""
        try:
            if sys.platform != "win32":
                os.kill(self.pid, signal.SIGINT)
            else:  # pragma: no cover - no SIGINT for one process on Windows: stop the worker
                self.kill()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """Kill the worker and everything it started (no clean-up inside: its job is discarded)."""
        try:
            if sys.platform != "win32":
                os.killpg(self.pid, signal.SIGKILL)
            else:  # pragma: no cover
                self.popen.kill()
        except (ProcessLookupError, PermissionError):
            pass

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
                         _how_it_ended(self._proc.popen.poll()))
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
        """Interrupt the command; kill the worker if it has not stopped within ``grace_s`` (the next job
        starts a new one). Returns within about ``grace_s``; the outputs are discarded."""
        if not self.warm:
            super().cancel(grace_s)
            return
        self._cancelled = True
        assert self._proc_w is not None
        if self._done.is_set():
            return
        self._proc_w.interrupt()
        if self._done.wait(grace_s):
            return
        log.info("orbitai worker %s did not stop within %.1f s of the interrupt; killing it", self._proc_w.pid, grace_s)
        self._proc_w.kill()
        self._done.wait(5)

    def _wait(self) -> int:
        if not self.warm:
            return super()._wait()
        self._done.wait()
        return self._rc if self._rc is not None else -signal.SIGKILL
