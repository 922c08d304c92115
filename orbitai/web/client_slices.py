"""Slices drawn in the browser (issue 67): the shown scan, its label maps and its heat map are sent once to the page,
where ``static/orbitai_slices.js`` draws each slice view on a 2D canvas over trame-slicer's server-rendered view (one
slice of the page's copy through a lookup table: no WebGL, so a GPU-less browser is as fast; docs/web-rendering.md
says why neither trame-vtklocal nor NiiVue). Slice steps (arrow and Page keys, wheel), window/level (left drag,
Slicer's semantics: left-right the window, up-down the level), zoom (right drag) and pan (middle drag) are the
page's alone, so they stay instant while a model job keeps the server's cores busy; so is the crosshair (Shift + move
or Shift + click: the other views go to the slices through the point, Slicer's linked cursor), which the server only
records (`ClientSlices.set_crosshair`). Segments are drawn as Slicer's 2D display draws them (a translucent fill, 0.5 by
default times the segment's 2D fill opacity, and an opaque outline), the SmartFill preview (`preview_layers`) as an
outline and a diagonal hatch without fill (``static/orbitai_draw.js``). Every heat map of the scan is sent, shown or
not, so a segment's or heat map's visibility and opacity are answered in the page from what it holds (issue 81,
``static/orbitai_overlays.js``); the server only records them afterwards (`orbitai.web.segments.ShownResults`).

The server's MRML scene stays the truth: the page sends its slice positions (`ClientSlices.sync_slice`) and its
window/level (`ClientSlices.set_window_level`) back, so Slicer's slice nodes, the orientation letters and slice
positions, the annotation tools and the ruler work on the slice the user sees; the value under the pointer is the
server's (`ClientSlices.probe`: the scan's own voxel, while the page's copy of a float scan is quantised to 16 bits).
After a result or an edit the server sends the page the box of each label map that changed
(`orbitai.web.overlay_patches`; ``client_overlays``' version and the version it updates, and a small update itself). An annotation tool or
a ruler's placement takes the server's view (the canvas steps aside) until it is done.

Transport: gzip'd voxels with their grid (IJK-to-RAS) returned by trame triggers over the page's authenticated
websocket (nothing served by path, no file name in the page's state); a scan over `PROGRESSIVE_VOXELS` goes first at
half resolution (every second voxel), then whole.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from trame.widgets import html
from trame.widgets import vuetify3 as v3

from orbitai.io.volume import Volume
from orbitai.mrml.overlays import color_samples, is_heat_map
from orbitai.mrml.results import results_of
from orbitai.mrml.segment_editor import content_stamp, segment_mask
from orbitai.mrml.volumes import volume_from_volume_node
from orbitai.web.host import WebHost
from orbitai.web.launch import mark
from orbitai.web.overlay_patches import PRIVATE_KEYS, SAME, WHOLE, EditBoxes, clip, layer_id, plan, work_voxels
from orbitai.web.viewer import Layouts
from orbitai.web.voxel_packing import compact, packed

__all__ = ["ClientSlices", "preview_layers", "packed", "compact", "scan_steps", "scan_level", "client_canvas", "STATIC", "PROGRESSIVE_VOXELS"]

#: The page's static files (its slice code).
STATIC = Path(__file__).with_name("static")
#: Scans with more voxels than this go to the page first at half resolution (every second voxel), then whole.
PROGRESSIVE_VOXELS = 4_000_000
#: Seconds after a segmentation change before the label maps are packed again: 0, the next turn of the server's loop
#: (an edit's events come in one turn; a paint stroke's are packed once the tool is put down,
#: `ClientSlices.overlays_changed`).
OVERLAY_DELAY_S = 0.0
#: After the page fetched a scan's first step, the longest the server waits for the page to say it drew it
#: (``static/orbitai_launch.js``; a page whose slices the server draws says nothing) before it goes on with the rest.
LAUNCH_DRAW_S = 5.0
#: An update that reads at most this many voxels (an edit's box, `orbitai.web.overlay_patches.work_voxels`) is packed
#: on the server's loop (~10 ms): a worker thread waited up to 0.7 s for the GIL on a loaded machine (issue 81).
INLINE_VOXELS = 4_000_000
#: An update of changed boxes of at most this many gzip'd bytes comes with its version's notice (a 128^3 box of one
#: segment: ~10 kB); a larger one is fetched (``orbitai_client_overlays``), not pushed into the shared state.
NOTICE_BYTES = 256 * 1024
def _level_of(vol: Volume, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step``-th voxel of ``vol`` and its IJK-to-RAS (the same RAS place for each kept voxel)."""
    if step == 1:
        return vol.array, vol.ijk_to_ras()
    return vol.array[::step, ::step, ::step], vol.ijk_to_ras() @ np.diag([step, step, step, 1.0])


def scan_steps(vol: Volume) -> tuple[int, ...]:
    """The resolution steps the page gets a scan in, coarsest first: half then whole over `PROGRESSIVE_VOXELS`."""
    return (2, 1) if vol.array.size > PROGRESSIVE_VOXELS else (1,)


def scan_level(vol: Volume, step: int) -> dict[str, Any]:
    """The scan at resolution ``step`` (every ``step``-th voxel) as the page takes it."""
    array, m = _level_of(vol, step)
    values, slope, inter = compact(array)
    return packed(values, m, slope, inter)


def label_layer(node: Any, scan: Any, previous: Optional[dict[str, Any]] = None,
                boxes: Optional[EditBoxes] = None) -> Optional[dict[str, Any]]:
    """One segmentation node as a label map on ``scan``'s grid (segment ``n`` of the node has the value ``n + 1``):
    its node ID, segment IDs in value order, the array and the node's content stamp
    (`orbitai.mrml.segment_editor.content_stamp`); None without segments. When ``boxes`` knows the box that holds
    every change since ``previous`` (this node's layer before), only that box is read again (the layer's ``box``)."""
    segmentation = node.GetSegmentation()
    ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    if not ids:
        return None
    shape = tuple(reversed(scan.GetImageData().GetDimensions()))
    stamp = content_stamp(node)
    layer = {"kind": "labels", "node": node.GetID(), "segments": ids, "stamp": stamp}
    box = (boxes.since(node.GetID(), previous.get("stamp"), stamp)
           if boxes is not None and previous is not None and previous.get("segments") == ids
           and previous["array"].shape == shape else None)
    if previous is not None and box is not None:
        box = clip(box, shape)
        labels = previous["array"].copy()
        if box:
            region = labels[box]
            region[...] = 0
            for value, sid in enumerate(ids, start=1):
                region[segment_mask(node, sid, scan, box)] = value
        return {**layer, "array": labels, "box": box}
    labels = np.zeros(shape, np.uint8 if len(ids) < 256 else np.uint16)
    for value, sid in enumerate(ids, start=1):
        labels[segment_mask(node, sid, scan)] = value
    return {**layer, "array": labels}


def preview_layers(logic: Any, scan: Any) -> list[dict[str, Any]]:
    """The SmartFill preview of the annotation logic ``logic`` (`orbitai.app.annotation.AnnotationLogic`) as a label
    map on ``scan``'s grid, with its segments' colours (the page draws it as an outline and a hatch, no fill); none
    without a preview."""
    node = getattr(logic, "previewNode", None) if logic is not None else None
    if node is None or node.GetScene() is None:
        return []
    layer = label_layer(node, scan)
    if layer is None:
        return []
    segmentation = node.GetSegmentation()
    colors = [[int(round(255 * c)) for c in segmentation.GetSegment(sid).GetColor()] for sid in layer["segments"]]
    return [{**layer, "kind": "preview", "colors": colors}]


def heat_layers(scene: Any, scan: Any) -> list[dict[str, Any]]:
    """Every heat map of ``scan`` (its results that `is_heat_map`, shown or not), with its display window and colours:
    the page draws the one ``heat_maps`` (`orbitai.mrml.overlays.heat_map_rows`) says is shown, at its opacity, so
    showing, hiding or fading one needs no new data (issue 81)."""
    out = []
    for node in results_of(scene, scan, "vtkMRMLScalarVolumeNode"):
        if not is_heat_map(node) or node is scan or node.GetImageData() is None:
            continue
        display = node.GetDisplayNode()
        vol = volume_from_volume_node(node)
        lo, hi = ((float(display.GetWindowLevelMin()), float(display.GetWindowLevelMax())) if display is not None
                  else (float(vol.array.min()), float(vol.array.max())))
        colors = color_samples(display.GetColorNode() if display is not None else None)
        out.append({"kind": "heat", "node": node.GetID(), "array": vol.array, "ijk_to_ras": vol.ijk_to_ras(),
                    "low": lo, "high": hi, "colors": colors})
    return out


def _pack(layers: list[dict[str, Any]], how: list[Any], ijk_to_ras: np.ndarray) -> list[dict[str, Any]]:
    """The layers as the page takes them, each as `orbitai.web.overlay_patches.plan` says (``how``): whole (a heat
    map's values spread over 16 bits), ``same`` (named only) or ``patch`` (its changed box, packed, and the box's
    first voxel, ``offset`` [k, j, i]). Off the server's loop (numpy and gzip)."""
    out = []
    for layer, way in zip(layers, how):
        meta = {k: v for k, v in layer.items() if k not in PRIVATE_KEYS}
        if way == SAME:
            out.append({**meta, "same": True})
        elif way == WHOLE:
            array = layer["array"]
            values, slope, inter = compact(array) if layer["kind"] == "heat" else (array, 1.0, 0.0)
            out.append({**meta, **packed(values, layer.get("ijk_to_ras", ijk_to_ras), slope, inter)})
        else:
            out.append({**meta, "offset": [s.start for s in way],
                        "patch": packed(np.ascontiguousarray(layer["array"][way]), np.eye(4))})
    return out


def _update(previous: dict[tuple[str, str], dict[str, Any]], layers: list[dict[str, Any]],
            ijk_to_ras: np.ndarray) -> list[dict[str, Any]]:
    """``layers`` packed as an update of a page that holds ``previous`` (`orbitai.web.overlay_patches.plan`)."""
    return _pack(layers, plan(previous, layers), ijk_to_ras)


def _small(update: list[dict[str, Any]]) -> bool:
    """Whether the update ``update`` is changed boxes and unchanged layers only, of `NOTICE_BYTES` at most: sent with
    its version's notice (``client_overlays``), the page that holds its base needs no request for it."""
    if not all(layer.get("same") or "patch" in layer for layer in update):
        return False
    return sum(len(layer["patch"]["data"]) for layer in update if "patch" in layer) <= NOTICE_BYTES


@dataclass
class _Published:
    """The overlays of one version: for the page that holds version ``base`` (0: none) as ``update`` (changed boxes,
    unchanged layers named), for any other page ``whole`` (packed when first asked for)."""
    key: str = ""
    version: int = 0
    base: int = 0
    layers: list = field(default_factory=list)        # with their arrays
    ijk_to_ras: Any = None
    update: list = field(default_factory=list)
    whole: Optional[list] = None


def client_canvas(view_id: str) -> None:
    """The canvas the page draws a slice view on, over the server's image (the page shows it when its slices are
    loaded and no annotation tool or ruler placement needs the server's view)."""
    html.Canvas(id=f"orbitai-slice-{view_id}", classes="orbitai-slice",
                style="position: absolute; left: 0; top: 0; width: 100%; height: 100%; display: none; "
                      "outline: none;")


class ClientSlices:
    """The page's copy of the shown scan (``host.input_node``) and its overlays, the SmartFill preview of
    ``annotation_logic`` (`orbitai.app.annotation.AnnotationLogic`) among them; the crosshair and probe the page sends
    go to ``layouts``.

    State: ``client_slices`` (the user's switch: browser-drawn slices or the server's), ``client_volume`` (the shown
    scan's key and the resolution steps ready to fetch), ``client_overlays`` (the key and version of its label maps
    and heat maps)."""

    def __init__(self, host: WebHost, layouts: Layouts, annotation_logic: Any = None,
                 edit_boxes: Optional[EditBoxes] = None) -> None:
        self.state, self.mrml, self.scan = host.state, host.mrml, host.input_node
        self.edit_boxes = edit_boxes        # where the annotation tools' edits changed each segmentation
        self.views, self.layouts, self.annotation_logic = host.slicer_app.view_manager, layouts, annotation_logic
        self.launched, self.launch_done = host.launched, host.launch_done       # the launch's first frame
        self._levels: dict[str, list[dict[str, Any]]] = {}
        self._adopted: tuple[str, Optional[Volume], list[dict[str, Any]]] = ("", None, [])
        self._overlays = _Published()
        self._deferred = False          # a change while an annotation tool has the views: packed when it is put down
        self._version = 0
        self._heat_ids: tuple[str, ...] = ()
        self._observed: list[tuple[Any, int]] = []
        self._pending: Optional[asyncio.TimerHandle] = None
        self.state.update({"client_slices": True, "client_volume": None, "client_overlays": None})
        host.server.enable_module({"serve": {"__orbitai_static": str(STATIC)},
                                   "scripts": ["__orbitai_static/orbitai_draw.js", "__orbitai_static/orbitai_overlays.js",
                                               "__orbitai_static/orbitai_slices.js",
                                               "__orbitai_static/orbitai_launch.js"]})
        for name, f in (("orbitai_client_volume", self.volume_bytes), ("orbitai_client_overlays", self.overlay_layers),
                        ("orbitai_client_slice", self.sync_slice), ("orbitai_client_wl", self.set_window_level),
                        ("orbitai_probe_ras", self.probe), ("orbitai_client_cross", self.set_crosshair)):
            host.server.trigger(name)(f)
        self.state.change("segment_nodes")(self._observe_segmentations)
        self.state.change("ann_preview", "ann_done")(lambda **_: self.overlays_changed())    # a SmartFill preview
        self.state.change("ann_tool_active")(self._tool_put_down)
        # a heat map added or removed (showing, hiding or fading one is the page's: ``heat_maps``)
        self.state.change("heat_maps")(self._heat_maps)

    # ------------------------------------------------------------------ the scan
    @staticmethod
    def _key(node: Any) -> str:
        return f"{node.GetID()}:{node.GetImageData().GetMTime()}"

    def adopt(self, node: Any, vol: Volume, packed: Sequence[dict[str, Any]]) -> None:
        """``node`` was made from ``vol`` (held by nobody else) and its first resolution steps ``packed`` before it
        was shown (the launch's scan, while the app was built, `orbitai.web.loading.read_early`): `scan_shown`
        publishes them at once and packs the rest from ``vol`` (no copy of the scan on the server's loop)."""
        self._adopted = (self._key(node), vol, list(packed))

    def scan_shown(self, node: Any = None) -> None:
        """The shown scan ``node`` changed: its voxels are packed off the main thread, each resolution step published
        as it is ready (``client_volume``)."""
        self._levels.clear()
        if node is None or node.GetImageData() is None:
            self.state.client_volume = None
            self.overlays_changed()
            return
        key = self._key(node)
        _, vol, ready = self._adopted if self._adopted[0] == key else ("", None, [])
        self._adopted = ("", None, [])
        if vol is None:
            vol = volume_from_volume_node(node)           # a copy: the scene may change while the worker packs it
        self._levels = {key: list(ready)}
        self.state.client_volume = {"key": key, "ready": len(ready), "steps": len(scan_steps(vol))}
        asyncio.ensure_future(self._pack_scan(key, vol, len(ready)))
        self.overlays_changed()

    async def _pack_scan(self, key: str, vol: Volume, done: int = 0) -> None:
        """Each resolution step but the first ``done`` packed off the main thread and published as soon as it is
        ready (after the launch's first frame, `OrbitWebApp.launch_done`, when a first step was packed before)."""
        if done:
            await self.launched.wait()
        for step in scan_steps(vol)[done:]:
            level = await asyncio.get_event_loop().run_in_executor(None, scan_level, vol, step)
            levels = self._levels.get(key)
            if levels is None:
                return                   # another scan was shown meanwhile
            levels.append(level)
            mark("first_pack")
            with self.state:
                self.state.client_volume = {**self.state.client_volume, "ready": len(levels)}

    def volume_bytes(self, key: Any = None, index: Any = 0) -> Optional[dict[str, Any]]:
        """The page's request: resolution step ``index`` (0: the coarsest) of the scan ``key``; None when that scan is
        no longer shown or not packed yet."""
        levels = self._levels.get(key) if isinstance(key, str) else None
        if not levels or not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(levels):
            return None
        mark("first_pack_sent")
        asyncio.get_event_loop().call_later(LAUNCH_DRAW_S, self.launch_done)
        return {"key": key, "index": index, **levels[index]}

    # ------------------------------------------------------------------ overlays
    def _observe_segmentations(self, **_: Any) -> None:
        """Watch the shown scan's segmentations: a result, an edit or a new segment sends the label maps again."""
        for obj, tag in self._observed:
            obj.RemoveObserver(tag)
        self._observed = []
        for node in results_of(self.mrml.scene, self.scan()):
            seg = node.GetSegmentation()
            for event in (seg.SegmentAdded, seg.SegmentRemoved, seg.SegmentModified, seg.RepresentationModified):
                self._observed.append((seg, seg.AddObserver(event, lambda *_: self.overlays_changed())))
        self.overlays_changed()

    def _heat_maps(self, heat_maps: Any = None, **_: Any) -> None:
        ids = tuple(r["id"] for r in heat_maps or [])
        if ids != self._heat_ids:         # shown, hidden or faded: the same data, the page draws it so
            self._heat_ids = ids
            self.overlays_changed()

    def overlays_changed(self) -> None:
        """Label maps or heat maps changed: packed again once the changes pause (`OVERLAY_DELAY_S`), or, while an
        annotation tool has the views (the page's canvases step aside), once it is put down."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._deferred = self.state["ann_tool_active"] not in (None, "none")
        if not self._deferred:
            self._pending = asyncio.get_event_loop().call_later(
                OVERLAY_DELAY_S, lambda: asyncio.ensure_future(self._pack_overlays()))

    def _tool_put_down(self, **_: Any) -> None:
        """An annotation tool put down (or taken up): overlays held back while it had the views are packed now."""
        if self._deferred:
            self.overlays_changed()

    async def _pack_overlays(self) -> None:
        self._pending = None
        scan = self.scan()
        self._version += 1
        version = self._version
        if scan is None or scan.GetImageData() is None:
            self._overlays = _Published(version=version)
            with self.state:
                self.state.client_overlays = None
            return
        scene = scan.GetScene()
        key, last = (self.state.client_volume or {}).get("key", ""), self._overlays
        previous = {layer_id(layer): layer for layer in last.layers} if last.key == key else {}
        layers = [layer for node in results_of(scene, scan)
                  if (layer := label_layer(node, scan, previous.get(("labels", node.GetID())), self.edit_boxes))]
        layers += preview_layers(self.annotation_logic, scan)
        layers += heat_layers(scene, scan)
        m = volume_from_volume_node(scan, copy=False).ijk_to_ras()
        if work_voxels(previous, layers) <= INLINE_VOXELS:
            update = _update(previous, layers, m)
        else:
            update = await asyncio.get_event_loop().run_in_executor(None, _update, previous, layers, m)
        if version != self._version:
            return                      # changed again meanwhile: the newer packing publishes
        self._overlays = _Published(key, version, last.version if previous else 0, layers, m, update,
                                    None if previous else update)
        notice = {"key": key, "version": version, "base": self._overlays.base}
        with self.state:
            self.state.client_overlays = {**notice, "layers": update} if previous and _small(update) else notice

    async def overlay_layers(self, version: Any = None, base: Any = None) -> Optional[dict[str, Any]]:
        """The page's request: the label maps and heat maps of ``version`` (None when a newer one replaced it), as
        changed boxes for the page that holds ``base`` when ``version`` was made from it, else whole."""
        pub = self._overlays
        if version != pub.version or not pub.key:
            return None
        if base is not None and base == pub.base:
            return {"key": pub.key, "version": pub.version, "base": pub.base, "layers": pub.update}
        if pub.whole is None:
            pub.whole = await asyncio.get_event_loop().run_in_executor(
                None, _pack, pub.layers, [WHOLE] * len(pub.layers), pub.ijk_to_ras)
        return {"key": pub.key, "version": pub.version, "layers": pub.whole}

    # ------------------------------------------------------------------ the page's interactions, to the scene
    def _slice_node(self, view: Any) -> Any:
        if not isinstance(view, str):
            return None
        for v in self.views.get_slice_views():
            node = v.get_view_node()
            if node.GetSingletonTag() == view:
                return node
        return None

    def sync_slice(self, view: Any = None, ras: Any = None) -> None:
        """The page moved view ``view`` to the slice through ``ras``: the view's slice node follows (Slicer's labels,
        the tools and the ruler work on the slice the user sees)."""
        node = self._slice_node(view)
        point = _point(ras)
        if node is not None and point is not None:
            node.JumpSliceByOffsetting(*point)

    def set_window_level(self, window: Any = None, level: Any = None) -> None:
        """The page's window/level drag ended: the shown scan's display node takes the values."""
        node = self.scan()
        display = node.GetDisplayNode() if node is not None else None
        if display is None or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in (window, level)):
            return
        if float(window) <= 0:
            return
        display.AutoWindowLevelOff()
        display.SetWindowLevel(float(window), float(level))

    def set_crosshair(self, ras: Any = None) -> None:
        """The page moved the crosshair to ``ras`` (Shift + move): the scene's crosshair node records it."""
        point = _point(ras)
        if point is not None:
            self.layouts.place_crosshair(point)

    def probe(self, view: Any = None, ras: Any = None) -> None:
        """``probe_text`` for the RAS point under the page's pointer (the scan's own value, not the page's copy)."""
        point = _point(ras)
        if point is not None:
            self.layouts.show_probe(point)

    # ------------------------------------------------------------------ page
    def build_ui(self) -> None:
        """The toolbar's switch between browser-drawn slices and the server's."""
        v3.VBtn(icon="mdi-monitor-eye", variant=("client_slices ? 'flat' : 'text'",),
                click="client_slices = !client_slices", id="orbitai-client-slices", classes="mr-2",
                title="Slices drawn in the browser (instant scrolling and window/level); off: the server draws them")


def _point(ras: Any) -> Optional[Sequence[float]]:
    if isinstance(ras, (list, tuple)) and len(ras) == 3 and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c) for c in ras):
        return [float(c) for c in ras]
    return None
