"""A cancel signal whose KeyboardInterrupt Python swallowed is raised again at the next progress line."""
from __future__ import annotations

import io
import os
import signal

import pytest

from orbitai.cli import cancel_on_signals
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
