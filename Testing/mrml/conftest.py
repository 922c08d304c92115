"""Fixtures for the headless MRML bridge tests (need slicer-core; skipped without it)."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import rotation

try:
    import slicer  # noqa: F401
except ImportError:  # the whole folder is skipped (each test module also calls importorskip)
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture()
def oblique():
    """(spacing, origin, direction) of an oblique, non-isotropic grid."""
    return (0.45, 0.8, 2.5), (12.5, -30.25, 47.0), rotation(0.3, -0.5, 0.9)


@pytest.fixture()
def orbit_labels(oblique):
    """A small label `Volume` (values 1, 4, 6, 16) on the oblique grid; shape (7, 9, 11)."""
    from orbitai.io import Volume

    a = np.zeros((7, 9, 11), np.uint8)
    a[1:5, 2:6, 3:8] = 1
    a[2:4, 6:9, 0:3] = 4
    a[5:7, 0:2, 8:11] = 6
    a[0, 0, 0] = 16
    spacing, origin, direction = oblique
    return Volume(a, spacing, origin, direction)
