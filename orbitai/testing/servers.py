"""Servers the tests start on 127.0.0.1 (Orthanc, ``orbitai web``): a free port, and waiting until one listens."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

__all__ = ["free_port", "wait_until_listening"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_listening(port: int, proc: subprocess.Popen, name: str, log: Path, timeout_s: float,
                         interval_s: float = 0.1) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection (both servers open their port when they are ready to
    serve); raise (with the end of ``log``) when ``proc`` exits first or after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} on start: "
                               f"{log.read_text(errors='replace')[-1500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s")
        time.sleep(interval_s)
