"""Servers the tests start on 127.0.0.1 (Orthanc, ``orbitai web``): a free port, and waiting until one answers."""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

__all__ = ["free_port", "wait_until_answers"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answers(url: str, proc: subprocess.Popen, name: str, log: Path, timeout_s: float,
                       interval_s: float = 0.1) -> None:
    """Return once ``url`` answers 200; raise (with the end of ``log``) when ``proc`` exits first or after
    ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} on start: "
                               f"{log.read_text(errors='replace')[-1500:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer on {url} within {timeout_s:.0f} s")
        time.sleep(interval_s)
