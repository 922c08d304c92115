"""Loading scans into the web app: the DATA folder's list, a DICOMweb series URL, and uploads from the page.

A scan (a file, a DICOM folder, a DICOMweb series URL fetched only from the servers given at start) or a segmentation
(``.seg.nrrd``) of the shown scan is read in a thread (no MRML there) and made a node on the server loop
(:meth:`ScanLoader.load`); each page's Load and Fetch wait for its own load only (``load_ticket``, ``loads_running``),
a path the page sends must resolve inside DATA, an upload is bounded and removed whatever the outcome, and a message
for the page never names the server's own folders (:meth:`ScanLoader.private`). The data row of the drawer (uploads,
DATA's list, the DICOMweb field) is built here too.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from orbitai.dicom.inputs import parse_dicomweb_url, resolve_image
from orbitai.errors import InputError, OrbitAIError, one_line
from orbitai.io.dicom_folder import looks_like_dicom
from orbitai.io.files import VOLUME_SUFFIXES, read_scan
from orbitai.io.grids import segmentation_on_image
from orbitai.io.segfile import read_segmentation
from orbitai.mrml import segmentation_node_from_labels, volume_from_volume_node, volume_node_from_volume
from orbitai.mrml.results import mark_results
from orbitai.web.client_slices import scan_level, scan_steps
from orbitai.web.host import Signal, WebHost
from orbitai.web.identity import read_identity, series_name, set_identity
from orbitai.web.launch import mark
from orbitai.web.names import PATH_REFUSED, DicomWebAllowList, client_path, web_url
from orbitai.web.uploads import Uploads

__all__ = ["ScanLoader", "UPLOAD_TRIGGER", "data_choices", "read_scan_for_page", "read_early"]

#: The trigger the page's upload sends its files to, in groups (trame-slicer's ``load_files_by_chunks``), then ``[]``.
UPLOAD_TRIGGER = "orbitai_upload"
#: The page's Load and Fetch wait while a load this page asked for runs (not another page's).
_LOADING_HERE = "!!load_ticket && loads_running.includes(load_ticket)"


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


def read_scan_for_page(source: str, tmp: Path, upload: bool = False, max_bytes: Optional[int] = None,
                       limit_name: str = "",
                       redirects: Optional[Callable[[str], None]] = None) -> tuple[Any, str, dict[str, str]]:
    """(Volume, node name, identity) of a scan: a file, a DICOM folder or a DICOMweb series URL (fetched into ``tmp``).
    A DICOM series is named as Slicer's DICOM browser names it (`orbitai.web.identity.series_name`), never after the
    folder it was fetched or uploaded into (``upload``: ``source`` is the server's temporary folder). ``redirects``:
    where a DICOMweb server's redirect leads is checked by it before it is followed (the page's allow-list,
    `DicomWebAllowList.check`). The volume keeps the DICOM tags that say what the scan is (its ``metadata``: its
    acquisition's `orbitai.io.dicom.Acquisition.tags`, read with the series): its node keeps them
    (`orbitai.mrml.volumes.volume_node_from_volume`) and a job's input file carries them to the child's judge."""
    path = resolve_image(source, None, tmp, redirects=redirects)
    vol, acquisition = read_scan(path, max_bytes, limit_name)
    vol.metadata.update(acquisition.tags)
    file_name = Path(source.rstrip("/")).name
    identity = read_identity(path, file_name, acquisition.first_file)
    name = series_name(identity)
    if not name and "File" not in identity:         # DICOM without series number or description
        name = f"{identity.get('Modality') or 'DICOM'} series" if upload or "://" in source else file_name
    return vol, name or file_name.split(".")[0] or "volume", identity


def _read_and_pack(source: str) -> tuple[Any, str, dict[str, str], list[dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="orbitai-web-") as tmp:
        vol, name, identity = read_scan_for_page(source, Path(tmp))
    mark("scan_read")
    first = scan_level(vol, scan_steps(vol)[0])
    mark("first_pack")
    return vol, name, identity, [first]


def read_early(source: Optional[str]) -> Optional[Future]:
    """The launch's scan ``source`` (a scan file on this machine) read in a thread of its own while the app is built,
    with its coarsest resolution step packed for the page (`orbitai.web.client_slices.scan_level`): a future of
    (volume, node name, identity, packed steps) for `ScanLoader.load`. None for anything else (nothing, a folder, a
    DICOMweb URL, a segmentation): those are loaded as the page asks."""
    if not source or "://" in source or source.lower().endswith(".seg.nrrd") or not os.path.isfile(source):
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orbitai-launch")
    try:
        return pool.submit(_read_and_pack, source)
    finally:
        pool.shutdown(wait=False)


class ScanLoader:
    """The loads of the page of ``host``. ``data``: a scan to load at start or a folder whose
    scans the page offers; ``upload_limit``: the most bytes one upload may hold; ``dicomweb``: the DICOMweb servers the
    page may fetch from (with DATA's when it is a DICOMweb URL). Signals: ``scan_loaded`` (the new volume node, its
    volume and its resolution steps packed for the page, before it is selected), ``results_imported`` (a segmentation loaded: its scan, and True: the views go to it)."""

    scan_loaded = Signal(object, object, object)
    results_imported = Signal(object, bool)

    def __init__(self, host: WebHost, data: Optional[str], upload_limit: int, dicomweb: tuple[str, ...]) -> None:
        self.state, self.server, self.mrml, self.scan = host.state, host.server, host.mrml, host.input_node
        self.dicomweb = DicomWebAllowList([*dicomweb, *([data] if data and web_url(data) else [])])
        self.data_folder = Path(data) if data and Path(data).is_dir() else None
        self.upload_limit = int(upload_limit)
        self.uploads = Uploads(self.upload_limit)
        self._loading = 0       # loads under way (``load_busy``)
        self._web_server: Any = None
        self.server.controller.on_server_bind.add(self._bind_connections)
        self.server.trigger(UPLOAD_TRIGGER)(self.upload_chunk)
        self.state.update({"load_error": "", "load_busy": False, "loads_running": [], "load_ticket": "",
                           "data_items": data_choices(self.data_folder), "data_choice": None, "dicomweb_url": ""})
        self.state.client_only("load_ticket")      # each page's own (`load_click`)
        self.server.controller.on_client_connected.add(self._list_data)

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

    def _list_data(self, **_: Any) -> None:
        """The DATA folder's list, read again when a page opens (files added since are offered)."""
        self.state.data_items = data_choices(self.data_folder)

    async def load(self, source: str, shown: Optional[str] = None, hidden: Optional[Path] = None,
                   ticket: str = "", early: Optional[Future] = None) -> None:
        """Load a scan (a file, a DICOM folder or a DICOMweb series URL) as a new volume node and select it, or a
        segmentation (``.seg.nrrd``) of the input volume. Files are read in a thread (no MRML there); the node is made
        on the server loop. ``source`` is trusted here (the command line's, or checked by the callers); errors name it
        as ``shown`` (e.g. the uploaded file's name), and without the folder ``hidden`` (an upload's). ``ticket``: the
        page that asked (`load_click`), whose Load and Fetch wait for it; other pages' do not (a slow DICOMweb server
        holds only the page that fetches from it). ``early``: ``source`` already being read (`read_early`)."""
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
            packed: list[dict[str, Any]] = []
            if early is not None:
                vol, name, identity, packed = await asyncio.wrap_future(early)
            else:
                with tempfile.TemporaryDirectory(prefix="orbitai-web-") as tmp:
                    vol, name, identity = await loop.run_in_executor(None, read_scan_for_page, source, Path(tmp),
                                                                     hidden is not None, *self._decoded_limit(hidden),
                                                                     self.dicomweb.check)
            with self.state:
                self.add_volume(vol, name, identity, packed)
            mark("scan_shown")
        except (OrbitAIError, OSError, ValueError, RuntimeError) as exc:
            with self.state:
                message = f"Could not load {shown or source}: {one_line(exc)}"
                if hidden is not None:
                    message = message.replace(str(hidden) + os.sep, "").replace(str(hidden), shown or "the upload")
                self.state.load_error = self.private(message)
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

    def private(self, message: str) -> str:
        """A message for the page without the server's own folders: DATA's location and the temporary folder are
        named by their names."""
        places = [(tempfile.gettempdir(), "TMP")]
        if self.data_folder is not None:
            places += [(os.path.realpath(self.data_folder), self.data_folder.name),
                       (str(self.data_folder.absolute()), self.data_folder.name)]
        for path, name in sorted(places, key=lambda p: -len(p[0])):
            message = message.replace(path.rstrip(os.sep) + os.sep, name + "/")
        return message

    def add_volume(self, vol: Any, name: str, identity: Optional[dict[str, str]] = None,
                   packed: Sequence[dict[str, Any]] = ()) -> Any:
        """A new volume node of ``vol`` named ``name``, with the patient and series it came from (``identity``:
        `orbitai.web.identity.read_identity`; none: its name), selected as the input. ``packed``: its first resolution
        steps already packed for the page (`read_early`)."""
        node = volume_node_from_volume(self.mrml, vol, name=name)
        set_identity(node, identity or {"File": name})
        self.scan_loaded.emit(node, vol, packed)        # adopted by the page's copy and listed before it is selected
        self.state.input_volume = node.GetID()
        return node

    def add_segmentation(self, labels: Any, table: Any, name: str) -> Any:
        """A segmentation of the input volume (on its grid, or a crop of it as Slicer writes them; anything else is
        refused in one line), with its segments' names and colours."""
        volume = self.scan()
        if volume is None:
            raise InputError("load or select the scan it belongs to first")
        on_grid, _ = segmentation_on_image(volume_from_volume_node(volume), labels, f"the segmentation {name}",
                                           image_name="input volume", option=None)
        node = segmentation_node_from_labels(self.mrml, on_grid, reference_node=volume, name=name, table=table)
        node.CreateDefaultDisplayNodes()
        mark_results([node], volume)
        self.results_imported.emit(volume, True)
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

    def build_ui(self) -> None:
        """Under the input volume: uploads, DATA's list and Load, the DICOMweb field and Fetch, the load's progress
        and its error."""
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
