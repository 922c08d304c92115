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

`orbitai.jobs.warm.WarmJob` has the same interface and result but runs the command on a warm worker, a
``python -m orbitai.worker`` child that keeps torch and the loaded models between jobs. What both share (the
child's environment, its process group, the kill, `JobResult` and how a child ended) is `orbitai.jobs.process`;
the input files a job is handed are written by `orbitai.jobs.inputs`.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

from orbitai.errors import JobError
from orbitai.jobs.process import JobResult, child_env, default_python, kill_tree, popen_group
from orbitai.progress import ProgressCallback, parse

__all__ = ["OUT_TOKEN", "JobError", "OrbitaiJob"]

OUT_TOKEN = "{out}"


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
                                         **popen_group())
        except BaseException:
            self.cleanup()
            raise
        # each reader is listed once started: a Ctrl-C between the two must not leave an unstarted thread to join
        for target in (self._read_stdout, self._read_stderr):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
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

    def cancel(self, grace_s: float = 1.5) -> None:
        """Stop the child and everything it started; its outputs are discarded. The child stops itself on the
        signal (within a second, library calls included: `orbitai.progress.interruptible`); one that has not after
        ``grace_s`` is killed, so a job stops within 2 s of its Cancel either way."""
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
        except (subprocess.TimeoutExpired, OSError):  # OSError: gone already, or no console to signal (Windows)
            pass
        if self.proc.poll() is None:
            kill_tree(self.proc)
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
