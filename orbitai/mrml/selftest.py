"""A module's self-test inside Slicer (the Test class's ``runTest``): the steps of `orbitai.testing.selftest`
on the application's scene."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from orbitai.testing.selftest import Report, Step, model_stack_missing, run

__all__ = ["run_in_slicer"]


def run_in_slicer(module: str, steps: Sequence[Step], logic_class: Any, delay_display: Callable[[str], None]) -> Report:
    """The module's ``runTest``: from the GUI, offer to install the model stack first (the Logic's
    ``ensureDependencies``: the user's consent); under ``--testing`` never ask. The summary is shown."""
    import slicer

    from orbitai.mrml import get_context

    missing = model_stack_missing()
    if missing and not slicer.app.testingEnabled():
        try:
            logic_class.ensureDependencies(ask=True)
        except ImportError as exc:
            delay_display(f"{exc} The tests that run a model are skipped.")
        missing = model_stack_missing()

    def fresh():
        slicer.mrmlScene.Clear()
        return get_context()

    report = run(module, steps, fresh, delay_display, missing)
    delay_display(report.summary())
    return report
