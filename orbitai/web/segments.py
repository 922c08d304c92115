"""The shown scan's results in the web app: only its own heat maps and segmentations visible, its segments listed.

When the page switches scans, the scan left keeps its heat map noted and hidden, and the scan shown gets its own back
(:meth:`ShownResults.show_only`, never another patient's results over it); a new result moves the views to the newest
segmentation (:meth:`ShownResults.results_shown`). ``segment_rows`` lists the segments of the shown scan's
segmentations with their colour, visibility and 2D opacity (Slicer's segment table), ``segment_nodes`` those
segmentations with the ``.seg.nrrd`` name each downloads as; the page's requests must name one of them.
"""
from __future__ import annotations

import re
from typing import Any

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from orbitai.mrml import jump_slices
from orbitai.mrml.results import results_of, show_results_of
from orbitai.mrml.viewer import result_focus, segment_rows, set_segment_display
from orbitai.mrml.segmentations import segmentation_file_bytes

__all__ = ["ShownResults", "seg_file_name"]


def seg_file_name(name: str) -> str:
    """The download name of a segmentation: its name with runs of anything but letters, digits, ``.``, ``-`` and
    ``_`` made ``_`` (no spaces), and ``.seg.nrrd``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") + ".seg.nrrd"


class ShownResults:
    """The results of the scan shown in the app ``app`` (`orbitai.web.app.OrbitWebApp`), in its state and views."""

    def __init__(self, app: Any) -> None:
        self.app, self.state = app, app.state
        #: scan node ID -> the heat map it had in the foreground when the user switched away
        self.overlays: dict[str, str] = {}
        self.state.update({"segment_rows": [], "segment_nodes": []})
        app.server.trigger("orbitai_download_segmentation")(self.download_segmentation)
        app.server.trigger("orbitai_segment_visible")(self.set_segment_visible)
        app.server.trigger("orbitai_segment_opacity")(self.set_segment_opacity)

    def show_only(self, node: Any) -> None:
        """Only the results of the scan ``node`` (None: of no scan) visible; the one left has its heat map noted."""
        show_results_of(self.app.mrml.scene, node, self.overlays)

    def results_shown(self, focus: bool = True) -> None:
        """A module's results were added: only the shown scan's are visible; with ``focus`` the views move to the
        newest segmentation of the shown scan (a whole head's orbits are far from its centre)."""
        node = self.app.input_node()
        self.show_only(node)
        segs = [s for s in results_of(self.app.mrml.scene, node)
                if s.GetDisplayNode() and s.GetDisplayNode().GetVisibility()]
        if focus and segs:
            point = result_focus(segs[-1])
            if point is not None:
                jump_slices(self.app.mrml, point)
                self.app.layouts.place_crosshair(point)
        self.app.layouts.show_in_3d()
        self.refresh_segments()

    def refresh_segments(self) -> None:
        """``segment_rows``: the segments of the shown scan's segmentations (its results, loaded and drawn ones);
        ``segment_nodes``: those segmentations, each with the file name its download gets."""
        nodes = results_of(self.app.mrml.scene, self.app.input_node())
        self.state.segment_rows = segment_rows(nodes)
        self.app.layouts.refresh_rulers()
        self.state.segment_nodes = [{"id": n.GetID(), "name": n.GetName(), "file": seg_file_name(n.GetName())}
                                    for n in nodes]

    def download_segmentation(self, node_id: Any = None) -> Any:
        """A segmentation of the shown scan as Slicer's ``.seg.nrrd`` (an ID the page sends: it must be one it lists)."""
        if not isinstance(node_id, str) or node_id not in {n["id"] for n in self.state.segment_nodes or []}:
            return None
        return self.app.server.protocol.addAttachment(segmentation_file_bytes(self.app.mrml.scene.GetNodeByID(node_id)))

    def set_segment_visible(self, key: Any = None, visible: Any = None) -> None:
        """The page's visibility box of a segment (a key the page sends: it must name a segment of the shown scan)."""
        if isinstance(visible, bool) and self._shown_segment(key):
            set_segment_display(self.app.mrml.scene, key, visible=visible)
        self.refresh_segments()

    def set_segment_opacity(self, key: Any = None, opacity: Any = None) -> None:
        """The page's opacity slider of a segment (0-1)."""
        if isinstance(opacity, (int, float)) and not isinstance(opacity, bool) and self._shown_segment(key):
            set_segment_display(self.app.mrml.scene, key, opacity=float(opacity))
        self.refresh_segments()

    def _shown_segment(self, key: Any) -> bool:
        return isinstance(key, str) and key in {r["key"] for r in self.state.segment_rows or []}

    def build_ui(self) -> None:
        """The shown scan's segments: colour swatch, name, visibility and 2D opacity (Slicer's segment table)."""
        with v3.VExpansionPanels(classes="mb-2", v_show="segment_rows.length"):
            with v3.VExpansionPanel(title=("`Segments of this scan (${segment_rows.length})`",), id="orbitai-segments"):
                with v3.VExpansionPanelText():
                    with html.Div(v_for="(row, i) in segment_rows", key="row.key",
                                  classes="d-flex align-center orbitai-segment-row"):
                        v3.VCheckboxBtn(model_value=("row.visible",), density="compact", hide_details=True,
                                        update_modelValue="trigger('orbitai_segment_visible', [row.key, $event])",
                                        id=("`orbitai-segment-visible-${i}`",), title="Show or hide")
                        html.Span(style=("{ background: row.color, width: '14px', height: '14px', "
                                         "display: 'inline-block', borderRadius: '3px', marginRight: '6px' }",),
                                  classes="orbitai-swatch")
                        html.Span("{{ row.name }}", classes="text-body-2 flex-grow-1", title=("row.node",))
                        v3.VSlider(model_value=("row.opacity",), min=0, max=1, step=0.05, density="compact",
                                   hide_details=True, style="max-width: 110px",
                                   end="trigger('orbitai_segment_opacity', [row.key, $event])",
                                   id=("`orbitai-segment-opacity-${i}`",), title="Opacity")
                    v3.VBtn("{{ node.name }}", v_for="(node, i) in segment_nodes", key="node.id", size="small",
                            variant="tonal", prepend_icon="mdi-download", classes="mt-2 mr-2",
                            id=("`orbitai-segmentation-download-${i}`",), title="Download as .seg.nrrd",
                            click="utils.download(`${node.file}`, trigger('orbitai_download_segmentation', [node.id]),"
                                  " 'application/octet-stream')")
