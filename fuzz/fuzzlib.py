"""What every fuzz target shares: the verdict on one input and the Atheris main.

A target module defines ``read(data: bytes)`` -- feed the bytes to one of OrbitAI's readers, the way a user, a page or
a registry gives them (a temporary file or folder where the reader takes a path) -- and ``MODULES``, the ``orbitai``
modules it exercises (instrumented for coverage when it runs under Atheris). :func:`check` is its ``TestOneInput``:
the reader's answer, or a one-line project error (`orbitai.errors.OrbitAIError`), is correct; any other exception, or
a project error of several lines, is a finding (raised, so libFuzzer saves the input as a crash).

The replay test (``Testing/test_fuzz_corpus.py``) runs :func:`check` on every file of ``fuzz/corpus/<reader>/``
without Atheris.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

#: Splits one input into several files (a detached header and its data, the slices of a DICOM series).
PART_SEPARATOR = b"\n--orbitai-fuzz-part--\n"
#: The most decoded bytes an image may take in the targets (the web server's default upload limit is of this order):
#: a header claiming gigabytes is refused before anything is allocated, as the readers do for the page.
MAX_BYTES = 256 << 20


class Finding(AssertionError):
    """A project error whose message is not one line."""


def parts(data: bytes, most: int = 8) -> list[bytes]:
    """The input split at `PART_SEPARATOR` into at most ``most`` parts."""
    return data.split(PART_SEPARATOR, most - 1)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A new empty folder, removed after (the reader's files, and what it wrote, with it)."""
    folder = Path(tempfile.mkdtemp(prefix="orbitai-fuzz-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def project_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a deliberate OrbitAI error (then its message must be one line)."""
    from orbitai.errors import OrbitAIError

    return isinstance(exc, OrbitAIError)


def check(read: Callable[[bytes], object], data: bytes) -> None:
    """One input's verdict: returns when ``read`` answered or refused in one project line; raises otherwise."""
    try:
        read(data)
    except Exception as exc:
        if not project_error(exc):
            raise
        text = str(exc)
        if "\n" in text or "\r" in text or not text.strip():
            raise Finding(f"{type(exc).__name__} of several lines (or none): {text!r}") from exc


def main(module_name: str) -> None:
    """Fuzz ``module_name``'s ``read`` under Atheris (``sys.argv``: libFuzzer's arguments and corpus folders)."""
    import atheris

    os.environ.setdefault("ORBITAI_FUZZ", "1")
    # the notes of what reading corrected, quiet while fuzzing only (never at import: the replay test imports targets)
    logging.getLogger("orbitai").setLevel(logging.ERROR)
    with atheris.instrument_imports(include=["orbitai"]):
        target = importlib.import_module(module_name)
        for name in target.MODULES:
            importlib.import_module(name)

    def one_input(data: bytes) -> None:
        check(target.read, data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
