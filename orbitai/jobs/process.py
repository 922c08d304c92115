"""The process side of running an ``orbitai`` child, shared by the one-shot child (`orbitai.jobs.child`) and the
warm worker's parent (`orbitai.jobs.warm`): the interpreter and environment it starts with, its own process group,
killing all of it, and what a finished child says (`JobResult`; how it ended and its one error line).
"""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import orbitai

__all__ = ["JobResult", "child_env", "child_error", "default_python", "how_it_ended", "kill_tree", "popen_group"]

log = logging.getLogger(__name__)


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
