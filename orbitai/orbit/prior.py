"""Model prior for the annotation tools: the segmentation network's probability of a structure.

When a segmentation bundle for the image's modality is installed, SmartFill and AutoCorrection can add
the network's probability of the chosen structure to their unary terms (``prior=``, see
:mod:`orbitai.annotate.smartfill`), and SmartPencil / SmartFill can start from the network's mask
(:meth:`ModelPrior.start_mask`). The network runs once per image (:func:`compute_prior`: the same
sliding window as ``orbitai seg predict``); its class probabilities stay on the model grid and one
structure is mapped onto the image when asked for. A prior is keyed by a checksum of every voxel and the
geometry (:func:`image_key`) and refuses any other image: it is never used on a different image or grid.

The network's classes have no side; a structure named ``..._left`` / ``..._right`` keeps the
probability on its side of the patient's midline only: between the network's two eyeballs, or with one globe in
view beside it on the side its anatomy tells (`orbitai.orbit.rules.orbit_midline`).

Inside Slicer the network never runs on the application's main thread, nor in a Python thread there
(Slicer does not release the GIL while its main thread idles, so such a thread would freeze the GUI):
:meth:`orbitai.app.annotation.priors.PriorCache.request` starts ``orbitai seg prior`` on the warm worker / a
child process (``PriorRequest``), and the caller polls it from a timer; the child writes the prior with
:meth:`ModelPrior.save` and the caller reads it with :meth:`ModelPrior.load`.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from orbitai.bundle import BundleError
from orbitai.errors import AnnotationError
from orbitai.io import Volume
from orbitai.orbit.predict import PriorRun, SegOptions
from orbitai.orbit.rules import left_of
from orbitai.predictor import Case
from orbitai.scan import ScanFacts, scan_facts
from orbitai.scan.values import model_family



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
        from orbitai.engine.inference import probabilities_on   # torch: the Slicer side reads priors without it

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
                  progress=None, key: str | None = None, facts: ScanFacts | None = None) -> ModelPrior:
    """Run the segmentation network on ``image`` (the bundle for its modality unless named; ``key``: its
    `image_key` when known; ``facts``: what the scan is, when the caller judged it) by the task's predictor
    (`orbitai.orbit.predictor.OrbitPredictor.run` asked for the prior, whose `PriorRun` the prior is made of). Raises
    :class:`PriorUnavailable` when no such bundle is installed."""
    from orbitai.orbit.predictor import OrbitPredictor   # torch: the Slicer side reads priors without it

    t0 = time.perf_counter()
    if bundle is None and facts is None:
        facts = scan_facts(image)       # judged once per prior, beside a network run that costs far more
    try:
        predictor = OrbitPredictor(bundle or model_family(facts, image), device)
        made = predictor.run(Case(image, facts), SegOptions(mirror=mirror, prior=True), predictor.device, progress)
    except BundleError as exc:
        raise PriorUnavailable(f"No model prior: {exc}; the strokes alone are used.") from None
    assert isinstance(made, PriorRun)
    return ModelPrior(key or image_key(image), made.bundle, made.structures, made.probs, made.grid, made.midline_x,
                      time.perf_counter() - t0)


#: The file ``orbitai seg prior`` writes into its output folder.
PRIOR_FILE = "prior.npz"
