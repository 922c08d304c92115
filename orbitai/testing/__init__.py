"""Test functions shared by pytest (headless, ``Testing/``) and the modules' self-tests inside Slicer.

An installed extension has no ``Testing/`` folder and Slicer ships no pytest, so the bodies of the
module tests live here: plain functions with plain asserts that take a scene context (and a
temporary folder where they write files). ``Testing/<Module>/test_*.py`` calls the same functions.
"""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["raises", "patched", "slicer_context", "node_ids", "wait_for_progress", "process_gone"]


@contextmanager
def raises(expected: type[BaseException] | tuple[type[BaseException], ...],
           match: Optional[str] = None) -> Iterator[None]:
    """Assert that the block raises ``expected`` with a message matching ``match`` (``re.search``)."""
    try:
        yield
    except expected as exc:
        if match is not None and not re.search(match, str(exc)):
            raise AssertionError(f"{type(exc).__name__} raised, but {str(exc)!r} does not match {match!r}") from exc
        return
    raise AssertionError(f"{expected} was not raised")


@contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """Set ``owner.name = value`` inside the block (a failure injected into a real code path)."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def slicer_context():
    """The running application's scene (used by the in-Slicer self-tests)."""
    from orbitai.mrml import get_context

    return get_context()


def node_ids(ctx) -> set[str]:
    """IDs of every node in the context's scene."""
    from orbitai.mrml.transaction import node_ids as ids

    return ids(ctx.scene)


def wait_for_progress(job: Any, timeout_s: float = 60.0) -> None:
    """Poll a started job (`orbitai.jobs.child.OrbitaiJob`, `orbitai.jobs.warm.WarmJob`) until it reports progress;
    fails when it ends or stays silent for ``timeout_s`` (a hang guard, not a speed bound)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and not job.finished:
        if job.poll():
            return
        time.sleep(0.02)
    raise AssertionError("the job reported no progress")


def process_gone(pid: int, timeout_s: float = 10.0) -> bool:
    """Whether process ``pid`` is gone (POSIX), waiting up to ``timeout_s`` for it to end."""
    end = time.monotonic() + timeout_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
