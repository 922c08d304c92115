"""Issue #61 item 1: a module's status line (its result, its error) belongs to the scan it was said of. The shared job
panel (`orbitai.mrml.panel.JobController`, behind both the Slicer panels and the browser's) shows a scan's own line
and never the last scan's, on a real scene with a real child process; a `RecordingView` stands in for the widgets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("slicer")

from orbitai.jobs.child import OrbitaiJob
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import new_scene
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.controller import JobController
from orbitai.testing.panel import RecordingView


class Named:
    """Outputs whose status line names the scan they were computed from."""

    def __init__(self, scan: str) -> None:
        self.scan = scan

    def summary(self) -> str:
        return f"103 lesions in {self.scan}: MS (P = 0.91)"


class QuickLogic(JobLogic):
    """A Logic whose child is ``python -m platform`` (ends at once); its import names the input scan."""

    job_title = "Quick job"

    def jobArguments(self, folder: JobFolder, input_node: Any) -> list[str]:
        return []

    def makeJob(self, args: list[str]) -> OrbitaiJob:
        return OrbitaiJob(args, module="platform")

    def importResults(self, out_dir: Path, input_node: Any) -> Any:
        return Named(input_node.GetName())


class FailingLogic(QuickLogic):
    def importResults(self, out_dir: Path, input_node: Any) -> Any:
        raise RuntimeError(f"the model found no orbit in {input_node.GetName()}")


@pytest.fixture()
def two_scans():
    ctx = new_scene()
    a = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "patientA_T1")
    b = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "patientB_T2")
    yield ctx, a, b
    ctx.close()


def _panel(logic: JobLogic, shown: dict) -> tuple[JobController, RecordingView]:
    view = RecordingView()
    controller = JobController(logic, view, lambda: (shown["scan"], {}), lambda outputs, node: None,
                               currentScan=lambda: shown["scan"])
    controller.refresh()
    return controller, view


def _run(controller: JobController) -> None:
    import time

    controller.apply()
    while controller.running:
        controller.poll()
        time.sleep(0.05)


def _words(text: str) -> set[str]:
    return {w for w in text.replace(":", " ").split() if len(w) > 2}


@pytest.mark.parametrize("logic_class", [QuickLogic, FailingLogic])
def test_a_scans_status_line_never_shows_under_another_scan(two_scans, logic_class):
    ctx, a, b = two_scans
    shown = {"scan": a}
    controller, view = _panel(logic_class(ctx), shown)
    _run(controller)
    line_a = view.statuses[-1]
    assert "patientA_T1" in line_a, view.statuses
    shown["scan"] = b                       # the user shows the other patient's scan
    controller.refresh()
    assert view.statuses[-1] == "", f"scan B shows scan A's line: {view.statuses[-1]!r}"
    assert not (_words(view.statuses[-1]) & _words(line_a))
    shown["scan"] = a                       # and back: A's own line again
    controller.refresh()
    assert view.statuses[-1] == line_a
    # a run on B: B's line under B, A's under A
    shown["scan"] = b
    controller.refresh()
    _run(controller)
    line_b = view.statuses[-1]
    assert "patientB_T2" in line_b and "patientA_T1" not in line_b
    shown["scan"] = a
    controller.refresh()
    assert view.statuses[-1] == line_a


def test_without_a_current_scan_one_line_serves_every_scan(two_scans):
    """A panel that does not say which scan it shows keeps the one status line it always had."""
    ctx, a, b = two_scans
    shown = {"scan": a}
    view = RecordingView()
    controller = JobController(QuickLogic(ctx), view, lambda: (shown["scan"], {}), lambda o, n: None)
    _run(controller)
    assert "patientA_T1" in view.statuses[-1]
    n = len(view.statuses)
    shown["scan"] = b
    controller.refresh()
    assert len(view.statuses) == n


def test_the_slicer_panel_shows_each_scans_own_line(monkeypatch, tmp_path):
    """The Slicer module panel (replayed as Slicer 5.10.0 runs it): a line said under scan A (marking its corrected
    segmentation finished) is not shown under scan B, and is shown again under A."""
    pytest.importorskip("slicer.util")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from slicer_widget_replay import load_module_widget

    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume
    from orbitai.phantoms.orbit import orbit_case

    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ctx = new_scene()
    case = orbit_case(778311, "t2", oblique=False)
    scan_a = volume_node_from_volume(ctx, case.image, name="patientA_T2")
    seg_a = segmentation_node_from_labels(ctx, case.labels, reference_node=scan_a, name="patientA_corrected")
    scan_b = volume_node_from_volume(ctx, case.image, name="patientB_T2")
    p = load_module_widget(monkeypatch, "OrbitSegmentation", "5.10.0")
    p.show()
    try:
        w = p.widget
        w._parameterNode.inputVolume = scan_a
        w._parameterNode.finetuneCorrected = seg_a
        p.ui.markFinishedButton.clicked.emit(False)
        line_a = p.ui.finetuneStatusLabel.text
        assert "patientA" in line_a, line_a
        w._parameterNode.inputVolume = scan_b
        status_b = p.ui.finetuneStatusLabel.text
        assert "patientA" not in status_b and line_a not in status_b, status_b
        w._parameterNode.inputVolume = scan_a
        assert p.ui.finetuneStatusLabel.text == line_a
    finally:
        p.widget.cleanup()
        ctx.close()
