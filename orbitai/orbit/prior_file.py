"""The model prior as the annotation tools hold it (`ModelPrior`, its file `PRIOR_FILE`, `image_key`): what the
caller reads back from ``orbitai seg prior``'s output, without the scan judge, the segmentation engine or a network
(`orbitai.orbit.prior.compute_prior` makes it, in the child). Light on purpose: the annotation panels import it as
they are built (the browser's launch, issue 81; Slicer's effects), long before a prior is asked for.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from orbitai.errors import AnnotationError
from orbitai.io import Volume

__all__ = ["PRIOR_FILE", "ModelPrior", "PriorUnavailable", "image_key", "split_side"]


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
        from orbitai.orbit.rules import left_of                 # the scan judge (scipy): only once a prior is used

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


#: The file ``orbitai seg prior`` writes into its output folder.
PRIOR_FILE = "prior.npz"
