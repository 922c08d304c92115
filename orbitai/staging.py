"""Write a command's output folder atomically: into a hidden folder beside it, moved into place at the end.

::

    with staged_folder(out, replaces=["manifest.csv", "images"], last=["manifest.csv"]) as work:
        ...  # write everything into ``work``

On success the files appear in ``out`` (a new ``out`` is the staged folder renamed; in an existing
one the previous run's ``replaces`` entries are removed first and every staged entry replaces its
namesake, the ``last`` ones last). On any failure, ``KeyboardInterrupt`` included (which
`orbitai.cli` also raises on SIGTERM), the staged folder is removed and ``out`` is untouched.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["staged_folder"]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, replaces: Iterable[str] = (), last: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``out``; move its content into ``out`` only if the block succeeds."""
    out = Path(out).absolute()
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
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
