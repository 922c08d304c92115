"""Every choice of every module panel survives leaving the module and coming back, on Slicer 5.8.1's and
5.10.0's ``parameterNodeWrapper`` semantics (`slicer_widget_replay` says what is replayed and from where).

On 5.8.1 ``connectGui`` does not return its tag, so a panel that disconnects by that tag leaves the old
connectors attached: the next combo-box rebuild wrote the last and then the first choice into the parameter
node, and the panel came back showing the first choice of every combo box (and TAO opened on Network A though
Network B is its default)."""
from __future__ import annotations

import pytest

pytest.importorskip("slicer")

from orbitai.mrml import new_scene

from slicer_widget_replay import VERSIONS, QCheckBox, QComboBox, load_module_widget

MODULES = ("OrbitSegmentation", "TAOActivity", "IVGCResponse", "NeuroDifferential")


@pytest.fixture()
def load(monkeypatch):
    """``load(module, version)``: the module's Widget over a fresh scene; cleaned up (observers removed) after."""
    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")     # enter() starts the warm worker: not in these tests
    ctx = new_scene()
    ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "mri")
    panels = []

    def make(module, version):
        panels.append(load_module_widget(monkeypatch, module, version))
        return panels[-1]
    yield make
    for panel in panels:
        if panel.set_up:
            panel.widget.cleanup()
    ctx.close()


def bound_widgets(ui) -> dict[str, object]:
    return {w.property("SlicerParameterName"): w for w in vars(ui).values()
            if hasattr(w, "property") and w.property("SlicerParameterName")
            and isinstance(w, (QComboBox, QCheckBox))}


def shown(widget) -> object:
    return widget.currentText if isinstance(widget, QComboBox) else widget.checked


def pick_other(widget) -> object:
    """What a user does: choose another entry (the last one that is not shown now) / toggle the box."""
    if isinstance(widget, QComboBox):
        widget.currentIndex = max(i for i in range(len(widget.items)) if i != widget.currentIndex)
    else:
        widget.checked = not widget.checked
    return shown(widget)


# every module on every version under -m slow; by default every module on the oldest and one on the others (the
# replayed parameter-node code is the same for all modules of a version)
@pytest.mark.parametrize("module, version", [
    pytest.param(m, v, marks=[pytest.mark.slow] if v != VERSIONS[0] and m != MODULES[0] else [])
    for m in MODULES for v in VERSIONS])
def test_every_choice_is_kept_when_the_user_comes_back(load, module, version):
    panel = load(module, version)
    panel.show()
    widgets = bound_widgets(panel.ui)
    params = panel.widget.parameterNodeClass.allParameters
    assert widgets, f"{module}: no combo box or check box bound to the parameter node"
    for name, w in widgets.items():   # the first open shows the declared defaults
        assert str(shown(w)) == str(params[name].default), (module, name, shown(w), params[name].default)
    picked = {name: pick_other(w) for name, w in widgets.items() if not isinstance(w, QComboBox) or len(w.items) > 1}
    assert picked, f"{module}: nothing to choose"
    for visit in range(2):
        panel.leave()
        panel.show()
        for name, value in picked.items():
            assert shown(widgets[name]) == value, f"{module} ({version}) visit {visit + 1}: {name} shows " \
                                                   f"{shown(widgets[name])!r}, the user chose {value!r}"
            assert str(panel.node.GetParameter(name)) == str(value), (name, panel.node.GetParameter(name))


@pytest.mark.parametrize("version", VERSIONS)
def test_a_model_installed_while_away_is_offered_and_the_choice_kept(load, monkeypatch, version):
    """The model list is read again on every visit (the combo box is rebuilt): the user's device and model
    stay chosen, and the new model is offered."""
    panel = load("TAOActivity", version)
    labels = list(panel.widget.refreshedChoices["model"]())
    panel.show()
    w = bound_widgets(panel.ui)
    device, model = pick_other(w["device"]), pick_other(w["model"])
    monkeypatch.setattr(panel.widget.panel.logic, "modelLabels", classmethod(lambda cls: [*labels, "my own model"]))
    panel.leave()
    panel.show()
    assert w["model"].items[-1] == "my own model"
    assert (shown(w["device"]), shown(w["model"])) == (device, model)
    assert (panel.node.GetParameter("device"), panel.node.GetParameter("model")) == (device, model)


@pytest.mark.parametrize("module", ["TAOActivity", "IVGCResponse"])
def test_a_model_installed_while_away_enables_apply_when_the_user_comes_back(load, monkeypatch, module):
    """TAO and IVGC checked the installed models once, at set-up: a model installed later kept Apply disabled
    until Slicer restarted."""
    panel = load(module, "5.10.0")
    logic_cls = panel.widget.panel.logic
    installed = logic_cls.availableModels()
    assert installed, "the demo bundles are installed with the package"
    monkeypatch.setattr(logic_cls, "availableModels", classmethod(lambda cls: []))
    panel.show()
    assert "No " in panel.ui.applyButton.toolTip and not panel.ui.applyButton.enabled
    monkeypatch.setattr(logic_cls, "availableModels", classmethod(lambda cls: installed))
    panel.leave()
    panel.show()
    assert "No " not in panel.ui.applyButton.toolTip, panel.ui.applyButton.toolTip
