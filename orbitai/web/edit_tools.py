"""The annotation panel's basic edits (issue 67): threshold, keep largest island / remove small islands, smoothing
and fill between slices, with the semantics of Slicer's effects (`orbitai.annotate.edits`), each one step of the same
undo history as the brush, eraser and SmartPencil (through `AnnotationLogic` and the panel's `TrameSlicerEditor`);
the keyboard shortcuts, listed in the page; and the results tables' volumes kept up with each edit.

State: ``ann_thr`` ([minimum, maximum]; to start, the brightest few percent of the head), ``ann_thr_bounds`` (the
shown scan's value range), ``ann_islands_min`` (voxels), ``ann_smooth_method``, ``ann_smooth_mm``.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from trame.widgets import client, html
from trame.widgets import vuetify3 as v3

from orbitai.mrml.segment_labelmaps import segment_voxel_count
from orbitai.mrml.volumes import scalar_array
from orbitai.web.annotate_seam import AnnotationTools
from orbitai.web.intensity import threshold_default
from orbitai.web.module_panel import ModulePanel

__all__ = ["EditTools", "KEYS", "KEYS_SCRIPT", "SMOOTHING_LABELS"]

#: The panel's keyboard (a key pressed outside a text field while the Annotate tab is open): key -> (what it does,
#: the tool it picks or the button it presses).
KEYS = {"b": ("Brush", "tool:paint"), "e": ("Eraser", "tool:erase"), "s": ("SmartPencil", "tool:smartpencil"),
        "Escape": ("Navigate (no tool)", "tool:none"), "i": ("Fill between slices", "button:fill-between"),
        "ctrl+z": ("Undo", "button:undo"), "ctrl+y": ("Redo", "button:redo"), "ctrl+shift+z": ("Redo", "button:redo")}
#: How the page names them.
KEY_NAMES = {"b": "B", "e": "E", "s": "S", "Escape": "Esc", "i": "I", "ctrl+z": "Ctrl+Z", "ctrl+y": "Ctrl+Y",
             "ctrl+shift+z": "Ctrl+Shift+Z"}
#: Added once per page (a window flag): the panel holding it may be rendered again, and a second listener would
#: take every key twice (a tool switched on and straight off again).
KEYS_SCRIPT = """
if (!window.orbitaiAnnotationKeys) {
window.orbitaiAnnotationKeys = true;
document.addEventListener('keydown', (e) => {
  const keys = %s;
  const field = document.activeElement && ['INPUT', 'TEXTAREA', 'SELECT'].includes(document.activeElement.tagName);
  if (field || e.altKey || !e.key) return;
  const ctrl = e.ctrlKey || e.metaKey;
  const name = (ctrl ? 'ctrl+' : '') + (ctrl && e.shiftKey ? 'shift+' : '') + (e.key.length === 1 ? e.key.toLowerCase() : e.key);
  if (!keys.includes(name)) return;
  e.preventDefault();
  window.trame.trigger('orbitai_ann_key', [name]);
});
}
""" % str(list(KEYS)).replace("'", '"')
#: A results table's structure and volume columns (the orbit module's and ``volumes.csv``'s names).
NAME_COLUMNS = ("structure", "name")
VOLUME_COLUMNS = ("volume (cm3)", "volume_cm3")
#: The smoothing methods the page offers, in `orbitai.annotate.edits.SMOOTHING_METHODS`'s order (a test keeps them
#: equal; not imported from there: the annotation algorithms and scipy wait for the first edit, issue 81's launch).
SMOOTHING_LABELS = {"MEDIAN": "Median", "MORPHOLOGICAL_OPENING": "Opening (removes extrusions)",
                    "MORPHOLOGICAL_CLOSING": "Closing (fills holes)"}


class EditTools:
    """The basic edits of the annotation panel ``panel`` (`orbitai.web.annotate.AnnotationPanel`)."""

    def __init__(self, panel: AnnotationTools) -> None:
        self.panel, self.state, self.scan = panel, panel.state, panel.scan
        self.state.update({"ann_thr": [0.0, 1.0], "ann_thr_bounds": [0.0, 1.0], "ann_islands_min": 1000,
                           "ann_smooth_method": "MEDIAN", "ann_smooth_mm": 3.0,
                           "ann_smooth_methods": [{"title": label, "value": m} for m, label in SMOOTHING_LABELS.items()],
                           "ann_keys": [f"{KEY_NAMES[k]}: {what}" for k, (what, _) in KEYS.items()]})
        panel.server.trigger("orbitai_ann_key")(self.key)

    # ---------------------------------------------------------------- scan and tables
    def scan_shown(self, node: Any) -> None:
        """The threshold's range: the shown scan's values; to start, the brightest few percent of the head
        (`orbitai.web.intensity.threshold_default`: bone on a CT, not the whole head in one press)."""
        image = None if node is None else node.GetImageData()
        if image is None:
            return
        lo, hi = (float(v) for v in image.GetScalarRange())
        self.state.ann_thr_bounds = [lo, hi]
        start = threshold_default(scalar_array(node))
        self.state.ann_thr = list(start) if start is not None else [lo, hi]

    def edited(self) -> None:
        """After each edit, Undo or Redo: the segment list and the results tables of the shown scan follow the edited
        segmentation (a structure's row gets the segment's voxels and volume now)."""
        node = self.panel.se.active_segmentation_node
        self.panel.results.refresh_segments()
        if node is None:
            return
        segmentation = node.GetSegmentation()
        names = {segmentation.GetNthSegment(i).GetName(): segmentation.GetNthSegmentID(i)
                 for i in range(segmentation.GetNumberOfSegments())}
        volume = self.scan()
        if volume is None:
            return
        sx, sy, sz = volume.GetSpacing()
        voxel_cm3 = sx * sy * sz / 1000.0
        for panel in self.panel.panels:
            self._update_table(panel, node, names, voxel_cm3)

    def _update_table(self, panel: ModulePanel, node: Any, names: dict, voxel_cm3: float) -> None:
        """The rows of ``panel``'s shown table (one per structure: `NAME_COLUMNS`, `VOLUME_COLUMNS`) when every
        structure it lists is a segment of the edited segmentation ``node`` (the module's result, or a copy of it
        loaded from its file): each row gets its segment's volume now, and a changed row says "edited" in its note."""
        headers = self.state[panel.var("table_headers")] or []
        rows = self.state[panel.var("table_rows")] or []
        col = {h.get("title"): h.get("key") for h in headers if isinstance(h, dict)}
        name = next((col[c] for c in NAME_COLUMNS if c in col), None)
        volume = next((col[c] for c in VOLUME_COLUMNS if c in col), None)
        if not rows or name is None or volume is None or any(str(r.get(name)) not in names for r in rows):
            return
        new_rows = []
        for row in rows:
            voxels = segment_voxel_count(node, names[str(row.get(name))])
            updated = dict(row)
            updated[volume] = f"{voxels * voxel_cm3:.4g}"       # as the panel writes a number (4 digits)
            if "voxels" in col:
                updated[col["voxels"]] = voxels
            if "note" in col and updated != row:
                updated[col["note"]] = "edited"
            new_rows.append(updated)
        if new_rows != rows:
            self.state[panel.var("table_rows")] = new_rows
            scan = self.scan()
            if scan is not None and scan.GetID() in panel.tables:
                panel.tables[scan.GetID()] = (headers, new_rows)

    # ---------------------------------------------------------------- actions
    def threshold(self) -> Any:
        lo, hi = self._range()
        return self.panel.logic.threshold(lo, hi)

    def _range(self) -> tuple[float, float]:
        value = self.state.ann_thr
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            lo, hi = float("nan"), float("nan")
        return lo, hi

    def keep_largest(self) -> Any:
        return self.panel.logic.islands(keep_largest=True)

    def remove_small(self) -> Any:
        try:
            n = int(float(self.state.ann_islands_min))
        except (TypeError, ValueError):
            n = -1
        return self.panel.logic.islands(keep_largest=False, minimum_voxels=n)

    def smooth(self) -> Any:
        try:
            mm = float(self.state.ann_smooth_mm)
        except (TypeError, ValueError):
            mm = float("nan")
        return self.panel.logic.smooth(str(self.state.ann_smooth_method), mm)

    def fill_between(self) -> Any:
        return self.panel.logic.fillBetweenSlices()

    def _button(self, fn: Callable[[], Any], what: str, keys: list[str]) -> tuple[Callable[..., Any], str]:
        """``click=`` of a button: the page's values of ``keys`` come with the press (`orbitai.web.clicks`), then the
        panel's busy state and ``fn`` (`AnnotationPanel.button_callback`)."""
        run = self.panel.button_callback(fn, what)

        async def pressed(values: Any = None) -> None:
            if isinstance(values, dict):
                self.state.update({k: values[k] for k in keys if k in values})
            await run()
        return pressed, "[{" + ", ".join(f"'{k}': {k}" for k in keys) + "}]"

    def key(self, name: Any = None) -> None:
        """A key of `KEYS` on the page (only while the Annotate tab is open; anything else is ignored)."""
        if not isinstance(name, str) or name not in KEYS or self.state.module != "annotate":
            return
        kind, _, target = KEYS[name][1].partition(":")
        if kind == "tool":
            with self.state:
                self.state.ann_tool = target
            return
        action: Optional[Callable[[], Any]] = {"undo": self.panel.undo, "redo": self.panel.redo,
                                               "fill-between": self.fill_between}.get(target)
        if action is not None:
            asyncio.ensure_future(self.panel.button_callback(action, KEYS[name][0])())

    # ---------------------------------------------------------------- page
    def build_ui(self) -> None:
        busy = ("ann_busy",)
        with v3.VExpansionPanels(classes="mb-2", id="orbitai-ann-edits"):
            with v3.VExpansionPanel(title="Threshold, islands, smoothing, fill between slices"), \
                    v3.VExpansionPanelText():
                v3.VRangeSlider(v_model=("ann_thr",), min=("ann_thr_bounds[0]",), max=("ann_thr_bounds[1]",),
                                step=("Math.max((ann_thr_bounds[1] - ann_thr_bounds[0]) / 1000, 0.001)",),
                                label="Threshold", thumb_label=True, hide_details=True, id="orbitai-ann-thr")
                html.Div("{{ ann_thr[0] }} to {{ ann_thr[1] }}", classes="text-caption mb-1", id="orbitai-ann-thr-text")
                v3.VBtn("Apply threshold", click=self._button(self.threshold, "Threshold", ["ann_thr"]), size="small",
                        disabled=busy, id="orbitai-ann-threshold", classes="mb-2",
                        title="The segment becomes the voxels from the minimum to the maximum (Slicer's Threshold)")
                with html.Div(classes="d-flex flex-wrap align-center ga-1 mb-2"):
                    v3.VBtn("Keep largest island", click=self._button(self.keep_largest, "Islands", []), size="small",
                            disabled=busy, id="orbitai-ann-keep-largest")
                    v3.VTextField(v_model=("ann_islands_min",), type="number", label="Min island (voxels)",
                                  density="compact", hide_details=True, style="max-width: 150px",
                                  id="orbitai-ann-islands-min")
                    v3.VBtn("Remove small islands", click=self._button(self.remove_small, "Islands",
                                                                       ["ann_islands_min"]),
                            size="small", disabled=busy, id="orbitai-ann-remove-small")
                with html.Div(classes="d-flex flex-wrap align-center ga-1 mb-2"):
                    v3.VSelect(v_model=("ann_smooth_method",), items=("ann_smooth_methods",), label="Smoothing",
                               density="compact", hide_details=True, style="max-width: 210px",
                               id="orbitai-ann-smooth-method")
                    v3.VTextField(v_model=("ann_smooth_mm",), type="number", label="Kernel (mm)", density="compact",
                                  hide_details=True, style="max-width: 110px", id="orbitai-ann-smooth-mm")
                    v3.VBtn("Smooth", click=self._button(self.smooth, "Smoothing",
                                                         ["ann_smooth_method", "ann_smooth_mm"]),
                            size="small", disabled=busy, id="orbitai-ann-smooth")
                v3.VBtn("Fill between slices", click=self._button(self.fill_between, "Fill between slices", []),
                        size="small", disabled=busy, id="orbitai-ann-fill-between",
                        title="Interpolates the segment between the slices drawn (morphological contour "
                              "interpolation, as Slicer's Fill between slices)")
        html.Div("Keys: {{ ann_keys.join(' · ') }}", classes="text-caption mb-2", id="orbitai-ann-keys")
        client.Script(KEYS_SCRIPT)
