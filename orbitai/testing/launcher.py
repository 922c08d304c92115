"""A stand-in for Slicer's ``PythonSlicer`` launcher, for the tests and benchmarks of cancel through a launcher.

CTKAppLauncher (commontk/AppLauncher ``Base/ctkAppLauncher.cpp``: ``runProcess``, ``applicationFinished``) starts
the real interpreter with the launcher's standard streams (``ForwardedChannels``, ``ForwardedInputChannel``),
forwards no signal to it and, when the interpreter dies of a signal, prints ``error: [PATH] exit abnormally -
Report the problem.`` and exits with 1. The stand-in does the same, ignores SIGINT and SIGTERM itself, and
writes the real interpreter's process id to ``<launcher>.pid`` (for the tests). POSIX only.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["write_launcher"]

_SCRIPT = '''#!{python}
"""Stand-in for Slicer's PythonSlicer launcher (orbitai.testing.launcher)."""
import signal, subprocess, sys
child = subprocess.Popen([{python!r}, *sys.argv[1:]])
with open(__file__ + ".pid", "w") as f:
    f.write(str(child.pid))
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
rc = child.wait()
if rc < 0:
    print("error: [{python}] exit abnormally - Report the problem.", file=sys.stderr, flush=True)
    sys.exit(1)
sys.exit(rc)
'''


def write_launcher(folder: str | Path, python: str = sys.executable) -> Path:
    """An executable launcher stand-in named ``PythonSlicer`` in ``folder`` that runs ``python``."""
    path = Path(folder) / "PythonSlicer"
    path.write_text(_SCRIPT.format(python=python))
    path.chmod(0o755)
    return path
