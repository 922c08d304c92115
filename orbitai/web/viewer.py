"""The viewer controls of the browser app (issue 49): window/level presets and values of the shown scan.

Left-drag in a slice view adjusts window/level as in Slicer's "Adjust window/level" mouse mode (the interaction node's
``AdjustWindowLevel`` mode drives Slicer's own `vtkMRMLWindowLevelWidget`, which the slice views' scalar-bar
displayable manager holds); "Navigate" is Slicer's view-transform mode, and an annotation tool takes the mouse
whatever the mode. The toolbar shows the values and offers Slicer's presets (the volume display node's ``CT-Bone``,
``CT-Abdomen``, ``CT-Brain``, ``CT-Lung`` numbers) and a soft-tissue window for the orbit.
"""
from __future__ import annotations

from typing import Any, Optional

import slicer
from trame.widgets import html
from trame.widgets import vuetify3 as v3

__all__ = ["WINDOW_PRESETS", "WindowLevel"]

#: Preset name -> (window, level); "Auto": the display node's automatic window (the scan's own range).
WINDOW_PRESETS: dict[str, Optional[tuple[float, float]]] = {
    "Auto": None,
    "CT soft tissue (W 400 / L 40)": (400.0, 40.0),
    "CT bone (W 1000 / L 400)": (1000.0, 400.0),
    "CT brain (W 100 / L 50)": (100.0, 50.0),
    "CT abdomen (W 350 / L 40)": (350.0, 40.0),
    "CT lung (W 1400 / L -500)": (1400.0, -500.0),
}


class WindowLevel:
    """Window/level of the shown scan in state: ``wl_window``, ``wl_level`` (its display node's values, kept up to
    date while the user drags), ``wl_preset`` (a `WINDOW_PRESETS` name the page picks)."""

    def __init__(self, app: Any) -> None:
        self.app, self.state = app, app.state
        self._observed: tuple[Any, int] | None = None
        self.state.update({"wl_window": None, "wl_level": None, "wl_preset": None,
                           "wl_presets": list(WINDOW_PRESETS), "mouse_mode": "window_level"})
        self.state.change("wl_preset")(self._preset_changed)
        self.state.change("mouse_mode", "ann_tool")(self.apply_mouse_mode)
        self.apply_mouse_mode()

    def apply_mouse_mode(self, **_: Any) -> None:
        """Left-drag adjusts window/level (``mouse_mode`` "window_level") unless an annotation tool is active; else
        Slicer's view-transform mode."""
        logic = self.app.mrml.app_logic
        node = logic.GetInteractionNode() if logic is not None else None
        if node is None:
            return
        wl = self.state.mouse_mode == "window_level" and self.state.ann_tool in (None, "none")
        mode = slicer.vtkMRMLInteractionNode.AdjustWindowLevel if wl else slicer.vtkMRMLInteractionNode.ViewTransform
        if node.GetCurrentInteractionMode() != mode:
            node.SetCurrentInteractionMode(mode)

    def _display(self) -> Any:
        node = self.app.input_node()
        return node.GetDisplayNode() if node is not None else None

    def scan_shown(self) -> None:
        """The shown scan changed: observe its display node, publish its values, forget the preset picked."""
        if self._observed is not None:
            self._observed[0].RemoveObserver(self._observed[1])
            self._observed = None
        display = self._display()
        if display is not None:
            self._observed = (display, display.AddObserver("ModifiedEvent", lambda *_: self._publish()))
        self.state.wl_preset = None
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
        values = WINDOW_PRESETS[wl_preset]
        if values is None:
            display.AutoWindowLevelOn()
        else:
            display.AutoWindowLevelOff()
            display.SetWindowLevel(*values)
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
                   hide_details=True, style="max-width: 250px", classes="mr-2", id="orbitai-wl-preset",
                   disabled=("!input_volume",))
        html.Div("W {{ wl_window }} L {{ wl_level }}", v_show="wl_window !== null", classes="text-caption mr-4",
                 id="orbitai-wl-values", title="Left-drag in a view changes the window (left-right) and level "
                                                "(up-down)")
