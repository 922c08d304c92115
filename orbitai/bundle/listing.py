"""What a listing of the bundles (`orbitai.bundle.core.iter_bundles`) remembers in a process: each metadata.json's
text and whether it passed its check, with what the check depended on (`orbitai.bundle.schema.checks_key`). The web
app's panels list the models 18 times as it is built (270 checks of the same 15 files, issue 81); a file is checked
again only when its text or the check changed. Reading a file is cheap, checking it is not (JSON Schema, task rules).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

_checked: dict[Path, tuple[tuple[Any, ...], str, bool]] = {}


def passed(meta: Path, checks: tuple[Any, ...], text: str) -> Optional[bool]:
    """Whether ``meta`` holding ``text`` passed the check that ``checks`` describes; None when not checked so."""
    known = _checked.get(meta)
    return known[2] if known is not None and known[:2] == (checks, text) else None


def remember(meta: Path, checks: tuple[Any, ...], text: str, ok: bool) -> None:
    """``meta`` holding ``text`` passed the check ``checks`` describes (``ok``) or not."""
    _checked[meta] = (checks, text, ok)
