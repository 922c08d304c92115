"""Each module panel is declared once (`orbitai.app.<module>.PANEL`): the Slicer panel's parameter node (the module file
imported as Slicer 5.10.0 imports it, `slicer_widget_replay`) and the browser's panel (`orbitai.web.module_panel.ModulePanel`)
offer the same options, with the same choices and defaults, and say the same when Apply cannot run."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import pytest

pytest.importorskip("slicer")
pytest.importorskip("trame_slicer", reason="the browser panel needs orbitai[web]")

from orbitai.mrml import new_scene
from orbitai.mrml.parameter_nodes import parameterChoices

from slicer_widget_replay import load_module_widget

MODULES = {"OrbitSegmentation": "orbit", "TAOActivity": "tao", "IVGCResponse": "ivgc", "NeuroDifferential": "neuro"}


class _State(dict):
    """The part of trame's state a `ModulePanel` uses: items, ``setdefault`` and ``change`` (watchers recorded)."""

    def change(self, *names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda fn: fn

    def __enter__(self) -> "_State":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _web_panel(key: str, ctx: Any) -> Any:
    from orbitai.web.module_panel import ModulePanel
    from orbitai.web.modules import modules

    state = _State(segmentations=[])
    host = SimpleNamespace(state=state, server=SimpleNamespace(state=state), mrml=ctx, input_node=lambda: None)
    spec = next(s for m in modules() for s in (m, *m.sections) if s.key == key)
    return ModulePanel(host, spec, private=lambda text: text, upload_limit=1 << 20)


@pytest.fixture()
def ctx(monkeypatch):
    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")     # enter() starts the warm worker: not in these tests
    context = new_scene()
    yield context
    context.close()


@pytest.mark.parametrize("module", MODULES)
def test_slicer_and_browser_panels_offer_the_same_options(monkeypatch, ctx, module):
    slicer_panel = load_module_widget(monkeypatch, module, "5.10.0")
    slicer_panel.show()
    try:
        widget = slicer_panel.widget
        spec = widget.panel
        web = _web_panel(MODULES[module], ctx)
        assert web.spec is spec, "the browser and Slicer panels are made from different declarations"
        choices = parameterChoices(widget.parameterNodeClass)
        node = slicer_panel.node
        fields = {spec.input_parameter}
        for section in spec.sections:   # each section: its own browser panel, its fields in the module's parameter node
            sweb = _web_panel(section.key, ctx)
            assert sweb.spec is section and [s.spec for s in widget.sections] == list(spec.sections)
            for o in section.all_options():
                fields.add(o.parameter)
                if o.kind == "choice":
                    assert choices[o.parameter] == (sweb.state[sweb.var(f"{o.name}_items")], o.default_value())
                elif o.kind == "text":
                    assert getattr(widget._parameterNode, o.parameter) == sweb.state[sweb.var(o.name)] == o.default
        for o in spec.all_options():
            fields.add(o.parameter)
            web_value = web.state[web.var(o.name)] if o.kind != "form" else None
            if o.kind == "choice":
                offered, default = choices[o.parameter]
                assert offered == web.state[web.var(f"{o.name}_items")] == list(o.choices()), o.name
                assert default == web_value == o.default_value(), o.name
                assert node.GetParameter(o.parameter) == web_value, o.name
            elif o.kind == "flag":
                assert getattr(widget._parameterNode, o.parameter) is web_value is bool(o.default_value()), o.name
            elif o.kind == "segmentation":
                assert getattr(widget._parameterNode, o.parameter) is None and web_value is None, o.name
            else:
                rows = [name for name, _label, _tip in o.form()]
                pack = getattr(widget._parameterNode, o.parameter)
                assert all(pack.getValue(n) == "" == web.state[web.var(f"{o.name}_{n}")] for n in rows), o.name
        hints = set(widget.parameterNodeClass.__annotations__)
        assert hints == fields, f"{module}: the parameter node holds {sorted(hints)}, the declaration {sorted(fields)}"
        # No input: both say the same thing (Slicer's replay selects the scene's first volume; this scene has none).
        assert widget.whyNotReady() == web.whyNotReady() != ""
    finally:
        slicer_panel.widget.cleanup()
