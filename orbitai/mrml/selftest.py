"""A module's self-test inside Slicer (the Test class's ``runTest``): the steps of `orbitai.selftest`
on the application's scene."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

import slicer

from orbitai.errors import one_line
from orbitai.mrml import get_context
from orbitai.selftest import Report, Step, missing_needs, run

__all__ = ["run_in_slicer"]


def run_in_slicer(module: str, steps: Sequence[Step], logic_class: Any, delay_display: Callable[[str], None]) -> Report:
    """The module's ``runTest``: from the GUI, when a step needs a package that is not installed (the model
    stack, scikit-image, ...), offer to install the module's requirements first (the Logic's
    ``ensureDependencies``: the user's consent); under ``--testing`` never ask. An install that fails or is
    declined (offline, no PyTorch extension) is said in one line and the steps that need it are skipped with
    their reason. The summary is shown."""
    missing = missing_needs(steps)
    if missing and not slicer.app.testingEnabled():
        try:
            logic_class.ensureDependencies(ask=True)
        except Exception as exc:  # noqa: BLE001 - offline pip, PyTorchUtils, no PyTorch extension: skip, not fail
            said = one_line(exc)
            delay_display(f"{said} The tests that need it are skipped.")
        importlib.invalidate_caches()
        missing = missing_needs(steps)

    def fresh():
        slicer.mrmlScene.Clear()
        return get_context()

    report = run(module, steps, fresh, delay_display, missing)
    delay_display(report.summary())
    return report
