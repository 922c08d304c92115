"""Progress lines shared by the CLI and the child-process runner, and cancelling a command.

A long command prints ``PROGRESS <done>/<total> <message>`` lines on stdout; the runner
(`orbitai.jobs.child`) parses them and forwards them to a callback (a Slicer progress bar). A cancel (Ctrl-C,
SIGTERM, SIGHUP) is a ``KeyboardInterrupt`` in the command (`cancel_on_signals`), or waits for the end of work
that cannot stop half-way (`deferred_cancel`).
"""
from __future__ import annotations

import contextlib
import re
import signal
import os
import sys
import threading
from typing import Any, Callable, Iterator, NoReturn, Optional

PROGRESS_RE = re.compile(r"^PROGRESS (\d+)/(\d+)(?: (.*))?$")

ProgressCallback = Callable[[int, int, str], None]

#: Set by the cancel-signal handler (`cancel_on_signals`). Python swallows an exception raised by a signal handler
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


#: Signals that cancel a command like Ctrl-C (SIGINT): ``kill``, a closed terminal.
CANCEL_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _cancel(signum: int, frame: Any) -> NoReturn:
    set_cancel_pending(True)      # raised again at the next progress line if this one is swallowed
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[None]:
    """While active, SIGTERM and SIGHUP raise `KeyboardInterrupt` as SIGINT does, so that a killed command
    cleans up (temporary folders removed, child processes stopped) instead of dying on the spot.
    The previous handlers come back afterwards; outside the main thread it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = list(CANCEL_SIGNALS)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:   # Ctrl-C: the same, with the flag
        sigs.append(signal.SIGINT)
    set_cancel_pending(False)
    previous = {sig: signal.signal(sig, _cancel) for sig in sigs
                if signal.getsignal(sig) is not signal.SIG_IGN}  # an ignored signal (nohup) stays ignored
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        set_cancel_pending(False)


#: Where standard error really goes while a block has put descriptor 2 on the null device (`stderr_to_null`).
_real_stderr: list[int] = []


def real_stderr_fd() -> int:
    """The descriptor of the process's real standard error: 2, or the one `stderr_to_null` kept aside."""
    return _real_stderr[-1] if _real_stderr else 2


@contextlib.contextmanager
def stderr_to_null() -> Iterator[None]:
    """While active, descriptor 2 (what child processes inherit) is the null device; `real_stderr_fd` gives the real
    one, where a cancel's line still goes (`orbitai.cli`)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    _real_stderr.append(saved)
    try:
        yield
    finally:
        _real_stderr.remove(saved)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def deferred_cancel() -> Iterator[None]:
    """While active, a cancel signal (SIGINT, SIGTERM, SIGHUP) is remembered instead of raised, and raised as
    `KeyboardInterrupt` when the block has ended: for work that cannot be interrupted half-way and cleaned up
    afterwards (starting a Dask cluster: its processes are only known, and closed cleanly, once it is up).
    Only this process's Python handlers change; child processes keep theirs. Outside the main thread it does
    nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def remember(signum: int, frame: Any) -> None:
        got.append(signum)
        set_cancel_pending(True)

    sigs = [sig for sig in (signal.SIGINT, *CANCEL_SIGNALS) if signal.getsignal(sig) not in (signal.SIG_IGN, None)]
    previous = {sig: signal.signal(sig, remember) for sig in sigs}
    try:
        yield
    except Exception as exc:
        if got:   # a Ctrl-C reaches the process group: children it stopped while starting fail the block
            raise KeyboardInterrupt(f"signal {got[0]}") from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if got:
        raise KeyboardInterrupt(f"signal {got[0]}")


def started(fn: Callable[..., Any], *args: Any, name: str = "orbitai-background", **kwargs: Any
            ) -> Callable[[], Any]:
    """``fn(*args, **kwargs)`` started on a daemon thread; the call returned waits for it in short steps (so that a
    cancel signal stops the wait at once: `interruptible`) and gives its value or raises its error. A command's exit
    does not wait for the thread."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (handed to the waiting thread, raised there)
            box["error"] = exc

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()

    def result() -> Any:
        while thread.is_alive():
            thread.join(0.05)
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


def interruptible(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` run on a daemon thread while the main thread waits for it in short steps, so that a
    cancel signal (Ctrl-C, SIGTERM: `cancel_on_signals`) stops the command at once even while ``fn`` sits in one long
    library call (SimpleITK decoding a large gzip image): Python runs signal handlers only between the main
    thread's bytecodes, so such a call held a cancel until it returned. After a cancel ``fn`` goes on unseen on its
    thread, which the command's exit does not wait for. Outside the main thread ``fn`` runs directly."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args, **kwargs)
    return started(fn, *args, name="orbitai-interruptible", **kwargs)()
