"""Write a command's output folder atomically: into a hidden folder beside it, moved into place at the end.

::

    with staged_folder(out, replaces=["manifest.csv", "images"], last=["manifest.csv"]) as work:
        ...  # write everything into ``work``

On success the files appear in ``out`` (a new ``out`` is the staged folder renamed; in an existing
one the previous run's ``replaces`` entries are removed first and every staged entry replaces its
namesake, the ``last`` ones last). On any failure, ``KeyboardInterrupt`` included (which
`orbitai.cli` also raises on SIGTERM), the staged folder is removed and ``out`` is untouched.

No room to write (a full disk, a file-size limit or quota: `DISK_FULL`) is one `OSError` naming the
output file, never the hidden folder; `write_failure` recovers it from writers that drop the reason
(SimpleITK), and the command line reports it as "the disk is full while writing PATH".
"""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from orbitai.errors import UserError

__all__ = ["staged_folder", "training_folder", "training_work_folder", "finetune_work_folder", "trim_epoch_log",
           "check_writable", "stage_parent", "DISK_FULL", "disk_full", "disk_full_error", "write_failure", "looks_like_path", "strict_json",
           "write_json_atomic", "write_text_atomic", "remove_unfinished", "scratch_folder"]

#: errno values that mean "no room to write": a full disk, a file-size limit, a full quota.
DISK_FULL = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e is not None)


#: What the blocks of `staged_folder` and `training_folder` now running would remove on failure, for a command stopped
#: from outside its main thread (`remove_unfinished`; `orbitai.cli` does so when a cancel finds the main thread stuck
#: inside one library call).
_UNFINISHED: dict[int, Callable[[], None]] = {}


@contextlib.contextmanager
def _unfinished(remove: Callable[[], None]) -> Iterator[None]:
    key = id(remove)
    _UNFINISHED[key] = remove
    try:
        yield
    finally:
        _UNFINISHED.pop(key, None)


def remove_unfinished() -> None:
    """Remove what every unfinished `staged_folder` and `training_folder` block would remove on failure (their hidden
    stages, the work folders they made without a checkpoint): a command about to end without unwinding its blocks
    (``os._exit`` after a cancel) leaves nothing half-written. Never raises."""
    for remove in list(_UNFINISHED.values()):
        with contextlib.suppress(Exception):
            remove()


@contextlib.contextmanager
def scratch_folder(prefix: str, before_removal: Optional[Callable[[], None]] = None) -> Iterator[Path]:
    """A new temporary folder, removed on leaving the block, and by `remove_unfinished` while the block runs: a
    command ended from its watcher thread (a cancel that finds the main thread stuck, say in closing a Dask cluster)
    leaves no scratch behind. ``before_removal`` runs first on either path (it ends the processes that could still
    write there: a child that makes the folder anew after its removal leaves it behind). (``tempfile.TemporaryDirectory``
    raises on a file a dying child writes meanwhile.)"""
    folder = Path(tempfile.mkdtemp(prefix=prefix))

    def remove() -> None:
        if before_removal is not None:
            with contextlib.suppress(Exception):
                before_removal()
        shutil.rmtree(folder, ignore_errors=True)

    try:
        with _unfinished(remove):
            yield folder
    finally:
        remove()


def looks_like_path(text: str | os.PathLike, suffixes: Iterable[str] = ()) -> bool:
    """Whether a "name or path" argument (``--model``, ``--protocol``) is written as a path: it holds a folder
    separator, starts with ``.`` or ``~``, or ends with one of ``suffixes``. Such text is only ever a path;
    any other is a shipped resource's name first (a folder of that name in the working directory comes after)."""
    s = os.fspath(text)
    seps = {"/", os.sep, *((os.altsep,) if os.altsep else ())}
    return (any(c in s for c in seps) or s.startswith((".", "~"))
            or any(s.lower().endswith(x) for x in suffixes))


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an `OSError` saying there is no room to write (see `DISK_FULL`)."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def disk_full_error(exc: OSError, out: str | os.PathLike, stage: str | os.PathLike | None = None) -> OSError:
    """``exc`` naming the output the user asked for: ``out`` when it names no file (``write()`` errors do
    not), a file in the hidden ``stage`` folder by its place in ``out``."""
    name = exc.filename
    if name and stage is not None and Path(name).absolute().is_relative_to(Path(stage).absolute()):
        name = str(Path(out) / Path(name).absolute().relative_to(Path(stage).absolute()))
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno or 0), str(name or out))


def write_failure(partial: str | os.PathLike, path: str | os.PathLike) -> OSError | None:
    """After a library writer (SimpleITK, teem) failed on ``partial``, tell whether it ran out of room.

    Such writers report "failed to write" and drop the operating system's reason; appending 64 KiB to
    the partial file hits the same limit again, giving the `OSError` (naming ``path``) to report, or
    None when there is room and the failure had another cause. The partial file is the caller's to remove.
    """
    try:
        with open(partial, "ab") as f:
            f.write(b"\0" * (64 << 10))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        if disk_full(exc):
            return OSError(exc.errno, exc.strerror or os.strerror(exc.errno or 0), str(path))
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def stage_parent(out: Path) -> Optional[Path]:
    """Where `staged_folder` puts its hidden folder for ``out`` (absolute): beside it, or inside an existing
    ``out`` whose parent cannot be written (a home folder); None when neither can be written."""
    if out.exists():   # its entries are replaced: it must be writable; the stage goes beside it if it can
        if not os.access(out, os.W_OK | os.X_OK):
            return None
        return out.parent if os.access(out.parent, os.W_OK | os.X_OK) else out
    existing = next(p for p in out.parents if p.exists())
    return out.parent if os.access(existing, os.W_OK | os.X_OK) else None


def check_writable(out: str | os.PathLike, beside: bool = False) -> None:
    """Refuse, before any work, an output folder that cannot be written (no permission to create it or to
    write in it; with ``beside``, also to write next to it: work folders, a replaced bundle's stage): one
    `UserError` naming it and what to do."""
    path = Path(out).absolute()
    ancestor = next(p for p in path.parents if p.exists())
    if not ancestor.is_dir() or (path.exists() and not path.is_dir()):
        return   # a file on the path: creating the folder says "Not a directory"
    where: Optional[Path] = None
    if beside and not os.access(ancestor, os.W_OK | os.X_OK):
        where = ancestor
    elif stage_parent(path) is None:
        where = path if path.exists() else ancestor
    if where is not None:
        raise UserError(f"The output folder {out} cannot be written: no permission to write in {where}; "
                        "choose another --out or change that folder's permissions.")


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, replaces: Iterable[str] = (), last: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``out`` (inside an existing ``out`` whose parent cannot be written);
    move its content into ``out`` only if the block succeeds. An ``out`` that cannot be written at all is a
    `UserError` (`check_writable`) before the block runs; parent folders made for ``out`` go on failure."""
    given = Path(out)   # named in errors as the user gave it
    out = given.absolute()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(out))
    check_writable(given)
    created = next((p for p in reversed([out.parent, *out.parent.parents]) if not p.exists()), None)
    if created is not None:
        out.parent.mkdir(parents=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=stage_parent(out) or out.parent))
    last = list(last)
    done = False

    def remove_made() -> None:
        """The stage, and parent folders made for OUT (if still empty): what a failure leaves of this block."""
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if not done and created is not None:
            for p in [out.parent, *out.parent.parents]:
                if not p.is_relative_to(created):
                    break
                with contextlib.suppress(OSError):
                    p.rmdir()

    try:
        with _unfinished(remove_made):
            yield stage
        if not out.exists():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(stage, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual permissions
            os.replace(stage, out)
            done = True
            return
        for name in sorted(replaces, key=lambda n: n not in last):  # e.g. the old manifest goes first
            _remove(out / name)
        for item in sorted(stage.iterdir(), key=lambda p: p.name in last):
            _remove(out / item.name)
            os.replace(item, out / item.name)
        done = True
    except OSError as exc:
        if not disk_full(exc):
            raise
        raise disk_full_error(exc, given, stage) from None   # the output's name, not the hidden folder's
    finally:
        remove_made()


def training_work_folder(out: str | os.PathLike) -> Path:
    """Where a training into ``out`` keeps its checkpoints and caches: ``.<out name>-training`` beside it (the same
    command resumes from it; `training_folder` removes it when the bundle is written)."""
    return _beside(out, "training")


def finetune_work_folder(out: str | os.PathLike) -> Path:
    """Where a fine-tuning into ``out`` keeps its folds' state and checkpoint: ``.<out name>-finetune`` beside it
    (`orbitai.training.finetune.work_folder` refuses such a folder that a fine-tuning did not make)."""
    return _beside(out, "finetune")


def _beside(out: str | os.PathLike, kind: str) -> Path:
    out = Path(out)
    return out.parent / f".{out.name}-{kind}"


@contextlib.contextmanager
def training_folder(work: str | os.PathLike, beside: Iterable[str | os.PathLike] = (),
                    checkpoint: str | Sequence[str] = "checkpoint.pt", finished: Optional[Callable[[], bool]] = None) -> Iterator[Path]:
    """A training's work folder ``work`` (checkpoint, caches, logs) for the duration of the block.

    On success (the bundle is written) it is removed, an earlier run's included: everything is in the bundle
    now, as the radiomics cache of ``ivgc features`` (the ``beside`` files stay) -- unless ``finished()`` says
    the schedule was cut short (``seg train --time-limit``): then it stays, and a rerun goes on. On any failure, ``KeyboardInterrupt`` included
    (Ctrl-C; `orbitai.cli` raises it on SIGTERM too), what this run created is removed -- the folder and
    the ``beside`` files that did not exist before -- unless the folder now holds ``checkpoint`` (or one of several names): a
    training interrupted after an epoch keeps that checkpoint (and says so on stdout) so that the same
    command resumes from it. A folder that existed before (an earlier run's) is never removed.
    """
    work = Path(work)
    created = not work.exists()
    new_beside = [Path(b) for b in beside if not Path(b).exists()]
    names = (checkpoint,) if isinstance(checkpoint, str) else tuple(checkpoint)

    def remove_made() -> None:
        """What this run made, unless the folder holds a checkpoint (see above)."""
        if created and not any((work / n).is_file() for n in names):
            shutil.rmtree(work, ignore_errors=True)
            for b in new_beside:
                with contextlib.suppress(OSError):
                    b.unlink()

    try:
        with _unfinished(remove_made):
            yield work
        if finished is None or finished():
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}: run the same command again to train the remaining epochs", flush=True)
    except BaseException:
        kept: Optional[Path] = next((work / n for n in names if (work / n).is_file()), None)
        if created and kept is None:
            shutil.rmtree(work, ignore_errors=True)
            for b in new_beside:
                with contextlib.suppress(OSError):
                    b.unlink()
        elif created and kept is not None:
            print(f"kept the checkpoint {kept}: run the same command again to resume from it, "
                  f"or delete {work} to start over", flush=True)
        raise


def trim_epoch_log(path: str | os.PathLike, keep_below: int, column: str = "epoch") -> None:
    """Keep in the per-epoch CSV ``path`` only the rows whose ``column`` is below ``keep_below`` (rewritten
    atomically): a training resumed from a checkpoint redoes any epoch logged after that checkpoint (an
    interrupt between the row and the checkpoint), and must not log it twice."""
    path = Path(path)
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    kept = [r for r in rows if r.get(column, "").isdigit() and int(r[column]) < keep_below]
    if fields is None or len(kept) == len(rows):
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(kept)
    os.replace(tmp, path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place: a reader never sees
    half a file, and a failure leaves the previous one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:   # case ids and names may not be ASCII
            f.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite number made None and NumPy scalars and arrays made plain numbers and
    lists (see `strict_json`)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    tolist = getattr(value, "tolist", None)        # NumPy (and torch) scalars and arrays
    if callable(tolist) and type(value).__module__.split(".")[0] in ("numpy", "torch"):
        return _finite(tolist())
    return value


def strict_json(data: Any, indent: Optional[int] = 2, default: Optional[Callable[[Any], Any]] = None,
                **kwargs: Any) -> str:
    """``data`` as strict JSON text (RFC 8259: what a browser's ``JSON.parse`` and other tools read), the one writer
    of every result.json, metadata.json and report: a NaN or infinite number, a value that could not be computed,
    is written as null (never a bare ``NaN`` or ``Infinity``); NumPy numbers and arrays as numbers and lists;
    ``default`` as `json.dumps`'s, its values made finite too. Ends with a newline when indented."""
    hook = (lambda o: _finite(default(o))) if default is not None else None
    text = json.dumps(_finite(data), indent=indent, allow_nan=False, default=hook, **kwargs)
    return text + "\n" if indent is not None else text


def write_json_atomic(path: str | os.PathLike, data: Any, indent: Optional[int] = 2, **kwargs: Any) -> Path:
    """`strict_json` of ``data`` written with `write_text_atomic` (a reader never sees half a file)."""
    return write_text_atomic(path, strict_json(data, indent, **kwargs))
