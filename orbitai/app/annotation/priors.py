"""The model priors the annotation tools ask for, computed away from the caller's thread (the parent side of
`orbitai.orbit.prior`): a `PriorRequest` runs ``orbitai seg prior`` on the warm worker or a child process and is
polled from a timer; `PriorCache` keeps the last few priors and shares one request per image."""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from orbitai.io import Volume
from orbitai.lru import LRU
from orbitai.orbit.prior_file import PRIOR_FILE, ModelPrior, image_key
from orbitai.jobs.inputs import JobInputs
from orbitai.jobs.process import child_error
from orbitai.jobs.warm import WarmJob

__all__ = ["PriorRequest", "PriorCache", "DEFAULT_PRIORS"]

log = logging.getLogger(__name__)


class PriorRequest:
    """The prior of one image being computed by ``orbitai seg prior`` in the warm worker or a child
    process (see the module docstring). Never blocks unless :meth:`wait` is called: :meth:`poll` returns
    at once, and the prior is read only once the child has ended."""

    def __init__(self, image: Volume, key: str, bundle: str | None = None, device: str = "cpu",
                 on_ready=None) -> None:
        self.key, self.bundle = key, bundle
        self.prior: ModelPrior | None = None
        self.error: str | None = None
        self.cancelled = False          # the child was cancelled (scene close, Cancel): nothing waiting may run
        self.progress: tuple[int, int] = (0, 1)
        self.started_at = time.monotonic()
        self._on_ready = on_ready
        self._job: Any = None           # the child (a WarmJob), started once the image is written
        self._workdir = Path(tempfile.mkdtemp(prefix="orbitai-prior-in-"))
        self._args = ["seg", "prior", str(self._workdir / "image.nrrd"), "--out", "{out}", "--key", key,
                      "--device", device] + (["--model", bundle] if bundle else [])
        try:
            # The image is written a tick's share per poll (`JobInputs.step`), not at once: the caller may be
            # Slicer's main thread.
            self._inputs = JobInputs()
            self._inputs.add(image, self._workdir / "image.nrrd")
            self._advance()
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise

    def _advance(self) -> None:
        """Write the next slab of the image; start the child once it is complete."""
        if self._job is None and self._inputs.step():
            self._job = WarmJob(self._args).start()

    @property
    def done(self) -> bool:
        return self.prior is not None or self.error is not None

    def poll(self) -> bool:
        """Take the child's progress; once it has ended, read the prior (or its one-line error). True once
        done. Returns at once while the child runs."""
        if self.done:
            return True
        if self._job is None:
            try:
                self._advance()
            except Exception as exc:  # noqa: BLE001 - said in the status line; the tools go on without the prior
                self.error = f"The model prior could not be started ({exc}); the strokes alone are used."
                shutil.rmtree(self._workdir, ignore_errors=True)
                return True
            return False
        for done, total, _ in self._job.poll():
            self.progress = (done, max(total, 1))
        if not self._job.finished:
            return False
        self._finish()
        return True

    def _finish(self) -> None:
        try:
            res = self._job.result()
            if res.cancelled:
                self.cancelled = True
                self.error = "The model prior was cancelled; the strokes alone are used."
            elif not res.ok or res.out_dir is None:
                self.error = child_error("The model prior", self._job.args, res) + " The strokes alone are used."
            else:
                self.prior = ModelPrior.load(res.out_dir / PRIOR_FILE)
                if self._on_ready is not None:
                    self._on_ready(self.prior)
        except (OSError, ValueError, KeyError) as exc:
            self.error = f"The model prior could not be read ({exc}); the strokes alone are used."
        finally:
            self._job.cleanup()
            shutil.rmtree(self._workdir, ignore_errors=True)

    def wait(self, timeout_s: float | None = None, poll_s: float = 0.05) -> bool:
        """Block until done (scripts and tests, never Slicer's main thread); False on time-out."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.poll():
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(poll_s)
        return True

    def cancel(self) -> None:
        """Stop the child; nothing is kept."""
        if not self.done:
            self.cancelled = True
            if self._job is None:       # still writing the image: no child yet
                self._inputs.close()
                self.error = "The model prior was cancelled; the strokes alone are used."
                shutil.rmtree(self._workdir, ignore_errors=True)
                return
            # The child is interrupted and reaped on a background thread: the caller may be Slicer's main thread
            # (the scene is closing), which must not wait for the worker to stop.
            self.error = "The model prior was cancelled; the strokes alone are used."
            job, workdir = self._job, self._workdir
            job.cancel()
            threading.Thread(target=_reap, args=(job, workdir), daemon=True, name="orbitai-prior-reap").start()

    def status(self) -> str:
        """One line: computing (with the child's progress and time so far), ready, or why not."""
        if self.prior is not None:
            return f"Model prior ready ({self.prior.bundle})."
        if self.error is not None:
            return self.error
        done, total = self.progress
        pct = f" {100 * done // total}%," if done else ""
        return f"Model prior:{pct} {time.monotonic() - self.started_at:.0f} s, computing..."


def _reap(job, workdir: Path) -> None:
    """Wait for a cancelled prior's child to end, then remove its folders (a background thread)."""
    try:
        job.result()
    except Exception:   # a cancelled child's end is of no interest; only its folders are
        log.debug("the cancelled model prior's child ended with an error", exc_info=True)
    finally:
        job.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


class PriorCache:
    """The priors of the last few images (default 2), computed once each, and the requests still running
    (:meth:`request`); thread-safe. Several effects asking for the same image share one request."""

    def __init__(self, size: int = 2) -> None:
        self._items: LRU[ModelPrior] = LRU(size)
        self._running: dict[tuple[str, Optional[str]], PriorRequest] = {}

    def request(self, image: Volume, bundle: str | None = None, device: str = "cpu",
                key: str | None = None) -> PriorRequest | ModelPrior:
        """The cached prior of ``image``, else the running (or a newly started) request computing it in a
        child process. Returns at once; poll the request from a timer. A failed request is forgotten, so
        asking again starts a new one."""
        key = key or image_key(image)
        prior = self.get(image, bundle, key)
        if prior is not None:
            return prior
        running = self._running.get((key, bundle))
        if running is not None and not (running.poll() and running.error is not None):
            return running
        req = PriorRequest(image, key, bundle, device, on_ready=lambda p: self._items.put((p.key, bundle), p))
        self._running = {k: r for k, r in self._running.items() if not r.done}
        self._running[(key, bundle)] = req
        return req

    def cancel_all(self) -> None:
        """Stop every running request (e.g. when the scene closes)."""
        for r in list(self._running.values()):
            r.cancel()
        self._running.clear()

    def get(self, image: Volume, bundle: str | None = None, key: str | None = None) -> ModelPrior | None:
        """The cached prior of exactly this image (same voxels and geometry; ``key``: its `image_key`
        when known, so that the voxels are not read again), or None."""
        return self._items.get((key or image_key(image), bundle))

    def clear(self) -> None:
        self.cancel_all()
        self._items.clear()


#: The priors the Slicer effects share.
DEFAULT_PRIORS = PriorCache()
