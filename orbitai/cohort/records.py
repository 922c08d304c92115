"""What a cohort case is and what its finished folder records of what it was made from.

A case (:class:`CohortCase`) names its inputs; a complete case folder holds ``INPUTS_FILE``, the case's
:func:`input_record`: each input file or folder by the SHA-256 of its content (with its place, size and times,
so that a rerun hashes an unchanged input again only when those changed: :func:`_signature`), each other input
value as it is, and the options that decide the result (a model bundle by :func:`bundle_identity`, not as typed).
:func:`made_from` tells the runner whether a complete case was made from the present inputs and options, so that
a rerun skips it, or predicts it again when an image was corrected or an option changed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from orbitai.bundle.core import find_bundle
from orbitai.errors import OrbitAIError
from orbitai.io.checksums import sha256_input
from orbitai.staging import write_json_atomic

#: What each complete case folder records of what it was made from (`input_record`).
INPUTS_FILE = ".orbitai-inputs.json"


@dataclass(frozen=True)
class CohortCase:
    """One case: its id (its folder's name under OUT), the values its prediction reads (plain, picklable:
    paths as strings), and the files it reads (checked against what is written)."""

    case_id: str
    inputs: Mapping[str, Any]
    paths: tuple[str, ...] = ()



def bundle_identity(model: str) -> Any:
    """What decides the results of the bundle ``model`` (a name or folder as typed): its name and the SHA-256 of
    its metadata (which holds its weights' and files' checksums), so that ``./b``, ``b`` and ``/abs/b`` are one
    model and a bundle retrained in place is another. Text that names no bundle (a task's alias, such as ``B``,
    for a shipped one) stays as it is; the prediction says what is wrong with it."""
    try:
        bundle = find_bundle(model)
    except (OrbitAIError, OSError, ValueError):
        return model
    meta = bundle.metadata
    return {"bundle": bundle.name, "weights_sha256": meta.get("weights_sha256"),
            "metadata_sha256": hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()}


#: A file modified this recently (nanoseconds) may be written again within its time stamp's resolution.
_SETTLE_NS = 2_000_000_000


def _signature(path: Path) -> Optional[list]:
    """What changes when a file or folder is written again: sizes, modification and change times and inodes (a
    copy that keeps the modification time, ``cp -p``, still changes the change time or the inode); None, never
    trusted, where a file was modified in the last two seconds."""
    def stamp(st: os.stat_result) -> list:
        return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]

    now = time.time_ns()
    if path.is_dir():
        stats = [(q.relative_to(path).as_posix(), q.stat()) for q in sorted(path.rglob("*")) if q.is_file()]
    else:
        stats = [("", path.stat())]
    if any(now - st.st_mtime_ns < _SETTLE_NS for _, st in stats):
        return None
    if not path.is_dir():
        return stamp(stats[0][1])
    return [[name, *stamp(st)] for name, st in stats]


def input_record(case: CohortCase, options: Mapping[str, Any], previous: Optional[Mapping[str, Any]] = None) -> dict:
    """What a case is made from: each input naming a file or folder by its content's SHA-256 (and its place, size
    and time, so that a rerun reads an unchanged input only when ``previous`` recorded another), each other input
    value as it is, and ``options``. Two records with equal `_record_key` make the same result."""
    inputs: dict[str, Any] = {}
    before = (previous or {}).get("inputs", {})
    for name, value in sorted(case.inputs.items()):
        path = Path(value) if isinstance(value, str) and value else None
        if path is not None and path.exists():
            place, signature = str(path.resolve()), _signature(path)
            old = before.get(name)
            same = (signature is not None and isinstance(old, dict) and old.get("path") == place
                    and old.get("signature") == signature)
            digest = old["sha256"] if same else sha256_input(path)
            inputs[name] = {"path": place, "signature": signature, "sha256": digest}
        else:
            inputs[name] = {"value": json.loads(json.dumps(value, default=str, sort_keys=True))}
    return {"case_id": case.case_id, "inputs": inputs, "options": dict(options)}


def _record_key(record: Mapping[str, Any]) -> str:
    """The part of an `input_record` that decides the result: contents and values, not places or times."""
    inputs = {k: v.get("sha256", v.get("value")) if isinstance(v, dict) else v
              for k, v in record.get("inputs", {}).items()}
    return json.dumps({"inputs": inputs, "options": record.get("options")}, sort_keys=True, default=str)


def made_from(folder: Path, case: CohortCase, options: Mapping[str, Any]) -> bool:
    """Whether the complete case in ``folder`` was made from ``case``'s present inputs and ``options`` (its
    `INPUTS_FILE`; False without one: a case of an earlier version, or not made by the runner)."""
    try:
        previous = json.loads((folder / INPUTS_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(previous, dict):
        return False
    try:
        now = input_record(case, options, previous)
    except OSError:
        return False
    if _record_key(now) != _record_key(previous):
        return False
    if now != previous:      # the same content at another place or time: remember it, not to read it again
        with contextlib.suppress(OSError):

            write_json_atomic(folder / INPUTS_FILE, now, indent=1)
    return True

