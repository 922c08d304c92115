"""The shared job panel (`orbitai.mrml.panel.JobController`) on a real scene, with a quick real child
process; a `RecordingView` stands in for the Qt widgets."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest

pytest.importorskip("slicer")

from orbitai.mrml import new_scene
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.parameter_nodes import parameterChoices, resetUnknownChoices
from orbitai.jobs.child import OrbitaiJob
from orbitai.jobs.inputs import JobFolder
from orbitai.testing.panel import Panel


class Outputs:
    """Outputs whose status line cannot be written (e.g. a result.json with odd warnings) when
    ``broken``."""

    def __init__(self, broken: bool) -> None:
        self.broken = broken

    def summary(self) -> str:
        if self.broken:
            raise TypeError("sequence item 0: expected str instance, int found")
        return "Done."


class QuickLogic(JobLogic):
    """A Logic whose child is ``python -m platform`` (ends at once); its import returns `Outputs`."""

    job_title = "Quick job"
    broken_summary = True

    def jobArguments(self, folder: JobFolder, input_node) -> list[str]:
        return []

    def makeJob(self, args: list[str]) -> OrbitaiJob:
        return OrbitaiJob(args, module="platform")

    def importResults(self, out_dir: Path, input_node) -> Any:
        return Outputs(self.broken_summary)


@pytest.fixture()
def scene_and_input():
    ctx = new_scene()
    yield ctx, ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "input")
    ctx.close()


@pytest.mark.parametrize("failing", ["summary", "showResults"])
def test_panel_returns_to_apply_when_summary_raises(scene_and_input, failing):
    """REVIEW #6: whatever fails after the job ended (the status line, showing the results), the
    panel returns to Apply with its inputs unlocked and says what went wrong."""
    ctx, node = scene_and_input
    logic = QuickLogic(ctx)
    logic.broken_summary = failing == "summary"
    panel = Panel(logic, node)
    if failing == "showResults":
        def show(outputs, node):
            raise RuntimeError("no layout")
        panel.controller.showResults = show
    panel.run()
    assert not panel.controller.running
    assert panel.view.inputsEnabled and panel.view.button[:2] == ("Apply", True) and not panel.view.polling
    assert len(panel.view.errors) == 1 and "could not be shown" in panel.view.errors[0], panel.view.errors
    assert ("expected str instance" if failing == "summary" else "no layout") in panel.view.errors[0]
    assert isinstance(panel.controller.outputs, Outputs) and panel.controller.outputsInput is node


def test_reshow_only_when_the_shown_map_changes_for_the_results_input(scene_and_input):
    """REVIEW #5: TAO re-showed its last results on every parameter change (entering the module,
    picking another input), so the layout jumped back to the old MRI. Now only a change of the
    shown map re-shows them, and only while the results' own input is selected."""
    ctx, node = scene_and_input
    other = ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "other")
    logic = QuickLogic(ctx)
    logic.broken_summary = False
    panel = Panel(logic, node)
    c = panel.controller
    assert c.outputsToReshow("occlusion", node) is None            # no results yet
    panel.run()
    c.shownChoice = "occlusion"                                   # what the module's showResults records
    assert c.outputsToReshow("occlusion", node) is None            # module entered, nothing changed
    assert c.outputsToReshow("occlusion", other) is None           # another input picked
    assert c.outputsToReshow("gradcam", other) is None             # map changed, but not their input
    assert c.outputsToReshow("occlusion", node) is c.outputs       # map changed, their input
    assert c.outputsToReshow("occlusion", node) is None            # ... once
    ctx.scene.RemoveNode(node)
    assert c.outputsToReshow("gradcam", node) is None              # their input left the scene


class Choice:
    """What Slicer's ``parameterNodeWrapper.Choice`` holds (``choices``); Slicer's own classes are
    not in slicer-core."""

    def __init__(self, choices):
        self.choices = choices


class Default:
    """What Slicer's ``parameterNodeWrapper.Default`` holds (``value``)."""

    def __init__(self, value):
        self.value = value


class Parameters:
    inputVolume: Any
    model: Annotated[str, Choice(["Network A", "Network B"]), Default("Network B")]
    device: Annotated[str, Choice(["auto", "cpu"])]
    maps: Annotated[bool, Default(True)]


def test_unknown_stored_choices_are_reset_before_connecting(scene_and_input):
    """REVIEW #7: a scene saved with a model not installed here made connectGui raise. The stored
    value is reset to the default on the raw parameter node first; known values are kept."""
    ctx, _ = scene_and_input
    assert parameterChoices(Parameters) == {"model": (["Network A", "Network B"], "Network B"),
                                            "device": (["auto", "cpu"], "auto")}
    node = ctx.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    node.SetParameter("model", "Network Z (removed)")
    node.SetParameter("device", "cpu")
    node.SetParameter("maps", "true")
    assert resetUnknownChoices(node, parameterChoices(Parameters)) == ["model"]
    assert (node.GetParameter("model"), node.GetParameter("device"), node.GetParameter("maps")) == \
        ("Network B", "cpu", "true")
    assert resetUnknownChoices(node, parameterChoices(Parameters)) == []


def test_leaving_the_module_mid_run_lands_results_and_shows_them_on_return(scene_and_input):
    """Issue #28 point 4: exit() cleared the parameter node while the job ran; showResults then failed
    with a "could not be shown" dialog. Now the results land while hidden and are shown on return."""
    ctx, node = scene_and_input

    class LandingLogic(QuickLogic):
        broken_summary = False

        def importResults(self, out_dir, input_node):
            ctx.scene.AddNewNodeByClass("vtkMRMLTableNode", "results")
            return Outputs(False)

    from orbitai.testing.panel import check_results_land_while_module_hidden

    assert isinstance(check_results_land_while_module_hidden(ctx, LandingLogic(ctx), node, {}), Outputs)


def test_model_choices_are_read_again_when_the_module_is_shown(scene_and_input):
    """Issue #28 point 7: the model list was fixed when the module file was imported, so a bundle installed
    later needed a restart. refreshChoices updates the Choice's own list in place: Slicer's Choice keeps the
    list it was given and its combo-box connector reads ``choice.choices`` on every connectGui (v5.8.1, v5.10.0)."""
    from typing import get_args, get_type_hints

    from orbitai.mrml.parameter_nodes import refreshChoices

    # evaluated annotations, as in the module files (which have no postponed annotations)
    Fresh = type("Fresh", (), {"__annotations__": {
        "inputVolume": Any, "model": Annotated[str, Choice(["Network B"]), Default("Network B")],
        "shown": Annotated[str, Choice(("a", "b"))]}})

    choice = get_args(get_type_hints(Fresh, include_extras=True)["model"])[1]
    held = choice.choices                         # what Slicer's validator and connector hold
    installed = ["Network B"]
    assert refreshChoices(Fresh, {"model": lambda: list(installed)}) == []
    installed.insert(0, "Network A")              # a bundle installed while Slicer runs
    assert refreshChoices(Fresh, {"model": lambda: list(installed)}) == ["model"]
    assert held is choice.choices and held == ["Network A", "Network B"]
    ctx, _ = scene_and_input
    node = ctx.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    node.SetParameter("model", "Network C (uninstalled)")
    installed.remove("Network A")
    refreshChoices(Fresh, {"model": lambda: list(installed)})
    assert resetUnknownChoices(node, parameterChoices(Fresh)) == ["model"] and node.GetParameter("model") == "Network B"
    with pytest.raises(TypeError, match="must be given a list"):
        refreshChoices(Fresh, {"shown": lambda: ["a", "b", "c"]})
