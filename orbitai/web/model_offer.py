"""The browser's side of the first Apply without its model (issue 64): the offer in the page, and its answer.

`orbitai.mrml.panel.JobController.offerModel` asks its view; the Slicer panel shows a dialog, the browser's
`WebJobPanel` shows the same choice under Apply (``<key>_offer``: the model, its size and source; Download and
Cancel buttons). Download starts the install job (``orbitai models install NAME`` in a child, progress and Cancel as
any job), then the Apply goes on. The rule "which model does this Apply need, and is it installed" is the Logic's
(`orbitai.mrml.jobs.JobLogic.modelOffer`), the same for both front ends. A file chosen in the browser would be an
upload: the page offers the download only; an archive downloaded elsewhere is installed with
``orbitai models install FILE`` on the server.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from orbitai.mrml.jobs import ModelOffer

__all__ = ["ModelOfferView", "offer_ui"]


class ModelOfferView:
    """Mixed into `orbitai.web.panel.WebJobPanel`: state ``<key>_offer`` (the question, "" when none is open)."""

    state: Any
    _answer: Optional[Callable[[Optional[str]], None]] = None
    #: called with the model's name once the panel's install job installed it (the page lists it at once)
    on_model_installed: Optional[Callable[[str], None]] = None

    def name(self, var: str) -> str:  # pragma: no cover - WebJobPanel's
        raise NotImplementedError

    def offerModel(self, offer: ModelOffer, answer: Callable[[Optional[str]], None]) -> None:
        """Show the offer under Apply; `download_offered` / `decline_offered` answer it."""
        self._answer = answer
        self.state[self.name("offer")] = offer.question()

    def _answered(self, choice: Optional[str]) -> None:
        answer, self._answer = self._answer, None
        self.state[self.name("offer")] = ""
        if answer is not None:
            answer(choice)

    def download_offered(self) -> None:
        """The page's Download button."""
        self._answered("download")

    def decline_offered(self) -> None:
        """The page's Cancel button under the offer."""
        self._answered(None)

    def modelInstalled(self, name: str) -> None:
        if self.on_model_installed is not None:
            self.on_model_installed(name)


def offer_ui(key: str, view: ModelOfferView) -> None:
    """The offer's alert with its two buttons (ids ``orbitai-<key>-offer``, ``-offer-download``, ``-offer-cancel``)."""
    from trame.widgets import html, vuetify3 as v3

    with v3.VAlert(v_if=f"{key}_offer", type="info", density="compact", id=f"orbitai-{key}-offer", classes="my-2"):
        html.Div(f"{{{{ {key}_offer }}}}", classes="text-body-2 mb-2")
        v3.VBtn("Download", click=view.download_offered, color="primary", size="small", classes="mr-2",
                id=f"orbitai-{key}-offer-download")
        v3.VBtn("Cancel", click=view.decline_offered, variant="tonal", size="small", id=f"orbitai-{key}-offer-cancel")
