"""``orbitai models list | install NAME|FILE|FOLDER|URL | verify [NAME] | remove NAME``: the model and data registry.

Models and data sets are found in the user's folder (``~/.orbitai/models``, ``~/.orbitai/data``), then in the
package's own folders (the local mirror of a development checkout); ``install`` downloads a registry entry (checked
by SHA-256, resumable, progress lines) or installs a downloaded archive or folder offline. See docs/models.md.
Light: the standard library and `orbitai.bundle` (no torch), so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from orbitai.bundle.core import METADATA, MODEL_NAME, load_bundle
from orbitai.bundle.download import download_file
from orbitai.bundle.install import install_archive, install_entry, install_folder, installed_ok, remove_installed
from orbitai.bundle.registry import (entry_for_asset, human_size, load_registry, locate, mirror_folder,
                                     registry_entry, user_folder)
from orbitai.errors import BundleError, UserError
from orbitai.progress import emit

SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "models", help=help_text,
        description="List, install, verify and remove model bundles and training data sets of the registry "
                    "(orbitai/resources/registry.json). Looked up in the user's folder (~/.orbitai/models, "
                    "$ORBITAI_USER_MODELS), then in the package's own folders; downloaded only by 'install'.")
    cmds = p.add_subparsers(dest="models_command", metavar="<action>")
    ls = cmds.add_parser("list", help="every registry entry and installed bundle: version, size, where it is",
                         description="Name, kind, version, archive size and where each one is: user (the user's "
                                     "folder), mirror (the package's own folder) or not installed.")
    ls.set_defaults(func=run_list)
    ins = cmds.add_parser(
        "install", help="install a registry entry by name (download), or an archive, folder or URL",
        description="NAME: download the registry's archive (progress, resumed after an interruption, checked by "
                    "SHA-256 before anything is installed). FILE (.tar.gz) or FOLDER: install offline, checked "
                    "against the registry's files when the name is known. URL: download it; checked against the "
                    "registry's SHA-256 when its file is a registry archive, otherwise only with --sha256. "
                    "Installs into the user's folder; an installed copy is replaced only by one that passed.")
    ins.add_argument("what", metavar="NAME|FILE|FOLDER|URL")
    ins.add_argument("--sha256", help="the expected SHA-256 of a FILE or URL the registry does not know")
    ins.add_argument("--overwrite", action="store_true",
                     help="replace a folder of the same name in the user's folder that the registry did not install "
                          "(your own model, e.g. a fine-tuned one); without it such a folder is never replaced")
    ins.set_defaults(func=run_install)
    ver = cmds.add_parser("verify", help="check installed entries' files against the registry's checksums",
                          description="Check every installed registry entry (or NAME): its files and their "
                                      "SHA-256 against the registry, a bundle's weights against its metadata. "
                                      "Exit status 2 when one fails.")
    ver.add_argument("name", nargs="?", metavar="NAME")
    ver.set_defaults(func=run_verify)
    rm = cmds.add_parser("remove", help="remove an installed model or data set from the user's folder",
                         description="Remove NAME from the user's folder (never the package's own bundles).")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=run_remove)
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _where(name: str, kind: str) -> tuple[str, Optional[Path]]:
    found = locate(name, kind)
    return (found[0], found[1]) if found else ("not installed", None)


def _user_only() -> list[tuple[str, str, str]]:
    """Bundles in the user's folder the registry does not list (fine-tuned models): (name, kind, version)."""
    known, out = load_registry(), []
    root = user_folder("model")
    for meta in sorted(root.glob(f"*/{METADATA}")) if root.is_dir() else []:
        if meta.parent.name in known or meta.parent.name.startswith("."):
            continue
        try:
            out.append((meta.parent.name, "model", str(load_bundle(meta.parent).metadata.get("version", ""))))
        except BundleError:
            out.append((meta.parent.name, "model", "?"))
    return out


def run_list(args: argparse.Namespace) -> int:
    rows = []
    for e in load_registry().values():
        where, _ = _where(e.name, e.kind)
        rows.append((e.name, e.kind, e.version, human_size(e.size), where))
    rows += [(n, k, v, "", "user (not in the registry)") for n, k, v in _user_only()]
    widths = [max(len(r[i]) for r in rows + [("name", "kind", "version", "size", "where")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "kind", "version", "size"), widths)) + "  where")
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4])
    return 0


def _progress() -> Any:
    return lambda done, total, message: emit(done, total, message)


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def run_install(args: argparse.Namespace) -> int:
    what: str = args.what
    sha = args.sha256
    if sha is not None and not SHA256_RE.match(sha):
        raise UserError(f"--sha256 {sha} is not a SHA-256 (64 hexadecimal digits).")
    if _is_url(what):
        file_name = Path(urlparse(what).path).name
        entry = entry_for_asset(file_name)
        if entry is None and sha is None:
            raise UserError(f"{file_name or what} is not an archive of the registry, so nothing can check it: add "
                            "--sha256 HEX (the checksum its publisher gives) to install it.")
        if entry is not None:
            if sha is not None and sha.lower() != entry.sha256:
                raise UserError(f"--sha256 differs from the registry's SHA-256 of {file_name}; leave it out.")
            folder = install_entry(entry, url=what, progress=_progress(), overwrite=args.overwrite)
        else:
            cache = user_folder("model") / ".downloads"
            archive = download_file(what, cache / (file_name or "download.tar.gz"), str(sha).lower(),
                                    progress=_progress(), label=file_name)
            try:
                folder = install_archive(archive, sha256=sha, overwrite=args.overwrite)
            finally:
                archive.unlink(missing_ok=True)
    elif not what.strip():
        raise UserError("No model given: give a registry name ('orbitai models list'), an archive, a folder or a URL.")
    elif Path(what).expanduser().exists() or "/" in what or what.endswith((".tar.gz", ".tgz", ".tar")):
        path = Path(os.path.abspath(Path(what).expanduser()))    # "." and ".." by their folders' names
        if not path.exists():
            raise UserError(f"{what} does not exist; give a registry name ('orbitai models list'), an archive, a "
                            "folder or a URL.")
        if path.is_dir():
            entry = registry_entry(path.name)
            kind = entry.kind if entry is not None else "model"
            folder = install_folder(path, kind, entry, overwrite=args.overwrite)
        else:
            folder = install_archive(path, sha256=sha, overwrite=args.overwrite)
    else:
        entry = registry_entry(what)
        if entry is None:
            raise UserError(f"{what!r} is not in the model registry ('orbitai models list' shows its names); give "
                            "a name, an archive, a folder or a URL.")
        folder = install_entry(entry, progress=_progress(), overwrite=args.overwrite)
    print(f"installed {folder.name} in {folder}")
    return 0


def _name(text: str, action: str) -> str:
    """``text`` as an installed entry's name: a name, never a path (``..`` or ``/`` would name another folder)."""
    if not MODEL_NAME.fullmatch(text or ""):
        raise UserError(f"{text!r} is not a model or data-set name (letters, digits, ., - and _; no folders): give "
                        f"the name 'orbitai models list' shows to {action}.")
    return text


def run_verify(args: argparse.Namespace) -> int:
    entries = load_registry()
    if args.name is not None:
        _name(args.name, "verify")
        entry = registry_entry(args.name)
        found = locate(args.name, entry.kind if entry else "model")
        if found is None:
            raise UserError(f"{args.name!r} is not installed ('orbitai models list' shows what is).")
        todo = [(args.name, entry, entry.kind if entry else "model", found)]
    else:
        todo = [(e.name, e, e.kind, found) for e in entries.values() if (found := locate(e.name, e.kind))]
    failed = []
    for name, entry, kind, (where, folder) in todo:
        reason = installed_ok(folder, entry, kind)
        print(f"{'OK    ' if reason is None else 'FAILED'} {name} ({where}: {folder})"
              + ("" if reason is None else f": {reason}"))
        if reason is not None:
            failed.append(name)
    sys.stdout.flush()
    if failed:
        raise BundleError(f"{len(failed)} of {len(todo)} failed the check ({', '.join(failed)}); reinstall them with "
                          "'orbitai models install NAME'.")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    _name(args.name, "remove")
    entry = registry_entry(args.name)
    kinds = [entry.kind] if entry else ["model", "data"]
    for kind in kinds:
        if (user_folder(kind) / args.name).is_dir():
            folder = remove_installed(args.name, user_folder(kind))
            print(f"removed {args.name} from {folder.parent}")
            return 0
    if any((mirror_folder(k) / args.name).is_dir() for k in kinds):
        raise UserError(f"{args.name} is one of the package's own bundles ({mirror_folder(kinds[0])}), which "
                        "'remove' never deletes; only the user's folder's copies are removed.")
    raise UserError(f"{args.name!r} is not installed in the user's folder ('orbitai models list' shows where each "
                    "one is).")
