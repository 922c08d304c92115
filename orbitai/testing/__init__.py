"""Test functions shared by pytest (headless, ``Testing/``) and the modules' self-tests inside Slicer.

An installed extension has no ``Testing/`` folder and Slicer ships no pytest, so the bodies of the
module tests live here: plain functions with plain asserts that take a scene context (and a
temporary folder where they write files). ``Testing/<Module>/test_*.py`` calls the same functions.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator, Optional

__all__ = ["raises", "patched", "slicer_context", "node_ids"]


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
