"""The OrbitAI web app: trame-slicer's scene, views and segment editor, with the OrbitAI module and annotation panels.

`OrbitWebApp` holds the scene and the page and puts the rooms together, as trame-slicer's ``viewer_lib`` does: the
loads (`orbitai.web.loading`), the shown scan's results and segments (`orbitai.web.segments`), each module's panel
(`orbitai.web.module_panel`), the annotation panel (`orbitai.web.annotate`) and the viewer controls
(`orbitai.web.viewer`). It is their one composition root (`orbitai.web.host`): each room is built on the app as a
`WebHost` and the rooms' signals are connected here (`OrbitWebApp._wire_rooms`). Construction order matters (see `orbitai.web.compat`): the views are created before anything touches a segment editor
effect. The scene is adopted as OrbitAI's MRML context (`orbitai.mrml.scene.adopt_context`), so the module Logics and
`AnnotationLogic` work on it exactly as on Slicer's scene.
"""
from __future__ import annotations

import asyncio
import os
import socket
import time
from concurrent.futures import Future
from typing import Any, Optional

from trame.app import TrameApp
from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import client as trame_client
from trame.widgets import html
from trame.widgets import vuetify3 as v3
from trame_slicer import module as trame_slicer_module
from trame_slicer.core import LayoutManager, SlicerApp
from trame_slicer.rca_view import register_rca_factories
from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui, create_vertical_view_gutter_ui

from orbitai.errors import UserError
from orbitai.mrml import jump_slices, show_volume
from orbitai.mrml.queries import node_by_id, node_count, scalar_volumes
from orbitai.mrml.results import is_result, segmentations_of
from orbitai.mrml.scene import adopt_context
from orbitai.web import compat, disconnects
from orbitai.web.annotate import AnnotationPanel
from orbitai.web.client_slices import ClientSlices, client_canvas
from orbitai.web.guard import DEFAULT_UPLOAD_MB, Guard, GuardError, listen_error, new_token
from orbitai.web.host import Signal
from orbitai.web.identity import identity_lines, scan_title
from orbitai.web.launch import mark, page_url, print_address
from orbitai.web.loading import ScanLoader, read_early
from orbitai.web.module_panel import ModulePanel
from orbitai.web.modules import modules
from orbitai.web.segments import ShownResults
from orbitai.web.viewer import Layouts, WindowLevel, keep_slice_on_fit, keeping_slice, label_overlay, view_labels

__all__ = ["OrbitWebApp", "page_url", "serve"]

#: The module tabs: their names as written, narrow enough for all five to show in the drawer
TAB_STYLE = {"classes": "text-none px-2", "style": "min-width: 0"}
#: After a page connects or a volume is shown, resizes within this time fit the slice views to the volume.
FIT_WINDOW_S = 5.0
#: The launch's scan's annotation preparation and whole-resolution packing wait for the page's first frame of it, or
#: this long after the server starts serving (no page opened).
LAUNCH_GRACE_S = 20.0


def _view_ui(server: Any, view_id: str, view: Any) -> None:
    """Over each slice view: trame-slicer's slice gutter, the orientation letters and slice position, and a marker
    giving the view a stable selector (the page's keyboard, the tests)."""
    keep_slice_on_fit(view)         # before the gutter binds its Reset Camera button
    client_canvas(view_id)          # the page's own drawing of the view (orbitai.web.client_slices), under the gutter
    create_vertical_slice_view_gutter_ui(server, view_id, view)
    label_overlay(view_id)
    html.Div(classes="orbitai-view-marker", id=f"orbitai-view-{view_id}", style="display: none")


def _view_ui_3d(server: Any, view_id: str, view: Any) -> None:
    """Over the 3D view: trame-slicer's gutter and the marker."""
    create_vertical_view_gutter_ui(server, view_id, view)
    html.Div(classes="orbitai-view-marker", id=f"orbitai-view-{view_id}", style="display: none")


class OrbitWebApp(TrameApp):
    """The web app. ``data``: a scan (file, DICOM folder, DICOMweb series URL) to load at start, or a folder whose
    scans the page offers. ``upload_limit``: the most bytes one upload from the page may hold. ``prepare_on``: when the
    annotation tools of a scan are prepared (`orbitai.web.annotate_prepare`). ``early``: ``data`` being read (and its
    first resolution step packed for the page) while the app is built (`orbitai.web.loading.read_early`). Signal:
    ``scan_shown`` (the shown scan's node, None when none is), which the rooms follow in the order `_wire_rooms`
    connects them."""

    scan_shown = Signal(object)

    def __init__(self, server: Any = None, data: Optional[str] = None, rca_encoder: Optional[str] = None,
                 upload_limit: int = DEFAULT_UPLOAD_MB << 20, dicomweb: tuple[str, ...] = (),
                 prepare_on: str = "show", early: Optional[Future] = None) -> None:
        super().__init__(server)
        #: when a scan's annotation is prepared: "show" (as it is shown) or "annotate" (as the Annotate tab opens);
        #: "launch" while the launch's scan waits for its first frame in the page (`launch_done`)
        self.prepare_on = "launch" if early is not None and prepare_on == "show" else prepare_on
        self._prepare_after_launch = prepare_on
        #: set once the page has drawn the launch's scan (`launch_done`): what its first frame does not need waits
        self.launched = asyncio.Event()
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
        #: the loads: DATA's list, DICOMweb fetches, uploads (`orbitai.web.loading`)
        self.loading = ScanLoader(self, data, upload_limit, dicomweb)
        #: the shown scan's results and segments (`orbitai.web.segments`)
        self.results = ShownResults(self, self.layouts)
        self.state.update({"input_volume": None, "volumes": [], "segmentations": [], "module": "orbit",
                           "scene_nodes": 0, "scan_identity": []})
        self.panels = {spec.key: ModulePanel(self, spec, self.loading.private, self.loading.upload_limit)
                       for m in modules() for spec in (m, *m.sections)}
        self.annotation = AnnotationPanel(self, self.results, list(self.panels.values()))
        self.window_level = WindowLevel(self)
        #: the shown scan and its overlays drawn in the page (`orbitai.web.client_slices`)
        self.client_slices = ClientSlices(self, self.layouts, self.annotation.logic, self.annotation.editor.boxes)
        self._wire_rooms()
        self._refresh_pending = False
        for event in (self.mrml.scene.NodeAddedEvent, self.mrml.scene.NodeRemovedEvent):
            self.mrml.scene.AddObserver(event, self._nodes_changed)
        self.state.change("input_volume")(self._input_changed)
        self.server.trigger("orbitai_open_scan")(self.open_scan)
        self.server.trigger("orbitai_first_frame")(lambda *_, **__: self.launch_done())   # static/orbitai_launch.js
        self.state.update({"slice_geometry": {}, "jump_to": None})
        self._fit_until = 0.0
        for view in self.slicer_app.view_manager.get_slice_views():
            view.get_view_node().AddObserver("ModifiedEvent", lambda *_: self._publish_geometry())
            view.render_window().AddObserver("WindowResizeEvent", lambda *_, v=view: self._resized(v))
        self.server.controller.on_client_connected.add(self._fit_soon)
        self.state.change("jump_to")(self._jump)
        self._build_ui()
        self.server.controller.on_server_exited.add(self.shutdown)
        if data and self.loading.data_folder is None:
            self.server.controller.on_server_ready.add(
                lambda **_: asyncio.ensure_future(self.loading.load(data, early=early)))
        if early is None:
            self.launched.set()
        else:
            self.server.controller.on_server_ready.add(
                lambda **_: asyncio.get_event_loop().call_later(LAUNCH_GRACE_S, self.launch_done))

    def launch_done(self) -> None:
        """The page has drawn the launch's scan (``static/orbitai_launch.js``; or `client_slices.LAUNCH_DRAW_S` after
        it fetched it, `LAUNCH_GRACE_S` after the server started): the scan's annotation is prepared (``--prepare
        show``) and its whole resolution packed (issue 81: the first frame first, with the cores to itself)."""
        if self.launched.is_set():
            return
        self.launched.set()
        self.prepare_on = self._prepare_after_launch
        if self.prepare_on == "show":
            self.annotation.preparer.start(self.input_node())

    def close_scene(self) -> None:
        """Close the scene, as Slicer's File > Close Scene: running jobs are cancelled, every node the user loaded or
        made is removed (views and the editor stay), the panels forget their results."""
        for panel in self.panels.values():
            panel.job.controller.sceneClosing()
            self.state[panel.var("table_rows")] = []
            self.state[panel.var("table_headers")] = []
            panel.tables.clear()
        self.results.overlays.clear()
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
        self.loading.uploads.remove_all()

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

    def _wire_rooms(self) -> None:
        """The composition root: each room's signals to the rooms that follow them (`orbitai.web.host`)."""
        self.loading.scan_loaded.connect(self.client_slices.adopt)
        self.loading.scan_loaded.connect(self._listed)
        self.annotation.segmentation_created.connect(self._listed)
        self.loading.results_imported.connect(self._results_imported)
        for panel in self.panels.values():
            panel.results_imported.connect(self._results_imported)
            panel.model_installed.connect(self.select_model)
        self.layouts.layout_changed.connect(self.fit_views_soon)
        self.layouts.ruler_placed.connect(self.window_level.apply_mouse_mode)
        # a scan shown: its options and annotation first, then the scene's side (`_show_scan`), then the page's copy,
        # the probe and rulers, and the results tables
        for slot in (*(p.scan_shown for p in self.panels.values()), self.annotation.scan_shown, self._show_scan,
                     self.client_slices.scan_shown, self.layouts.scan_shown,
                     *(p.show_table_of for p in self.panels.values())):
            self.scan_shown.connect(slot)

    def _listed(self, *_: Any) -> None:
        """A node a room made (a scan loaded, a segmentation created) is listed before the room selects it."""
        self.refresh_nodes()

    def _results_imported(self, scan: Any, focus: bool) -> None:
        """Results were imported (a job's, a loaded segmentation): the lists are read again, and when they are a
        scan's, only the shown scan's results are visible (with ``focus``, the views on its newest)."""
        self.refresh_nodes()
        if scan is not None:
            self.results.results_shown(focus=focus)

    # ---------------------------------------------------------------- scene
    def input_node(self) -> Any:
        return node_by_id(self.mrml.scene, self.state["input_volume"])

    def open_scan(self, node_id: Any = None) -> None:
        """A table row's scan (the ranking's): shown, when it is a listed scan and no job runs (as the scan list)."""
        listed = {v["value"] for v in self.state.volumes or []}
        if isinstance(node_id, str) and node_id in listed and not any(
                self.state[f"{key}_running"] for key in self.panels):
            self.state.input_volume = node_id

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
        for n in scalar_volumes(scene):
            if not is_result(n):
                volumes.append({"title": scan_title(n), "value": n.GetID()})   # a heat map is a result, not a scan
        # the shown scan's segmentations and those of no scan: never another patient's (issue 61)
        segmentations = [{"title": n.GetName(), "value": n.GetID()} for n in segmentations_of(scene, self.input_node())]
        self.state.volumes, self.state.segmentations = volumes, segmentations
        self.state.scene_nodes = node_count(scene)
        if self.state.input_volume and node_by_id(scene, self.state.input_volume) is None:
            self.state.input_volume = None
        self.state.scan_identity = identity_lines(self.input_node())
        self.results.refresh_segments()

    def _input_changed(self, input_volume: Optional[str] = None, **_: Any) -> None:
        node = self.input_node()
        self.refresh_nodes()            # the segmentation lists: the shown scan's
        self.scan_shown.emit(node)      # the rooms follow (`_wire_rooms`)

    def _show_scan(self, node: Any) -> None:
        """The scene's side of a scan shown: only its results visible, the views on it, its window/level."""
        if node is not None:
            self.results.show_only(node)     # the left scan's heat map noted, then hidden
            show_volume(self.mrml, node)
            for view in self.slicer_app.view_manager.get_views():   # a new scan: its centre
                getattr(view, "centre_view", view.reset_view)()
            self._fit_soon()
            self.results.results_shown()        # its own heat map back over it, the views on its newest result
            self.window_level.scan_shown(node)
        else:
            self.results.show_only(None)
            self.results.refresh_segments()

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

    # ---------------------------------------------------------------- page
    def _build_ui(self) -> None:
        with SinglePageWithDrawerLayout(self.server) as layout:
            layout.title.set_text("OrbitAI")
            with layout.toolbar:
                v3.VSpacer()
                self.layouts.build_ui()
                self.window_level.build_ui()
                self.client_slices.build_ui()
                v3.VBtn("Close scene", click=self.close_scene, variant="text", size="small", id="orbitai-close-scene",
                        prepend_icon="mdi-close-box-outline", classes="mr-2")
                html.Div("{{ volumes.length }} scan(s) loaded", classes="text-caption mr-4", id="orbitai-scene-nodes")
                html.Div("Research use only (models trained on phantoms)", classes="text-caption mr-4",
                         title="The bundled models are trained on phantoms: not for clinical use.")
            with layout.drawer as drawer:
                drawer.width = 480
                with v3.VContainer(classes="pa-2"):
                    self._data_ui()
                    self.results.build_ui()
                    with v3.VTabs(v_model=("module",), density="compact", show_arrows=True, id="orbitai-modules"):
                        for spec in modules():
                            v3.VTab(spec.title, value=spec.key, id=f"orbitai-tab-{spec.key}", **TAB_STYLE)
                        v3.VTab("Annotate", value="annotate", id="orbitai-tab-annotate", **TAB_STYLE)
                    for spec in modules():
                        with html.Div(v_show=f"module == '{spec.key}'", classes="pt-2"):
                            self.panels[spec.key].build_ui()
                            if spec.sections:
                                with v3.VExpansionPanels(multiple=True, classes="mt-2"):
                                    for section in spec.sections:
                                        with v3.VExpansionPanel(title=section.title,
                                                                id=f"orbitai-section-{section.key}"):
                                            with v3.VExpansionPanelText():
                                                self.panels[section.key].build_ui()
                    with html.Div(v_show="module == 'annotate'", classes="pt-2"):
                        self.annotation.build_ui()
            layout.footer.hide()        # trame's footer would cover the slice sliders
            trame_client.Style(".orbitai-results td { white-space: nowrap; } .orbitai-results { overflow-x: auto; }")
            with layout.content:
                with html.Div(style="display: flex; flex-direction: column; width: 100%; height: calc(100vh - 64px);"):
                    # whose scan is shown (patient, study, series; Slicer's corner annotations): a line of its own
                    # above the views, so that it covers no view's orientation letter (issue 81: the coronal's top)
                    with html.Div(v_show="scan_identity.length", id="orbitai-scan-identity",
                                  style="flex: none; color: #fff; background: #000; padding: 1px 8px; "
                                        "font-size: 12px; text-align: center; white-space: nowrap; overflow: hidden; "
                                        "text-overflow: ellipsis; border-bottom: 1px solid #333;"):
                        html.Span("{{ i ? ' · ' : '' }}{{ line }}", v_for="(line, i) in scan_identity", key="i")
                    with html.Div(style="position: relative; flex: 1 1 0; min-height: 0;"):
                        self.layout_manager.initialize_layout_grid(layout)
        self.ui = layout

    def _data_ui(self) -> None:
        running = " || ".join(f"{key}_running" for key in self.panels)
        v3.VSelect(label="Input volume", v_model=("input_volume",), items=("volumes",), density="compact",
                   id="orbitai-input-volume", hide_details=True, classes="mb-2", disabled=(running,))
        self.loading.build_ui()


def serve(data: Optional[str] = None, host: str = "127.0.0.1", port: int = 8080, rca_encoder: Optional[str] = None,
          token: Optional[str] = None, upload_mb: int = DEFAULT_UPLOAD_MB, allowed_origins: tuple[str, ...] = (),
          dicomweb: tuple[str, ...] = (), prepare_on: str = "show", sock: Optional[socket.socket] = None) -> None:
    """Build the app and serve it until interrupted (``orbitai web``), behind `orbitai.web.guard.Guard`: the secret
    ``token`` (a random one when None), Host/Origin checks and message and upload limits. ``sock``: a socket bound to
    ``host``:``port`` and listening since the launch began, whose address was printed then (`orbitai.web.cli`); the
    server serves on it. Without it, the server binds ``host``:``port`` and prints the page's address once it
    listens."""
    os.environ.setdefault("TRAME_ARGS", "")
    disconnects.install()           # a page gone before its answer: one log line, not tracebacks
    token = token or new_token()
    # a scan file is read (and packed for the page) while the app is built: the first frame comes sooner (issue 81)
    early = read_early(data)
    with compat.quiet_views():
        app = OrbitWebApp(data=data, rca_encoder=rca_encoder, upload_limit=upload_mb << 20, dicomweb=dicomweb,
                          prepare_on=prepare_on, early=early)
    mark("app")
    Guard(token, host, upload_mb << 20, allowed_origins).install(app.server)
    if sock is None:
        app.server.controller.on_server_ready.add(lambda **_: print_address(host, app.server.port, token))
    else:
        compat.serve_on(sock)
    app.server.controller.on_server_ready.add(lambda **_: mark("serving"))
    app.server.controller.on_client_connected.add(lambda **_: mark("page_connected"))
    try:
        app.server.start(host=host, port=port, open_browser=False, timeout=0, show_connection_info=False)
    except GuardError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:

        raise UserError(listen_error(host, port, exc)) from None
