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
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["staged_folder", "DISK_FULL", "disk_full", "disk_full_error", "write_failure"]

#: errno values that mean "no room to write": a full disk, a file-size limit, a full quota.
DISK_FULL = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e is not None)


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


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, replaces: Iterable[str] = (), last: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``out``; move its content into ``out`` only if the block succeeds."""
    given = Path(out)   # named in errors as the user gave it
    out = given.absolute()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(out))
    if not out.parent.exists():
        out.parent.mkdir(parents=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    last = list(last)
    try:
        yield stage
        if not out.exists():
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(stage, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual permissions
            os.replace(stage, out)
            return
        for name in sorted(replaces, key=lambda n: n not in last):  # e.g. the old manifest goes first
            _remove(out / name)
        for item in sorted(stage.iterdir(), key=lambda p: p.name in last):
            _remove(out / item.name)
            os.replace(item, out / item.name)
    except OSError as exc:
        if not disk_full(exc):
            raise
        raise disk_full_error(exc, given, stage) from None   # the output's name, not the hidden folder's
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
