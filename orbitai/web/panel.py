"""A module panel in the browser: `JobController`'s `JobView` written into trame state, polled on the server loop.

The Slicer panel (`orbitai.mrml.panel.JobPanelMixin`) shows the same controller with Qt widgets and a QTimer; here each
view call sets a state variable the page binds to, and an asyncio task calls `JobController.poll` every `POLL_MS`
while a job runs. The job's child process never blocks the loop (`ModuleJob.poll` only drains a queue); its results
are imported on the loop thread, as on Slicer's main thread.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from orbitai.mrml.controller import POLL_MS, JobController
from orbitai.mrml.jobs import JobLogic
from orbitai.web.model_offer import ModelOfferView

__all__ = ["WebJobPanel"]


class WebJobPanel(ModelOfferView):
    """One module's job panel: a `JobController` with this object as its `JobView`.

    State variables (``<key>_*``): ``apply_text``, ``apply_enabled``, ``apply_tip``, ``progress`` (0-100),
    ``progress_visible``, ``status``, ``error`` (the last error, shown in an alert until dismissed),
    ``inputs_enabled`` and ``running``."""

    def __init__(self, server: Any, key: str, logic: JobLogic, jobInputs: Callable[[], tuple[Any, dict]],
                 showResults: Callable[[Any, Any], None], whyNotReady: Callable[[], str], applyToolTip: str,
                 private: Callable[[str], str] = lambda text: text,
                 currentScan: Optional[Callable[[], Any]] = None) -> None:
        self.server = server
        self.private = private      # the page's text without the server's own folders
        self.state = server.state
        self.key = key
        self._task: Optional[asyncio.Task] = None
        defaults = {"apply_text": "Apply", "apply_enabled": False, "apply_tip": "", "progress": 0,
                    "progress_visible": False, "status": "", "error": "", "inputs_enabled": True, "running": False,
                    "offer": ""}
        for name, value in defaults.items():
            self.state.setdefault(self.name(name), value)
        #: scan key -> the error shown under that scan (an error of one patient's scan never shows under another's)
        self.errorOf: dict[str, str] = {}
        self.controller = JobController(logic, self, jobInputs, showResults, whyNotReady, applyToolTip,
                                        currentScan=currentScan)

    def name(self, var: str) -> str:
        """The state variable ``<key>_<var>``."""
        return f"{self.key}_{var}"

    def _set(self, **values: Any) -> None:
        for var, value in values.items():
            self.state[self.name(var)] = value

    # ---------------------------------------------------------------- JobView
    def setInputsEnabled(self, enabled: bool) -> None:
        self._set(inputs_enabled=bool(enabled))

    def setApplyButton(self, text: str, enabled: bool, toolTip: str) -> None:
        self._set(apply_text=text, apply_enabled=bool(enabled), apply_tip=toolTip)

    def setProgress(self, done: int, total: int, visible: bool) -> None:
        self._set(progress=round(100.0 * done / max(total, 1), 1), progress_visible=bool(visible))

    def setStatus(self, text: str) -> None:
        self._set(status=self.private(text))

    def showError(self, message: str) -> None:
        """The error in the alert; the status line, which the controller wrote with the error in it, keeps only its
        own words (an error shown twice is read twice)."""
        error = self.private(" ".join(str(message).split()))
        self.errorOf[self.controller.shownScan] = error
        self._set(error=error)
        status = " ".join(str(self.state[self.name("status")]).split())
        for text in (error, error.removeprefix("Could not start: ")):
            if text and text in status:
                self._set(status=status.replace(text, "").strip() + " (the error is shown below)")
                break

    def scanShown(self, key: str) -> None:
        """Another scan is shown (`JobController.refresh`): its own error, if it had one."""
        self._set(error=self.errorOf.get(key, ""))

    def clearError(self) -> None:
        """The error is dismissed or a new run starts: no error under the scan shown."""
        self.errorOf.pop(self.controller.shownScan, None)
        self._set(error="")

    def setPolling(self, on: bool) -> None:
        self._set(running=bool(on))
        if on and self._task is None:
            self._task = asyncio.get_event_loop().create_task(self._poll_loop())

    # ---------------------------------------------------------------- page actions
    def apply(self) -> None:
        """Apply pressed (Cancel while a job runs)."""
        self.clearError()
        self.controller.apply()

    async def _poll_loop(self) -> None:
        try:
            while self.controller.running:
                await asyncio.sleep(POLL_MS / 1000.0)
                with self.state:
                    self.controller.poll()
        finally:
            self._task = None
