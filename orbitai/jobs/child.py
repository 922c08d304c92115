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
``python -m orbitai.worker`` child that keeps torch and the loaded models between jobs.
"""
from __future__ import annotations

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
from typing import IO, Optional, Sequence

import numpy as np

import orbitai
from orbitai.errors import JobError
from orbitai.progress import ProgressCallback, parse

__all__ = ["OUT_TOKEN", "JobError", "JobResult", "OrbitaiJob", "child_env", "child_error", "default_python",
           "how_it_ended", "kill_tree", "popen_group", "write_job_input", "JobInputWriter", "JobInputs",
           "JobFolder"]

log = logging.getLogger(__name__)

OUT_TOKEN = "{out}"


def write_job_input(vol, path: str | os.PathLike, inputs: Optional[JobInputs] = None) -> Path:
    """Write a volume handed to a job (a scene volume in the job's temporary folder), uncompressed: the
    file lives seconds, and compressing a 512x512x100 CT costs about a second to write and 0.2 s to read.
    ``vol``: a `Volume`, a label map made a slab at a time (`orbitai.mrml.label_slabs.LabelSlabs`: a segmentation's,
    read from its layers as each slab is written), or a function returning either, called when the file is written
    (e.g. a segmentation that only its whole export gives: exported in a poll tick of its own, not in the press).

    ``inputs``: the job's `JobInputs` (a Logic started from a GUI thread: `orbitai.mrml.jobs.JobLogic.start` hands
    it to the start hook in its `JobFolder`): nothing is written now, the file is added there, written a slab per
    timer tick before the job starts. None: written now. The path is returned either way."""
    if inputs is not None:
        return inputs.add(vol, path)
    return _write_now(vol, path)


def _write_now(vol, path: str | os.PathLike) -> Path:
    from orbitai.io import write_volume

    vol = vol() if callable(vol) else vol
    if _is_slabs(vol):                           # made a slab at a time: written so (all of it now)
        writer = JobInputWriter(vol, path)
        while not writer.step():
            pass
        return writer.path
    return write_volume(vol, path, compress=False)


def _is_slabs(vol) -> bool:
    """``vol`` is a label map made a k-slab at a time (e.g. `orbitai.mrml.label_slabs.LabelSlabs`): ``shape``,
    ``dtype``, geometry and ``slab(k0, k1)``, not a whole array."""
    return callable(getattr(vol, "slab", None))


#: NRRD type names of the voxel types `JobInputWriter` writes (others go through `write_job_input` at once).
_NRRD_TYPES = {"int8": "signed char", "uint8": "uchar", "int16": "short", "uint16": "ushort", "int32": "int",
               "uint32": "uint", "int64": "longlong", "uint64": "ulonglong", "float32": "float", "float64": "double"}


def _nrrd_type(vol) -> Optional[str]:
    """The NRRD type `JobInputWriter` writes ``vol`` as itself; None: the ordinary writer writes it (another voxel
    type, not 3D, or header fields)."""
    shape, dtype = (vol.shape, np.dtype(vol.dtype)) if _is_slabs(vol) else (np.shape(vol.array), np.asarray(vol.array).dtype)
    if len(shape) != 3 or getattr(vol, "metadata", None):
        return None
    return _NRRD_TYPES.get(dtype.name)


class JobInputWriter:
    """`write_job_input`'s file (uncompressed NRRD with the volume's geometry), written a slab at a time by
    `step`, so that a caller on a GUI thread (a module's Apply, the annotation effects' model prior) writes a large
    scan across its timer's ticks instead of blocking for it: 0.36 s for a 512x512x300 CT written at once. Written by
    hand because SimpleITK writes a whole image in one call; the file is read back by SimpleITK (tests compare it
    with `write_job_input`'s). The file appears under its name only when complete (temporary name, then rename);
    nothing is opened (and a function given as ``vol`` is not called) before the first `step`. ``vol`` may also be
    a label map made a k-slab at a time (`orbitai.mrml.label_slabs.LabelSlabs`: a segmentation's, read from its
    layers): each step makes and writes the slices of one slab (at least one slice), never the whole map."""

    def __init__(self, vol, path: str | os.PathLike, chunk_bytes: int = 16 * 2**20) -> None:
        self.path = Path(path)
        self.chunk_bytes = max(int(chunk_bytes), 1)
        self._source = vol
        self._data: Optional[memoryview] = None
        self._slabs = None                       # a label map made a slab at a time, and its next slice
        self._k = 0
        self._tmp = self.path.with_name(f".tmp-{self.path.name}")
        self._file: Optional[IO[bytes]] = None
        self._offset = 0
        self.written = 0                         # bytes of voxels written so far
        self.done = False
        if not callable(vol) and _nrrd_type(vol) is None:
            self._open()                         # written at once, as the first step would

    def _open(self) -> bool:
        """Read the volume, start the file (its header); True when it was written at once instead."""
        vol, self._source = self._source, None
        vol = vol() if callable(vol) else vol
        nrrd_type = _nrrd_type(vol)
        if nrrd_type is None:
            if _is_slabs(vol):
                vol = vol.volume()               # (a 2D or 4D map: not made by a GUI's Logic)
            _write_now(vol, self.path)           # another voxel type, or header fields: the ordinary writer, at once
            self.written, self.done = np.asarray(vol.array).nbytes, True
            return True
        if _is_slabs(vol):
            self._slabs, shape = vol, tuple(vol.shape)
        else:
            array = np.asarray(vol.array)
            little = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
            self._data, shape = little.reshape(-1).view(np.uint8).data, array.shape
        self._file = open(self._tmp, "wb")       # kept open across steps; closed when done or by close()
        self._file.write(self._header(vol, shape, nrrd_type).encode("ascii"))
        return False

    @staticmethod
    def _header(vol, shape: tuple[int, ...], nrrd_type: str) -> str:
        d = np.asarray(vol.direction, float).reshape(3, 3)
        axes = " ".join("(" + ",".join(repr(float(d[r, c] * vol.spacing[c])) for r in range(3)) + ")" for c in range(3))
        lines = ["NRRD0004", f"type: {nrrd_type}", "dimension: 3", "space: left-posterior-superior",
                 f"sizes: {shape[2]} {shape[1]} {shape[0]}", f"space directions: {axes}",
                 "kinds: domain domain domain", "endian: little", "encoding: raw",
                 "space origin: (" + ",".join(repr(float(o)) for o in vol.origin) + ")"]
        return "\n".join(lines) + "\n\n"

    def step(self) -> bool:
        """Write the next slab (at most ``chunk_bytes``; the first step also writes the header); True once the
        file is complete and in place."""
        if self.done:
            return True
        try:
            if self._file is None and self._open():
                return True
            assert self._file is not None
            if self._slabs is not None:
                if not self._write_slab():
                    return False
            else:
                assert self._data is not None
                end = min(self._offset + self.chunk_bytes, len(self._data))
                self._file.write(self._data[self._offset:end])
                self.written += end - self._offset
                self._offset = end
                if end < len(self._data):
                    return False
            self._file.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.close()
            raise
        self.done, self._data, self._slabs = True, None, None
        return True

    def _write_slab(self) -> bool:
        """Make and write the next slab of a label map made a slab at a time; True once its last slice is written."""
        slabs = self._slabs
        assert slabs is not None and self._file is not None
        depth, slice_bytes = slabs.shape[0], int(np.prod(slabs.shape[1:])) * np.dtype(slabs.dtype).itemsize
        end = min(self._k + max(self.chunk_bytes // max(slice_bytes, 1), 1), depth)
        slab = slabs.slab(self._k, end)
        data = np.ascontiguousarray(slab.astype(slab.dtype.newbyteorder("<"), copy=False))
        self._file.write(data.reshape(-1).view(np.uint8).data)
        self.written += data.nbytes
        self._k = end
        return end >= depth

    def close(self) -> None:
        """Stop writing; an incomplete file is removed."""
        if not self.done:
            if self._file is not None:
                self._file.close()
            self._tmp.unlink(missing_ok=True)
            self.done, self._data, self._source, self._slabs = True, None, None, None


#: What one tick of a GUI timer writes of a job's inputs (`JobInputs.step`) at most: bytes, and seconds (checked
#: after each slab; the first slab is always written, so that the writing goes on however slow the disk).
TICK_BYTES = 32 * 2**20
TICK_SECONDS = 0.03
#: The slab `JobInputs` writes at a time.
SLAB_BYTES = 4 * 2**20


class JobInputs:
    """The input files of one job, written across the ticks of a GUI timer (`step`) before the job starts, so that
    Slicer's main thread is never blocked for a whole scan (issue 63): at most `TICK_BYTES` per tick, and no further
    slab once `TICK_SECONDS` have passed. One writer per file (`JobInputWriter`, shared with the annotation effects'
    model prior). `write_job_input` adds files here when given them (a `JobFolder`'s)."""

    def __init__(self, slab_bytes: int = SLAB_BYTES) -> None:
        self.slab_bytes = slab_bytes
        self.writers: list[JobInputWriter] = []
        self.last_tick_bytes = 0                 # what the last `step` wrote (tests: the bound per tick)

    def add(self, vol, path: str | os.PathLike) -> Path:
        """Add ``vol`` (a `Volume` or a function returning one) to be written to ``path``; returns the path."""
        writer = JobInputWriter(vol, path, self.slab_bytes)
        self.writers.append(writer)
        return writer.path

    @property
    def done(self) -> bool:
        return all(w.done for w in self.writers)

    @property
    def progress(self) -> tuple[int, int]:
        """(files written, files)."""
        return sum(w.done for w in self.writers), len(self.writers)

    def step(self, max_bytes: int = TICK_BYTES, max_s: float = TICK_SECONDS) -> bool:
        """One tick's writing (see the class docstring); True once every file is complete and in place. A failure
        (disk full) removes what was written and raises."""
        t0 = time.monotonic()
        total = sum(w.written for w in self.writers)
        wrote = False
        try:
            for w in self.writers:
                while not w.done:
                    tick = sum(x.written for x in self.writers) - total
                    if wrote and (tick + self.slab_bytes > max_bytes or time.monotonic() - t0 >= max_s):
                        return False
                    w.step()
                    wrote = True
            return True
        except BaseException:
            self.close()
            raise
        finally:
            self.last_tick_bytes = sum(w.written for w in self.writers) - total

    def finish(self) -> None:
        """Write everything now (scripts and tests, never a GUI thread)."""
        self.step(max_bytes=2**62, max_s=float("inf"))

    def close(self) -> None:
        """Stop writing: incomplete files are removed (complete ones stay, in the job's folder)."""
        for w in self.writers:
            w.close()


@dataclass(frozen=True)
class JobFolder:
    """A job's temporary input folder as a start hook (`orbitai.mrml.jobs.JobLogic.jobArguments`) gets it: ``path``,
    where its files go, and ``inputs``, the job's `JobInputs` its volumes are added to (`JobLogic.start`: written
    by the job's poll, a slab per timer tick, before the child starts); None (a hook called directly: scripts,
    tests): written at once."""

    path: Path
    inputs: Optional[JobInputs] = None

    def write_input(self, vol, name: str) -> Path:
        """`write_job_input` of ``vol`` to the file ``name`` in this folder (now, or added to ``inputs``)."""
        return write_job_input(vol, self.path / name, self.inputs)


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
    how = how_it_ended(res.returncode, res.stderr)
    fatal = [ln for ln in lines if ln.startswith("Fatal Python error")]
    said = fatal or [ln for ln in lines if not ln[0].isspace() and not ln.startswith(_STACK_LINES)
                     and not _LAUNCHER_CRASH.match(ln)]
    cause = f": {said[-1]}" if said else ""
    command = " ".join(a for a in args[:2] if a.isidentifier())
    return (f"{what} stopped unexpectedly ({how}{cause}). Its output is in the application log; "
            f"'orbitai --debug {command} ...' on the same input shows the details.")

#: What Slicer's launcher (CTKAppLauncher, ``PythonSlicer``) prints, then exiting with 1, when the interpreter it
#: started was killed by a signal or crashed (``ctkAppLauncherPrivate::applicationFinished`` on ``CrashExit``).
_LAUNCHER_CRASH = re.compile(r"^error: \[(?P<app>.+)\] exit abnormally - Report the problem\.\s*$", re.M)


def how_it_ended(rc: Optional[int], stderr: str = "") -> str:
    """How a child ended, from its exit status (None: it had not exited) and, for a child started through
    Slicer's launcher, its stderr: the launcher turns the interpreter's death by a signal into exit code 1 and
    one line, so that is reported as a signal too (the launcher does not say which)."""
    if rc is None:
        return "it did not exit"
    if rc == 1 and _LAUNCHER_CRASH.search(stderr or ""):
        return ("killed by a signal or crashed: Slicer's launcher reported it without saying which signal; "
                "SIGKILL from the out-of-memory killer is the usual cause")
    if rc < 0:
        try:
            return f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit code {rc}"


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
    pkg_root = str(Path(orbitai.__file__).resolve().parent.parent)    # the folder holding the orbitai package
    env["PYTHONPATH"] = os.pathsep.join([pkg_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def popen_group() -> dict:
    """Popen options giving the child its own process group, so that a kill reaches all of it. On Windows also
    its console window hidden, as Slicer's ``slicer.util.launchConsoleProcess`` starts processes
    (``STARTUPINFO`` with ``STARTF_USESHOWWINDOW`` and ``SW_HIDE``; Base/Python/slicer/util.py, v5.8.1, v5.10.0):
    the child keeps a console, so that CTRL_BREAK_EVENT still reaches its group."""
    if sys.platform != "win32":
        return {"start_new_session": True}
    info = subprocess.STARTUPINFO()  # pragma: no cover - Windows
    info.dwFlags |= subprocess.STARTF_USESHOWWINDOW
    info.wShowWindow = 0  # SW_HIDE
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP, "startupinfo": info}


def kill_tree(proc: subprocess.Popen, pids: Sequence[int] = ()) -> None:
    """Kill ``proc``, everything it started and the processes ``pids`` (e.g. the interpreter behind Slicer's
    launcher); never raises. POSIX: SIGKILL to its process group. Windows: ``taskkill /T`` (the launcher's
    ``python-real.exe`` is not in a group a signal reaches), then TerminateProcess."""
    if sys.platform != "win32":
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return
    for pid in (*pids, proc.pid):  # pragma: no cover - Windows
        try:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, timeout=5,
                           creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        except (OSError, subprocess.SubprocessError):
            pass
    try:  # pragma: no cover
        proc.kill()
    except OSError:
        pass


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
