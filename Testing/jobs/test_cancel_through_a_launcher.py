"""Cancel of a warm job when the worker is started through a launcher, as inside Slicer.

Inside Slicer the child is ``PythonSlicer``: CTKAppLauncher, which starts the real interpreter (``python-real``)
with its own standard streams forwarded (``ForwardedChannels``, ``ForwardedInputChannel``), forwards no signal to
it, and, when the interpreter dies of a signal, prints ``error: [PATH] exit abnormally - Report the problem.`` and
exits with 1 (commontk/AppLauncher ``Base/ctkAppLauncher.cpp``: ``runProcess``, ``applicationFinished``). The
stand-in (`orbitai.testing.launcher`) does the same and ignores SIGINT and SIGTERM itself.

What must hold: the interrupt reaches the real interpreter (the job ends "cancelled", exit 130, the same worker
runs the next job), the calling thread (Slicer's GUI thread) never waits in ``cancel()``, a kill stops the real
interpreter too (no orphan), and a worker killed by a signal is reported with the signal, not "exit code 1".
The time ``cancel()`` takes is measured in ``benchmarks/bench_cancel.py``, not here.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from orbitai.mrml.jobs import child_error
from orbitai.testing import process_gone, wait_for_progress
from orbitai.testing.launcher import write_launcher
from orbitai.jobs.warm import WarmJob, WarmWorker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

#: A command that runs for many seconds and reports progress from the first second.
LONG = ["phantom", "orbit-ct", "--n", "300", "--montage-cases", "0", "--out", "{out}/cohort"]

@pytest.fixture()
def launched(tmp_path):
    """(worker started through the launcher stand-in, the launcher's path); shut down after the test."""
    launcher = write_launcher(tmp_path)
    worker = WarmWorker(python=str(launcher), preload=False)
    yield worker, launcher
    worker.shutdown()


class _Waits:
    """Records the threads that wait on the job's end event or on the worker process."""

    def __init__(self, job: WarmJob) -> None:
        self.threads: list[str] = []
        event_wait, popen_wait = job._done.wait, job._proc_w.popen.wait

        def on_event(*args, **kw):
            self.threads.append(threading.current_thread().name)
            return event_wait(*args, **kw)

        def on_popen(*args, **kw):
            self.threads.append(threading.current_thread().name)
            return popen_wait(*args, **kw)

        job._done.wait = on_event  # type: ignore[method-assign]
        job._proc_w.popen.wait = on_popen  # type: ignore[method-assign]


def test_cancel_through_a_launcher_interrupts_the_real_interpreter_and_keeps_the_worker(launched, tmp_path, monkeypatch):
    worker, launcher = launched
    assert WarmJob(["info"], worker=worker, python=str(launcher)).run().ok
    launcher_pid, proc = worker.pid, worker._proc
    assert proc is not None and proc.real_pid is not None and proc.real_pid != launcher_pid
    job = WarmJob(LONG, dest=tmp_path / "out", worker=worker, python=str(launcher)).start()
    assert job.warm
    wait_for_progress(job)
    waits = _Waits(job)
    sleeps: list[str] = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (sleeps.append(threading.current_thread().name), real_sleep(s)))
    caller = threading.current_thread().name
    job.cancel(grace_s=30)   # where the interrupt goes, not how fast: a loaded machine must not turn it into a kill
    assert caller not in waits.threads and caller not in sleeps, "cancel() waited on the calling thread"
    monkeypatch.undo()
    res = job.result()
    assert res.cancelled and not res.ok and res.out_dir is None and not (tmp_path / "out").exists()
    # interrupted inside the real interpreter, not killed: exit 130 and the command's own "cancelled" line
    assert res.returncode == 130 and res.stderr.strip() == "orbitai phantom: cancelled", (res.returncode, res.stderr)
    nxt = WarmJob(["info"], worker=worker, python=str(launcher))
    assert nxt.run().ok and nxt.worker_pid == launcher_pid
    assert worker.starts == 1 and worker._proc is proc and proc.real_pid is not None and not process_gone(proc.real_pid, 0)


@pytest.mark.slow   # over 15 s; cancel through a launcher stays by default
def test_a_killed_launched_worker_stops_the_real_interpreter_too(launched, tmp_path):
    """A worker that does not stop in time is killed with the interpreter behind the launcher (no orphan); the
    next job starts a new one."""
    worker, launcher = launched
    job = WarmJob(LONG, dest=tmp_path / "out", worker=worker, python=str(launcher)).start()
    wait_for_progress(job)
    proc = worker._proc
    assert proc is not None and proc.real_pid is not None
    real, outer = proc.real_pid, proc.pid
    os.kill(real, signal.SIGSTOP)   # a command stuck in native code: the interrupt cannot stop it
    try:
        job.cancel(grace_s=0.2)
        res = job.result()
    finally:
        try:
            os.kill(real, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert res.cancelled and res.returncode == -signal.SIGKILL, res.returncode
    assert process_gone(real) and process_gone(outer), "the real interpreter or the launcher is still running"
    assert WarmJob(["info"], worker=worker, python=str(launcher)).run().ok and worker.starts == 2


def test_a_worker_killed_behind_the_launcher_is_reported_as_a_signal(launched, tmp_path):
    """The launcher turns the interpreter's death by SIGKILL into exit code 1; the job's one line says it was
    killed by a signal, not "exit code 1"."""
    worker, launcher = launched
    job = WarmJob(LONG, dest=tmp_path / "out", worker=worker, python=str(launcher)).start()
    wait_for_progress(job)
    assert worker._proc is not None and worker._proc.real_pid is not None
    os.kill(worker._proc.real_pid, signal.SIGKILL)   # e.g. the out-of-memory killer
    res = job.result()
    assert res.returncode == 1 and not res.ok
    message = child_error("Orbit phantoms", job.args, res)
    assert "\n" not in message and "killed by a signal" in message and "exit code 1" not in message, message


def test_a_one_shot_child_killed_behind_the_launcher_is_reported_as_a_signal(tmp_path):
    from orbitai.jobs.child import OrbitaiJob

    launcher = write_launcher(tmp_path)
    job = OrbitaiJob(LONG, python=str(launcher)).start()
    wait_for_progress(job)  # type: ignore[arg-type]
    real = int(Path(f"{launcher}.pid").read_text())
    assert job.proc is not None and real != job.proc.pid
    os.kill(real, signal.SIGKILL)
    res = job.result()
    message = child_error("Orbit phantoms", job.args, res)
    assert res.returncode == 1 and "killed by a signal" in message and "exit code 1" not in message, message
