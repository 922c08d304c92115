"""Install registry entries, archives and folders into the user's folder, and find a registry model or data set
(downloading it only when the caller allows).

`install_archive` installs an archive (downloaded by `orbitai.bundle.download.download_file`, or a file given):
SHA-256 first, safe extraction into a temporary folder beside the destination (`orbitai.bundle.unpack`: plain files
and folders only, every member inside one top folder, no absolute name, no ``..``, no link; a registry archive's
members checked against the registry's names and sizes as they are read, before anything is extracted), the files
checked against the registry's list, the bundle checked (`orbitai.bundle.core.load_bundle`, its weights' and files'
checksums), then an atomic rename into place. Nothing is installed unless all of it passed, and a folder of the user's
own is never replaced unasked (`check_replace`). A registry entry's names are file names, never paths
(`orbitai.bundle.registry.check_entry_names`).

Downloading: `orbitai.bundle.download`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Optional

from orbitai.bundle.core import METADATA, MODEL_NAME, WEIGHTS, Bundle, find_bundle, load_bundle
from orbitai.bundle.download import DownloadCancelled, DownloadError, ProgressCallback, download_file
from orbitai.bundle.registry import (Entry, check_entry_names, file_table, folder_files, locate, missing_message,
                                     registry_entry, user_folder)
from orbitai.bundle.unpack import extract_checked, install_disk_error
from orbitai.errors import BundleError, OrbitAIError, one_line
from orbitai.io.checksums import sha256_file
from orbitai.staging import disk_full, looks_like_path, strict_json

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


__all__ = ["INSTALL_NOTE", "check_folder", "check_replace", "find_model", "install_archive", "install_entry",
           "install_folder", "installed_ok", "remove_installed", "resolve"]
