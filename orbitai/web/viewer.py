"""The viewer controls of the browser app (issue 49): window/level, layouts with a 3D view, the crosshair, orientation
labels and slice positions, arrow-key scrolling, the value under the pointer and the ruler.

Left-drag in a slice view adjusts window/level as in Slicer's "Adjust window/level" mouse mode (the interaction node's
``AdjustWindowLevel`` mode drives Slicer's own `vtkMRMLWindowLevelWidget`, which the slice views' scalar-bar
displayable manager holds); "Navigate" is Slicer's view-transform mode, and an annotation tool takes the mouse
whatever the mode. The toolbar offers Slicer's presets (the volume display node's ``CT-Bone``, ``CT-Abdomen``,
``CT-Brain``, ``CT-Lung`` numbers), a soft-tissue window for the orbit and MRI presets per weighting from the scan's own
percentiles (`orbitai.web.intensity`), and the window and level as numbers to type; the page applies a preset or a
typed value at once (``wl_preset_values``) and the server's display node follows.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from trame.widgets import client, html
from trame.widgets import vuetify3 as v3
from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

from orbitai.mrml.queries import crosshair_node
from orbitai.mrml.results import results_of
from orbitai.mrml.viewer import new_ruler, probe, ruler_rows, set_window_level_mode
from orbitai.mrml.volumes import scalar_array
from orbitai.web.host import Signal, WebHost
from orbitai.web.intensity import AUTO, CT_PRESETS, MRI_PRESETS, preset_values

__all__ = ["WINDOW_PRESETS", "WindowLevel", "LAYOUTS", "Layouts", "view_labels", "KEYS_SCRIPT", "KEY_STEPS"]

#: Preset name -> (window, level); None: from the shown scan ("Auto": the display node's automatic window; the MRI
#: presets: the scan's percentiles, `orbitai.web.intensity.preset_values`).
WINDOW_PRESETS: dict[str, Optional[tuple[float, float]]] = {
    AUTO: None, **CT_PRESETS, **{name: None for name in MRI_PRESETS}}


class WindowLevel:
    """Window/level of the shown scan in state: ``wl_window``, ``wl_level`` (its display node's values, kept up to
    date while the user drags), ``wl_preset`` (a `WINDOW_PRESETS` name the page picks)."""

    def __init__(self, host: WebHost) -> None:
        self.state, self.mrml, self.scan = host.state, host.mrml, host.input_node
        self._observed: tuple[Any, int] | None = None
        self.state.update({"wl_window": None, "wl_level": None, "wl_preset": None, "wl_presets": list(WINDOW_PRESETS),
                           "wl_preset_values": preset_values(None), "mouse_mode": "window_level"})
        self.state.change("wl_preset")(self._preset_changed)
        self.state.change("mouse_mode", "ann_tool")(self.apply_mouse_mode)
        self.apply_mouse_mode()

    def apply_mouse_mode(self, **_: Any) -> None:
        """Left-drag adjusts window/level (``mouse_mode`` "window_level") unless an annotation tool is active; else
        Slicer's view-transform mode."""
        logic = self.mrml.app_logic
        node = logic.GetInteractionNode() if logic is not None else None
        if node is not None and node.GetCurrentInteractionMode() == node.Place:
            return          # a ruler's ends are being placed: its clicks are the markups'
        set_window_level_mode(logic, self.state.mouse_mode == "window_level" and self.state.ann_tool in (None, "none"))

    def _display(self) -> Any:
        node = self.scan()
        return node.GetDisplayNode() if node is not None else None

    def scan_shown(self, _node: Any = None) -> None:
        """The shown scan changed: observe its display node, publish its values, forget the preset picked."""
        if self._observed is not None:
            self._observed[0].RemoveObserver(self._observed[1])
            self._observed = None
        display = self._display()
        if display is not None:
            self._observed = (display, display.AddObserver("ModifiedEvent", lambda *_: self._publish()))
        self.state.wl_preset = None
        self.state.wl_preset_values = preset_values(scalar_array(self.scan()))
        self._publish()
        self.apply_mouse_mode()     # a closed scene resets the interaction node

    def _publish(self) -> None:
        display = self._display()
        window = round(float(display.GetWindow()), 1) if display is not None else None
        level = round(float(display.GetLevel()), 1) if display is not None else None
        if (window, level) != (self.state.wl_window, self.state.wl_level):
            self.state.wl_window, self.state.wl_level = window, level

    def _preset_changed(self, wl_preset: Any = None, **_: Any) -> None:
        """A preset the page picked (anything not in `WINDOW_PRESETS` is ignored)."""
        display = self._display()
        if display is None or not isinstance(wl_preset, str) or wl_preset not in WINDOW_PRESETS:
            return
        values = (self.state.wl_preset_values or {}).get(wl_preset) or WINDOW_PRESETS[wl_preset]
        if wl_preset == AUTO:
            display.AutoWindowLevelOn()
        elif values is not None:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(*(float(v) for v in values))
        self._publish()

    def build_ui(self) -> None:
        """The toolbar's mouse mode, window/level preset list and values."""
        with v3.VBtnToggle(v_model=("mouse_mode",), mandatory=True, density="compact", variant="outlined",
                           classes="mr-2", id="orbitai-mouse-mode"):
            v3.VBtn(icon="mdi-contrast-box", value="window_level", title="Left-drag: window/level",
                    id="orbitai-mouse-wl")
            v3.VBtn(icon="mdi-cursor-default", value="navigate", title="Left-drag: nothing (Slicer's navigation mode)",
                    id="orbitai-mouse-navigate")
        v3.VSelect(v_model=("wl_preset",), items=("wl_presets",), label="Window/level", density="compact",
                   hide_details=True, style="min-width: 200px; max-width: 250px", classes="mr-2", id="orbitai-wl-preset",
                   disabled=("!input_volume",))
        # typed values: the page draws them at once and sends them (orbitai_slices.js, `typedWindow`)
        with html.Div(v_show="wl_window !== null", classes="text-caption mr-4 d-flex align-center",
                      id="orbitai-wl-values", title="Left-drag in a view changes the window (left-right) and level "
                                                     "(up-down); or type them (Enter applies)"):
            for label, name in (("W", "window"), ("L", "level")):
                html.Span(label, classes="mx-1")
                html.Input(type="number", value=(f"wl_{name}",), id=f"orbitai-wl-{name}-input", step="any",
                           classes="orbitai-wl-input", style="width: 64px; color: inherit; border: 1px solid #888; "
                                                             "border-radius: 3px; padding: 0 3px;")


def _three_slices() -> Layout:
    return Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view(),
                                               ViewLayoutDefinition.sagittal_view()])


def _four_up() -> Layout:
    return Layout(LayoutDirection.Vertical, [
        Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.threed_view()]),
        Layout(LayoutDirection.Horizontal, [ViewLayoutDefinition.coronal_view(), ViewLayoutDefinition.sagittal_view()])])


def _one(view: Any) -> Layout:
    return Layout(LayoutDirection.Horizontal, [view])


#: Layout name -> how it is built (Slicer's conventional, four-up and one-view layouts).
LAYOUTS = {
    "Three slices": _three_slices,
    "Four-up with 3D": _four_up,
    "Axial": lambda: _one(ViewLayoutDefinition.axial_view()),
    "Coronal": lambda: _one(ViewLayoutDefinition.coronal_view()),
    "Sagittal": lambda: _one(ViewLayoutDefinition.sagittal_view()),
    "3D": lambda: _one(ViewLayoutDefinition.threed_view()),
}
DEFAULT_LAYOUT = "Three slices"

_LETTERS = (("R", "L"), ("A", "P"), ("S", "I"))


def _letter(direction: "np.ndarray") -> str:
    """The patient direction a screen direction points to most (RAS: +x right, +y anterior, +z superior)."""
    axis = int(np.argmax(np.abs(direction)))
    return _LETTERS[axis][0 if direction[axis] > 0 else 1]


def view_labels(xy_to_ras: Sequence[float], offset: float, name: str = "") -> dict[str, str]:
    """The orientation letters at a slice view's edges and its name and slice position (``Axial  S 12.5 mm``), from
    its XY-to-RAS matrix (row-major 4 x 4), slice offset and orientation name, as Slicer's slice views show them."""
    m = np.asarray(xy_to_ras, float).reshape(4, 4)
    x, y, normal = m[:3, 0], m[:3, 1], m[:3, 2]
    axis = int(np.argmax(np.abs(normal)))
    along = offset if normal[axis] > 0 else -offset
    side = _LETTERS[axis][0 if along >= 0 else 1]
    return {"right": _letter(x), "left": _letter(-x), "top": _letter(y), "bottom": _letter(-y),
            "position": f"{name}  {side} {abs(offset):.1f} mm".strip()}


#: Keys that scroll the slice view under the mouse pointer: slices per press (Slicer's arrow and Page keys).
KEY_STEPS = {"ArrowUp": 1, "ArrowDown": -1, "ArrowRight": 1, "ArrowLeft": -1, "PageUp": 10, "PageDown": -10}
#: The page's keyboard: the view under the pointer (its marker's name) scrolls by `KEY_STEPS`; keys typed in a field
#: are the field's. Vue may render the toolbar that holds it more than once (issue 80: the page logged "Identifier
#: 'orbitaiProbeAt' has already been declared"): the listeners are added once per page, guarded by a window flag, and
#: nothing is declared at the top level.
KEYS_SCRIPT = """
if (!window.orbitaiViewerKeys) {
window.orbitaiViewerKeys = true;
window.orbitaiProbeAt = 0;
window.orbitaiPointer = (e) => {
  const now = Date.now();
  if (e.type === 'pointermove' && e.target.classList && e.target.classList.contains('image-display-area')
      && now - window.orbitaiProbeAt > 100 && window.orbitaiView) {
    window.orbitaiProbeAt = now;
    const r = e.target.getBoundingClientRect();
    window.trame.trigger('orbitai_probe', [window.orbitaiView, (e.clientX - r.left) / r.width,
                                           (e.clientY - r.top) / r.height]);
  }
  const view = window.orbitaiViewAt(e.target);
  if (view) window.orbitaiView = view;
};
window.orbitaiViewAt = (target) => {      // the view holding ``target`` (its marker's name), or null
  let el = target;
  for (let i = 0; el && i < 10; i++, el = el.parentElement) {
    const found = el.querySelectorAll ? el.querySelectorAll('.orbitai-view-marker') : [];
    if (found.length === 1) return found[0].id.replace('orbitai-view-', '');
    if (found.length > 1) return null;
  }
  return null;
};
// capture phase: the views stop their own pointer events from bubbling
document.addEventListener('pointermove', window.orbitaiPointer, true);
document.addEventListener('mouseover', window.orbitaiPointer, true);
// a click in a view gives the keys back to the views: the drawer's checkbox, slider or field used last lets go of
// the focus (a view's canvas takes no focus of its own, and its drags' preventDefault keeps the old one)
document.addEventListener('pointerdown', (e) => {
  const a = document.activeElement;
  if (a && a !== document.body && a.blur && window.orbitaiViewAt(e.target)) a.blur();
}, true);
document.addEventListener('keydown', (e) => {
  const steps = %s;
  const field = document.activeElement && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
  if (field || !(e.key in steps) || !window.orbitaiView) return;
  e.preventDefault();
  window.trame.trigger('orbitai_slice_step', [window.orbitaiView, steps[e.key]]);
});
}
""" % str(KEY_STEPS).replace("'", '"')


class Layouts:
    """The view layout (``layout``: a `LAYOUTS` name), the crosshair (``crosshair``) and the slice views' labels
    (``view_labels``: view name -> orientation letters and slice position). Signals: ``layout_changed`` (the page
    picked another layout: the views fit it), ``ruler_placed`` (a ruler's ends are placed: the mouse mode comes
    back)."""

    layout_changed = Signal()
    ruler_placed = Signal()

    def __init__(self, host: WebHost) -> None:
        self.state, self.mrml, self.scan = host.state, host.mrml, host.input_node
        self.views, self.layout_manager = host.slicer_app.view_manager, host.layout_manager
        self.markups = host.slicer_app.markups_logic
        #: Observer callbacks that remove themselves from inside their own call, held here: VTK drops its reference
        #: to a Python observer when it is removed, and a closure freed while it runs reads freed cells (the viewer's
        #: server ended with SIGSEGV in the ruler test of fresh-clone runs).
        self._held: list[Any] = []
        for name, build in LAYOUTS.items():       # views made when first shown (the 3D view costs most on a CPU)
            self.layout_manager.register_layout(name, build(), lazy_initialization=name != DEFAULT_LAYOUT)
        self.layout_manager.set_layout(DEFAULT_LAYOUT)
        self.state.update({"layout": DEFAULT_LAYOUT, "layouts": list(LAYOUTS), "crosshair": False,
                           "view_labels": {}, "probe_text": "", "rulers": [],
                           "ruler_placing": False})
        host.server.trigger("orbitai_probe")(self.probe)
        self.state.change("layout")(self._layout_chosen)
        self.state.change("crosshair")(self.apply_crosshair)
        host.server.trigger("orbitai_slice_step")(self.slice_step)

    def has_3d(self) -> bool:
        return bool(self.views.get_threed_views()) and "3D" in str(self.state.layout)

    def _layout_chosen(self, layout: Any = None, **_: Any) -> None:
        if not isinstance(layout, str) or layout not in LAYOUTS:
            return
        self.layout_manager.set_layout(layout)
        self.layout_changed.emit()
        self.show_in_3d()

    def show_in_3d(self) -> None:
        """With a 3D view in the layout: the shown scan's segmentations as surfaces, the camera on them."""
        if not self.has_3d():
            return
        for seg in results_of(self.mrml.scene, self.scan()):
            seg.CreateClosedSurfaceRepresentation()
        for view in self.views.get_threed_views():
            view.reset_camera()
            view.schedule_render()

    def crosshair_node(self) -> Any:
        return crosshair_node(self.mrml.scene)

    def apply_crosshair(self, **_: Any) -> None:
        """The crosshair in every view (Slicer's basic crosshair), or none."""
        node = self.crosshair_node()
        if node is not None:
            node.SetCrosshairMode(node.ShowBasic if self.state.crosshair else node.NoCrosshair)

    def place_crosshair(self, ras: Sequence[float]) -> None:
        node = self.crosshair_node()
        if node is not None:
            node.SetCrosshairRAS(*(float(x) for x in ras))

    def slice_step(self, view: Any = None, steps: Any = None) -> None:
        """A key on the page: the slice view named ``view`` moves ``steps`` slices (anything else is ignored)."""
        if not isinstance(view, str) or not isinstance(steps, int) or isinstance(steps, bool) or abs(steps) > 100:
            return
        for v in self.views.get_slice_views():
            if v.get_view_node().GetSingletonTag() == view:
                low, high = v.get_slice_range()
                value = v.get_slice_value() + steps * v.get_slice_step()
                v.set_slice_value(float(min(max(value, low), high)))

    def probe(self, view: Any = None, fx: Any = None, fy: Any = None) -> None:
        """``probe_text``: the RAS point and the scan's value under the pointer (``fx``, ``fy``: its place in the
        view's image, 0-1 from the top left), as Slicer's Data Probe shows them."""
        if not isinstance(view, str) or not all(isinstance(f, (int, float)) and 0 <= f <= 1 for f in (fx, fy)):
            return
        for v in self.views.get_slice_views():
            node = v.get_view_node()
            if node.GetSingletonTag() != view:
                continue
            w, h = v.render_window().GetSize()
            self.show_probe(node.GetXYToRAS().MultiplyPoint([float(fx) * w, (1.0 - float(fy)) * h, 0.0, 1.0])[:3])

    def show_probe(self, ras: Sequence[float]) -> None:
        """``probe_text``: the RAS point ``ras`` and the scan's value there."""
        value = probe(self.scan(), ras)
        where = "  ".join(f"{_LETTERS[a][0 if c >= 0 else 1]} {abs(c):{'.1f' if abs(c) < 1e7 else '.3g'}}"
                          for a, c in enumerate(ras))
        self.state.probe_text = f"{where}: {'outside the scan' if value is None else f'{value:.4g}'}"

    def start_ruler(self) -> None:
        """A ruler on the shown scan: the next two clicks in a view place its ends (Slicer's markups line); its
        length is listed in ``rulers`` and follows its ends when they are dragged."""
        node = self.scan()
        if node is None:
            return
        ruler = new_ruler(self.mrml.scene, node)
        for event in (ruler.PointPositionDefinedEvent, ruler.PointModifiedEvent, ruler.PointEndInteractionEvent):
            ruler.AddObserver(event, lambda *_: self._ruler_changed())
        interaction = self.mrml.app_logic.GetInteractionNode()
        tag: list[int] = []

        def placed(*_: Any) -> None:       # the ends are placed: the user's mouse mode comes back
            if interaction.GetCurrentInteractionMode() != interaction.Place:
                self.state.ruler_placing = False        # the page's own slices come back over the server's view
                self._ruler_changed()
                interaction.RemoveObserver(tag[0])      # last, and `placed` is held in self._held meanwhile
        self._held.append(placed)
        tag.append(interaction.AddObserver(interaction.InteractionModeChangedEvent, placed))
        self.state.ruler_placing = True                 # the server's view takes the two clicks
        self.markups.place_node(ruler)

    def _ruler_changed(self) -> None:
        with self.state:
            self.refresh_rulers()
            self.ruler_placed.emit()     # placing ended: the mouse mode comes back

    def scan_shown(self, _node: Any = None) -> None:
        """A scan was shown: no value of the last one stays under the pointer (issue 81: the probe kept the last
        scan's value after a switch), and the rulers listed are this scan's."""
        self.state.probe_text = ""
        self.refresh_rulers()

    def refresh_rulers(self) -> None:
        self.state.rulers = ruler_rows(self.mrml.scene, self.scan())

    def build_ui(self) -> None:
        """The toolbar's layout list and crosshair switch, and the page's keyboard."""
        v3.VSelect(v_model=("layout",), items=("layouts",), label="Layout", density="compact", hide_details=True,
                   style="min-width: 160px; max-width: 180px", classes="mr-2", id="orbitai-layout")
        v3.VBtn(icon="mdi-crosshairs", variant=("crosshair ? 'flat' : 'text'",), click="crosshair = !crosshair",
                title="Crosshair (Shift + move: the linked cursor in every view)", id="orbitai-crosshair",
                classes="mr-2")
        v3.VBtn(icon="mdi-ruler", variant="text", click=self.start_ruler, disabled=("!input_volume",),
                title="Ruler: click its two ends in a view", id="orbitai-ruler", classes="mr-2")
        html.Div("{{ rulers.map(r => r.name + ': ' + r.length_mm + ' mm').join(', ') }}", v_show="rulers.length",
                 classes="text-caption mr-4", id="orbitai-rulers")
        html.Div("{{ probe_text }}", v_show="probe_text", classes="text-caption mr-4", id="orbitai-probe")
        client.Script(KEYS_SCRIPT)


def label_overlay(view_id: str) -> None:
    """A slice view's orientation letters at its edges and its slice position in a corner (under the pointer's
    events, not in their way)."""
    base = "position: absolute; color: #e8e8e8; font: 13px sans-serif; text-shadow: 0 0 3px #000; pointer-events: none;"
    labels = f"view_labels['{view_id}']"
    for edge, where in (("left", "left: 6px; top: 50%;"), ("right", "right: 8px; top: 50%;"),
                        ("top", "top: 4px; left: 50%;"), ("bottom", "bottom: 34px; left: 50%;")):
        html.Div(f"{{{{ {labels} ? {labels}.{edge} : '' }}}}", style=base + where,
                 classes=f"orbitai-label-{edge}", id=f"orbitai-label-{view_id}-{edge}")
    html.Div(f"{{{{ {labels} ? {labels}.position : '' }}}}", style=base + "right: 8px; top: 4px;",
             id=f"orbitai-label-{view_id}-position")


def keeping_slice(fit: Any, view: Any) -> None:
    """``fit()`` (a view's fit to its volume), the view staying on its slice (trame-slicer's fit also moves the slice
    to the volume's centre)."""
    node = view.get_view_node()
    offset = node.GetSliceOffset() if node is not None else None
    fit()
    if offset is not None:
        node.SetSliceOffset(offset)


def keep_slice_on_fit(view: Any) -> None:
    """The view's "Reset Camera" keeps the slice the user is on; the original reset, to the centre of a newly shown
    scan, stays as ``view.centre_view``. Once per view (its page part is made again for every page that connects)."""
    if hasattr(view, "centre_view"):
        return
    view.centre_view = view.reset_view
    view.reset_view = lambda: keeping_slice(view.centre_view, view)
