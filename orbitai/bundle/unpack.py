"""Safe extraction of a model or data-set archive (``.tar.gz``), for `orbitai.bundle.install`.

Every member's name is data, never a path to follow. The members are read one header at a time and each is checked
as it comes, so a bad one stops the reading before the rest of the archive is decompressed, and all of them are
checked before anything is written:

* a plain relative name inside the one top folder (no absolute name, no ``..``, no link, no device);
* when the archive is a registry entry's (given, or found by its top folder's name): the name must be one of the
  registry's files and its size the registry's, so an archive cannot unpack more than the registry lists;
* the unpacked bytes must fit the free space of the destination's disk.

Then the checked members are extracted, each copying exactly its checked size.
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from orbitai.bundle.registry import Entry, human_size
from orbitai.errors import BundleError, OrbitAIError, one_line
from orbitai.staging import disk_full

CHUNK = 1 << 16
#: The most members an archive may hold (an OrbitAI bundle holds a few files; a data set a few dozen).
MAX_MEMBERS = 10_000


class InstallError(OrbitAIError, RuntimeError):
    """An install could not be written (a full disk); one line saying what to do. Nothing was installed."""


def install_disk_error(exc: OSError, where: Path) -> InstallError:
    """One line for a full disk while installing (extracting or copying) into ``where``: nothing to resume."""
    return InstallError(f"The disk is full while installing into {where} (writing {exc.filename or where}); nothing "
                        "was installed: free space there and run the install again.")


def _check_member(archive: Path, m: tarfile.TarInfo) -> tuple[str, ...]:
    name = m.name
    parts = PurePosixPath(name).parts
    if (name.startswith(("/", "\\")) or "\\" in name or ":" in name or not parts
            or any(p in ("..", ".", "") for p in parts)):
        raise BundleError(f"The archive {archive} has a member named {name[:200]!r} (absolute, '..' or not a plain "
                          "relative name): refused, nothing extracted.")
    if not (m.isfile() or m.isdir()):
        raise BundleError(f"The archive {archive} has a link or special member {name[:200]!r}: refused, nothing "
                          "extracted (an OrbitAI archive holds plain files only).")
    if m.isfile() and len(parts) < 2:
        raise BundleError(f"The archive {archive} has the file {name[:200]!r} outside a folder; an archive holds "
                          "one bundle folder.")
    return parts


def _check_listed(archive: Path, entry: Entry, rel: str, size: int) -> None:
    want = entry.files.get(rel)
    if want is None:
        raise BundleError(f"The archive {archive} holds {entry.name}/{rel[:200]}, a file the registry's "
                          f"{entry.name} {entry.version} does not list: refused before extracting, nothing installed.")
    if size != int(want.get("size", -1)):
        raise BundleError(f"The archive {archive} holds {entry.name}/{rel} of {human_size(size)}, not the "
                          f"registry's {human_size(int(want.get('size', 0)))}: refused before extracting, nothing "
                          "installed.")


def scan_members(archive: Path, tar: tarfile.TarFile, entry: Optional[Entry],
                 lookup: Optional[Callable[[str], Optional[Entry]]], free: int) -> tuple[str, list, Optional[Entry]]:
    """(top folder, members, entry): every member checked as its header is read (module docstring); ``entry`` is
    the registry's entry the archive must match, else ``lookup(top)`` when given."""
    members: list[tarfile.TarInfo] = []
    top: Optional[str] = None
    seen: set[str] = set()
    total = count = 0
    for m in tar:                  # one header at a time: a bad member stops before the rest is decompressed
        count += 1
        if count > MAX_MEMBERS:
            raise BundleError(f"The archive {archive} holds more than {MAX_MEMBERS} members; an OrbitAI archive "
                              "holds one bundle folder of a few files: refused.")
        parts = _check_member(archive, m)
        if top is None:
            top = parts[0]
            if entry is None and lookup is not None:
                entry = lookup(top)
            elif entry is not None and top != entry.name:
                raise BundleError(f"The archive {archive} holds {top[:200]!r}, not {entry.name!r}; refused.")
        elif parts[0] != top:
            raise BundleError(f"The archive {archive} holds more than one top folder ({top}, {parts[0][:200]}); an "
                              "archive holds one bundle folder.")
        if entry is not None and any(p.startswith(".") or p == "__pycache__" for p in parts[1:]):
            continue               # a re-packed folder's hidden files and caches: not the bundle's, never extracted
        if m.isfile():
            rel = "/".join(parts[1:])
            if rel in seen:
                raise BundleError(f"The archive {archive} lists {m.name[:200]} twice; refused.")
            seen.add(rel)
            if entry is not None:
                _check_listed(archive, entry, rel, m.size)
            total += m.size
            if total > free:
                raise InstallError(f"The disk is full: the archive {archive} unpacks to more than {human_size(free)}, "
                                   "the free space where it is installed; nothing was installed: free space there "
                                   "and run the install again.")
        members.append(m)
    if top is None:
        raise BundleError(f"The archive {archive} is empty.")
    return top, members, entry


def extract_checked(archive: Path, into: Path, entry: Optional[Entry] = None,
                    lookup: Optional[Callable[[str], Optional[Entry]]] = None) -> tuple[str, Optional[Entry]]:
    """Extract the ``.tar.gz`` (or ``.tar``) ``archive`` holding one top folder into ``into`` once every member
    passed `scan_members`; returns (the top folder's name, the registry entry it was checked against)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            top, members, entry = scan_members(archive, tar, entry, lookup, shutil.disk_usage(into).free)
            for m in members:
                target = into.joinpath(*PurePosixPath(m.name).parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                if src is None:
                    raise BundleError(f"The archive {archive} has an unreadable member {m.name!r}.")
                with src, open(target, "xb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and disk_full(exc):
            raise install_disk_error(exc, into.parent) from exc
        if isinstance(exc, FileExistsError):
            raise BundleError(f"The archive {archive} lists {exc.filename} twice; refused.") from exc
        raise BundleError(f"{archive} is not a readable .tar.gz archive ({one_line(exc)[:300]}); download it "
                          "again.") from exc
    return top, entry


def safe_extract(archive: Path, into: Path, entry: Optional[Entry] = None) -> str:
    """`extract_checked` without a registry lookup; returns the top folder's name."""
    return extract_checked(archive, into, entry)[0]


__all__ = ["InstallError", "extract_checked", "install_disk_error", "safe_extract", "scan_members"]
