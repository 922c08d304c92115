"""Annotation ready before the first click (issue 67): when a scan is shown or the Annotate tab opens, its SmartPencil
superpixels are computed on a worker thread (SimpleITK's SLIC releases the interpreter: the server loop goes on) and
its model prior is asked for (the warm worker computes it, on the orbits' part of a head), with the state in the
panel ("Preparing SmartPencil and SmartFill... / Ready"). Another scan, a closed scene or the server's end cancels what
runs. A SmartPencil click that comes while its superpixels are still computed waits for them instead of computing them
a second time (`Preparer.superpixels_done`).
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

from orbitai.app.annotation.logic import Preparation
from orbitai.app.annotation.priors import DEFAULT_PRIORS
from orbitai.errors import OrbitAIError, one_line
from orbitai.web.annotate_seam import AnnotationTools

__all__ = ["Preparer", "POLL_S"]

log = logging.getLogger(__name__)

#: How often the preparation's state is read (and the model prior's input written on: a slab per poll).
POLL_S = 0.2


@dataclass
class _Job:
    scan: tuple                       # (volume node ID, its image's modification time)
    prep: Preparation
    abort: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    future: Optional[Future] = None
    superpixel_s: Optional[float] = None


def _lower_priority() -> None:
    """The worker thread yields the cores to the server's rendering (Linux: a thread has its own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):     # not Linux, or not allowed: the thread runs at the server's priority
        pass


class Preparer:
    """The preparation of the shown scan for the annotation panel ``panel`` (`orbitai.web.annotate.AnnotationPanel`).

    State: ``ann_prepare`` (one line: preparing, with seconds so far, or ready, or why not), ``ann_prepare_ready``."""

    def __init__(self, panel: AnnotationTools) -> None:
        self.panel, self.state = panel, panel.state
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orbitai-prepare")
        self.job: Optional[_Job] = None
        self.state.update({"ann_prepare": "", "ann_prepare_ready": False})

    @staticmethod
    def _scan_of(node: Any) -> Optional[tuple]:
        image = None if node is None else node.GetImageData()
        return None if image is None else (node.GetID(), image.GetMTime())

    def start(self, node: Any) -> None:
        """Prepare the scan ``node`` (None: nothing; the same scan again: what runs or ran stays)."""
        scan = self._scan_of(node)
        if scan is not None and self.job is not None and self.job.scan == scan:
            return
        self.cancel()
        if scan is None:
            self.state.update({"ann_prepare": "", "ann_prepare_ready": False})
            return
        try:
            prep = self.panel.logic.prepare(node, DEFAULT_PRIORS)
        except OrbitAIError as exc:
            self.state.update({"ann_prepare": f"Not prepared: {one_line(exc)}", "ann_prepare_ready": False})
            return
        job = _Job(scan, prep)
        job.future = self._pool.submit(self._superpixels, job)
        self.job = job
        self.state.update({"ann_prepare": "Preparing SmartPencil and SmartFill...", "ann_prepare_ready": False})
        asyncio.ensure_future(self._watch(job))

    def _superpixels(self, job: _Job) -> None:
        if job.abort.is_set():
            return
        _lower_priority()
        t0 = time.monotonic()
        job.prep.superpixels(job.abort)
        job.superpixel_s = time.monotonic() - t0

    def cancel(self) -> None:
        """Stop what runs for the last scan: the superpixels at their next progress event, the model prior's child."""
        job, self.job = self.job, None
        if job is None:
            return
        job.abort.set()
        prior = job.prep.prior
        if prior is not None and hasattr(prior, "cancel") and not prior.done:
            prior.cancel()

    def shutdown(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=False)

    async def superpixels_done(self) -> None:
        """Wait (on the loop, not holding it) until the shown scan's superpixels being prepared are there."""
        job = self.job
        if job is not None and job.future is not None and not job.future.done():
            try:
                await asyncio.wrap_future(job.future)
            except Exception:
                log.debug("the prepared superpixels failed", exc_info=True)

    @property
    def superpixels_running(self) -> bool:
        job = self.job
        return job is not None and job.future is not None and not job.future.done()

    def status(self, job: _Job) -> tuple[str, bool]:
        """(the line shown, whether both parts are done) for ``job``."""
        parts, done = [], True
        future = job.future
        error = future.exception() if future is not None and future.done() else None
        if future is not None and not future.done():
            done = False
            parts.append(f"SmartPencil superpixels {time.monotonic() - job.started:.0f} s")
        elif error is not None:
            parts.append(f"SmartPencil superpixels not prepared ({one_line(error)})")
        prior = job.prep.prior
        if prior is not None and hasattr(prior, "poll"):
            if not prior.poll():
                done = False
                parts.append(prior.status())
            elif prior.error is not None:
                parts.append(prior.error)
        if not done:
            return "Preparing SmartPencil and SmartFill: " + "; ".join(parts), False
        took = f" (superpixels in {job.superpixel_s:.0f} s)" if job.superpixel_s is not None else ""
        if error is not None:
            took = f" (superpixels not prepared: {one_line(error)}; the first click computes them)"
        if prior is None:
            prior_note = " SmartFill without the model prior (its weight is 0)."
        elif getattr(prior, "error", None) is not None:
            prior_note = f" SmartFill without the model prior: {prior.error}"
        else:
            prior_note = " Model prior ready."
        return f"Ready: SmartPencil and SmartFill{took}.{prior_note}", True

    async def _watch(self, job: _Job) -> None:
        """Show the preparation's state until it is done or replaced (the model prior's poll also writes its input)."""
        while self.job is job:
            try:
                text, ready = self.status(job)
            except Exception as exc:   # noqa: BLE001 - one line in the panel, never a stuck server loop
                text, ready = f"Not prepared: {one_line(exc)}", True
            with self.state:
                self.state.ann_prepare, self.state.ann_prepare_ready = text, ready
            if ready:
                return
            await asyncio.sleep(POLL_S)
