"""The job controller behind every OrbitAI panel, Slicer's and the browser's: Apply/Cancel, progress, inputs locked
while running, a status line and an error per scan, the model offer before a first Apply.

`JobController` is a state machine with no Qt: it drives a `JobView` (the few things a panel shows) and a
`JobLogic`, so it is tested headless with a recording view. `orbitai.mrml.panel.JobPanelMixin` adapts `JobView` to a
Slicer module's widgets; `orbitai.web.panel` to the page.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Optional, Protocol

from orbitai.bundle.registry import missing_message
from orbitai.errors import BundleError
from orbitai.mrml.dependencies import requirement_name, unmet_requirements
from orbitai.mrml.jobs import JobLogic, ModelOffer, ModuleJob

__all__ = ["JobView", "JobController", "POLL_MS", "CANCELLED"]

log = logging.getLogger(__name__)

POLL_MS = 200
#: `JobController.say`'s default: the scan shown.
_SHOWN: Any = object()
CANCELLED = "Cancelled; the scene was not changed."


class JobView(Protocol):
    """What a job panel shows; `JobPanelMixin` implements it with Qt widgets."""

    def setInputsEnabled(self, enabled: bool) -> None: ...
    def setApplyButton(self, text: str, enabled: bool, toolTip: str) -> None: ...
    def setProgress(self, done: int, total: int, visible: bool) -> None: ...
    def setStatus(self, text: str) -> None: ...
    def showError(self, message: str) -> None: ...
    def setPolling(self, on: bool) -> None: ...


class JobController:
    """Apply / poll / finish / cancel of one module's jobs (see module docstring).

    ``jobInputs() -> (input_node, options)`` is read when Apply is pressed; ``showResults(outputs,
    input_node)`` gets the outputs and the node the job *started* on; ``whyNotReady() -> str`` is
    empty when Apply may run, else the reason shown on the disabled button.

    ``currentScan() -> node``: the input scan the panel shows now. With it, every status line belongs to a scan (the
    job's input, or the scan shown when it was said) and is shown only while that scan is shown (`refresh` notices a
    new scan: its own last line comes back, another scan's never shows under it); a view with a ``scanShown(key)``
    method is told the scan's key (e.g. to show that scan's own error). Without it, one line for every scan."""

    def __init__(self, logic: JobLogic, view: JobView, jobInputs: Callable[[], tuple[Any, dict[str, Any]]],
                 showResults: Callable[[Any, Any], None], whyNotReady: Callable[[], str] = lambda: "",
                 applyToolTip: str = "Run the model. While it runs this button cancels it.",
                 currentScan: Optional[Callable[[], Any]] = None) -> None:
        self.logic = logic
        self.currentScan = currentScan
        self.shownScan = ""             # the key (`scanKey`) of the scan whose status line is shown
        self.statusOf: dict[str, str] = {}      # scan key -> its last status line
        self.view = view
        self.jobInputs = jobInputs
        self.showResults = showResults
        self.whyNotReady = whyNotReady
        self.applyToolTip = applyToolTip
        self.job: Optional[ModuleJob] = None
        #: (offer, input node, options) of an Apply waiting for its model (`offerModel`), else None
        self.offered: Optional[tuple[ModelOffer, Any, dict[str, Any]]] = None
        self.dependenciesMet = False    # the Logic's requirements were met at an Apply of this session
        self.outputs: Any = None
        self.outputsInput: Any = None   # the node the last outputs were computed from
        self.shownChoice: Any = None    # the display choice the outputs were last shown with
        self.hidden = False             # the module's panel is not shown (the user went to another module)
        self.toShow: Optional[tuple[Any, Any]] = None   # (outputs, input node) of a job that ended while hidden
        self.reasonShown = False        # the status line shows why Apply cannot run
        self._clock: tuple[float, float, int, int] = (0.0, 0.0, 0, 0)    # job start, step start, step total, done

    @property
    def running(self) -> bool:
        return self.job is not None

    def scanKey(self, node: Any = _SHOWN) -> str:
        """The key a status line of ``node`` (default: the scan shown) is kept under: its node ID; one key for all
        without `currentScan`."""
        if self.currentScan is None:
            return ""
        if node is _SHOWN:
            return self.shownScan
        return str(node.GetID() or "") if node is not None and hasattr(node, "GetID") else ""

    def say(self, text: str, scan: Any = _SHOWN) -> None:
        """The status line ``text`` of ``scan`` (default: the scan shown): kept as that scan's, shown while it is."""
        key = self.scanKey(scan)
        self.statusOf[key] = text
        if key == self.shownScan:
            self.view.setStatus(text)

    def _scanChanged(self) -> None:
        """Another scan is shown: its own status line (none: empty), never the last scan's."""
        if self.currentScan is None:
            return
        key = self.scanKey(self.currentScan())
        if key == self.shownScan:
            return
        self.shownScan = key
        self.reasonShown = False
        self.view.setStatus(self.statusOf.get(key, ""))
        shown = getattr(self.view, "scanShown", None)
        if callable(shown):
            shown(key)

    def refresh(self) -> None:
        """Follow the scan shown (its own status line) and enable Apply when the inputs are ready (no effect on
        Apply while a job runs)."""
        self._scanChanged()
        if self.running:
            return
        reason = self.whyNotReady()
        self.view.setApplyButton("Apply", not reason, reason or self.applyToolTip)
        if reason:
            self.view.setStatus(reason)
        elif self.reasonShown:      # the inputs are ready now: the reason no longer holds
            self.view.setStatus(self.statusOf.get(self.shownScan, ""))
        self.reasonShown = bool(reason)

    def apply(self) -> None:
        """Apply pressed: start a job, or cancel the running one."""
        if self.running:
            self.cancel()
            return
        try:
            # checked until met once: each check reads the installed packages' metadata (0.1 s on the main thread)
            if not self.dependenciesMet and not self.logic.ensureDependencies():
                missing = ", ".join(requirement_name(r) for r in unmet_requirements(self.logic.requirementLines()))
                self.say(f"Not started: the Python packages it needs are not installed ({missing}).")
                return
            self.dependenciesMet = True
            input_node, options = self.jobInputs()
            offer = self.logic.modelOffer(input_node, options)
            if offer is not None:      # its model is a registry model installed nowhere: offer the download first
                self.offerModel(offer, input_node, options)
                return
            self.job = self.logic.start(input_node, **options)
        except Exception as exc:  # noqa: BLE001 - every failure is shown to the user; nothing was added
            self.job = None
            self.say(f"Not started: {exc}")
            self.view.showError(f"Could not start: {exc}")
            return
        self._started(input_node)

    def offerModel(self, offer: ModelOffer, input_node: Any, options: dict[str, Any]) -> None:
        """Ask the view to offer the model's download (``view.offerModel(offer, answer)``: Download, Choose file...
        or Cancel; it calls ``answer`` with "download", a file, or None, at once or later: `answerOffer`). A view that
        cannot ask says how to install it."""
        ask = getattr(self.view, "offerModel", None)
        if not callable(ask):
            raise BundleError(missing_message(offer.entry))
        self.offered = (offer, input_node, options)
        self.say(offer.question(), input_node)
        ask(offer, self.answerOffer)

    def answerOffer(self, choice: Optional[str], uploaded: bool = False) -> None:
        """The user's answer to `offerModel`: "download" starts the download job, a file path installs that archive
        (offline; ``uploaded``: a browser's upload, which must be the registry's archive), None (Cancel) starts
        nothing. Once the model is installed, the Apply goes on (`poll`)."""
        if self.offered is None or self.running:
            return
        offer, input_node, options = self.offered
        if choice is None:
            self.offered = None
            self.say(offer.declined(), input_node)
            return
        try:
            self.job = self.logic.startInstall(offer, None if choice == "download" else choice, input_node,
                                               uploaded=uploaded)
        except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was installed
            self.offered = None
            self.say(f"Not started: {exc}", input_node)
            self.view.showError(f"Could not install the model: {exc}")
            return
        self._started(input_node, f"Installing the model '{offer.entry.name}'...")

    def _continueApply(self, job: ModuleJob) -> None:
        """An install job ended: on success the Apply it was started for goes on; otherwise say why."""
        pending, self.offered = self.offered, None
        try:
            job.checkedResult(f"Installing the model '{job.install}'")
        except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was installed
            text = str(exc)
            cancelled = text.startswith("Cancelled")
            self.say(f"Cancelled; the model '{job.install}' was not installed." if cancelled
                     else f"The model '{job.install}' was not installed: {text}", job.input_node)
            if not cancelled:
                self.view.showError(text)
            return
        finally:
            job.cleanup()
        installed = getattr(self.view, "modelInstalled", None)
        if callable(installed):        # the model choices read again (the panel lists it now)
            installed(job.install)
        if pending is None:
            self.say(f"The model '{job.install}' was installed; Apply again.", job.input_node)
            return
        _offer, input_node, options = pending
        if input_node is not None and input_node.GetScene() is None:     # the scan was removed meanwhile
            self.say(f"The model '{job.install}' was installed; the scan is gone from the scene: Apply again.")
            return
        try:
            self.job = self.logic.start(input_node, **options)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the model stays installed
            self.say(f"The model '{job.install}' was installed; not started: {exc}", input_node)
            self.view.showError(f"Could not start: {exc}")
            return
        self._started(input_node, f"The model '{job.install}' was installed; starting...")

    def _started(self, input_node: Any, text: str = "Starting...") -> None:
        """A job started: inputs locked, Apply turned into Cancel, progress shown, polling on."""
        self.view.setInputsEnabled(False)
        self.view.setApplyButton("Cancel", True, "Cancel the running job; the scene is left as it was.")
        self.view.setProgress(0, 1, True)
        self.say(text, input_node)
        now = time.monotonic()
        self._clock = (now, now, 0, 0)
        self.view.setPolling(True)

    def poll(self) -> None:
        """Timer tick: forward progress; when the child has ended, import its results."""
        if self.job is None:
            return
        for done, total, message in self.job.poll():
            self.view.setProgress(done, total, True)
            self.say(self._timed(done, total, message), self.job.input_node)
        if not self.job.finished:
            return
        job, self.job = self.job, None
        if job.install is not None:     # the model an Apply needs: installed, then that Apply goes on
            self._continueApply(job)
            if self.job is None:
                self._idle()
            return
        try:   # whatever happens below, the panel returns to Apply with its inputs unlocked
            try:
                outputs = self.logic.finish(job)
            except Exception as exc:  # noqa: BLE001 - shown to the user; the scene is unchanged
                self.say(f"Failed; the scene was not changed. {exc}", job.input_node)
                self.view.showError(str(exc))
                return
            self.outputs, self.outputsInput = outputs, job.input_node
            if self.hidden:   # in the scene now; shown when the user comes back (moduleShown)
                self.toShow = (outputs, job.input_node)
                return
            self._show(outputs, job.input_node)
        finally:
            self._idle()
            if self.toShow is not None:
                self.say("Done; the results were added to the scene.", job.input_node)

    def _timed(self, done: int, total: int, message: str) -> str:
        """A progress message with the time the job has run and, within a step that reports its progress, the time
        it has left at its pace so far (a message that gives its own time left is kept as it is)."""
        now = time.monotonic()
        start, step_start, step_total, step_done = self._clock
        if total != step_total or done < step_done:         # a new step of the job
            step_start = now
        self._clock = (start, step_start, total, done)
        text = f"{message} ({now - start:.0f} s"
        if 0 < done < total and "left" not in message and now - step_start > 1.0:
            left = (now - step_start) / done * (total - done)
            text += f", about {left:.0f} s left in this step" if left < 120 else f", about {left / 60:.0f} min left"
        return text + ")"

    def _show(self, outputs: Any, input_node: Any) -> None:
        """Status line and `showResults`; a failure to show is said, the results stay in the scene."""
        try:
            summary = getattr(outputs, "summary", None)
            self.say(summary() if callable(summary) else "Done.", input_node)
            self.showResults(outputs, input_node)
        except Exception as exc:  # noqa: BLE001 - the results are in the scene; only showing them failed
            self.say("Done; the results were added to the scene.", input_node)
            self.view.showError(f"The results were added to the scene but could not be shown: {exc}")

    def moduleHidden(self) -> None:
        """The user left the module (``exit``): a job that ends meanwhile is imported into the scene and
        shown on return. The poll timer keeps running."""
        self.hidden = True

    def moduleShown(self) -> None:
        """The user came back (``enter``, after the parameter node is connected again): show results that
        arrived meanwhile, over the node their job started on (if it is still in its scene)."""
        self.hidden = False
        pending, self.toShow = self.toShow, None
        if pending is None:
            return
        outputs, input_node = pending
        if input_node is not None and input_node.GetScene() is not None:
            self._show(outputs, input_node)

    def cancel(self) -> None:
        """Kill the running job (Cancel, scene close, module cleanup); the scene is not changed."""
        if self.job is None:
            return
        job, self.job = self.job, None
        job.cancel()
        job.cleanup()
        if job.install is not None:
            self.offered = None
            self.say(f"Cancelled; the model '{job.install}' was not installed and the scene was not changed.",
                     job.input_node)
        else:
            self.say(CANCELLED, job.input_node)
        self._idle()

    def outputsToReshow(self, shownChoice: Any, inputNode: Any) -> Any:
        """The last outputs when the display choice (e.g. which heat map) is no longer the one they
        were shown with and they were computed from ``inputNode`` (still in its scene); else None.
        Any other parameter change (entering the module, another input) re-shows nothing."""
        changed, self.shownChoice = shownChoice != self.shownChoice, shownChoice
        current = (self.outputs is not None and inputNode is not None and self.outputsInput is inputNode
                   and inputNode.GetScene() is not None)
        return self.outputs if changed and current else None

    def sceneClosing(self) -> None:
        """The scene is about to close: cancel, and forget outputs that belonged to it."""
        self.cancel()
        self.offered = None             # an offer still open belongs to the closed scene's scan
        self.outputs = self.outputsInput = self.toShow = None
        self.statusOf.clear()           # the scans are gone; a new scene's node IDs start again

    def _idle(self) -> None:
        self.view.setPolling(False)
        self.view.setProgress(0, 1, False)
        self.view.setInputsEnabled(True)
        self.refresh()
