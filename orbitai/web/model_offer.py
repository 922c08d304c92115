"""The browser's side of the first Apply without its model (issue 64): the offer in the page, and its answer.

`orbitai.mrml.panel.JobController.offerModel` asks its view; the Slicer panel shows a dialog, the browser's
`WebJobPanel` shows the same choice under Apply (``<key>_offer``: the model, its size and source; Download, Choose
file... and Cancel). Download starts the install job (``orbitai models install NAME`` in a child, progress and Cancel
as any job), then the Apply goes on. Choose file... uploads an archive downloaded elsewhere: it must be the registry's
very archive (its SHA-256; the page's user is not the server's, so nothing else is installed from a page), one file,
within the server's upload limit (``orbitai web --max-upload-mb``); a refusal is one line in the offer
(``<key>_offer_error``). Each page's upload is its own, taken only while an offer is open, and dropped (its file
removed) when its page disconnects or the offer closes (issue 80 item 14). The rule "which model does this Apply need, and is it installed" is the Logic's
(`orbitai.mrml.jobs.JobLogic.modelOffer`), the same for both front ends.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from orbitai.errors import InputError, one_line
from orbitai.mrml.jobs import ModelOffer
from orbitai.web import disconnects
from orbitai.web.uploads import Uploads    # the page's upload rules (names, limit, one per connection), one place

__all__ = ["ModelOfferView", "offer_ui", "upload_trigger_name"]

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def upload_trigger_name(key: str) -> str:
    """The trigger a panel's "Choose file..." sends the archive to."""
    return f"orbitai_{key}_model_upload"


class ModelOfferView:
    """Mixed into `orbitai.web.panel.WebJobPanel`: state ``<key>_offer`` (the question, "" when none is open) and
    ``<key>_offer_error`` (why an uploaded archive was refused)."""

    state: Any
    _answer: Optional[Callable[..., None]] = None
    _offer: Optional[ModelOffer] = None
    #: the archives being uploaded, one per connection (`Uploads`; made with the first)
    _uploads: Optional[Uploads] = None
    #: wslink's server (`bind_connections`): which connection sent a message, and when one closes
    _web_server: Any = None
    #: the most bytes an uploaded archive may have (the app's upload limit, set by `offer_ui`)
    upload_limit: int = 0
    #: called with the model's name once the panel's install job installed it (the page lists it at once)
    on_model_installed: Optional[Callable[[str], None]] = None

    def name(self, var: str) -> str:  # pragma: no cover - WebJobPanel's
        raise NotImplementedError

    def offerModel(self, offer: ModelOffer, answer: Callable[..., None]) -> None:
        """Show the offer under Apply; `download_offered`, `upload_model` and `decline_offered` answer it."""
        self._answer, self._offer = answer, offer
        self.state[self.name("offer_error")] = ""
        self.state[self.name("offer")] = offer.question()

    def bind_connections(self, web_server: Any) -> None:
        """trame's ``on_server_bind``: a connection's archive under way is dropped when its connection closes."""
        self._web_server = web_server
        disconnects.on_close(web_server, self.drop_upload)

    def _client(self) -> Any:
        """The connection whose message is being handled (wslink notes it before calling the trigger)."""
        return getattr(self._web_server, "last_active_client_id", None)

    def drop_upload(self, client: Any) -> None:
        """``client``'s archive under way, dropped and its file removed (its page disconnected)."""
        if self._uploads is not None:
            self._uploads.drop(client)

    def _answered(self, choice: Optional[str], uploaded: bool = False) -> None:
        answer, self._answer, self._offer = self._answer, None, None
        if self._uploads is not None:
            self._uploads.remove_all()                 # the offer is closed: no archive is taken for it any more
        self.state[self.name("offer")] = ""
        self.state[self.name("offer_error")] = ""
        if answer is not None:
            answer(choice, uploaded=uploaded)

    def download_offered(self) -> None:
        """The page's Download button."""
        self._answered("download")

    def decline_offered(self) -> None:
        """The page's Cancel button under the offer."""
        self._answered(None)

    def upload_model(self, files: Any = None) -> None:
        """The page's Choose file...: the archive's chunks (``load_files_by_chunks``), then ``[]`` at the end; the
        archive is installed when it is the offered model's (its SHA-256 is checked by the install job), else one
        line in the offer and nothing is kept. Each connection's archive is its own; with no offer open nothing is
        taken (what a page sends then is refused, and its archive under way dropped)."""
        client = self._client()
        if self._uploads is None:
            self._uploads = Uploads(self.upload_limit, max_files=1)
        if self._offer is None:
            self._uploads.drop(client)
            return
        if files:
            self._uploads.add(client, files)
            return
        upload = self._uploads.finish(client)
        if upload is None:
            return
        try:
            offer = self._offer
            if offer is None:
                raise InputError("no model is offered now; press Apply first")
            source, _shown = upload.source()
            if not source.lower().endswith(ARCHIVE_SUFFIXES):
                raise InputError(f"{Path(source).name} is not a model archive; choose {offer.entry.asset}")
            kept = Path(tempfile.mkdtemp(prefix="orbitai-model-upload-")) / offer.entry.asset
            shutil.move(source, str(kept))
        except (InputError, OSError) as exc:
            self.state[self.name("offer_error")] = f"The archive was refused: {one_line(exc)}"
            return
        finally:
            upload.remove()
        try:
            self._answered(str(kept), uploaded=True)     # moved into the install job's folder
        finally:
            shutil.rmtree(kept.parent, ignore_errors=True)

    def modelInstalled(self, name: str) -> None:
        if self.on_model_installed is not None:
            self.on_model_installed(name)


def offer_ui(server: Any, key: str, view: ModelOfferView, upload_limit: int) -> None:
    """The offer's alert (``orbitai-<key>-offer``) with Download, Choose file... and Cancel (``-offer-download``,
    ``-offer-file``, ``-offer-cancel``); registers the upload's trigger (`upload_trigger_name`)."""
    from trame.widgets import html, vuetify3 as v3

    view.upload_limit = int(upload_limit)
    name = upload_trigger_name(key)
    server.trigger(name)(view.upload_model)
    server.controller.on_server_bind.add(view.bind_connections)
    view.state.setdefault(f"{key}_offer_error", "")
    send = f"window.load_files_by_chunks($event.target.files, {{ trigger_name: '{name}' }})"
    with v3.VAlert(v_if=f"{key}_offer", type="info", density="compact", id=f"orbitai-{key}-offer", classes="my-2"):
        html.Div(f"{{{{ {key}_offer }}}}", classes="text-body-2 mb-2")
        html.Div(f"{{{{ {key}_offer_error }}}}", v_if=f"{key}_offer_error", classes="text-body-2 text-error mb-2",
                 id=f"orbitai-{key}-offer-error")
        with html.Div(classes="d-flex align-center"):
            v3.VBtn("Download", click=view.download_offered, color="primary", size="small", classes="mr-2",
                    id=f"orbitai-{key}-offer-download")
            v3.VFileInput(change=send, label="Choose file...", accept=",".join(ARCHIVE_SUFFIXES), density="compact",
                          hide_details=True, classes="mr-2", id=f"orbitai-{key}-offer-file")
            v3.VBtn("Cancel", click=view.decline_offered, variant="tonal", size="small",
                    id=f"orbitai-{key}-offer-cancel")
