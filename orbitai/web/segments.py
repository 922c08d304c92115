"""The shown scan's results in the web app: only its own heat maps and segmentations visible, its segments listed.

When the page switches scans, the scan left keeps its heat map noted and hidden, and the scan shown gets its own back
(:meth:`ShownResults.show_only`, never another patient's results over it); a new result moves the views to the newest
segmentation (:meth:`ShownResults.results_shown`). ``segment_rows`` lists the segments of the shown scan's
segmentations with their colour, visibility and 2D opacity (Slicer's segment table), ``segment_nodes`` those
segmentations with the ``.seg.nrrd`` name each downloads as; the page's requests must name one of them.

The shown scan's heat maps (``heat_maps``, `orbitai.mrml.overlays.heat_map_rows`) are listed above its segments,
each with a show/hide box, an opacity slider and the shown one's colour bar (the colours of its colour node from the
display window's minimum to its maximum, as Slicer's colour legend draws them); its boxes (``result_boxes``: markups
ROIs such as TAO's crop of each eye) each with a button that moves the views to the box. A new box result moves the
views to the first box (:meth:`ShownResults.results_shown`). The page's requests must name a heat map or box of the
shown scan (another patient's are never listed nor changed).
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Optional

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from orbitai.mrml import box_of_roi_node, jump_slices
from orbitai.mrml.overlays import heat_map_rows, set_heat_map
from orbitai.mrml.results import results_of, show_results_of
from orbitai.mrml.viewer import result_focus, segment_rows, set_segment_display
from orbitai.mrml.queries import node_by_id, nodes_of_class, scene_order
from orbitai.mrml.segmentation_files import segmentation_file_bytes
from orbitai.web.host import WebHost
from orbitai.web.viewer import Layouts

__all__ = ["ShownResults", "seg_file_name", "box_rows", "newest_boxes"]


def seg_file_name(name: str) -> str:
    """The download name of a segmentation: its name with runs of anything but letters, digits, ``.``, ``-`` and
    ``_`` made ``_`` (no spaces), and ``.seg.nrrd``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") + ".seg.nrrd"


def box_rows(scene: Any, scan: Any) -> list[dict[str, Any]]:
    """The boxes (markups ROIs) that are results of ``scan``, oldest first: ID, name and centre (RAS, mm)."""
    return [{"id": n.GetID(), "name": n.GetName(), "center": [round(float(c), 2) for c in box_of_roi_node(n)[0]]}
            for n in results_of(scene, scan, "vtkMRMLMarkupsROINode")]


def newest_boxes(scene: Any, scan: Any, segmentations: list[Any]) -> list[Any]:
    """The boxes of ``scan`` added after the newest of ``segmentations`` (all its boxes when there is none), oldest
    first: the views go to them when they are the newest result (TAO's crops after a TAO run)."""
    order = scene_order(scene)
    after = max((order.get(s.GetID(), -1) for s in segmentations), default=-1)
    return [n for n in results_of(scene, scan, "vtkMRMLMarkupsROINode") if order.get(n.GetID(), -1) > after]


def _shown(key: str, field: str, server: str) -> str:
    """A box's or slider's value in the page: the user's change not yet recorded by the server
    (``overlay_pending``), else the server's ``server``."""
    return f"window.orbitaiOverlays.value(overlay_pending, {key}, '{field}', {server})"


def _in_page(kind: str, key: str, field: str, send: bool = True) -> str:
    """A box's or slider's change: drawn in the page at once, then (``send``) recorded by the server
    (static/orbitai_overlays.js)."""
    return f"window.orbitaiOverlays.{kind}({key}, '{field}', $event, {'true' if send else 'false'})"


class ShownResults:
    """The results of the shown scan (``host.input_node``), in the state and views of ``host``; the crosshair and the
    3D view of ``layouts``."""

    def __init__(self, host: WebHost, layouts: Layouts) -> None:
        self.state, self.server, self.mrml, self.scan = host.state, host.server, host.mrml, host.input_node
        self.layouts = layouts
        #: scan node ID -> the heat map it had in the foreground when the user switched away
        self.overlays: dict[str, str] = {}
        self.state.update({"segment_rows": [], "segment_nodes": [], "heat_maps": [], "result_boxes": [],
                           "overlay_pending": {}, "overlay_recorded": 0})
        # the page's own changes of the boxes and sliders, drawn before the server records them
        # (static/orbitai_overlays.js): never sent to the server
        self.state.client_only("overlay_pending")
        host.server.trigger("orbitai_download_segmentation")(self.download_segmentation)
        host.server.trigger("orbitai_segment_visible")(self.set_segment_visible)
        host.server.trigger("orbitai_segment_opacity")(self.set_segment_opacity)
        host.server.trigger("orbitai_heat_map_shown")(self.set_heat_map_shown)
        host.server.trigger("orbitai_heat_map_opacity")(self.set_heat_map_opacity)
        host.server.trigger("orbitai_jump_box")(self.jump_to_box)
        self._heat_pending = False
        #: the slice views' composite nodes observed (`_observe_views`)
        self._observed: set[str] = set()

    def show_only(self, node: Any) -> None:
        """Only the results of the scan ``node`` (None: of no scan) visible; the one left has its heat map noted."""
        show_results_of(self.mrml.scene, node, self.overlays)

    def results_shown(self, focus: bool = True) -> None:
        """A module's results were added: only the shown scan's are visible; with ``focus`` the views move to the
        shown scan's newest result: the first of its newest boxes (TAO's crop of each eye) when boxes came after its
        segmentations, else its newest segmentation (a whole head's orbits are far from its centre)."""
        node = self.scan()
        self.show_only(node)
        segs = [s for s in results_of(self.mrml.scene, node)
                if s.GetDisplayNode() and s.GetDisplayNode().GetVisibility()]
        boxes = newest_boxes(self.mrml.scene, node, segs) if focus else []
        point = None
        if boxes:                   # a box is the newest result (TAO's crops): the views go to the first one
            point = [float(c) for c in box_of_roi_node(boxes[0])[0]]
        elif focus and segs:
            point = result_focus(segs[-1])
        if point is not None:
            self._jump(point)
        self.layouts.show_in_3d()
        self.refresh_segments()

    def refresh_segments(self) -> None:
        """``segment_rows``: the segments of the shown scan's segmentations (its results, loaded and drawn ones);
        ``segment_nodes``: those segmentations, each with the file name its download gets."""
        scene, scan = self.mrml.scene, self.scan()
        nodes = results_of(scene, scan)
        self.state.segment_rows = segment_rows(nodes)
        self.layouts.refresh_rulers()
        self.state.segment_nodes = [{"id": n.GetID(), "name": n.GetName(), "file": seg_file_name(n.GetName())}
                                    for n in nodes]
        self.state.result_boxes = box_rows(scene, scan)
        self.refresh_heat_maps()

    def refresh_heat_maps(self) -> None:
        """``heat_maps``: the shown scan's heat maps, shown or not, with their colour bars."""
        self._observe_views()
        rows = heat_map_rows(self.mrml.scene, self.scan())
        if rows != self.state.heat_maps:
            self.state.heat_maps = rows

    def _observe_views(self) -> None:
        """A module's "Show map" choice or a scan switch changes the slice views' foreground: the heat-map list follows
        (each view's composite node observed once, when it exists)."""
        for comp in nodes_of_class(self.mrml.scene, "vtkMRMLSliceCompositeNode"):
            if comp.GetID() not in self._observed:
                self._observed.add(comp.GetID())
                comp.AddObserver("ModifiedEvent", self._views_changed)

    def _views_changed(self, *_: Any) -> None:
        if not self._heat_pending:
            self._heat_pending = True
            asyncio.get_event_loop().call_soon(self._heat_later)

    def _heat_later(self) -> None:
        self._heat_pending = False
        with self.state:
            self.refresh_heat_maps()

    def _jump(self, point: list[float]) -> None:
        jump_slices(self.mrml, point)
        self.layouts.place_crosshair(point)

    def _shown_node(self, rows: str, node_id: Any) -> Optional[Any]:
        """The node ``node_id`` (an ID the page sends) when the state list ``rows`` of the shown scan holds it."""
        if not isinstance(node_id, str) or node_id not in {r["id"] for r in self.state[rows] or []}:
            return None
        return node_by_id(self.mrml.scene, node_id)

    def set_heat_map_shown(self, node_id: Any = None, shown: Any = None) -> int:
        """The page's show/hide box of a heat map of the shown scan (shown: over the scan, the other heat map hidden)."""
        node = self._shown_node("heat_maps", node_id)
        if node is not None and isinstance(shown, bool):
            set_heat_map(self.mrml, node, shown=shown)
        self.refresh_heat_maps()
        return self._recorded()

    def set_heat_map_opacity(self, node_id: Any = None, opacity: Any = None) -> int:
        """The page's opacity slider of a heat map of the shown scan (0-1)."""
        node = self._shown_node("heat_maps", node_id)
        if node is not None and isinstance(opacity, (int, float)) and not isinstance(opacity, bool):
            set_heat_map(self.mrml, node, opacity=float(opacity))
        self.refresh_heat_maps()
        return self._recorded()

    def jump_to_box(self, node_id: Any = None) -> None:
        """The page's button of a box of the shown scan: the views go to its centre."""
        node = self._shown_node("result_boxes", node_id)
        if node is not None:
            self._jump([float(c) for c in box_of_roi_node(node)[0]])

    def download_segmentation(self, node_id: Any = None) -> Any:
        """A segmentation of the shown scan as Slicer's ``.seg.nrrd`` (an ID the page sends: it must be one it lists)."""
        if not isinstance(node_id, str) or node_id not in {n["id"] for n in self.state.segment_nodes or []}:
            return None
        return self.server.protocol.addAttachment(segmentation_file_bytes(node_by_id(self.mrml.scene, node_id)))

    def set_segment_visible(self, key: Any = None, visible: Any = None) -> int:
        """The page's visibility box of a segment (a key the page sends: it must name a segment of the shown scan)."""
        if isinstance(visible, bool) and self._shown_segment(key):
            set_segment_display(self.mrml.scene, key, visible=visible)
        self.refresh_segments()
        return self._recorded()

    def set_segment_opacity(self, key: Any = None, opacity: Any = None) -> int:
        """The page's opacity slider of a segment (0-1)."""
        if isinstance(opacity, (int, float)) and not isinstance(opacity, bool) and self._shown_segment(key):
            set_segment_display(self.mrml.scene, key, opacity=float(opacity))
        self.refresh_segments()
        return self._recorded()

    def _recorded(self) -> int:
        """One more of the page's display changes answered: its number, in the state with the rows that show it
        (``overlay_recorded``, the same message), so the page knows which rows come after it (wslink may send the
        answer before the rows: static/orbitai_overlays.js)."""
        self.state.overlay_recorded = int(self.state.overlay_recorded or 0) + 1
        return self.state.overlay_recorded

    def _shown_segment(self, key: Any) -> bool:
        return isinstance(key, str) and key in {r["key"] for r in self.state.segment_rows or []}

    def build_ui(self) -> None:
        """The shown scan's heat maps and boxes (`heat_map_ui`), then its segments: colour swatch, name, visibility
        and 2D opacity (Slicer's segment table)."""
        self.heat_map_ui()
        with v3.VExpansionPanels(classes="mb-2", v_show="segment_rows.length"):
            with v3.VExpansionPanel(title=("`Segments of this scan (${segment_rows.length})`",), id="orbitai-segments"):
                with v3.VExpansionPanelText():
                    with html.Div(v_for="(row, i) in segment_rows", key="row.key",
                                  classes="d-flex align-center orbitai-segment-row"):
                        v3.VCheckboxBtn(model_value=(_shown("row.key", "visible", "row.visible"),), density="compact",
                                        hide_details=True, update_modelValue=_in_page("segment", "row.key", "visible"),
                                        id=("`orbitai-segment-visible-${i}`",), title="Show or hide")
                        html.Span(style=("{ background: row.color, width: '14px', height: '14px', "
                                         "display: 'inline-block', borderRadius: '3px', marginRight: '6px' }",),
                                  classes="orbitai-swatch")
                        html.Span("{{ row.name }}", classes="text-body-2 flex-grow-1", title=("row.node",))
                        v3.VSlider(model_value=(_shown("row.key", "opacity", "row.opacity"),), min=0, max=1, step=0.05,
                                   density="compact", hide_details=True, style="max-width: 110px",
                                   update_modelValue=_in_page("segment", "row.key", "opacity", send=False),
                                   end=_in_page("segment", "row.key", "opacity"),
                                   id=("`orbitai-segment-opacity-${i}`",), title="Opacity")
                    v3.VBtn("{{ node.name }}", v_for="(node, i) in segment_nodes", key="node.id", size="small",
                            variant="tonal", prepend_icon="mdi-download", classes="mt-2 mr-2",
                            id=("`orbitai-segmentation-download-${i}`",), title="Download as .seg.nrrd",
                            click="utils.download(`${node.file}`, trigger('orbitai_download_segmentation', [node.id]),"
                                  " 'application/octet-stream')")

    def heat_map_ui(self) -> None:
        """Each heat map of the shown scan: show/hide, name, opacity and, when shown, its colour bar (a gradient of its
        colour node's colours with the window's minimum, middle and maximum under it); each box: a button to go to it."""
        with html.Div(v_show="heat_maps.length || result_boxes.length", classes="mb-2", id="orbitai-heat-maps"):
            with html.Div(v_for="(map, i) in heat_maps", key="map.id", classes="orbitai-heat-map"):
                with html.Div(classes="d-flex align-center"):
                    v3.VCheckboxBtn(model_value=("window.orbitaiOverlays.heatOn(overlay_pending, map.id)",),
                                    density="compact", hide_details=True,
                                    update_modelValue=_in_page("heat", "map.id", "shown"),
                                    id=("`orbitai-heat-map-shown-${i}`",), title="Show or hide the heat map")
                    html.Span("{{ map.name }}", classes="text-body-2 flex-grow-1", title="Heat map")
                    v3.VSlider(model_value=(_shown("'heat|' + map.id", "opacity", "map.opacity"),), min=0, max=1,
                               step=0.05, density="compact", hide_details=True, style="max-width: 110px",
                               update_modelValue=_in_page("heat", "map.id", "opacity", send=False),
                               end=_in_page("heat", "map.id", "opacity"),
                               id=("`orbitai-heat-map-opacity-${i}`",), title="Opacity")
                with html.Div(v_if="window.orbitaiOverlays.heatOn(overlay_pending, map.id)", classes="px-2 pb-1",
                              id=("`orbitai-heat-map-colorbar-${i}`",), title=("map.title",)):
                    html.Div(classes="orbitai-colorbar",
                             style=("{ height: '12px', borderRadius: '2px', "
                                    "background: 'linear-gradient(to right, ' + map.colors.join(', ') + ')' }",))
                    with html.Div(classes="d-flex justify-space-between text-caption"):
                        html.Span("{{ tick }}", v_for="(tick, t) in map.ticks", key="t",
                                  classes="orbitai-colorbar-tick")
            v3.VBtn("{{ box.name }}", v_for="(box, i) in result_boxes", key="box.id", size="small", variant="tonal",
                    prepend_icon="mdi-crop-free", classes="mt-1 mr-2", id=("`orbitai-box-jump-${i}`",),
                    title="Move the views to this box", click="trigger('orbitai_jump_box', [box.id])")
