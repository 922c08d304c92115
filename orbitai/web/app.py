"""The OrbitAI web app: trame-slicer's scene, views and segment editor, with the OrbitAI module and annotation panels.

Construction order matters (see `orbitai.web.compat`): the views are created before anything touches a segment editor
effect. The scene is adopted as OrbitAI's MRML context (`orbitai.mrml.scene.adopt_context`), so the module Logics and
`AnnotationLogic` work on it exactly as on Slicer's scene.
"""
from __future__ import annotations

import asyncio
import functools
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from trame.app import TrameApp
from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import client as trame_client
from trame.widgets import html
from trame.widgets import vuetify3 as v3
from trame_slicer import module as trame_slicer_module
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui

from orbitai.dicom.inputs import parse_dicomweb_url, resolve_image
from orbitai.errors import InputError, OrbitAIError, UserError, one_line
from orbitai.io.dicom_folder import looks_like_dicom
from orbitai.io.files import read_scan
from orbitai.io.grids import segmentation_on_image
from orbitai.web.model_offer import offer_ui
from orbitai.mrml import (
    jump_slices,
    segmentation_node_from_labels,
    show_volume,
    volume_from_volume_node,
    volume_node_from_volume,
)
from orbitai.mrml.results import (
    is_result,
    mark_results,
    result_focus,
    results_of,
    segment_rows,
    segmentations_of,
    set_segment_display,
    show_results_of,
)
from orbitai.mrml.scene import adopt_context
from orbitai.mrml.segmentations import segmentation_file_bytes
from orbitai.web import compat, disconnects
from orbitai.web.annotate import AnnotationPanel
from orbitai.web.clicks import sending
from orbitai.web.guard import DEFAULT_UPLOAD_MB, Guard, GuardError, listen_error, new_token
from orbitai.web.identity import identity_lines, read_identity, scan_title, series_name, set_identity
from orbitai.web.modules import modules
from orbitai.web.names import PATH_REFUSED, DicomWebAllowList, client_path, web_url
from orbitai.io.segfile import read_segmentation
from orbitai.web.module_panel import MAX_TEXT_OPTION, ModulePanel
from orbitai.web.uploads import Upload, Uploads
from orbitai.web.viewer import Layouts, WindowLevel, keep_slice_on_fit, keeping_slice, label_overlay, view_labels

__all__ = ["OrbitWebApp", "VOLUME_SUFFIXES", "Upload", "UPLOAD_TRIGGER"]

#: Files the DATA folder's list offers (DICOM series are offered as their folders).
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
#: The trigger the page's upload sends its files to, in groups (trame-slicer's ``load_files_by_chunks``), then ``[]``.
UPLOAD_TRIGGER = "orbitai_upload"
#: The module tabs: their names as written, narrow enough for all five to show in the drawer
TAB_STYLE = {"classes": "text-none px-2", "style": "min-width: 0"}
#: The page's Load and Fetch wait while a load this page asked for runs (not another page's).
_LOADING_HERE = "!!load_ticket && loads_running.includes(load_ticket)"
#: After a page connects or a volume is shown, resizes within this time fit the slice views to the volume.
FIT_WINDOW_S = 5.0


def seg_file_name(name: str) -> str:
    """The download name of a segmentation: its name with runs of anything but letters, digits, ``.``, ``-`` and
    ``_`` made ``_`` (no spaces), and ``.seg.nrrd``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.") + ".seg.nrrd"


def _view_ui(server: Any, view_id: str, view: Any) -> None:
    """Over each slice view: trame-slicer's slice gutter, the orientation letters and slice position, and a marker
    giving the view a stable selector (the page's keyboard, the tests)."""
    keep_slice_on_fit(view)         # before the gutter binds its Reset Camera button
    create_vertical_slice_view_gutter_ui(server, view_id, view)
    label_overlay(view_id)
    html.Div(classes="orbitai-view-marker", id=f"orbitai-view-{view_id}", style="display: none")


def _view_ui_3d(server: Any, view_id: str, view: Any) -> None:
    """Over the 3D view: trame-slicer's gutter and the marker."""
    create_vertical_view_gutter_ui(server, view_id, view)
    html.Div(classes="orbitai-view-marker", id=f"orbitai-view-{view_id}", style="display: none")


def data_choices(data: Optional[Path]) -> list[str]:
    """What the DATA folder offers: its volume and segmentation (``.seg.nrrd``) files and its folders holding DICOM files
    (paths relative to it), each one `client_path` accepts."""
    if data is None or not data.is_dir():
        return []
    found = []
    for path in sorted(data.rglob("*")):
        if path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES):
            found.append(str(path.relative_to(data)))
        elif path.is_dir() and any(looks_like_dicom(f) for f in list(path.iterdir())[:3] if f.is_file()):
            found.append(str(path.relative_to(data)) + "/")
    return [choice for choice in found if _loadable(choice, data)]


def _loadable(choice: str, data: Path) -> bool:
    """Whether `client_path` takes ``choice`` (a link out of DATA is not offered: it would be refused)."""
    try:
        client_path(choice, data)
    except InputError:
        return False
    return True


class OrbitWebApp(TrameApp):
    """The web app. ``data``: a scan (file, DICOM folder, DICOMweb series URL) to load at start, or a folder whose
    scans the page offers. ``upload_limit``: the most bytes one upload from the page may hold."""

    def __init__(self, server: Any = None, data: Optional[str] = None, rca_encoder: Optional[str] = None,
                 upload_limit: int = DEFAULT_UPLOAD_MB << 20, dicomweb: tuple[str, ...] = ()) -> None:
        super().__init__(server)
        #: the DICOMweb servers the page may fetch from: those given at start, and DATA's when it is a DICOMweb URL
        self.dicomweb = DicomWebAllowList([*dicomweb, *([data] if data and web_url(data) else [])])
        self._loading = 0       # loads under way (``load_busy``)

        self.server.enable_module(trame_slicer_module)   # chunked uploads
        self.slicer_app = SlicerApp()
        sa = self.slicer_app
        self.mrml = adopt_context(sa.scene, sa.app_logic, sa.register_module_logic, colors=sa.color_logic,
                                  segmentations=sa.segmentations_logic, volumes=sa.volumes_logic,
                                  subject_hierarchy=sa.subject_hierarchy_logic, terminologies=sa.terminologies_logic)
        # Views first, then anything that touches a segment editor effect (orbitai.web.compat).
        register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=_view_ui,
                               three_d_view_ui_f=_view_ui_3d,
                               rca_encoder=rca_encoder)
        compat.install(self.slicer_app.view_manager)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.layouts = Layouts(self)
        self.data_folder = Path(data) if data and Path(data).is_dir() else None
        self.upload_limit = int(upload_limit)
        self.uploads = Uploads(self.upload_limit)
        self._web_server: Any = None
        self.server.controller.on_server_bind.add(self._bind_connections)
        self.server.trigger(UPLOAD_TRIGGER)(self.upload_chunk)
        self.state.update({"input_volume": None, "volumes": [], "segmentations": [], "module": "orbit",
                           "load_error": "", "load_busy": False, "loads_running": [], "load_ticket": "",
                           "data_items": data_choices(self.data_folder),
                           "data_choice": None, "dicomweb_url": "", "scene_nodes": 0, "scan_identity": []})
        self.panels = {spec.key: ModulePanel(self, spec) for m in modules() for spec in (m, *m.sections)}

        self.annotation = AnnotationPanel(self)
        self.window_level = WindowLevel(self)
        self._refresh_pending = False
        self.state.client_only("load_ticket")      # each page's own (`load_click`)
        for event in (self.mrml.scene.NodeAddedEvent, self.mrml.scene.NodeRemovedEvent):
            self.mrml.scene.AddObserver(event, self._nodes_changed)
        self.state.change("input_volume")(self._input_changed)
        self.state.update({"slice_geometry": {}, "jump_to": None, "segment_rows": [], "segment_nodes": []})
        self.server.trigger("orbitai_download_segmentation")(self.download_segmentation)
        #: scan node ID -> the heat map it had in the foreground when the user switched away
        self._overlays: dict[str, str] = {}
        self.server.trigger("orbitai_segment_visible")(self.set_segment_visible)
        self.server.trigger("orbitai_segment_opacity")(self.set_segment_opacity)
        self._fit_until = 0.0
        for view in self.slicer_app.view_manager.get_slice_views():
            view.get_view_node().AddObserver("ModifiedEvent", lambda *_: self._publish_geometry())
            view.render_window().AddObserver("WindowResizeEvent", lambda *_, v=view: self._resized(v))
        self.server.controller.on_client_connected.add(self._fit_soon)
        self.server.controller.on_client_connected.add(self._list_data)
        self.state.change("jump_to")(self._jump)
        self._build_ui()
        self.server.controller.on_server_exited.add(self.shutdown)
        if data and self.data_folder is None:
            self.server.controller.on_server_ready.add(lambda **_: asyncio.ensure_future(self.load(data)))

    def close_scene(self) -> None:
        """Close the scene, as Slicer's File > Close Scene: running jobs are cancelled, every node the user loaded or
        made is removed (views and the editor stay), the panels forget their results."""
        for panel in self.panels.values():
            panel.job.controller.sceneClosing()
            self.state[panel.var("table_rows")] = []
            self.state[panel.var("table_headers")] = []
            panel.tables.clear()
        self._overlays.clear()
        self.state.jump_to = None       # the same point can be jumped to again in the next scene
        self.annotation.scene_closing()
        self.mrml.scene.Clear(0)
        self.annotation.scene_closed()
        self.state.input_volume = None
        self.refresh_nodes()

    def shutdown(self, **_: Any) -> None:
        """The server stops: running jobs are cancelled (their children killed, nothing imported)."""
        for panel in self.panels.values():
            panel.job.controller.cancel()
        self.uploads.remove_all()

    def _bind_connections(self, web_server: Any) -> None:
        """trame's ``on_server_bind``: a connection's pending upload is dropped when the connection closes (a page
        closed or reloaded, a message too big), whether the page says goodbye or not."""
        self._web_server = web_server
        for handler in getattr(web_server, "_ws_handlers", None) or []:
            original = handler.onClose

            async def onClose(client_id: str, original: Any = original) -> None:
                self.uploads.drop(client_id)
                await original(client_id)
            handler.onClose = onClose

    def _client(self) -> Any:
        """The connection whose message is being handled (wslink notes it before calling the trigger)."""
        return getattr(self._web_server, "last_active_client_id", None)

    def select_model(self, label: Optional[str], option_name: str = "model") -> None:
        """After a section installed a model: every panel reads its choices again, and the panels whose option
        ``option_name`` offers ``label`` choose it (None: only the choices are read again)."""
        for panel in self.panels.values():
            panel.refresh_choices()
        if label is None:
            return
        for panel in self.panels.values():
            option = next((o for o in panel.spec.options if o.name == option_name), None)
            if option is not None and option.choices is not None and label in option.choices():
                self.state[panel.var(option_name)] = label

    # ---------------------------------------------------------------- scene
    def input_node(self) -> Any:
        node_id = self.state["input_volume"]
        return self.mrml.scene.GetNodeByID(node_id) if node_id else None

    def _nodes_changed(self, *_: Any) -> None:
        """A node was added or removed: the lists are read once on the next loop turn, not once per node (an import
        adds dozens)."""
        if not self._refresh_pending:
            self._refresh_pending = True
            asyncio.get_event_loop().call_soon(self._refresh_later)

    def _refresh_later(self) -> None:
        self._refresh_pending = False
        with self.state:
            self.refresh_nodes()

    def refresh_nodes(self) -> None:
        """The page's node lists: scalar volumes (inputs) and the segmentations a user can pick."""
        scene = self.mrml.scene
        volumes, segmentations = [], []
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
            n = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
            if not n.IsA("vtkMRMLLabelMapVolumeNode") and not n.GetHideFromEditors() and not is_result(n):
                volumes.append({"title": scan_title(n), "value": n.GetID()})   # a heat map is a result, not a scan
        # the shown scan's segmentations and those of no scan: never another patient's (issue 61)
        segmentations = [{"title": n.GetName(), "value": n.GetID()} for n in segmentations_of(scene, self.input_node())]
        self.state.volumes, self.state.segmentations = volumes, segmentations
        self.state.scene_nodes = scene.GetNumberOfNodes()
        if self.state.input_volume and not scene.GetNodeByID(self.state.input_volume):
            self.state.input_volume = None
        self.state.scan_identity = identity_lines(self.input_node())
        self.refresh_segments()

    def _input_changed(self, input_volume: Optional[str] = None, **_: Any) -> None:
        node = self.input_node()
        self.refresh_nodes()            # the segmentation lists: the shown scan's
        for panel in self.panels.values():
            panel.scan_shown()
        self.annotation.scan_shown()
        if node is not None:
            show_results_of(self.mrml.scene, node, self._overlays)     # the left scan's heat map noted, then hidden
            show_volume(self.mrml, node)
            for view in self.slicer_app.view_manager.get_views():   # a new scan: its centre
                getattr(view, "centre_view", view.reset_view)()
            self._fit_soon()
            self.results_shown()        # its own heat map back over it, the views on its newest result
            self.window_level.scan_shown()
        else:
            show_results_of(self.mrml.scene, None, self._overlays)
            self.refresh_segments()
        for panel in self.panels.values():
            panel.show_table_of(node)

    # ---------------------------------------------------------------- results of the shown scan
    def results_shown(self, focus: bool = True) -> None:
        """A module's results were added: only the shown scan's are visible; with ``focus`` the views move to the
        newest segmentation of the shown scan (a whole head's orbits are far from its centre)."""
        node = self.input_node()
        show_results_of(self.mrml.scene, node, self._overlays)
        segs = [s for s in results_of(self.mrml.scene, node) if s.GetDisplayNode() and s.GetDisplayNode().GetVisibility()]
        if focus and segs:
            point = result_focus(segs[-1])
            if point is not None:
                jump_slices(self.mrml, point)
                self.layouts.place_crosshair(point)
        self.layouts.show_in_3d()
        self.refresh_segments()

    def refresh_segments(self) -> None:
        """``segment_rows``: the segments of the shown scan's segmentations (its results, loaded and drawn ones);
        ``segment_nodes``: those segmentations, each with the file name its download gets."""
        nodes = results_of(self.mrml.scene, self.input_node())
        self.state.segment_rows = segment_rows(nodes)
        self.layouts.refresh_rulers()
        self.state.segment_nodes = [{"id": n.GetID(), "name": n.GetName(), "file": seg_file_name(n.GetName())}
                                    for n in nodes]

    def download_segmentation(self, node_id: Any = None) -> Any:
        """A segmentation of the shown scan as Slicer's ``.seg.nrrd`` (an ID the page sends: it must be one it lists)."""
        if not isinstance(node_id, str) or node_id not in {n["id"] for n in self.state.segment_nodes or []}:
            return None
        return self.server.protocol.addAttachment(segmentation_file_bytes(self.mrml.scene.GetNodeByID(node_id)))

    def set_segment_visible(self, key: Any = None, visible: Any = None) -> None:
        """The page's visibility box of a segment (a key the page sends: it must name a segment of the shown scan)."""
        if isinstance(visible, bool) and self._shown_segment(key):
            set_segment_display(self.mrml.scene, key, visible=visible)
        self.refresh_segments()

    def set_segment_opacity(self, key: Any = None, opacity: Any = None) -> None:
        """The page's opacity slider of a segment (0-1)."""
        if isinstance(opacity, (int, float)) and not isinstance(opacity, bool) and self._shown_segment(key):
            set_segment_display(self.mrml.scene, key, opacity=float(opacity))
        self.refresh_segments()

    def _shown_segment(self, key: Any) -> bool:
        return isinstance(key, str) and key in {r["key"] for r in self.state.segment_rows or []}

    def _list_data(self, **_: Any) -> None:
        """The DATA folder's list, read again when a page opens (files added since are offered)."""
        self.state.data_items = data_choices(self.data_folder)

    def _fit_soon(self, **_: Any) -> None:
        """Fit the slice views to the volume when they take the page's size (a page was opened or a volume shown
        before the views had their final size); later resizes keep the user's zoom, as in Slicer."""
        self._fit_until = time.monotonic() + FIT_WINDOW_S

    def fit_views_soon(self) -> None:
        """The layout changed: the views fit the volume when they take their new sizes."""
        self._fit_soon()
        self._publish_geometry()

    def _resized(self, view: Any) -> None:
        if time.monotonic() < self._fit_until:      # the page's new size: the view fits it, on the same slice
            keeping_slice(view.fit_view_to_content, view)

    def _publish_geometry(self) -> None:
        """``slice_geometry``: per slice view, its XY-to-RAS matrix (row-major) and size in pixels, so that a scripted
        client (the tests, automation) can turn a RAS point into a position in the view's image."""
        geometry, labels = {}, {}
        for view in self.slicer_app.view_manager.get_slice_views():
            node = view.get_view_node()
            m = node.GetXYToRAS()
            tag = node.GetSingletonTag()
            geometry[tag] = {"xy_to_ras": [m.GetElement(i, j) for i in range(4) for j in range(4)],
                             "size": list(view.render_window().GetSize())}
            labels[tag] = view_labels(geometry[tag]["xy_to_ras"], node.GetSliceOffset(), node.GetOrientation())
        if geometry != self.state.slice_geometry:     # slice nodes change on every pan or zoom event
            self.state.slice_geometry = geometry
        if labels != self.state.view_labels:
            self.state.view_labels = labels

    def _jump(self, jump_to: Any = None, **_: Any) -> None:
        """``jump_to`` = [R, A, S]: every slice view moves to the slices through that point."""
        if jump_to is not None and len(jump_to) == 3:
            jump_slices(self.mrml, jump_to)
            self.layouts.place_crosshair(jump_to)

    # ---------------------------------------------------------------- loading
    async def load(self, source: str, shown: Optional[str] = None, hidden: Optional[Path] = None,
                   ticket: str = "") -> None:
        """Load a scan (a file, a DICOM folder or a DICOMweb series URL) as a new volume node and select it, or a
        segmentation (``.seg.nrrd``) of the input volume. Files are read in a thread (no MRML there); the node is made
        on the server loop. ``source`` is trusted here (the command line's, or checked by the callers); errors name it
        as ``shown`` (e.g. the uploaded file's name), and without the folder ``hidden`` (an upload's). ``ticket``: the
        page that asked (`load_click`), whose Load and Fetch wait for it; other pages' do not (a slow DICOMweb server
        holds only the page that fetches from it)."""
        with self.state:
            self._loading += 1
            self.state.load_error, self.state.load_busy = "", True
            if ticket:
                self.state.loads_running = [*(self.state.loads_running or []), ticket]
        try:
            loop = asyncio.get_event_loop()
            if source.lower().endswith(".seg.nrrd"):
                labels, table = await loop.run_in_executor(None, read_segmentation, source, *self._decoded_limit(hidden))
                with self.state:
                    self.add_segmentation(labels, table, Path(source).name[:-len(".seg.nrrd")])
                return
            with tempfile.TemporaryDirectory(prefix="orbitai-web-") as tmp:
                vol, name, identity = await loop.run_in_executor(None, _read_scan, source, Path(tmp),
                                                                 hidden is not None, *self._decoded_limit(hidden))
            with self.state:
                self.add_volume(vol, name, identity)
        except (OrbitAIError, OSError, ValueError, RuntimeError) as exc:
            with self.state:
                message = f"Could not load {shown or source}: {one_line(exc)}"
                if hidden is not None:
                    message = message.replace(str(hidden) + os.sep, "").replace(str(hidden), shown or "the upload")
                self.state.load_error = self._private(message)
        finally:
            with self.state:
                self._loading -= 1
                self.state.load_busy = self._loading > 0
                if ticket:
                    running = list(self.state.loads_running or [])
                    if ticket in running:
                        running.remove(ticket)
                    self.state.loads_running = running

    def _decoded_limit(self, hidden: Optional[Path]) -> tuple[Optional[int], str]:
        """(most bytes, its name) an image read for the page may take once decoded: an upload's (``hidden``: its
        folder) is bounded by the upload limit (a small gzip file may expand to many GB), a DATA file by the reader's."""
        return (self.upload_limit, "the upload limit, orbitai web --max-upload-mb") if hidden is not None else (None, "")

    def _private(self, message: str) -> str:
        """A message for the page without the server's own folders: DATA's location and the temporary folder are
        named by their names."""
        places = [(tempfile.gettempdir(), "TMP")]
        if self.data_folder is not None:
            places += [(os.path.realpath(self.data_folder), self.data_folder.name),
                       (str(self.data_folder.absolute()), self.data_folder.name)]
        for path, name in sorted(places, key=lambda p: -len(p[0])):
            message = message.replace(path.rstrip(os.sep) + os.sep, name + "/")
        return message

    def add_volume(self, vol: Any, name: str, identity: Optional[dict[str, str]] = None) -> Any:
        """A new volume node of ``vol`` named ``name``, with the patient and series it came from (``identity``:
        `orbitai.web.identity.read_identity`; none: its name), selected as the input."""
        node = volume_node_from_volume(self.mrml, vol, name=name)
        set_identity(node, identity or {"File": name})
        self.refresh_nodes()
        self.state.input_volume = node.GetID()
        return node

    def add_segmentation(self, labels: Any, table: Any, name: str) -> Any:
        """A segmentation of the input volume (on its grid, or a crop of it as Slicer writes them; anything else is
        refused in one line), with its segments' names and colours."""
        volume = self.input_node()
        if volume is None:
            raise InputError("load or select the scan it belongs to first")
        on_grid, _ = segmentation_on_image(volume_from_volume_node(volume), labels, f"the segmentation {name}",
                                           image_name="input volume", option=None)
        node = segmentation_node_from_labels(self.mrml, on_grid, reference_node=volume, name=name, table=table)
        node.CreateDefaultDisplayNodes()
        mark_results([node], volume)
        self.refresh_nodes()
        self.results_shown()
        return node

    def load_data_choice(self, ticket: str = "") -> None:
        """Load the scan picked in the DATA folder's list (a path the page sends: it must resolve inside DATA)."""
        choice = self.state.data_choice
        if not choice:
            return
        self._load_client_path(str(choice), ticket)

    def _load_client_path(self, text: str, ticket: str = "") -> None:
        """Load a path the page sent when it resolves inside DATA; else the one refusal, whether it exists or not."""
        try:
            path = client_path(text, self.data_folder)
        except InputError:
            self.state.load_error = f"Refused: {PATH_REFUSED}."
            return
        asyncio.ensure_future(self.load(str(path), text, ticket=ticket))

    def load_dicomweb(self, ticket: str = "") -> None:
        """Load what the "DICOMweb series URL" field names: a DICOMweb study or series URL (what `parse_dicomweb_url`
        takes, as `resolve_image` will) goes to DICOMweb when it is on a server the server was started with
        (`DicomWebAllowList`; refused in one line before any connection otherwise); anything else is a path that must
        resolve inside DATA (a URL of another form is refused there, whatever the case of its scheme)."""
        text = str(self.state.dicomweb_url or "").strip()
        if not text:
            return
        try:
            parse_dicomweb_url(text)
        except OrbitAIError:
            pass
        else:
            try:
                self.dicomweb.check(text)
            except InputError as exc:
                self.state.load_error = f"Refused: {one_line(exc)}."
                return
            asyncio.ensure_future(self.load(text, ticket=ticket))
            return
        self._load_client_path(text, ticket)

    def load_click(self, handler: Callable[[str], None], keys: list[str]) -> str:
        """``click=`` of Load and Fetch: like `orbitai.web.clicks.sending` (the page's values of ``keys`` go with the
        press), with the page's own ticket (``load_ticket``, client-only: each page makes its own), so that only that
        page's buttons wait for the load (``loads_running``)."""
        name = f"orbitai_{handler.__name__}"

        def pressed(values: Any = None) -> None:
            ticket = ""
            if isinstance(values, dict):
                self.state.update({k: values[k] for k in keys if k in values})
                given = values.get("ticket")
                ticket = given if isinstance(given, str) and 0 < len(given) <= 64 else ""
            handler(ticket)

        self.server.trigger(name)(pressed)
        fields = ", ".join(f"'{k}': {k}" for k in keys)
        return ("load_ticket = load_ticket || (Date.now().toString(36) + Math.random().toString(36).slice(2)); "
                f"trigger('{name}', [{{{fields}, 'ticket': load_ticket}}])")

    async def upload_chunk(self, files: Any = None) -> None:
        """`UPLOAD_TRIGGER`: a group of files from the page (written at once into the upload's folder), or ``[]`` at
        the end: then the upload is loaded (one volume file, or the files of one DICOM series) and its folder removed,
        whatever the outcome. A refused upload (a name that is not a file name, over the limit) is one line in the
        page, with nothing left on disk. Each connection has its own upload (`Uploads`)."""
        client = self._client()
        if files:
            self.uploads.add(client, files)
            return
        upload = self.uploads.finish(client)
        if upload is None:
            return
        try:
            source, shown = upload.source()
        except InputError as exc:
            upload.remove()
            self.state.load_error = f"The upload was refused: {one_line(exc)}"
            return
        try:
            await self.load(source, shown, hidden=upload.folder)
        finally:
            upload.remove()

    # ---------------------------------------------------------------- page
    def _build_ui(self) -> None:
        with SinglePageWithDrawerLayout(self.server) as layout:
            layout.title.set_text("OrbitAI")
            with layout.toolbar:
                v3.VSpacer()
                self.layouts.build_ui()
                self.window_level.build_ui()
                v3.VBtn("Close scene", click=self.close_scene, variant="text", size="small", id="orbitai-close-scene",
                        prepend_icon="mdi-close-box-outline", classes="mr-2")
                html.Div("{{ volumes.length }} scan(s) loaded", classes="text-caption mr-4", id="orbitai-scene-nodes")
                html.Div("Research use only (models trained on phantoms)", classes="text-caption mr-4",
                         title="The bundled models are trained on phantoms: not for clinical use.")
            with layout.drawer as drawer:
                drawer.width = 480
                with v3.VContainer(classes="pa-2"):
                    self._data_ui()
                    self._segments_ui()
                    with v3.VTabs(v_model=("module",), density="compact", show_arrows=True, id="orbitai-modules"):
                        for spec in modules():
                            v3.VTab(spec.title, value=spec.key, id=f"orbitai-tab-{spec.key}", **TAB_STYLE)
                        v3.VTab("Annotate", value="annotate", id="orbitai-tab-annotate", **TAB_STYLE)
                    for spec in modules():
                        with html.Div(v_show=f"module == '{spec.key}'", classes="pt-2"):
                            self._module_ui(self.panels[spec.key])
                            if spec.sections:
                                with v3.VExpansionPanels(multiple=True, classes="mt-2"):
                                    for section in spec.sections:
                                        with v3.VExpansionPanel(title=section.title,
                                                                id=f"orbitai-section-{section.key}"):
                                            with v3.VExpansionPanelText():
                                                self._module_ui(self.panels[section.key])
                    with html.Div(v_show="module == 'annotate'", classes="pt-2"):
                        self.annotation.build_ui()
            layout.footer.hide()        # trame's footer would cover the slice sliders
            trame_client.Style(".orbitai-results td { white-space: nowrap; } .orbitai-results { overflow-x: auto; }")
            with layout.content:
                with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px);"):
                    self.layout_manager.initialize_layout_grid(layout)
                    # whose scan is shown, over the views (Slicer's corner annotations): patient, study, series
                    with html.Div(v_show="scan_identity.length", id="orbitai-scan-identity",
                                  style="position: absolute; top: 4px; left: 50%; transform: translateX(-50%); "
                                        "z-index: 5; pointer-events: none; color: #fff; background: rgba(0,0,0,.55);"
                                        " padding: 2px 8px; border-radius: 4px; font-size: 12px; "
                                        "text-align: center; white-space: nowrap;"):
                        html.Div("{{ line }}", v_for="(line, i) in scan_identity", key="i")
        self.ui = layout

    def _upload_ui(self) -> None:
        """Upload buttons (files; a DICOM folder): the page sends the files in groups with trame-slicer's
        ``load_files_by_chunks`` to `upload_chunk`."""
        send = ("upload_busy = true; load_error = '';\n"
                f"window.load_files_by_chunks($event.target.files, {{ trigger_name: '{UPLOAD_TRIGGER}' }})\n"
                "  .then(({ status, errorMsg }) => { if (!status) load_error = 'The upload failed: ' + errorMsg; })\n"
                "  .finally(() => { upload_busy = false; });")
        self.state.setdefault("upload_busy", False)
        for folder, icon, tip in ((False, "mdi-file-upload", "Open files (a scan, or the files of a DICOM series)"),
                                  (True, "mdi-folder-upload", "Open a DICOM folder")):
            v3.VFileInput(v_if="!upload_busy", change=send, prepend_icon=icon, multiple=not folder, hide_input=True,
                          raw_attrs=["webkitdirectory"] if folder else [], density="compact", hide_details=True,
                          title=tip, classes="flex-grow-0 mr-1", id=f"orbitai-upload-{'folder' if folder else 'files'}")
        v3.VProgressCircular(v_if="upload_busy", indeterminate=True, size=24, classes="mr-2")

    def _data_ui(self) -> None:
        running = " || ".join(f"{key}_running" for key in self.panels)
        v3.VSelect(label="Input volume", v_model=("input_volume",), items=("volumes",), density="compact",
                   id="orbitai-input-volume", hide_details=True, classes="mb-2", disabled=(running,))
        with html.Div(classes="d-flex align-center mb-2"):
            self._upload_ui()
            if self.data_folder is not None:
                v3.VSelect(label=f"Scans in {self.data_folder.name}/", v_model=("data_choice",),
                           items=("data_items",), density="compact", hide_details=True, id="orbitai-data-choice")
                v3.VBtn("Load", click=self.load_click(self.load_data_choice, ["data_choice"]),
                        id="orbitai-load-data", disabled=(_LOADING_HERE,))
        with html.Div(classes="d-flex align-center mb-2"):
            v3.VTextField(label="DICOMweb series URL", v_model=("dicomweb_url",), density="compact",
                          hide_details=True, id="orbitai-dicomweb-url")
            v3.VBtn("Fetch", click=self.load_click(self.load_dicomweb, ["dicomweb_url"]),
                    id="orbitai-load-dicomweb", disabled=(_LOADING_HERE,))
        v3.VProgressLinear(indeterminate=True, v_show=_LOADING_HERE, id="orbitai-load-progress")
        v3.VAlert(text=("load_error",), v_if="load_error", type="error", density="compact", closable=True,
                  id="orbitai-load-error", click_close="load_error = ''")

    def _segments_ui(self) -> None:
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

    def _module_ui(self, panel: ModulePanel) -> None:
        key = panel.spec.key
        enabled = f"{key}_inputs_enabled"
        for opt in panel.options():
            disabled = (f"!{enabled}",)
            if opt.kind == "choice":
                v3.VSelect(label=opt.label, v_model=(panel.var(opt.name),), items=(panel.var(f"{opt.name}_items"),),
                           density="compact", hide_details=True, classes="mb-2", disabled=disabled,
                           id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "segmentation":
                v3.VSelect(label=opt.label, v_model=(panel.var(opt.name),), items=("segmentations",),
                           clearable=True, density="compact", hide_details=True, classes="mb-2", disabled=disabled,
                           hint=opt.hint, id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "flag":
                v3.VCheckbox(label=opt.label, v_model=(panel.var(opt.name),), density="compact", hide_details=True,
                             disabled=disabled, id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "text":
                v3.VTextField(label=opt.label, v_model=(panel.var(opt.name),), hint=opt.hint, density="compact",
                              maxlength=MAX_TEXT_OPTION, classes="mb-2", disabled=disabled,
                              id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "form":
                with v3.VExpansionPanels(classes="mb-2"), v3.VExpansionPanel(title=opt.label):
                    with v3.VExpansionPanelText():
                        for name, label, tip in panel.form_rows(opt):
                            v3.VTextField(label=label, v_model=(panel.var(f"{opt.name}_{name}"),), hint=tip,
                                          placeholder="empty: not given", density="compact", disabled=disabled,
                                          id=f"orbitai-{key}-clinical-{name}")
        if panel.spec.actions:
            with html.Div(classes="d-flex mb-2"):
                for action in panel.spec.actions:
                    v3.VBtn(action.label, click=sending(self.state, functools.partial(panel.run_action, action),
                                                        panel.option_vars()),
                            disabled=(f"!{enabled}",), variant="tonal", size="small", title=action.tip,
                            classes="mr-2", id=f"orbitai-{key}-{action.name}")
        v3.VBtn(f"{{{{ {key}_apply_text }}}}", click=sending(self.state, panel.job.apply, panel.option_vars()), disabled=(f"!{key}_apply_enabled",),
                color="primary", block=True, id=f"orbitai-{key}-apply", title=(f"{key}_apply_tip",), classes="my-2")
        v3.VProgressLinear(model_value=(f"{key}_progress",), v_show=f"{key}_progress_visible", height=6,
                           id=f"orbitai-{key}-progress")
        html.Div(f"{{{{ {key}_status }}}}", classes="text-body-2 my-2", id=f"orbitai-{key}-status")
        offer_ui(self.server, key, panel.job, self.upload_limit)   # the first Apply without its model (model_offer.py)
        v3.VAlert(text=(f"{key}_error",), v_if=f"{key}_error", type="error", density="compact", closable=True,
                  id=f"orbitai-{key}-error", click_close=f"{key}_error = ''")
        v3.VDataTable(headers=(f"{key}_table_headers",), items=(f"{key}_table_rows",), density="compact",
                      items_per_page=-1, hide_default_footer=True, v_show=f"{key}_table_rows.length",
                      classes="orbitai-results", id=f"orbitai-{key}-table")


def _read_scan(source: str, tmp: Path, upload: bool = False, max_bytes: Optional[int] = None, limit_name: str = ""
               ) -> tuple[Any, str, dict[str, str]]:
    """(Volume, node name, identity) of a scan: a file, a DICOM folder or a DICOMweb series URL (fetched into ``tmp``).
    A DICOM series is named as Slicer's DICOM browser names it (`orbitai.web.identity.series_name`), never after the
    folder it was fetched or uploaded into (``upload``: ``source`` is the server's temporary folder)."""
    path = resolve_image(source, None, tmp)
    vol, _acquisition = read_scan(path, max_bytes, limit_name)
    file_name = Path(source.rstrip("/")).name
    identity = read_identity(path, file_name)
    name = series_name(identity)
    if not name and "File" not in identity:         # DICOM without series number or description
        name = f"{identity.get('Modality') or 'DICOM'} series" if upload or "://" in source else file_name
    return vol, name or file_name.split(".")[0] or "volume", identity


def page_url(host: str, port: int, token: str) -> str:
    """The address a user opens: the server's, with its secret (the page reads ``?secret=`` and drops it from the
    address bar)."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?secret={token}"


def serve(data: Optional[str] = None, host: str = "127.0.0.1", port: int = 8080, rca_encoder: Optional[str] = None,
          token: Optional[str] = None, upload_mb: int = DEFAULT_UPLOAD_MB, allowed_origins: tuple[str, ...] = (),
          dicomweb: tuple[str, ...] = ()) -> None:
    """Build the app and serve it until interrupted (``orbitai web``), behind `orbitai.web.guard.Guard`: the secret
    ``token`` (a random one when None), Host/Origin checks and message and upload limits. Prints the page's address
    once it listens."""
    os.environ.setdefault("TRAME_ARGS", "")
    disconnects.install()           # a page gone before its answer: one log line, not tracebacks
    token = token or new_token()
    app = OrbitWebApp(data=data, rca_encoder=rca_encoder, upload_limit=upload_mb << 20, dicomweb=dicomweb)
    Guard(token, host, upload_mb << 20, allowed_origins).install(app.server)
    app.server.controller.on_server_ready.add(
        lambda **_: print(f"orbitai web: open {page_url(host, app.server.port, token)}  (Ctrl+C stops)", flush=True))
    try:
        app.server.start(host=host, port=port, open_browser=False, timeout=0, show_connection_info=False)
    except GuardError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:

        raise UserError(listen_error(host, port, exc)) from None
