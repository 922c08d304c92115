"""A cancel signal whose KeyboardInterrupt Python swallowed is raised again at the next progress line."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orbitai.progress import cancel_on_signals
from orbitai.progress import emit, set_cancel_pending


def test_pending_cancel_is_raised_once_at_the_next_progress_line():
    out = io.StringIO()
    set_cancel_pending(True)
    with pytest.raises(KeyboardInterrupt):
        emit(1, 2, "x", stream=out)
    emit(2, 2, "y", stream=out)              # raised once, then progress goes on
    assert out.getvalue() == "PROGRESS 2/2 y\n"


def test_a_cancel_signal_swallowed_by_an_ignoring_callback_is_not_lost():
    out = io.StringIO()
    with cancel_on_signals():
        try:                                  # what an ignoring callback does with the interrupt
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt):
            emit(1, 1, "after", stream=out)
    emit(1, 1, "outside", stream=out)         # the flag does not outlive the command
    assert out.getvalue() == "PROGRESS 1/1 outside\n"


def test_signals_after_a_reported_cancel_still_exit_130():
    """A second Ctrl-C just after "cancelled" was printed, and a ``kill`` while Python shuts down, end the
    process with the clean cancel's 130 (no traceback, no death by signal): `orbitai.cli.entry`."""
    script = (
        "import atexit, os, signal, sys\n"
        "import orbitai.cli as cli\n"
        "def main():\n"
        "    print('orbitai x: cancelled', file=sys.stderr)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"       # raised as KeyboardInterrupt before main returns
        "    return 130\n"
        "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))\n"   # SIG_DFL would kill the process
        "cli.main = main\n"
        "cli.entry()\n")
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])),
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert (p.returncode, p.stderr) == (130, "orbitai x: cancelled\n")
