"""matplotlib's pyplot on the Agg backend, the one way OrbitAI draws a figure: the backend is chosen before pyplot
is imported (no display, never Slicer's Qt), and importing a module that draws loads no matplotlib (Slicer's
modules import some of them, and their self-tests run where matplotlib may be missing)."""
from __future__ import annotations

from typing import Any

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
