"""The ``predict --out DIR`` contract shared by every task.

A prediction writes one folder: ``DIR/result.json`` (``task``, ``model``, ``warnings``, the task's
findings and ``files``: role -> file name in DIR) beside the files it names. One `TaskResult`
subclass per task writes *and* validates that folder, so the command line, the Slicer Logic and
scripts agree on one definition:

* `TaskResult.write` writes everything into a temporary folder next to DIR and moves it into
  place only when complete (``result.json`` last): a failure never leaves half a result.
* `TaskResult.read` checks ``result.json`` and every file it names (optionally against the input
  image's geometry) and raises `orbitai.errors.ResultError` with one clear line otherwise.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Literal, Optional, TypeVar, overload

import numpy as np

from orbitai.bundle.core import check_bundle_folder, refuse_package_folder
from orbitai.errors import ResultError, UserError
from orbitai.io import Volume, VolumeError, read_volume
from orbitai.staging import check_writable, staged_folder, strict_json

if TYPE_CHECKING:
    from orbitai.scan import ScanFacts

RESULT_FILE = "result.json"
R = TypeVar("R", bound="TaskResult")


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse, before any work, an ``--out`` folder that cannot be created (a file in its place or
    on its path), lies in the bundled models (`orbitai.bundle.core.refuse_package_folder`) or cannot be written
    (`orbitai.staging.check_writable`) with one clear line; returns it as a Path."""
    out = Path(out_dir)
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == out else f"lies below the file {p}"
                raise UserError(f"The output folder {out} {what}; --out takes a folder.")
            break
    refuse_package_folder(out, "--out")     # the bundled models are read-only for every command
    check_writable(out)
    return out


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def default_marker(files: Iterable[str]) -> str:
    """The file that tells an earlier output of a command writing ``files`` into a folder: ``result.json``,
    else its first JSON file (``cv.json``, ``table2.json``, ``metrics.json``, ``summary.json``), else its first."""
    files = list(files)
    if RESULT_FILE in files:
        return RESULT_FILE
    return next((f for f in files if f.endswith(".json")), files[0] if files else "")


def check_foreign(out: str | os.PathLike, files: Iterable[str], marker: str = "",
                  earlier: Optional[Callable[[Path], bool]] = None) -> None:
    """The rule for an output folder's entries (files and work folders a command writes into OUT): an entry
    this command did not write is never replaced. Entries of ``files`` already in OUT are replaced only when
    OUT holds an earlier output of the same kind: this command's ``marker`` file (`default_marker`), or what
    ``earlier(OUT)`` accepts; otherwise one `UserError` naming them, before any work."""
    folder = Path(out)
    files = list(files)
    marker = marker or default_marker(files)
    if not folder.is_dir() or (earlier(folder) if earlier is not None else (not marker or (folder / marker).is_file())):
        return
    present = [f for f in files if (folder / f).exists() or (folder / f).is_symlink()]
    if present:
        shown = ", ".join(present[:4]) + (f" and {len(present) - 4} more" if len(present) > 4 else "")
        why = f"there is no {marker} of an earlier run" if earlier is None else "it is no earlier output of it"
        raise UserError(f"--out {out} already holds {shown}, not written by this command ({why}); "
                        "choose another output folder (nothing was changed).")


def check_outputs(out_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike | None],
                  files: Iterable[str] = (), beside: Iterable[str] = (), replaces_folder: bool = False,
                  bundle: str = "", overwrite: bool = False, marker: str = "", task: str = "",
                  earlier: Optional[Callable[[Path], bool]] = None) -> Path:
    """Refuse, before any work, outputs that would overwrite an input or anything the command did not write
    (one clear line); returns OUT.

    ``out_dir`` is the command's ``--out`` folder (checked by `check_out_dir` too), ``inputs`` every
    file or folder the command reads, ``files`` the names it writes inside OUT, ``beside`` the names it
    writes next to OUT (work folders, logs) and ``replaces_folder`` whether OUT is replaced as a whole
    (a bundle), so that nothing inside it may be an input. ``bundle`` (the task of the bundle that replaces
    OUT; implies ``replaces_folder``) applies `orbitai.bundle.core.check_bundle_folder` (``overwrite``:
    ``--overwrite``); ``files`` already in OUT must be an earlier output of this command (`check_foreign`,
    ``marker``). With ``result.json`` among ``files`` (a `TaskResult`), the files an earlier result in OUT
    lists count as written (`TaskResult.write` removes them) when it is this ``task``'s (`check_own_result`; another
    task's result is refused); ``earlier(OUT)`` tells an earlier output whose files have no marker (`check_foreign`).
    Paths are compared after resolving links."""
    out = Path(out_dir)
    target = out.resolve()
    files = list(files)
    replaces_folder = replaces_folder or bool(bundle)
    own = list(files)
    if RESULT_FILE in files:   # writing a result first removes the files the previous one lists
        files += previous_files(target)
    written = [target / name for name in files]
    written += [target.parent / name for name in beside]
    for given in inputs:
        if given is None:
            continue
        src = Path(given).resolve()
        if src == target:
            raise UserError(f"--out {out} is the input {given}; choose another output folder.")
        if replaces_folder and _inside(src, target):
            raise UserError(f"--out {out} would be replaced as a whole, but it holds the input {given}; "
                            "choose another output folder.")
        for path in written:
            if _inside(src, path):
                raise UserError(f"Writing {path.name} to {path.parent} would overwrite the input {given}; "
                                "choose another output folder.")
    check_out_dir(out)
    if bundle:
        check_bundle_folder(out, bundle, overwrite)
    if task and RESULT_FILE in own:
        check_own_result(out, task)
    check_foreign(out, own, marker, earlier)
    if beside or replaces_folder:   # work files and the replaced folder's stage go beside OUT
        check_writable(out, beside=True)
    return out


def check_own_result(out_dir: str | os.PathLike, task: str) -> None:
    """A result is written only into a new folder or over an earlier result of the same ``task``: a folder holding
    another command's ``result.json`` (whose files writing would remove) is refused in one `UserError` line."""
    path = Path(out_dir) / RESULT_FILE
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        other = data.get("task") if isinstance(data, dict) else None
    except (OSError, ValueError):
        other = None
    if other != task:
        held = f"the {other} result of another command" if isinstance(other, str) and other else \
            f"a {RESULT_FILE} this command did not write"
        raise UserError(f"--out {out_dir} holds {held}, not an earlier {task} result; writing there would replace "
                        "its files: choose another output folder (nothing was changed).")


def previous_files(folder: Path) -> list[str]:
    """The plain file names that the ``result.json`` a previous run left in ``folder`` lists (none
    when there is no readable one): writing a new result there removes them."""
    try:
        files = json.loads((folder / RESULT_FILE).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in (files.values() if isinstance(files, dict) else ())
            if isinstance(name, str) and name and Path(name).name == name and name not in (".", "..")]


class TaskResult:
    """Base of the per-task result classes (see module docstring).

    Subclasses set `task`, implement `_write_files(folder) -> {role: file name}`, `to_json()` and
    `_from_folder(data, folder, reference)`."""

    task: ClassVar[str] = ""
    #: The error this task's checks raise (a `ResultError`).
    error: ClassVar[type[ResultError]] = ResultError
    #: The predictor that made this result (`orbitai.predictor.Predictor.stamp`), written as ``predictor``.
    made_by: Optional[str] = None
    #: What the scan is and the seconds of each step, as the predictor that made this result found them
    #: (`orbitai.predictor.Predictor.predict`): for the command line's lines, not written.
    facts: Optional["ScanFacts"] = None
    stages: Optional[dict[str, float]] = None

    # ------------------------------------------------------------------ to implement
    def to_json(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _write_files(self, folder: Path) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _from_folder(cls: type[R], data: dict[str, Any], folder: Path,
                     reference: Optional[Volume]) -> R:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------------ write
    def write(self, out_dir: str | os.PathLike, extra: Optional[Callable[[Path], dict[str, str]]] = None) -> Path:
        """Write the result folder atomically; ``extra(tmp) -> {role: name}`` adds optional files."""
        out = check_out_dir(out_dir)
        check_own_result(out, self.task)     # another command's result (and the files it lists) is never replaced
        # An existing folder (e.g. a job's) keeps its other files; the previous result.json and the files
        # it names are replaced, the old result.json removed first and the new one moved in last.
        with staged_folder(out, replaces=[RESULT_FILE, *previous_files(out)], last=[RESULT_FILE]) as tmp:
            files = self._write_files(tmp)
            if extra is not None:
                files.update(extra(tmp))
            data = {"task": self.task, **self.to_json(), "files": files}
            if self.made_by:
                data["predictor"] = self.made_by
            (tmp / RESULT_FILE).write_text(strict_json(data))
        return out / RESULT_FILE

    # ------------------------------------------------------------------------- read
    @classmethod
    def read_json(cls, out_dir: str | os.PathLike) -> dict[str, Any]:
        """``result.json`` of ``out_dir`` as a dict, with its task checked (no other file is read)."""
        folder = Path(out_dir)
        path = folder / RESULT_FILE
        if not path.is_file():
            raise cls.error(f"The prediction wrote no {RESULT_FILE} in {folder}.")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise cls.error(f"{RESULT_FILE} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise cls.error(f"{RESULT_FILE} in {folder} is not a JSON object.")
        if "task" not in data:
            raise cls.error(f"{RESULT_FILE} in {folder} names no task; it was not written by 'orbitai ... predict'.")
        if data["task"] != cls.task:
            raise cls.error(f"{folder} holds a {data['task']!r} result, not a {cls.task!r} result.")
        if not isinstance(data.get("model", ""), str):
            raise cls.error(f"{RESULT_FILE}: 'model' must be a string, got {data['model']!r}.")
        warnings = data.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise cls.error(f"{RESULT_FILE}: 'warnings' must be a list of strings, got {warnings!r}.")
        files = data.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) and Path(v).name == v and v not in ("", ".", "..")
                                                  for v in files.values()):
            raise cls.error(f"{RESULT_FILE}: 'files' must map roles to plain file names in the folder, got {files!r}.")
        return data

    @classmethod
    def read(cls: type[R], out_dir: str | os.PathLike, reference: Optional[Volume] = None) -> R:
        """Read and fully check a result folder; ``reference`` is the input image's geometry."""
        folder = Path(out_dir)
        return cls._from_folder(cls.read_json(folder), folder, reference)

    # ---------------------------------------------------------------------- helpers
    @overload
    @classmethod
    def file_of(cls, data: dict[str, Any], folder: Path, role: str, required: Literal[True] = True) -> Path: ...

    @overload
    @classmethod
    def file_of(cls, data: dict[str, Any], folder: Path, role: str, required: bool) -> Optional[Path]: ...

    @classmethod
    def file_of(cls, data: dict[str, Any], folder: Path, role: str, required: bool = True) -> Optional[Path]:
        """The file that ``result.json``'s ``files`` names for ``role``; None if the role is optional
        and not listed. Only listed files count: a file left in the folder by an earlier run is never read."""
        name = (data.get("files") or {}).get(role)
        if name is None:
            if required:
                raise cls.error(f"{RESULT_FILE} in {folder} names no {role} file.")
            return None
        path = folder / name
        if not path.is_file():
            raise cls.error(f"The {role} file {name} named by {RESULT_FILE} is missing in {folder}.")
        return path

    @classmethod
    def read_map(cls, path: Path, what: str, reference: Optional[Volume]) -> Volume:
        """A float map on the input's grid with finite values (clear errors otherwise)."""
        m = read_volume(path)
        if reference is not None and not m.same_geometry(reference, tol=1e-3):
            raise VolumeError(f"The {what} (shape {m.shape}) does not lie on the input volume's grid "
                              f"(shape {reference.shape}).")
        if not np.isfinite(m.array).all():
            raise cls.error(f"The {what} has NaN or infinite values.")
        return m

    @classmethod
    def vector(cls, value: Any, n: int, what: str) -> list[float]:
        """``value`` as ``n`` finite floats, else `ResultError` naming ``what``."""
        try:
            out = [float(v) for v in value]
        except (TypeError, ValueError):
            raise cls.error(f"{what} must be {n} numbers, got {value!r}.") from None
        if len(out) != n or not all(math.isfinite(v) for v in out):
            raise cls.error(f"{what} must be {n} finite numbers, got {value!r}.")
        return out


# ------------------------------------------------------------------ a call marked "do not use" (issue 61)
#: What a call marked "do not use" (`orbitai.classify.trust.do_not_use`, result.json's ``trust``) shows in place of
#: the call and its probability: "not assessed: <reason>" (the CLI, both front ends' tables and status lines, the SR).
NOT_ASSESSED = "not assessed"
_DO_NOT_USE = ": do not use"


def not_assessed_reason(trust: str) -> str:
    """The reason of a "do not use" mark (``trust``, e.g. "outside what this model was made for (...): do not use"):
    the mark without its closing ": do not use"."""
    text = str(trust).strip()
    return text[:-len(_DO_NOT_USE)].rstrip() if text.endswith(_DO_NOT_USE) else text


def withhold_call(finding: dict[str, Any], probability: str) -> dict[str, Any]:
    """The one rule of every task (issue 61): a finding of result.json (a TAO eye, the IVGC or NMOSD/MS body) whose
    call is marked "do not use" (a non-empty ``trust``) and has a probability (key ``probability``) gets ``call``
    null and ``reason``: why it is not assessed; the probability stays in result.json (the details), nowhere else.
    Changes ``finding`` in place (a result written before this rule reads the same way) and returns it."""
    if finding.get("trust") and finding.get(probability) is not None:
        finding["call"] = None
        finding["reason"] = not_assessed_reason(finding["trust"])
    return finding


def withheld(finding: dict[str, Any]) -> bool:
    """Whether ``finding``'s call was withheld by `withhold_call` (null, with a "do not use" mark)."""
    return finding.get("call") is None and bool(finding.get("trust"))


def not_assessed(finding: dict[str, Any]) -> str:
    """"not assessed: <reason>" of a withheld finding (`withheld`), else ""."""
    if not withheld(finding):
        return ""
    return f"{NOT_ASSESSED}: {finding.get('reason') or not_assessed_reason(finding['trust'])}"


def shown_call(finding: dict[str, Any], probability: str, label: str = "P", digits: int = 2) -> str:
    """How a call reads in a summary line: "<call> (<label> = 0.86)", or "not assessed: <reason>" in place of both
    when the call is withheld (`withhold_call`): no call and no probability."""
    return not_assessed(finding) or f"{finding['call']} ({label} = {float(finding[probability]):.{digits}f})"


def check_withheld(finding: dict[str, Any], where: str, error: type[ResultError] = ResultError) -> bool:
    """Check a finding's call against the rule (`withhold_call`): a call marked "do not use" is null with a reason,
    a null call is marked; raises ``error`` naming ``where`` otherwise. Returns whether the call is withheld."""
    if finding.get("call") is not None:
        if finding.get("trust"):
            raise error(f"{where}: a call marked do not use must be null (not assessed), got {finding['call']!r}.")
        return False
    if not finding.get("trust") or not isinstance(finding.get("reason"), str) or not finding["reason"].strip():
        raise error(f"{where}: call is null without a do-not-use mark ('trust') and its 'reason'.")
    return True
