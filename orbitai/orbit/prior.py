"""Model prior for the annotation tools: the segmentation network's probability of a structure.

When a segmentation bundle for the image's modality is installed, SmartFill and AutoCorrection can add
the network's probability of the chosen structure to their unary terms (``prior=``, see
:mod:`orbitai.annotate.smartfill`), and SmartPencil / SmartFill can start from the network's mask
(:meth:`ModelPrior.start_mask`). The network runs once per image (:func:`compute_prior`: the same
sliding window as ``orbitai seg predict``); its class probabilities stay on the model grid and one
structure is mapped onto the image when asked for. A prior is keyed by a checksum of every voxel and the
geometry (:func:`image_key`) and refuses any other image: it is never used on a different image or grid.

The network's classes have no side; a structure named ``..._left`` / ``..._right`` keeps the
probability on its side of the midline between the network's two eyeballs only (an image showing one
orbit keeps it all).

Inside Slicer the network never runs on the application's main thread, nor in a Python thread there
(Slicer does not release the GIL while its main thread idles, so such a thread would freeze the GUI):
:meth:`PriorCache.request` starts ``orbitai seg prior`` on the warm worker / a child process
(:class:`PriorRequest`), and the caller polls it from a timer; the child writes the prior with
:meth:`ModelPrior.save` and the caller reads it with :meth:`ModelPrior.load`.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import SimpleITK as sitk

from orbitai.bundle import BundleError
from orbitai.errors import AnnotationError
from orbitai.io import Volume
from orbitai.lru import LRU
from orbitai.orbit.models import load_seg_model
from orbitai.orbit.rules import eyeball_class, eyeball_midline, left_of
from orbitai.preprocess.checks import looks_like_ct
from orbitai.runner import JobInputWriter, child_error
from orbitai.seg.engine import model_probabilities, probabilities_on
from orbitai.worker import WarmJob

log = logging.getLogger(__name__)


class PriorUnavailable(AnnotationError):
    """No model prior for this image (no bundle for its modality, or the bundle has no such structure);
    the tools then work from the strokes alone."""


def image_key(image: Volume) -> str:
    """A checksum of every voxel, the voxel type, shape and geometry of ``image``."""
    h = hashlib.blake2b(digest_size=16)
    a = np.ascontiguousarray(image.array)
    h.update(repr((a.dtype.str, a.shape, tuple(np.round(image.spacing, 6)), tuple(np.round(image.origin, 6)),
                   tuple(np.round(np.asarray(image.direction, float).ravel(), 6)))).encode())
    h.update(a.data)                     # every voxel (a contiguous buffer)
    return h.hexdigest()


def split_side(name: str) -> tuple[str, str | None]:
    """('superior_rectus_muscle', 'left') for 'superior_rectus_muscle_left'; (name, None) without a side."""
    for side in ("left", "right"):
        if name.endswith("_" + side):
            return name[: -len(side) - 1], side
    return name, None


@dataclass(frozen=True)
class ModelPrior:
    """The network's class probabilities for one image (on the model grid; see the module docstring)."""

    key: str                            # image_key of the image it was computed on
    bundle: str
    structures: tuple[str, ...]         # the network's classes (class c + 1)
    probs: np.ndarray                   # (C + 1, k, j, i) on ``grid``, background first
    grid: sitk.Image
    midline_x: float | None             # LPS x between the network's two eyeballs (None: not two found)
    seconds: float

    def check(self, image: Volume, key: str | None = None) -> None:
        """Raise :class:`AnnotationError` unless ``image`` is the image this prior was computed on. ``key``: the
        key the caller keeps for ``image`` (the one the prior was requested with), else every voxel is hashed."""
        if (image_key(image) if key is None else key) != self.key:
            raise AnnotationError("The model prior was computed on another image or geometry; compute it again "
                                  "for this one.")

    def has(self, structure: str) -> bool:
        return split_side(structure)[0] in self.structures

    def probability(self, structure: str, image: Volume, key: str | None = None) -> np.ndarray:
        """Probability (float32, the image's [k, j, i] shape) that each voxel of ``image`` is ``structure``
        (an orbit label name, e.g. 'superior_rectus_muscle_left', or a network class name). ``key``: see
        :meth:`check`."""
        self.check(image, key)
        base, side = split_side(structure)
        if base not in self.structures:
            raise PriorUnavailable(f"The model {self.bundle} has no '{base}' class (it has "
                                   f"{', '.join(self.structures)}); the strokes alone are used.")
        p = probabilities_on(self.probs, self.grid, image, [self.structures.index(base) + 1])[0]
        if side is not None and self.midline_x is not None:
            left = left_of(image, self.midline_x)
            p[left if side == "right" else ~left] = 0.0
        return p

    def start_mask(self, structure: str, image: Volume, editable: np.ndarray | None = None,
                   key: str | None = None) -> np.ndarray:
        """The network's mask of ``structure`` (probability above one half), inside ``editable`` if given:
        what "Start from the model" puts into the selected segment. ``key``: see :meth:`check`."""
        m = self.probability(structure, image, key) > 0.5
        return m if editable is None else m & np.asarray(editable, bool)

    def save(self, path: str | Path) -> Path:
        """Write the prior to one uncompressed ``.npz`` (the child's output; read with :meth:`load`)."""
        g = self.grid
        np.savez(path, probs=self.probs, key=self.key, bundle=self.bundle, structures=np.array(self.structures),
                 spacing=g.GetSpacing(), origin=g.GetOrigin(), direction=g.GetDirection(),
                 midline_x=np.nan if self.midline_x is None else self.midline_x, seconds=self.seconds)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "ModelPrior":
        """A prior written by :meth:`save` (no pickled objects: ``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as f:
            probs = np.ascontiguousarray(f["probs"])
            grid = sitk.Image([int(n) for n in probs.shape[:0:-1]], sitk.sitkUInt8)
            grid.SetSpacing([float(v) for v in f["spacing"]])
            grid.SetOrigin([float(v) for v in f["origin"]])
            grid.SetDirection([float(v) for v in f["direction"]])
            midline = float(f["midline_x"])
            return cls(str(f["key"]), str(f["bundle"]), tuple(str(v) for v in f["structures"]), probs, grid,
                       None if np.isnan(midline) else midline, float(f["seconds"]))


def compute_prior(image: Volume, bundle: str | None = None, device: str = "cpu", mirror: bool = True,
                  progress=None, key: str | None = None) -> ModelPrior:
    """Run the segmentation network on ``image`` (the bundle for its modality unless named; ``key``: its
    `image_key` when known). Raises :class:`PriorUnavailable` when no such bundle is installed."""
    t0 = time.perf_counter()
    try:
        b, model, spec = load_seg_model(bundle, looks_like_ct(image), device)
    except BundleError as exc:
        raise PriorUnavailable(f"No model prior: {exc}; the strokes alone are used.") from None
    probs, grid = model_probabilities(image, model, spec, device=device, progress=progress, mirror=mirror)
    centre = None
    eye = eyeball_class(spec.structures)
    if eye > 0:
        classes = Volume(probs.argmax(0).astype(np.uint8), grid.GetSpacing(), grid.GetOrigin(),
                         np.asarray(grid.GetDirection(), float).reshape(3, 3))
        centre = eyeball_midline(classes, eye)
    return ModelPrior(key or image_key(image), b.name, tuple(spec.structures), probs, grid, centre,
                      time.perf_counter() - t0)


#: The file ``orbitai seg prior`` writes into its output folder.
PRIOR_FILE = "prior.npz"


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
            # The image is written a slab per poll (16 MiB), not at once: the caller may be Slicer's main thread.
            self._writer = JobInputWriter(image, self._workdir / "image.nrrd")
            self._advance()
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise

    def _advance(self) -> None:
        """Write the next slab of the image; start the child once it is complete."""
        if self._job is None and self._writer.step():
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
                self._writer.close()
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

    def compute(self, image: Volume, bundle: str | None = None, device: str = "cpu", progress=None,
                key: str | None = None) -> ModelPrior:
        """The cached prior, or a new one (kept, the oldest dropped beyond the cache's size)."""
        key = key or image_key(image)
        prior = self.get(image, bundle, key)
        if prior is None:
            prior = compute_prior(image, bundle, device, progress=progress, key=key)
            self._items.put((prior.key, bundle), prior)
        return prior

    def clear(self) -> None:
        self.cancel_all()
        self._items.clear()


#: The priors the Slicer effects share.
DEFAULT_PRIORS = PriorCache()
