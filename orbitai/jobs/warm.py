"""The parent's side of the warm worker (`orbitai.worker`): `WarmJob` runs an ``orbitai`` command on the
session's long-lived worker (`shared_worker`), with `orbitai.jobs.child.OrbitaiJob`'s interface and result; a job
the worker cannot take (busy, another start-up environment: `STARTUP_ENV`) runs as a one-shot child instead. The
protocol and the cancel semantics are described in `orbitai.worker`."""
from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional, Sequence

from orbitai.jobs.child import OUT_TOKEN, OrbitaiJob
from orbitai.jobs.process import child_env, default_python, how_it_ended, kill_tree, popen_group

__all__ = ["MARK", "STARTUP_ENV", "WarmJob", "WarmWorker", "shared_worker", "warm_worker_enabled"]

log = logging.getLogger(__name__)

#: Prefix of the worker's protocol lines on stdout and stderr (an ASCII record separator first: no
#: command prints it).
MARK = "\x1eorbitai-worker"


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
        if self.popen.poll() is None:      # a worker that already ended is reaped without waiting (Apply's press)
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
        sent = proc.interrupt() if grace_s > 0 else False   # no grace: no interrupt to race the kill
        threading.Thread(target=self._stop, args=(proc, grace_s, sent), daemon=True,
                         name=f"orbitai-cancel-{self.job_id}").start()

    def _stop(self, proc: _WorkerProcess, grace_s: float, sent: bool) -> None:
        """Background side of `cancel`: interrupt once the worker is ready (if not yet done), wait ``grace_s``
        for the job to end, else kill the worker; then remove what the command wrote."""
        if sys.platform == "win32" or grace_s <= 0:  # no SIGINT for one process on Windows; no grace: stop it now
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

