"""Download registry entries' files: checked, resumable, cancellable; the standard library only (urllib).

`download_file` fetches one URL into ``<dest>.part`` and renames it to ``dest`` only after its SHA-256 matched:

* **resume**: a ``.part`` left by an interruption (a cancel, a dropped connection, a truncated response) is
  continued with an HTTP ``Range`` request; a server that ignores the range sends the whole file again;
* **progress**: ``callback(done_bytes, total_bytes, "downloading NAME: 2.1 of 4.7 MB, 3 s left")`` (the CLI
  prints `orbitai.progress` lines), at most a few times a second;
* **cancel**: a ``threading.Event`` checked while waiting; the transfer runs on a worker thread that the waiting
  thread leaves at once, so a cancel returns within a fraction of a second even while the server sends nothing
  (or the connection is still being made); the worker writes nothing after it (one lock guards its writes);
* **bounds**: each read waits at most ``stall_s``; a try that adds less than `MIN_PROGRESS` new bytes (a server that
  cuts every answer short and ignores Range, or sends a few bytes then stalls) is a failure, ``retries`` + 1 in a
  row end it; the whole download ends after ``total_s``; a length announced beyond the registry's size, or a byte
  past it, is refused at once (the ``.part`` removed);
* **errors** are one line (`DownloadError`): no network, a proxy's refusal, an HTTP status (404), a server that
  stopped sending, a wrong checksum (the file is removed), a full disk.

Installing what was downloaded (or a file or folder given): `orbitai.bundle.install`.
"""
from __future__ import annotations

import http.client
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from orbitai import __version__
from orbitai.bundle.registry import human_size
from orbitai.errors import OrbitAIError, one_line
from orbitai.io.checksums import sha256_file
from orbitai.staging import disk_full

ProgressCallback = Callable[[int, int, str], None]
CHUNK = 1 << 16
#: A try must add at least this many new bytes to the most the ``.part`` ever held to count as progress.
MIN_PROGRESS = CHUNK


class DownloadError(OrbitAIError, RuntimeError):
    """A download failed (network, proxy, HTTP status, stalled server, checksum, disk); one line."""


class DownloadCancelled(DownloadError):
    """The caller cancelled a download; the ``.part`` file is kept so that the next try resumes it."""

    exit_code = 130


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return one_line(reason) if isinstance(reason, BaseException) else str(reason)


def _network_error(url: str, exc: BaseException) -> DownloadError:
    """One line for a failure to reach ``url`` (no network, a name that does not resolve, a proxy)."""
    host = urllib.parse.urlparse(url).netloc
    proxy = urllib.request.getproxies().get(urllib.parse.urlparse(url).scheme)
    reason = _reason(exc)
    if isinstance(exc, urllib.error.HTTPError) and exc.code == 407:
        return DownloadError(f"The proxy {proxy or ''} asks for a user name and password (HTTP 407) to reach {host}; "
                             "set them in https_proxy (http://user:password@proxy:port) or install from a file.")
    if proxy and ("tunnel" in reason.lower() or isinstance(getattr(exc, "reason", None), OSError)):
        return DownloadError(f"The proxy {proxy} did not let the download through to {host} ({reason}); check "
                             "the https_proxy/http_proxy settings, or download the file elsewhere and run "
                             "'orbitai models install FILE'.")
    inner = getattr(exc, "reason", exc)
    if isinstance(inner, socket.gaierror):
        what = f"the name {host.split(':')[0]} does not resolve"
    elif isinstance(inner, ConnectionRefusedError):
        what = f"{host} refused the connection"
    elif isinstance(inner, (socket.timeout, TimeoutError)):
        what = f"{host} did not answer"
    else:
        what = f"{host} cannot be reached ({reason})"
    return DownloadError(f"No network connection for the download: {what}. Connect and run again, or download "
                         f"{url} elsewhere and run 'orbitai models install FILE'.")


def _http_error(url: str, exc: urllib.error.HTTPError) -> DownloadError:
    if exc.code == 407:
        return _network_error(url, exc)
    if exc.code == 404:
        return DownloadError(f"{url} does not exist (HTTP 404 Not Found): the release asset is missing or the "
                             "address is wrong; check the orbitai version, or install from a file "
                             "('orbitai models install FILE').")
    return DownloadError(f"The server refused the download of {url} (HTTP {exc.code} {exc.reason}); try again "
                         "later, or install from a file ('orbitai models install FILE').")


def _disk_error(exc: OSError, where: Path) -> DownloadError:
    return DownloadError(f"The disk is full while writing {exc.filename or where}; free space there and run again "
                         "(the download resumes where it stopped).")


class _Transfer:
    """The worker thread's state: the bytes in the ``.part`` file, the total, the error, and the stop flag
    (checked under ``lock`` before every write)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopped = False
        self.done = 0
        self.total = 0
        self.connected = False             # a response arrived: progress lines from then on
        self.error: Optional[BaseException] = None


def _open(url: str, start: int, stall_s: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"orbitai/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=stall_s)


def _too_slow(url: str, state: _Transfer, total_s: float) -> DownloadError:
    return DownloadError(f"The download of {url} did not finish within {total_s:.0f} s ({human_size(state.done)} of "
                         f"{human_size(state.total)} arrived): the server is too slow or keeps stalling; run again "
                         "later (it resumes), or download the file elsewhere and run 'orbitai models install FILE'.")


def _receive(resp: http.client.HTTPResponse, f: BinaryIO, url: str, size: Optional[int], state: _Transfer,
             deadline: tuple[float, float]) -> bool:
    """Copy the response into ``f`` (the ``.part`` opened at ``state.done``); False when the download was stopped.
    Refuses a byte beyond the registry's ``size`` (nothing of it written) and a transfer past the deadline."""
    while True:
        if time.monotonic() > deadline[0]:
            raise _too_slow(url, state, deadline[1])
        chunk = resp.read1(CHUNK)   # what has arrived, not a full chunk: a slow server still progresses
        if not chunk:
            return True
        if size is not None and state.done + len(chunk) > size:
            raise _Oversize(f"The server sent more than the registry's {human_size(size)} for {url}: not the "
                            "registry's file; refused and removed, nothing installed.")
        with state.lock:
            if state.stopped:
                return False
            f.write(chunk)
            f.flush()      # on disk for a resume even when the process ends at once (Ctrl-C)
        state.done += len(chunk)


class _Oversize(DownloadError):
    """More bytes arrived than the registry's size: the ``.part`` is removed."""


def _fetch(url: str, part: Path, size: Optional[int], state: _Transfer, stall_s: float, retries: int,
           total_s: float) -> None:
    """Fill ``part`` from ``url`` (resuming with Range), on the worker thread; errors go to ``state.error``.

    Bounded whatever the server does: each read waits at most ``stall_s``; a try that ends without adding at least
    `MIN_PROGRESS` new bytes to the most the ``.part`` ever held (a server that cuts every answer short and ignores
    Range, or sends a few bytes then stalls) counts as failed, and ``retries`` + 1 of those in a row end it; the whole
    download ends after ``total_s``; a length announced beyond the registry's size, or a byte past it, is refused."""
    deadline = (time.monotonic() + total_s, total_s)
    failures = 0
    best = part.stat().st_size if part.exists() else 0
    while not state.stopped:
        if time.monotonic() > deadline[0]:
            raise _too_slow(url, state, total_s)
        start = part.stat().st_size if part.exists() else 0
        if size is not None and start > size:
            part.unlink()
            start = best = 0
        if size is not None and start == size:
            return
        try:
            resp = _open(url, start, stall_s)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start:          # the range starts at the end: the part is complete (or wrong)
                return
            raise _http_error(url, exc) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if isinstance(getattr(exc, "reason", exc), (socket.timeout, TimeoutError)) and failures < retries:
                failures += 1
                continue
            raise _network_error(url, exc) from exc
        state.connected = True
        with resp:
            if start and resp.status != 206:       # the server sends the whole file: start again
                start = 0
            length = resp.headers.get("Content-Length")
            announced = start + int(length) if length and length.isdigit() else None
            if size is not None and announced is not None and announced > size:
                raise DownloadError(f"The server announces {human_size(announced)} for {url}, more than the "
                                    f"registry's {human_size(size)}: not the registry's file; refused, nothing "
                                    "installed.")
            state.total = size or announced or 0
            try:
                with open(part, "ab" if start else "wb") as f:
                    state.done = start
                    if not _receive(resp, f, url, size, state, deadline):
                        return
            except _Oversize:
                part.unlink(missing_ok=True)
                raise
            except (socket.timeout, TimeoutError, ConnectionError, http.client.IncompleteRead) as exc:
                if failures >= retries:
                    raise DownloadError(f"The server stopped sending {url} at {human_size(state.done)} "
                                        f"({one_line(exc) or type(exc).__name__}); run again to resume.") from exc
            except OSError as exc:
                if disk_full(exc):
                    raise _disk_error(exc, part) from exc
                raise
        complete = part.stat().st_size if part.exists() else 0
        if (size is not None and complete >= size) or (size is None and state.total and complete >= state.total):
            return
        if size is None and not state.total:
            return                                 # no length known: the end of the response is the end
        failures = 0 if complete >= best + MIN_PROGRESS else failures + 1   # a few bytes are no progress
        best = max(best, complete)
        if failures > retries:
            raise DownloadError(f"The server keeps ending {url} early (at {human_size(complete)} of "
                                f"{human_size(state.total)}); run again later to resume.")


def _total_time(size: Optional[int]) -> float:
    """The longest a download may take: 10 minutes plus the size at 20 kB/s (an hour when the size is unknown)."""
    return 600.0 + size / 20_000 if size is not None else 3600.0


@dataclass(frozen=True)
class DownloadLimits:
    """The bounds of `download_file`: each read waits at most ``stall_s``; ``retries`` + 1 tries in a row without
    progress end it; the waiting thread looks at the cancel every ``poll_s``; the whole download takes at most
    ``total_s`` (None: `_total_time` of its size)."""

    stall_s: float = 30.0
    retries: int = 3
    poll_s: float = 0.1
    total_s: Optional[float] = None


def download_file(url: str, dest: Path, sha256: str, size: Optional[int] = None, *,
                  progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None,
                  label: str = "", limits: DownloadLimits = DownloadLimits()) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed where one is left), check its SHA-256, then
    rename it into place; see the module docstring and `DownloadLimits`. Raises `DownloadError` (one line) or
    `DownloadCancelled`."""
    stall_s, retries, poll_s, total_s = limits.stall_s, limits.retries, limits.poll_s, limits.total_s
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if size is not None:
        have = part.stat().st_size if part.exists() else 0
        free = shutil.disk_usage(dest.parent).free
        if size - have > free:
            raise DownloadError(f"The disk is full: {dest.parent} has {human_size(free)} free and the download "
                                f"needs {human_size(size - have)}; free space and run again.")
    state = _Transfer()
    state.total = size or 0

    def work() -> None:
        try:
            _fetch(url, part, size, state, stall_s, retries, total_s if total_s is not None else _total_time(size))
        except BaseException as exc:  # noqa: BLE001  (handed to the waiting thread)
            state.error = exc

    name = label or dest.name
    worker = threading.Thread(target=work, name="orbitai-download", daemon=True)
    began, shown = time.monotonic(), 0.0
    worker.start()
    try:
        while worker.is_alive():
            if cancel is not None and cancel.wait(poll_s):
                raise DownloadCancelled(f"The download of {name} was cancelled; {human_size(state.done)} kept in "
                                        f"{part} (the next try resumes it).")
            if cancel is None:
                worker.join(poll_s)
            now = time.monotonic()
            if progress is not None and now - shown >= 0.5 and state.total and state.connected:
                shown = now
                progress(state.done, state.total, _progress_text(name, state, now - began))
    finally:
        with state.lock:          # stop the worker's writes (a cancel, Ctrl-C): nothing is written after this
            state.stopped = True
    if state.error is not None:
        if isinstance(state.error, OSError) and disk_full(state.error):
            raise _disk_error(state.error, part) from state.error
        raise state.error
    if progress is not None and state.total:
        progress(state.total, state.total, f"downloaded {name}: {human_size(state.total)}")
    digest = sha256_file(part) if part.exists() else ""
    if digest != sha256:
        got = part.stat().st_size if part.exists() else 0
        part.unlink(missing_ok=True)
        raise DownloadError(f"The download of {name} from {url} is not the registry's file (SHA-256 {digest[:12]}..., "
                            f"{human_size(got)}; expected {sha256[:12]}...): refused and removed, nothing installed.")
    os.replace(part, dest)
    return dest


def _progress_text(name: str, state: _Transfer, elapsed: float) -> str:
    text = f"downloading {name}: {human_size(state.done)} of {human_size(state.total)}"
    rate = state.done / elapsed if elapsed > 0.5 else 0.0
    if rate > 0 and state.total > state.done:
        left = (state.total - state.done) / rate
        text += f", {left:.0f} s left" if left < 120 else f", {left / 60:.0f} min left"
    return text


__all__ = ["DownloadCancelled", "DownloadError", "DownloadLimits", "ProgressCallback", "download_file"]
