"""The command line run inside the test's own process: what ``python -m orbitai ARGS`` would exit with and print,
without a new interpreter importing torch again (3-6 s a command on 2 cores). For tests that are not about the
process boundary (signals, exit at interpreter shutdown, another user)."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
from typing import Optional, Sequence

from orbitai.cli import main


@contextlib.contextmanager
def _working_folder(cwd: Optional[str | os.PathLike]):
    if cwd is None:
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def run_cli(args: Sequence[str | os.PathLike], cwd: Optional[str | os.PathLike] = None
            ) -> "subprocess.CompletedProcess[str]":
    """`orbitai.cli.main` on ``args`` in folder ``cwd`` (default: the current one): its exit code (argparse's usage
    errors and ``--help`` included) and what it printed, as `subprocess.run` would give them."""
    words = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with _working_folder(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(words)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(["orbitai", *words], code, out.getvalue(), err.getvalue())


__all__ = ["run_cli"]
