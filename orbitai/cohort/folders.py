"""Moving case folders in a cohort's output folder without ever removing what the user put there.

A run predicts into its own work folder in OUT (:func:`make_work_folder`, marked ``WORK_MARKER`` with its
command, process and machine); one a killed run left is found again by :func:`abandoned_work_folders` (its
process gone, or another machine's marker older than ``FOREIGN_WORK_AGE``). A case folder is removed
(:func:`remove_case_folder`) or replaced (:func:`replace_case`) only while it holds nothing but the command's own
files (its ``INPUTS_FILE`` and the files its ``result.json`` names included): it is moved aside first, checked
there, and put back whole with a one-line error naming the foreign files (:func:`check_only_ours`) otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from orbitai.cohort.records import INPUTS_FILE
from orbitai.errors import UserError
from orbitai.result import previous_files
from orbitai.staging import strict_json

#: The prefix of a run's work folder in OUT, and the file marking it as the runner's own.
WORK_PREFIX, WORK_MARKER = ".orbitai-cohort-", "orbitai-cohort-run.json"
#: A work folder another machine's run left is removed only once its marker is this old (seconds): that run
#: may still be going (its process cannot be seen from here).
FOREIGN_WORK_AGE = 7 * 24 * 3600.0


def _foreign(folder: Path, allowed: Sequence[str], previous: bool = True) -> list[str]:
    """The names in ``folder`` outside ``allowed`` (the command's files), its `INPUTS_FILE` and (``previous``)
    the files its ``result.json`` names, sorted."""
    ours = {*allowed, INPUTS_FILE, *(previous_files(folder) if previous else ())}
    return sorted(p.name for p in folder.iterdir() if p.name not in ours)


def check_only_ours(folder: Path, files: Sequence[str], command: str, what: str, also: Sequence[str] = ()) -> None:
    """Refuse (one line, nothing changed) to replace ``folder`` when it holds anything the command ``command`` does
    not write (its ``files``, ``INPUTS_FILE`` and ``also``)."""
    foreign = _foreign(folder, [*files, *also], previous=False)
    if foreign:
        raise UserError(f"{folder} {what} {command} result but holds {', '.join(foreign[:3])}, not "
                        "written by this command; move it away or choose another --out (nothing was changed).")


def _foreign_error(folder: Path, foreign: Sequence[str], what: str = "") -> str:
    return (f"{folder} holds {', '.join(foreign[:3])}, not written by this command{what}; move it away and run "
            "again (nothing of it was removed).")


def _put_back(moved: Path, folder: Path) -> Path:
    """Move ``moved`` back to ``folder``; where that is taken again, beside it under a new name. Returns where."""
    try:
        os.rename(moved, folder)      # onto nothing or an empty folder only: never over the user's files
        return folder
    except OSError:
        kept = Path(tempfile.mkdtemp(prefix=f"{folder.name}.kept-", dir=folder.parent))
        os.replace(moved, kept / folder.name)
        return kept / folder.name


def remove_case_folder(folder: Path, files: Sequence[str], aside: Path, previous: bool = True) -> None:
    """Remove the case folder ``folder`` only if it holds nothing but the command's ``files``: moved to ``aside``
    (a path in the run's work folder) first, so that nothing is written into it after the check, checked, then
    removed (``previous``: the files its ``result.json`` names are the command's too). One holding anything else
    is moved back whole: a `UserError` naming what it holds."""
    try:
        os.replace(folder, aside)
    except FileNotFoundError:
        return
    foreign = _foreign(aside, files, previous)
    if foreign:
        where = _put_back(aside, folder)
        raise UserError(_foreign_error(where, foreign))
    shutil.rmtree(aside)


def replace_case(folder: Path, target: Path, work: Path, files: Sequence[str], replaces: bool) -> None:
    """Move the complete case ``folder`` to ``target``: onto nothing (or an empty folder), or -- with
    ``replaces`` -- over the runner's earlier result there, checked now (not only when the run started) to hold
    nothing but the command's files; a `UserError` otherwise, the folder there untouched."""
    if target.exists() or target.is_symlink():
        if not replaces:
            if not target.is_dir() or target.is_symlink() or any(target.iterdir()):
                raise UserError(f"{target} appeared while the run was predicting case {target.name}; the case was "
                                "not written there (nothing of it was removed): move it away and run again.")
        else:
            if not target.is_dir() or target.is_symlink():
                raise UserError(f"{target} is not a case folder any more; case {target.name} was not written.")
            foreign = _foreign(target, files)
            if foreign:
                raise UserError(_foreign_error(target, foreign, f"; case {target.name} was not written"))
            old = work / f".{target.name}.replaced"   # no case_id begins with a dot: no case folder of the run
            os.replace(target, old)
            foreign = _foreign(old, files)            # written between the check and the move
            if foreign:
                where = _put_back(old, target)
                raise UserError(_foreign_error(where, foreign, f"; case {target.name} was not written"))
            try:
                os.replace(folder, target)
            except OSError:
                _put_back(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
            return
    try:
        os.replace(folder, target)    # fails (nothing changed) where a folder with content appeared meanwhile
    except OSError as exc:
        if target.exists():
            raise UserError(f"{target} appeared while the run was predicting case {target.name}; the case was not "
                            "written there (nothing of it was removed): move it away and run again.") from None
        raise exc


def _host() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True when it cannot be told)."""
    try:
        import psutil  # type: ignore[import-untyped]  # a dependency of dask.distributed

        return bool(psutil.pid_exists(pid))
    except ImportError:
        if os.name != "posix":
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True


def make_work_folder(out: Path, command: str) -> Path:
    """This run's work folder in ``out``, marked as the runner's (`WORK_MARKER`: command, process, machine)."""
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out))
    (work / WORK_MARKER).write_text(strict_json({"command": command, "pid": os.getpid(), "host": _host(),
                                                 "started": time.time()}, indent=None) + "\n")
    return work


def abandoned_work_folders(out: Path) -> list[Path]:
    """Work folders in ``out`` that an earlier run of the runner left when it was killed: named and marked as
    the runner's (`make_work_folder`), by a process that no longer runs on this machine, or on another machine
    (whose processes cannot be seen from here) marked more than `FOREIGN_WORK_AGE` ago; a younger one of another
    machine is kept, with a one-line warning. A folder of any other name or without the marker is never among them."""
    found = []
    try:
        entries = list(out.iterdir())
    except OSError:
        return []
    for p in entries:
        if not (p.name.startswith(WORK_PREFIX) and p.is_dir() and not p.is_symlink()):
            continue
        try:
            mark = json.loads((p / WORK_MARKER).read_text())
            pid, host = int(mark["pid"]), str(mark["host"])
            started = float(mark.get("started") or (p / WORK_MARKER).stat().st_mtime)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if host == _host():
            if not _alive(pid):
                found.append(p)
        elif time.time() - started > FOREIGN_WORK_AGE:
            found.append(p)
        else:
            print(f"warning: kept {p}: the work folder of a run on {host} (process {pid}), which may still be going; "
                  "remove it yourself once that run has ended", file=sys.stderr, flush=True)
    return found
