"""The launch of ``orbitai web`` in phases (issue 81: a launch in seconds under load).

With ``ORBITAI_WEB_TIMES=1`` in its environment the server writes one line per phase of its launch to stderr,
``orbitai web: launch <phase> <unix time>``, which `benchmarks/bench_web_launch.py` reads to say where a launch's
seconds go: ``cli`` (the command line parsed), ``listening`` (the address printed), ``imports`` (the web app's
modules), ``app`` (the app built), ``serving`` (the page served), ``scan_read``, ``scan_shown``, ``first_pack`` (the
scan's first resolution step packed for the page) and ``first_pack_sent``. Light: nothing heavy is imported here.
"""
from __future__ import annotations

import os
import socket
import sys
import time

__all__ = ["mark", "TIMES_ENV", "page_url", "print_address"]

#: The environment variable that turns the launch's phase lines on.
TIMES_ENV = "ORBITAI_WEB_TIMES"
_seen: set[str] = set()


def mark(phase: str) -> None:
    """Note that the launch reached ``phase`` (once per phase: a later scan's is not the launch's)."""
    if phase in _seen or not os.environ.get(TIMES_ENV):
        return
    _seen.add(phase)
    print(f"orbitai web: launch {phase} {time.time():.3f}", file=sys.stderr, flush=True)


def page_url(host: str, port: int, token: str) -> str:
    """The address a user opens: the server's, with its secret (the page reads ``?secret=`` and drops it from the
    address bar)."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?secret={token}"


def print_address(host: str, port: int, token: str) -> None:
    """The line that gives the user the page's address (printed as soon as the server's socket listens)."""
    print(f"orbitai web: open {page_url(host, port, token)}  (Ctrl+C stops)", flush=True)
    mark("listening")
