"""The 3D Slicer releases OrbitAI supports and the Python each ships: the one place they are stated.

The current release and the one before: Slicer 5.8 (Python 3.9.10) and 5.10 (Python 3.12). Everything
Slicer imports or runs (the four module folders and this whole package, which ``CMake/OrbitAICore.cmake``
installs next to the modules and the job panels run with ``PythonSlicer -m orbitai``) must therefore
run on Python 3.9: ``make test`` checks it (``vermin`` in the Makefile's lint target, and
``Testing/test_min_python.py``). README.md, the top CMakeLists.txt (the extension's description),
pyproject.toml's ``requires-python`` and the checker's target are tested to agree with this file.

Slicer 5.6 ships the same Python (3.9.10) and the same scripted-effect loader as 5.8 and is expected to
work, but it is not a supported version (no check reads its source).
"""
from __future__ import annotations

# Oldest first; the Python (major, minor) each release bundles (Slicer's SuperBuild/External_python.cmake).
SLICER_PYTHON: dict[str, tuple[int, int]] = {"5.8": (3, 9), "5.10": (3, 12)}
SUPPORTED_SLICER: tuple[str, ...] = tuple(SLICER_PYTHON)
MIN_PYTHON: tuple[int, int] = min(SLICER_PYTHON.values())
MAX_PYTHON: tuple[int, int] = max(SLICER_PYTHON.values())


def _py(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


def supported_text() -> str:
    """The sentence README.md and the extension's description carry word for word, e.g.
    "3D Slicer 5.8 (Python 3.9) and 5.10 (Python 3.12)"."""
    parts = [f"{v} (Python {_py(p)})" for v, p in SLICER_PYTHON.items()]
    return "3D Slicer " + " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


def requires_python() -> str:
    """pyproject.toml's ``requires-python``: the oldest supported Slicer's Python up to the newest's."""
    return f">={_py(MIN_PYTHON)},<{MAX_PYTHON[0]}.{MAX_PYTHON[1] + 1}"
