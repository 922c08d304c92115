"""Progress lines shared by the CLI and the child-process runner.

A long command prints ``PROGRESS <done>/<total> <message>`` lines on stdout; the runner
(`orbitai.runner`) parses them and forwards them to a callback (a Slicer progress bar).
"""
from __future__ import annotations

import re
import sys
from typing import Callable, Optional

PROGRESS_RE = re.compile(r"^PROGRESS (\d+)/(\d+)(?: (.*))?$")

ProgressCallback = Callable[[int, int, str], None]

#: Set by `orbitai.cli`'s cancel-signal handler. Python swallows an exception raised by a signal handler
#: that runs inside a callback whose errors are ignored (an import lock's weakref callback, a __del__),
#: so a cancel could be lost and the command finish and write its results; the next progress line
#: raises it again.
_cancel_pending = False


def set_cancel_pending(pending: bool) -> None:
    """Mark (or clear) a cancel request that `emit` turns into ``KeyboardInterrupt``."""
    global _cancel_pending
    _cancel_pending = bool(pending)


def emit(done: int, total: int, message: str = "", stream=None) -> None:
    """Print one machine-readable progress line and flush it at once; raises ``KeyboardInterrupt`` when
    a cancel signal arrived whose interrupt was lost (see ``_cancel_pending``)."""
    if _cancel_pending:
        set_cancel_pending(False)
        raise KeyboardInterrupt("cancelled")
    stream = stream or sys.stdout
    message = " ".join(str(message).split())  # one line
    stream.write(f"PROGRESS {int(done)}/{int(total)} {message}\n")
    stream.flush()


def parse(line: str) -> Optional[tuple[int, int, str]]:
    """(done, total, message) from a progress line, or None for any other line."""
    m = PROGRESS_RE.match(line.rstrip("\r\n"))
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), (m.group(3) or "")


class Progress:
    """Counts steps and reports them to a callback (default: print progress lines)."""

    def __init__(self, total: int, callback: Optional[ProgressCallback] = None):
        self.total = max(int(total), 1)
        self.done = 0
        self.callback = callback or (lambda d, t, m: emit(d, t, m))

    def step(self, message: str = "", n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self.callback(self.done, self.total, message)
