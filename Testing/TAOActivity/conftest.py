"""Fixtures for the TAOActivity module Logic tests (headless slicer-core scene)."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "TAOActivity"))

try:
    import slicer  # noqa: F401
except ImportError:
    collect_ignore_glob = ["test_*logic*.py"]
