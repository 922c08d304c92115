"""Download and install registry entries: checked, resumable, cancellable; the standard library only (urllib).

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

`install_archive` then installs an archive: SHA-256 first, safe extraction into a temporary folder beside the
destination (`orbitai.bundle.unpack`: plain files and folders only, every member inside one top folder, no absolute
name, no ``..``, no link; a registry archive's members checked against the registry's names and sizes as they are
read, before anything is extracted), the files checked against the registry's list, the bundle checked
(`orbitai.bundle.core.load_bundle`, its weights' and files' checksums), then an atomic rename into place. Nothing is
installed unless all of it passed, and a folder of the user's own is never replaced unasked (`check_replace`). A
registry entry's names are file names, never paths (`orbitai.bundle.registry.check_entry_names`).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Optional

from orbitai.bundle.core import METADATA, MODEL_NAME, WEIGHTS, Bundle, find_bundle, load_bundle
from orbitai import __version__
from orbitai.bundle.registry import (Entry, check_entry_names, file_table, folder_files, human_size, locate,
                                     missing_message, registry_entry, user_folder)
from orbitai.bundle.unpack import InstallError, extract_checked, install_disk_error, safe_extract
from orbitai.staging import looks_like_path, strict_json
from orbitai.errors import BundleError, OrbitAIError, one_line
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


def download_file(url: str, dest: Path, sha256: str, size: Optional[int] = None, *,
                  progress: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None,
                  label: str = "", stall_s: float = 30.0, retries: int = 3, poll_s: float = 0.1,
                  total_s: Optional[float] = None) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed where one is left), check its SHA-256, then
    rename it into place; see the module docstring. Each read waits at most ``stall_s``, the whole download at most
    ``total_s`` (default `_total_time`). Raises `DownloadError` (one line) or `DownloadCancelled`."""
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


# ----------------------------------------------------------------------------------------------------- installing

def check_folder(folder: Path, entry: Optional[Entry], kind: str) -> None:
    """Raise `BundleError` unless ``folder`` holds exactly ``entry``'s files with their checksums (when the entry
    is known) and, for a model, a bundle whose metadata, weights and files check."""
    folder_files(folder)                     # plain files and folders only: a link or a special file is refused
    if entry is not None:
        table = file_table(folder)
        if table != entry.files:
            wrong = sorted(set(table) ^ set(entry.files)) or sorted(
                n for n in table if table[n] != entry.files.get(n))
            raise BundleError(f"{folder.name}: the files do not match the registry's {entry.name} {entry.version} "
                              f"({', '.join(wrong[:3])} differ{'s' if len(wrong) == 1 else ''}); refused.")
    if kind != "model":
        return
    bundle = load_bundle(folder)
    if bundle.name != folder.name:
        raise BundleError(f"The bundle folder {folder.name} holds the bundle {bundle.name!r}; refused.")
    if "weights_sha256" in bundle.metadata or (folder / WEIGHTS).exists():
        bundle.verify()
    for role, spec in (bundle.metadata.get("files") or {}).items():
        path = folder / str(spec.get("path", ""))
        if not path.is_file() or (spec.get("sha256") and sha256_file(path) != spec["sha256"]):
            raise BundleError(f"Bundle '{bundle.name}': its {role} file {spec.get('path')} is missing or does not "
                              "match its checksum; refused.")


#: Written into every folder `install_folder` installs (hidden, so never one of a bundle's files): what installed it,
#: so that a later install replaces a copy the registry installed, never the user's own model of that name unasked.
INSTALL_NOTE = ".orbitai-install.json"


def _registry_copy(dest: Path, entry: Optional[Entry]) -> bool:
    """Whether ``dest`` is a copy of the registry's ``entry`` that an install put there (its install note says so)."""
    if entry is None:
        return False
    try:
        note = json.loads((dest / INSTALL_NOTE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(note, dict) and note.get("registry") is True and note.get("name") == entry.name


def check_replace(dest: Path, entry: Optional[Entry], overwrite: bool = False) -> None:
    """Refuse in one line to install over ``dest`` unless it is absent, an empty folder, a registry copy of ``entry``
    that an install put there (`INSTALL_NOTE`), or ``overwrite`` (``--overwrite``) was given: a folder of the user's
    own (a fine-tuned model, a bundle copied there) is never replaced unasked."""
    if overwrite or not (dest.exists() or dest.is_symlink()) or _registry_copy(dest, entry):
        return
    if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
        return
    raise BundleError(f"{dest} already exists and is not a copy the registry installed (it is your own, e.g. a "
                      "fine-tuned model); nothing was replaced: remove it first ('orbitai models remove "
                      f"{dest.name}'), rename the one you install, or add --overwrite to replace it.")


def _check_source(source: Path, kind: str) -> None:
    if not MODEL_NAME.fullmatch(source.name):
        raise BundleError(f"The folder {str(source)[:200]} cannot be installed under the name {source.name[:80]!r} "
                          "(a model or data-set name is letters, digits, ., - and _): give the bundle folder itself.")
    if kind == "model" and not (source / METADATA).is_file():
        raise BundleError(f"The folder {source} is not a model bundle (it has no {METADATA}); give a bundle folder, "
                          "an archive (.tar.gz), a registry name ('orbitai models list') or a URL.")


def install_folder(source: Path, kind: str, entry: Optional[Entry] = None, *, dest_root: Optional[Path] = None,
                   move: bool = False, overwrite: bool = False) -> Path:
    """Install the folder ``source`` (a bundle or data set) into the user's folder: copied (or moved, when it
    already lies in a temporary folder beside the destination) into a temporary folder there, checked
    (`check_folder`), then renamed into place atomically; an installed copy is replaced only after the new one
    passed, and only when `check_replace` allows it. Returns the installed folder."""
    source = Path(os.path.abspath(source))    # "." names the current folder by its name
    _check_source(source, kind)
    root = dest_root or user_folder(kind)
    dest = root / source.name
    check_replace(dest, entry, overwrite)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".install-{source.name}-", dir=root))
    except OSError as exc:
        if disk_full(exc):
            raise install_disk_error(exc, root) from exc
        raise
    try:
        staged = tmp / source.name
        if move:
            os.replace(source, staged)
        else:
            shutil.copytree(source, staged, symlinks=True)
        check_folder(staged, entry, kind)
        note = {"name": source.name, "kind": kind, "registry": entry is not None,
                "version": entry.version if entry is not None else None}
        (staged / INSTALL_NOTE).write_text(strict_json(note, indent=None) + "\n")
        os.chmod(staged, 0o755)
        check_replace(dest, entry, overwrite)        # again: nothing of the user's appeared there meanwhile
        if dest.exists() or dest.is_symlink():
            os.replace(dest, tmp / "replaced")
        os.replace(staged, dest)
    except shutil.Error as exc:                  # copytree's list of every file it could not copy: the first one
        errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else []
        first = f"{errors[0][0]}: {errors[0][2]}" if errors and len(errors[0]) == 3 else one_line(exc)[:200]
        raise BundleError(f"The folder {source} cannot be copied ({len(errors) or 1} file(s) failed, first {first}); "
                          "nothing was installed.") from None
    except OSError as exc:
        if disk_full(exc):
            raise install_disk_error(exc, root) from exc
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def install_archive(archive: Path, entry: Optional[Entry] = None, *, sha256: Optional[str] = None,
                    kind: Optional[str] = None, dest_root: Optional[Path] = None, overwrite: bool = False) -> Path:
    """Install a downloaded archive: its SHA-256 checked first (the entry's, or ``sha256``), its members checked
    against the registry's files as they are read and extracted into a temporary folder beside the destination
    (`orbitai.bundle.unpack`), checked, renamed into place. The entry is the registry's for the archive's folder name
    when not given; an archive the registry does not know is installed on its own checks (a bundle's metadata
    checksums)."""
    archive = Path(archive)
    if entry is not None:
        check_entry_names(entry)
    want = sha256 or (entry.sha256 if entry is not None else None)
    if want is not None:
        digest = sha256_file(archive)
        if digest != want.lower():
            raise BundleError(f"{archive} has SHA-256 {digest[:12]}..., not the expected {want[:12]}...: it is "
                              "not the registry's file (corrupt or replaced); refused, nothing installed.")
    kind = kind or (entry.kind if entry is not None else "model")
    root = dest_root or user_folder(kind)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    except OSError as exc:
        if disk_full(exc):
            raise install_disk_error(exc, root) from exc
        raise
    try:                                # a known name: its files must be the registry's (re-packed is fine)
        top, found = extract_checked(archive, tmp, entry, registry_entry if entry is None else None)
        if found is not None and entry is None:
            kind = found.kind
        return install_folder(tmp / top, kind, found, dest_root=dest_root or user_folder(kind), move=True,
                              overwrite=overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install_entry(entry: Entry, *, progress: Optional[ProgressCallback] = None,
                  cancel: Optional[threading.Event] = None, url: Optional[str] = None,
                  dest_root: Optional[Path] = None, overwrite: bool = False) -> Path:
    """Download registry entry ``entry`` (its first address that answers, or ``url``), check it and install it into
    the user's folder; the archive waits in ``<user folder>/.downloads`` (where an interrupted one resumes) and
    is removed once installed. Names are checked (`check_entry_names`) and the destination (`check_replace`) before
    anything is written."""
    check_entry_names(entry)           # the archive's name is a file name in .downloads, never a path
    root = dest_root or user_folder(entry.kind)
    check_replace(root / entry.name, entry, overwrite)
    cache = root / ".downloads"
    archive = cache / entry.asset
    errors = []
    try:
        for address in ([url] if url else entry.download_urls()):
            try:
                download_file(address, archive, entry.sha256, entry.size, progress=progress, cancel=cancel,
                              label=f"{entry.name} {entry.version}")
                break
            except DownloadCancelled:
                raise
            except DownloadError as exc:
                errors.append(exc)
        else:
            if errors:
                raise errors[-1]
            raise DownloadError(f"The registry lists no download address for {entry.name}; install it from a file.")
        try:
            return install_archive(archive, entry, dest_root=root, overwrite=overwrite)
        finally:
            archive.unlink(missing_ok=True)
    finally:
        with contextlib.suppress(OSError):
            cache.rmdir()          # only when empty: a .part waiting for its resume keeps it


def resolve(name: str, *, download: bool = False, progress: Optional[ProgressCallback] = None,
            cancel: Optional[threading.Event] = None) -> Path:
    """The folder of registry entry ``name`` (a model or a data set): the user's folder, the local mirror, then (only
    with ``download``) a verified download into the user's folder. Without ``download`` a missing one is a one-line
    error saying how to install it."""
    found = locate(name)
    if found is not None:
        return found[1]
    entry = registry_entry(name)
    if entry is None:
        raise BundleError(f"{name!r} is neither installed nor in the model registry ('orbitai models list' shows "
                          "what is); install a bundle folder or archive with 'orbitai models install PATH'.")
    if not download:
        raise BundleError(missing_message(entry))
    return install_entry(entry, progress=progress, cancel=cancel)


def find_model(name_or_path: str, *, download: bool = False, progress: Optional[ProgressCallback] = None,
               cancel: Optional[threading.Event] = None) -> Bundle:
    """`orbitai.bundle.core.find_bundle`, then for a registry model found nowhere: downloaded and installed when the
    caller allows it (``download``: a first use the user agreed to), else a one-line error saying how to install
    it (its size and address)."""
    try:
        return find_bundle(name_or_path)
    except BundleError:
        entry = None if looks_like_path(name_or_path) else registry_entry(name_or_path)
        if entry is None or entry.kind != "model":
            raise
    if not download:
        raise BundleError(missing_message(entry))
    return load_bundle(install_entry(entry, progress=progress, cancel=cancel))


def installed_ok(folder: Path, entry: Optional[Entry], kind: str) -> Optional[str]:
    """None when ``folder`` passes `check_folder`, else its one-line reason."""
    try:
        check_folder(folder, entry, kind)
    except (OrbitAIError, OSError) as exc:
        return one_line(exc)
    return None


def remove_installed(name: str, root: Path) -> Path:
    """Remove the installed folder ``root/name`` (moved to a temporary name first, so a half-removed folder is
    never taken for a bundle)."""
    folder = root / name
    if not folder.is_dir() or folder.is_symlink():
        raise BundleError(f"{name!r} is not installed in {root}.")
    aside = root / f".removing-{name}-{os.getpid()}"
    os.replace(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)
    return folder


__all__ = ["DownloadCancelled", "DownloadError", "INSTALL_NOTE", "InstallError", "check_folder", "check_replace",
           "download_file", "find_model", "install_archive", "install_entry", "install_folder", "installed_ok",
           "remove_installed", "resolve", "safe_extract"]
