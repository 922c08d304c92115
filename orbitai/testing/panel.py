"""Checks of the shared job panel (`orbitai.mrml.panel.JobController`) with a module's real Logic.

Qt cannot run headless, so a `RecordingView` stands in for the widgets: it records what the panel
would show. The Logic, the child process and the scene are the real ones.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from orbitai.mrml.controller import JobController
from orbitai.testing import node_ids


class RecordingView:
    """A `JobView` that records every call (the panel's widgets, headless)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.errors: list[str] = []
        self.statuses: list[str] = []
        self.inputsEnabled = True
        self.button: tuple[str, bool, str] = ("Apply", False, "")
        self.polling = False
        self.progressVisible = False

    def setInputsEnabled(self, enabled: bool) -> None:
        self.calls.append(("inputs", enabled))
        self.inputsEnabled = enabled

    def setApplyButton(self, text: str, enabled: bool, toolTip: str) -> None:
        self.calls.append(("button", text))
        self.button = (text, enabled, toolTip)

    def setProgress(self, done: int, total: int, visible: bool) -> None:
        self.progressVisible = visible

    def setStatus(self, text: str) -> None:
        self.statuses.append(text)

    def showError(self, message: str) -> None:
        self.calls.append(("error", message))
        self.errors.append(message)

    def setPolling(self, on: bool) -> None:
        self.polling = on


class Panel:
    """A controller on a `RecordingView`, with the input and options a user has selected (mutable). Like a
    module Widget, it has no parameter node while the module is hidden (`leave` / `come_back`): showing
    results then fails as `showResults` does in Slicer."""

    def __init__(self, logic, input_node, options: Optional[dict[str, Any]] = None) -> None:
        self.selected = {"input": input_node, "options": dict(options or {})}
        self.shown: list[tuple[Any, Any]] = []
        self.view = RecordingView()
        self.parameterNode: Optional[dict[str, Any]] = self.selected
        self.controller = JobController(
            logic, self.view, lambda: (self.selected["input"], dict(self.selected["options"])), self._showResults,
            lambda: "" if self.parameterNode is not None and self.selected["input"] is not None
            else "Select an input volume.")
        self.controller.refresh()

    def _showResults(self, outputs: Any, node: Any) -> None:
        if self.parameterNode is None:   # what a module's showResults meets after exit()
            raise AttributeError("'NoneType' object has no attribute 'shownMap'")
        self.shown.append((outputs, node))

    def leave(self) -> None:
        """The user switches to another module (JobPanelMixin.exit)."""
        self.controller.moduleHidden()
        self.parameterNode = None

    def come_back(self) -> None:
        """The user returns (JobPanelMixin.enter: the parameter node first, then the controller)."""
        self.parameterNode = self.selected
        self.controller.moduleShown()

    def run(self, while_running: Optional[Callable[[], None]] = None, timeout_s: float = 600.0) -> None:
        """Press Apply, call ``while_running`` once the job runs, and poll (as the timer does) to the end."""
        self.controller.apply()
        if self.controller.running and while_running is not None:
            while_running()
        t0 = time.monotonic()
        while self.controller.running:
            assert time.monotonic() - t0 < timeout_s, "the job did not finish in time"
            self.controller.poll()
            time.sleep(0.05)


def check_binds_results_to_starting_input(logic, first, second, options: dict[str, Any]) -> Any:
    """Start on ``first``, select ``second`` while the job runs: the results belong to ``first``.
    Also: Apply became Cancel and the inputs were locked during the run, and unlocked after it."""
    panel = Panel(logic, first, options)
    assert panel.view.button[:2] == ("Apply", True)
    seen: dict[str, Any] = {}

    def switch() -> None:
        seen["inputs"], seen["button"], seen["polling"] = panel.view.inputsEnabled, panel.view.button[0], panel.view.polling
        panel.selected["input"] = second

    panel.run(switch)
    assert seen == {"inputs": False, "button": "Cancel", "polling": True}, seen
    assert not panel.view.errors, panel.view.errors
    assert panel.view.inputsEnabled and panel.view.button[:2] == ("Apply", True) and not panel.view.polling
    assert [c for c in panel.view.calls if c[0] == "inputs"] == [("inputs", False), ("inputs", True)]
    assert len(panel.shown) == 1 and panel.shown[0][1] is first
    assert panel.controller.outputsInput is first
    return panel.shown[0][0]


def check_results_land_while_module_hidden(ctx, logic, input_node, options: dict[str, Any]) -> Any:
    """Leave the module while its job runs and come back after it ended: the results are in the scene
    meanwhile, no error dialog, and they are shown on return over the node the job started on."""
    before = node_ids(ctx)
    panel = Panel(logic, input_node, options)
    panel.run(panel.leave)
    assert not panel.view.errors, panel.view.errors
    assert panel.shown == [] and node_ids(ctx) != before, "the results did not land while the module was hidden"
    assert panel.view.statuses[-1] == "Done; the results were added to the scene.", panel.view.statuses
    assert panel.view.inputsEnabled and not panel.view.polling
    panel.come_back()
    assert not panel.view.errors, panel.view.errors
    assert len(panel.shown) == 1 and panel.shown[0][1] is input_node
    panel.leave()
    panel.come_back()                      # shown once, not again on every return
    assert len(panel.shown) == 1
    return panel.shown[0][0]


def check_missing_dependency_reaches_dialog(ctx, logic_class, input_node, tmp_path: Path,
                                            options: Optional[dict[str, Any]] = None) -> None:
    """A module whose requirements are not installed starts no job and leaves the scene as it was. What the user
    meets depends on where it runs (`orbitai.mrml.dependencies.install_mode`): headless, one error dialog naming
    the package and the pip command; in Slicer under ``--testing``, nothing offered, nothing installed, the
    status line says why it did not start; from Slicer's GUI, the install offer names the package. The step
    answers that offer itself (declines) and records any pip call, so it never shows a dialog nor installs."""
    from orbitai.mrml import dependencies
    from orbitai.testing import patched

    req = Path(tmp_path) / "requirements.txt"
    req.parent.mkdir(parents=True, exist_ok=True)
    req.write_text("# a package that does not exist\norbitai-no-such-package>=1.0\n")
    logic = type("MissingDependencyLogic", (logic_class,), {"requirements": req})(ctx)
    assert logic.requiredModules() == ["orbitai_no_such_package"]
    before = node_ids(ctx)
    panel = Panel(logic, input_node, options)
    offers: list[str] = []
    installs: list[list[str]] = []

    def decline(text: str) -> bool:   # the user's answer to the install offer
        offers.append(text)
        return False

    with patched(dependencies, "_confirm", decline), patched(dependencies, "_pip_install", installs.append):
        panel.controller.apply()
    mode = dependencies.install_mode()
    assert not panel.controller.running and panel.controller.job is None
    assert installs == [], f"{mode}: pip was called for {installs}"
    if mode == "headless":
        assert offers == [] and len(panel.view.errors) == 1, panel.view.errors
        assert "orbitai-no-such-package" in panel.view.errors[0] and "pip install" in panel.view.errors[0]
    else:
        assert not panel.view.errors, panel.view.errors
        assert panel.view.statuses[-1].startswith("Not started"), panel.view.statuses
        assert "orbitai-no-such-package" in panel.view.statuses[-1], panel.view.statuses   # names what is missing
        if mode == "testing":
            assert offers == [], f"an install was offered under --testing: {offers}"
        else:
            assert len(offers) == 1 and "orbitai-no-such-package" in offers[0], offers
    assert ("inputs", False) not in panel.view.calls and panel.view.button[0] == "Apply"
    assert node_ids(ctx) == before


def check_failing_job_leaves_scene_unchanged(ctx, logic, input_node, options: dict[str, Any], match: str) -> None:
    """A job whose child fails (or whose results fail validation) shows one error; the scene is as it was."""
    import re

    before = node_ids(ctx)
    panel = Panel(logic, input_node, options)
    panel.run()
    assert len(panel.view.errors) == 1 and re.search(match, panel.view.errors[0]), panel.view.errors
    assert panel.shown == [] and panel.controller.outputs is None
    assert panel.view.inputsEnabled and panel.view.button[0] == "Apply"
    assert any(s.startswith("Failed; the scene was not changed.") for s in panel.view.statuses)
    assert node_ids(ctx) == before


def check_cancel_leaves_scene_unchanged(ctx, logic, input_node, options: dict[str, Any]) -> None:
    """Cancel (the Apply button while running) and a scene close both kill the child; nothing is added.

    Runs one-shot children: a warm worker can finish a small job before the 0.5 s wait ends, so the
    cancel would come too late to test anything (warm-job cancel: Testing/jobs)."""
    logic.warm_worker = False   # this Logic instance only (the class keeps its default)
    before = node_ids(ctx)
    for how in ("cancel", "scene close"):
        panel = Panel(logic, input_node, options)
        panel.controller.apply()
        job = panel.controller.job
        assert job is not None and panel.view.inputsEnabled is False
        while not job.job.started:      # the scan is written a slab per timer tick first, then the child starts
            panel.controller.poll()
            time.sleep(0.02)
        time.sleep(0.5)
        panel.controller.poll()
        if how == "cancel":
            panel.controller.apply()          # the button reads Cancel now
        else:
            panel.controller.sceneClosing()
        assert job.job.started and job.finished, f"{how}: the job still runs"
        assert not panel.controller.running and panel.view.inputsEnabled and panel.view.button[0] == "Apply"
        assert panel.view.statuses[-1].startswith("Cancelled; the scene was not changed."), panel.view.statuses
        assert not panel.view.errors and not job.workdir.exists()
        assert node_ids(ctx) == before
