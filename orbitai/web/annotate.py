"""The annotation panel in the browser: SmartPencil, SmartFill and AutoCorrection through `AnnotationLogic`.

`AnnotationLogic` is the class the Slicer effects call; here it edits through `TrameSlicerEditor`, the `Editor` it needs
on trame-slicer's segment editor, so SmartPencil clicks, SmartFill accepts, the model's start and trame-slicer's own
Paint and Erase strokes land in one undo history. SmartFill strokes are painted in the selected segment with
trame-slicer's Paint (as in the Slicer effect); SmartPencil clicks arrive through `SmartPencilEffect`, a segment editor
effect whose slice-view pipeline turns a left click into a RAS point (shift-click removes). Both are in
`orbitai.web.annotate_editor`; this module is the panel: its state, tools, buttons and page.
"""
from __future__ import annotations

import asyncio
import re
from typing import Any, Callable, Optional, Sequence

from trame.widgets import html
from trame.widgets import vuetify3 as v3
from trame_slicer.segmentation import BrushDiameterMode, SegmentationEffectErase, SegmentationEffectPaint
from undo_stack import UndoStack

from orbitai.labels import LABEL_BY_NAME, ORBIT_LABELS
from orbitai.mrml.queries import node_by_id
from orbitai.mrml.results import belongs_to, mark_results, refuse_other_scan
from orbitai.app.annotation import options as effect_options
from orbitai.app.annotation.logic import AnnotationLogic
from orbitai.app.annotation.priors import DEFAULT_PRIORS
from orbitai.errors import OrbitAIError, one_line
from orbitai.mrml.segment_labelmaps import segment_voxel_count
from orbitai.mrml.segmentation_files import segmentation_file_bytes
from orbitai.web.annotate_editor import SmartPencilEffect, TrameSlicerEditor
from orbitai.web.annotate_prepare import Preparer
from orbitai.web.clicks import sending
from orbitai.web.edit_tools import EditTools
from orbitai.web.host import Signal, WebHost
from orbitai.web.module_panel import ModulePanel
from orbitai.web.segments import ShownResults

__all__ = ["AnnotationPanel", "TOOLS"]

#: The tools a user picks: what a left drag or click in a slice view does.
TOOLS = {"none": "Navigate", "smartpencil": "SmartPencil (click; shift-click removes)",
         "paint": "Brush (paint; SmartFill's strokes)", "erase": "Eraser"}
UNDO_LIMIT = 20


def _segment_name(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip())


#: How long a busy state is given to reach the page before the server loop is held by the work it announces.
BUSY_FLUSH_S = 0.05


class AnnotationPanel:
    """The Annotate tab: the segmentation and segment edited, the tools, SmartFill's Preview/Accept/Cancel,
    AutoCorrection, the model (prior, start from it), undo/redo and the download of the ``.seg.nrrd``.

    State: ``ann_segmentation`` (node ID), ``ann_segments`` / ``ann_segment``, ``ann_tool`` (and ``ann_tool_active``:
    the tool once the server's view has it), ``ann_message``, ``ann_ok``, ``ann_busy``, ``ann_done`` (buttons handled),
    ``ann_preview``, ``ann_can_undo`` / ``ann_can_redo``, ``ann_brush_mm``, ``ann_new_name``, ``ann_prior``. An edit
    refreshes ``results``' segments and ``panels``' tables; ``segmentation_created``: a new one, listed before it is
    chosen."""
    segmentation_created = Signal(object)

    def __init__(self, host: WebHost, results: ShownResults, panels: Sequence[ModulePanel]) -> None:
        self.state, self.server, self.mrml, self.scan = host.state, host.server, host.mrml, host.input_node
        self.results, self.panels, self.host = results, panels, host       # host.prepare_on changes after the launch
        self.se = host.slicer_app.segmentation_editor
        self.se.set_undo_stack(UndoStack(undo_limit=UNDO_LIMIT))
        self.se.register_effect_type(SmartPencilEffect)
        self.pencil: SmartPencilEffect = self.se.get_effect(SmartPencilEffect)
        self.pencil.on_click = self.click
        self.editor = TrameSlicerEditor(self.se)
        self.logic = AnnotationLogic(editor=self.editor)
        self._poll: Optional[asyncio.Task] = None
        #: the segment the user chose or added last: selected again when Undo/Redo brings it back (issue 67)
        self._chosen: Optional[str] = None
        #: the shown scan's superpixels and model prior, computed before the first click (issue 67)
        self.preparer = Preparer(self)
        host.server.controller.on_server_exited.add(lambda **_: self.preparer.shutdown())
        #: threshold, islands, smoothing, fill between slices and the keyboard (`orbitai.web.edit_tools`)
        self.edits = EditTools(self)
        self.state.update({"ann_segmentation": None, "ann_segments": [], "ann_segment": None, "ann_tool": "none",
                           "ann_tool_active": "none", "ann_tools": [{"title": t, "value": k} for k, t in TOOLS.items()],
                           "ann_message": "", "ann_ok": True, "ann_busy": False, "ann_preview": False,
                           "ann_can_undo": False, "ann_can_redo": False, "ann_brush_mm": 5.0, "ann_new_name": "",
                           "ann_prior": "", "ann_voxels": None, "ann_done": 0, "ann_busy_text": "", "ann_waiting": False,
                           "ann_structure_names": [lab.name for lab in ORBIT_LABELS.values()] + ["white_matter_lesion"]})
        self._options = effect_options
        for effect, options in self._options.EFFECT_OPTIONS.items():
            params = self.logic.params(effect)
            for o in options:
                var = self._option_var(effect, o.name)
                self.state[var] = params.get(o.name)
                self.state.change(var)(lambda e=effect, n=o.name, v=var, **_: self.logic.params(e).set(n, self.state[v]))
        self.se.undo_stack.index_changed.connect(lambda *_: self._history_changed())
        self.se.segmentation_modified.connect(lambda *_: self._sync_count())
        self.state.change("ann_segmentation")(self._segmentation_changed)
        self.state.change("ann_segment")(self._segment_changed)
        self.state.change("ann_tool")(self._tool_changed)
        self.state.change("ann_brush_mm")(self._brush_changed)
        self.state.change("module")(self._module_changed)
        self.state.change(self._option_var("SmartPencil", "ShowBoundaries"))(self._boundaries_changed)

    def _boundaries_changed(self, **_: Any) -> None:
        """"Show superpixel boundaries" unticked: the grid goes at once (it is drawn again by the next click when
        ticked)."""
        if not self.state[self._option_var("SmartPencil", "ShowBoundaries")]:
            self.logic.removeBoundaries()

    @staticmethod
    def _option_var(effect: str, name: str) -> str:
        return f"ann_opt_{effect}_{name}"

    def _module_changed(self, module: Any = None, **_: Any) -> None:
        """The Annotate tab opens: the shown scan is prepared (when it was not yet)."""
        if module == "annotate":
            self.preparer.start(self.scan())

    def _prepare_now(self) -> bool:
        """Whether the shown scan is prepared now: at once (``orbitai web --prepare show``, the default) or once the
        Annotate tab is open (``--prepare annotate``: a busy shared server spends no core on scans nobody edits)."""
        return self.host.prepare_on == "show" or self.state.module == "annotate"

    def scene_closing(self) -> None:
        """The scene closes: the model prior being computed is cancelled and an action waiting for it dropped."""
        self.preparer.cancel()
        self.logic.cancelPending()
        DEFAULT_PRIORS.cancel_all()
        self.logic.smartFillCancel()
        self.se.deactivate_effect()
        self.state.update({"ann_segmentation": None, "ann_segments": [], "ann_segment": None, "ann_tool": "none",
                           "ann_message": "", "ann_preview": False, "ann_voxels": None, "ann_prior": ""})

    def scene_closed(self) -> None:
        """The editor node is a singleton, reset by the close: store the page's effect options on it again."""
        for effect, options in self._options.EFFECT_OPTIONS.items():
            params = self.logic.params(effect)
            for o in options:
                params.set(o.name, self.state[self._option_var(effect, o.name)])
        self._sync_undo()

    # ---------------------------------------------------------------- inputs
    def _segmentation_changed(self, ann_segmentation: Optional[str] = None, **_: Any) -> None:
        node = node_by_id(self.mrml.scene, ann_segmentation)
        volume = self.scan()
        if node is not None and volume is not None and not node.IsA("vtkMRMLSegmentationNode"):
            node = None
        if node is not None and volume is not None and not belongs_to(node, volume):
            try:        # a page that sends another scan's segmentation (the list never offers it)
                refuse_other_scan(node, volume)
            except OrbitAIError as exc:
                self._say(False, one_line(exc))
            node = None
            self.state.ann_segmentation = None
        if node is None or volume is None:
            self.state.ann_segments, self.state.ann_segment = [], None
            return
        node.CreateDefaultDisplayNodes()
        self.logic.smartFillCancel()
        self.editor.setInputs(node, volume)
        self._chosen = self.se.get_active_segment_id() or None
        self.state.ann_tool = "none"
        self._refresh_segments()
        self._say(True, f"Editing '{node.GetName()}' on '{volume.GetName()}'.")

    def _refresh_segments(self) -> None:
        seg = self.se.active_segmentation_node
        if seg is None:
            self.state.ann_segments = []
            return
        s = seg.GetSegmentation()
        self.state.ann_segments = [{"title": s.GetNthSegment(i).GetName(), "value": s.GetNthSegmentID(i)}
                                   for i in range(s.GetNumberOfSegments())]
        current = self.se.get_active_segment_id()
        if self.state.ann_segment != current:
            self.state.ann_segment = current or None

    def _editing(self) -> bool:
        """Whether the editor's segmentation is the one chosen for the shown scan (after a switch to another scan, the
        editor still holds the last scan's: nothing edits it until one of the shown scan's is chosen)."""
        node = self.se.active_segmentation_node
        return (node is not None and node.GetID() == self.state.ann_segmentation
                and belongs_to(node, self.scan()))

    def scan_shown(self, scan: Any = None) -> None:
        """Another scan (``scan``) is shown: a segmentation of the last scan is no longer edited nor offered, and the
        last scan's message goes."""
        self.preparer.start(scan if self._prepare_now() else None)
        self.edits.scan_shown(scan)
        node = node_by_id(self.mrml.scene, self.state.ann_segmentation)
        if node is not None and belongs_to(node, scan):
            return
        self.logic.smartFillCancel()
        self.se.deactivate_effect()
        self.state.update({"ann_segmentation": None, "ann_segments": [], "ann_segment": None, "ann_tool": "none",
                           "ann_message": "", "ann_preview": False, "ann_voxels": None})

    def _segment_changed(self, ann_segment: Optional[str] = None, **_: Any) -> None:
        if ann_segment:
            self._chosen = ann_segment
        if ann_segment and ann_segment != self.se.get_active_segment_id():
            self.logic.smartFillCancel()
            self.editor.selectSegment(ann_segment)
        self._sync_preview()

    def new_segmentation(self) -> None:
        """A new, empty segmentation on the input volume, selected for editing."""
        volume = self.scan()
        if volume is None:
            self._say(False, "Load or select an input volume first.")
            return
        node = self.se.create_empty_segmentation_node()
        node.SetName(f"{volume.GetName()} annotation")
        node.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        mark_results([node], volume)        # shown with its scan, hidden with the others
        self.segmentation_created.emit(node)        # listed before it is chosen
        self.state.ann_segmentation = node.GetID()
        self._segmentation_changed(node.GetID())

    def add_segment(self) -> None:
        """Add a segment named ``ann_new_name`` (e.g. eyeball_left: a structure name lets the model help)."""
        name = _segment_name(str(self.state.ann_new_name or ""))
        if not self._editing():
            self._say(False, "Choose or create a segmentation first.")
            return
        if not name:
            self._say(False, "Type the new segment's name (e.g. eyeball_left, optic_nerve_right).")
            return
        known = LABEL_BY_NAME.get(name)       # a structure's segment gets the colour the models' results give it
        color = [c / 255.0 for c in known.colour] if known is not None else None
        sid = self.se.add_empty_segment(segment_name=name, segment_color=color)
        self.editor.selectSegment(sid)
        self._chosen = sid
        self.state.ann_new_name = ""
        self._refresh_segments()
        self._say(True, f"Segment '{name}' added.")

    # ---------------------------------------------------------------- tools
    def _tool_changed(self, ann_tool: str = "none", **_: Any) -> None:
        if not self._editing() and ann_tool != "none":
            self.state.ann_tool = "none"
            self._say(False, "Choose or create a segmentation first.")
            return
        effect = {"smartpencil": SmartPencilEffect, "paint": SegmentationEffectPaint,
                  "erase": SegmentationEffectErase}.get(ann_tool)
        if effect is None:
            self.se.deactivate_effect()
            self.state.ann_tool_active = "none"
            return
        self.se.set_active_effect_type(effect)
        self._brush_changed(self.state.ann_brush_mm)
        # the page's own slices step aside only now: a drag sent before the effect was active painted nothing
        self.state.ann_tool_active = ann_tool

    def _brush_changed(self, ann_brush_mm: Any = 5.0, **_: Any) -> None:
        effect = self.se.active_effect
        if hasattr(effect, "set_brush_diameter"):
            effect.set_brush_diameter(max(float(ann_brush_mm or 1.0), 0.5), BrushDiameterMode.Absolute)

    def click(self, ras: tuple, remove: bool, slice_to_ras: Any) -> None:
        """A SmartPencil click in a slice view (from the effect's pipeline, on the server loop): the page shows what
        runs first (the first click on a scan groups it into superpixels, seconds on a whole head), then the click
        runs on the loop; a click while one runs is dropped, with a message."""
        if not self._editing():
            with self.state:
                self._say(False, "Choose or create a segmentation of the shown scan first.")
            return
        if self.state.ann_busy:
            with self.state:
                self._say(False, "SmartPencil is still busy with the previous click; click again when it is done.")
            return
        waits = self.preparer.superpixels_running
        with self.state:
            self.state.ann_busy, self.state.ann_busy_text = True, (
                "SmartPencil: waiting for the superpixels being prepared for this scan" if waits else
                "SmartPencil: finding the superpixel under the click (a click after a settings change groups the scan "
                "into superpixels again: seconds)")

        async def run() -> None:
            try:
                await asyncio.sleep(BUSY_FLUSH_S)        # the busy state reaches the page first
                await self.preparer.superpixels_done()   # never computed twice: the click waits for the prepared map
                misses = self.logic.cache.misses
                with self.state:
                    result = self.logic.smartPencilClick(ras=ras, remove=remove, slice_to_ras=slice_to_ras)
                    if self.logic.cache.misses > misses:
                        result.message += " (the superpixels were computed for this click)"
                    self._result(result)
            finally:
                with self.state:
                    self.state.ann_busy, self.state.ann_busy_text = False, ""
                    self.state.ann_done += 1
        asyncio.ensure_future(run())

    # ---------------------------------------------------------------- buttons
    def button_callback(self, operation: Callable[[], Any], what: str) -> Callable[[], Any]:
        """A button's callback: the page shows busy and ``what`` runs first, then the operation runs on the server
        loop (it reads and writes MRML), then its one-line result is shown."""
        async def pressed() -> None:
            if self.state.ann_busy:
                return
            if not self._editing():
                with self.state:
                    self._say(False, "Choose or create a segmentation of the shown scan first.")
                return
            with self.state:
                self.state.ann_busy, self.state.ann_busy_text = True, f"{what}..."
            await asyncio.sleep(BUSY_FLUSH_S)      # the busy state reaches the page before the loop is held
            try:
                with self.state:
                    self._result(operation())
            finally:
                with self.state:
                    self.state.ann_busy, self.state.ann_busy_text = False, ""
                    self.state.ann_done += 1
        return pressed

    def _result(self, result: Any) -> None:
        self._say(result.ok, result.message)
        if result.ok and result.details.get("pending"):
            self._start_poll()
        self._sync_preview()

    def _start_poll(self) -> None:
        if self._poll is None:
            self._poll = asyncio.get_event_loop().create_task(self._poll_prior())

    async def _poll_prior(self) -> None:
        """While the model prior is computed in its child: show its status; run the action waiting for it."""
        try:
            while True:
                with self.state:
                    self.state.ann_waiting = self.logic.pending
                    if self.logic.pending:
                        self.state.ann_busy_text = ("Waiting for the model prior (the first time on a scan: the "
                                                    f"model runs on it): {self.logic.priorStatus()}")
                await asyncio.sleep(0.2)
                with self.state:
                    self.state.ann_prior = self.logic.priorStatus()
                    result = self.logic.pollPrior()
                    if result is not None:
                        self._result(result)
                    if not self.logic.pending:
                        break
        finally:
            self._poll = None
            with self.state:
                self.state.ann_waiting = False
                if not self.state.ann_busy:
                    self.state.ann_busy_text = ""

    def _say(self, ok: bool, message: str) -> None:
        self.state.ann_ok, self.state.ann_message = bool(ok), message

    def _sync_preview(self) -> None:
        self.state.ann_preview = self.logic.previewNode is not None
        self._sync_count()

    def _sync_count(self) -> None:
        """``ann_voxels``: the selected segment's voxel count (shown under the segment; None without one)."""
        node, sid = self.se.active_segmentation_node, self.se.get_active_segment_id()
        known = node is not None and sid and node.GetSegmentation().GetSegment(sid) is not None
        self.state.ann_voxels = segment_voxel_count(node, sid) if known else None

    def _history_changed(self) -> None:
        """An edit, Undo or Redo: the segment the user chose stays selected and drawable when it is there (Undo of
        "Add segment" takes it away, Redo brings it back: trame-slicer forgets it on the way), with its tool; the
        lists, counts and tables follow."""
        self._sync_undo()
        node = self.se.active_segmentation_node
        if node is None:
            return
        chosen = self._chosen
        if chosen and node.GetSegmentation().GetSegment(chosen) is not None:
            if self.se.get_active_segment_id() != chosen or self.editor.editorNode.GetSelectedSegmentID() != chosen:
                self.editor.selectSegment(chosen)
                self._tool_changed(self.state.ann_tool)      # trame-slicer left the tool with the segment
        elif not self.se.get_active_segment_id():
            self.editor.editorNode.SetSelectedSegmentID(None)
        self._refresh_segments()
        self._sync_count()
        self.edits.edited()

    def _sync_undo(self) -> None:
        stack = self.se.undo_stack
        self.state.ann_can_undo, self.state.ann_can_redo = stack.can_undo(), stack.can_redo()

    def preview(self) -> Any:
        return self.logic.smartFillPreview()

    def accept(self) -> Any:
        return self.logic.smartFillAccept()

    def cancel(self) -> Any:
        return self.logic.smartFillCancel()

    def autocorrect(self) -> Any:
        return self.logic.autocorrect()

    def start_prior(self) -> Any:
        result = self.logic.startPrior()
        if result.ok:
            self._start_poll()
        return result

    def start_from_model(self) -> Any:
        return self.logic.startFromModel()

    def undo(self) -> Any:
        self.logic.smartFillCancel()
        return self.logic.undo()

    def redo(self) -> Any:
        return self.logic.redo()

    def download(self) -> Any:
        """The edited segmentation as a Slicer ``.seg.nrrd`` (bytes, sent to the page as an attachment)."""
        node = self.se.active_segmentation_node
        if node is None or not self._editing():
            with self.state:
                self._say(False, "Choose or create a segmentation first.")
            return None
        return self.server.protocol.addAttachment(segmentation_file_bytes(node))

    # ---------------------------------------------------------------- page
    def build_ui(self) -> None:
        busy = ("ann_busy",)
        with html.Div(v_show="ann_prepare", classes="mb-2", id="orbitai-ann-prepare"):
            v3.VProgressLinear(indeterminate=True, v_show="!ann_prepare_ready", color="primary")
            html.Div("{{ ann_prepare }}", classes="text-caption", id="orbitai-ann-prepare-text")
        v3.VSelect(label="Segmentation", v_model=("ann_segmentation",), items=("segmentations",), density="compact",
                   hide_details=True, classes="mb-2", id="orbitai-ann-segmentation")
        with html.Div(classes="d-flex mb-2"):
            v3.VBtn("New segmentation", click=self.new_segmentation, size="small", id="orbitai-ann-new")
        with html.Div(classes="d-flex align-center mb-2"):
            v3.VSelect(label="Segment", v_model=("ann_segment",), items=("ann_segments",), density="compact",
                       hide_details=True, id="orbitai-ann-segment")
            # the orbit structures by name (the model prior and terminology follow a scheme name), or any name
            v3.VCombobox(label="New segment", v_model=("ann_new_name",), items=("ann_structure_names",),
                         density="compact", hide_details=True, placeholder="eyeball_left", id="orbitai-ann-new-name",
                         classes="ml-2")
            v3.VBtn("Add", click=sending(self.state, self.add_segment, ["ann_new_name"]), size="small",
                    id="orbitai-ann-add")
        html.Div("{{ ann_voxels }} voxels in the segment", v_show="ann_voxels !== null", classes="text-caption mb-2",
                 id="orbitai-ann-voxels")
        v3.VSelect(label="Tool", v_model=("ann_tool",), items=("ann_tools",), density="compact", hide_details=True,
                   classes="mb-2", id="orbitai-ann-tool")
        v3.VSlider(label="Brush (mm)", v_model=("ann_brush_mm",), min=1, max=30, step=0.5, hide_details=True,
                   thumb_label=True, id="orbitai-ann-brush", title="Brush and eraser diameter in millimetres")
        with html.Div(classes="d-flex flex-wrap ga-1 mb-2"):
            for label, fn, key, disabled, what in (
                    ("Preview", self.preview, "preview", "ann_busy", "SmartFill: computing the preview"),
                    ("Accept", self.accept, "accept", "ann_busy || !ann_preview", "SmartFill: applying the preview"),
                    ("Cancel", self.cancel, "cancel", "ann_busy || !ann_preview", "SmartFill: cancelling"),
                    ("AutoCorrection", self.autocorrect, "autocorrect", "ann_busy", "AutoCorrection"),
                    ("Model prior", self.start_prior, "prior", "ann_busy", "Starting the model prior"),
                    ("Start from model", self.start_from_model, "from-model", "ann_busy",
                     "Starting from the model's segment"),
                    ("Undo", self.undo, "undo", "ann_busy || !ann_can_undo", "Undo"),
                    ("Redo", self.redo, "redo", "ann_busy || !ann_can_redo", "Redo")):
                v3.VBtn(label, click=self.button_callback(fn, what), size="small", disabled=(disabled,),
                        id=f"orbitai-ann-{key}")
        self.edits.build_ui()
        self._options_ui()
        v3.VBtn("Download .seg.nrrd", size="small", disabled=busy, id="orbitai-ann-download", prepend_icon="mdi-download",
                click="utils.download(`${(segmentations.find(s => s.value === ann_segmentation) || {title: 'segmentation'})"
                      ".title.replace(/[^A-Za-z0-9._-]+/g, '_')}.seg.nrrd`, "
                      f"trigger('{self.server.trigger_name(self.download)}'), "
                      "'application/octet-stream')")
        with html.Div(v_show="ann_busy || ann_waiting", id="orbitai-ann-busy"):
            v3.VProgressLinear(indeterminate=True)
            html.Div("{{ ann_busy_text }}", classes="text-caption", id="orbitai-ann-busy-text")
        html.Div("{{ ann_prior }}", classes="text-caption", v_show="ann_prior", id="orbitai-ann-prior")
        v3.VAlert(text=("ann_message",), v_show="ann_message", type=("ann_ok ? 'info' : 'warning'",), density="compact",
                  id="orbitai-ann-message")

    def _options_ui(self) -> None:
        """Each effect's options (`effect_options.EFFECT_OPTIONS`, the Slicer effects' panels), stored on the segment
        editor node where `AnnotationLogic` reads them."""
        with v3.VExpansionPanels(classes="mb-2", id="orbitai-ann-options"):
            for effect, options in self._options.EFFECT_OPTIONS.items():
                with v3.VExpansionPanel(title=f"{effect} options"), v3.VExpansionPanelText():
                    for o in options:
                        var, common = self._option_var(effect, o.name), {"hide_details": True, "density": "compact"}
                        element_id = f"orbitai-ann-opt-{effect}-{o.name}"
                        if o.kind == "float":
                            v3.VSlider(label=o.label.rstrip(":"), v_model=(var,), min=o.minimum, max=o.maximum,
                                       step=o.step, thumb_label=True, hide_details=True, id=element_id,
                                       title=o.tooltip)
                        elif o.kind in ("int", "choice"):
                            items = [int(c) for c in o.choices] if o.kind == "int" else list(o.choices)
                            v3.VSelect(label=o.label.rstrip(":"), v_model=(var,), items=(items,), id=element_id,
                                       **common)
                        elif o.kind == "bool":
                            v3.VCheckbox(label=o.label, v_model=(var,), id=element_id, **common)
                        else:   # a segment of the edited segmentation, or none
                            v3.VSelect(label=o.label.rstrip(":"), v_model=(var,), items=("ann_segments",),
                                       clearable=True, id=element_id, **common)
