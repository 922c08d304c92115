"""What the engine returns for one scan (`EngineResult`): the classes on the part of the input's grid where
something was found, the confidence when asked for, and partial-volume-aware (soft) volumes from the class
probabilities on the model grid (`EngineResult.soft_volumes`)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np
import SimpleITK as sitk

from orbitai.boxes import bbox, grow
from orbitai.engine.mapping import Box, part_image
from orbitai.errors import InputError
from orbitai.io import Volume

#: How far (mm) beyond a structure's voxels its soft volume (:meth:`EngineResult.soft_volumes`) gathers its class's
#: probability, at least: on thick slices one slice thickness (what a structure fills partly lies in the next
#: slice, and the network's probability fades towards that slice's centre).
SOFT_MARGIN_MM = 3.0


@dataclass
class EngineResult:
    """Classes and confidence of one scan on the input's grid.

    ``classes`` covers only ``box`` (the found foreground plus a margin; None when nothing was
    found) with the geometry of that part of the input; ``box_confidence`` computes the maximum class
    probability there, :attr:`confidence` over the whole input grid (both only when asked for)."""

    classes: Volume | None
    box: Box | None
    box_confidence: Callable[[], np.ndarray] | None
    grid: Volume                         # the input scan: its geometry
    warnings: list[str]
    seconds: float = 0.0
    window_seconds: float = 0.0          # the sliding-window inference alone
    prep_seconds: float = 0.0            # resampling to the model grid and normalising
    # background's and each class's probability that can win somewhere, on the model-grid box around ``box`` (the
    # images the confidence reads; what :meth:`soft_volumes` sums)
    class_probabilities: dict[int, sitk.Image] | None = None

    def _whole(self, part: np.ndarray | None, fill, dtype) -> Volume:
        out = np.full(self.grid.shape, fill, dtype)
        if self.box is not None and part is not None:
            out[tuple(slice(a, b) for a, b in self.box)] = part
        return self.grid.with_array(out)

    def class_map(self) -> Volume:
        """The class map on the whole input grid (0 outside ``box``)."""
        return self._whole(None if self.classes is None else self.classes.array, 0, np.uint8)

    @property
    def confidence(self) -> Volume:
        """The maximum class probability on the whole input grid (1 outside ``box``: background,
        certain); made when asked for (a float copy of the whole scan)."""
        return self._whole(None if self.box_confidence is None else self.box_confidence(), 1.0, np.float32)

    def soft_volumes(self, labels: Volume, class_of: Mapping[int, int],
                     margin_mm: float | None = None) -> dict[int, float]:
        """Partial-volume-aware volumes (cm3) of the regions of ``labels`` (a label map on the input grid, e.g.
        the classes split into sides and cleaned): for each label value ``v`` of ``class_of`` (value -> model
        class), the sum of its class's probability over the model-grid voxels within ``margin_mm`` (default: the
        larger of :data:`SOFT_MARGIN_MM` and the scan's largest spacing) of ``v``'s voxels and nearer to them than
        to any other value of that class, times the model voxel's volume.

        On thick slices the label map keeps only the voxels a structure fills for the most part; the model
        grid (finer, and where the network's probabilities live) keeps the rest. Only the values found on the
        model grid are listed (a structure thinner than a model voxel may be missed there)."""
        out: dict[int, float] = {}
        if margin_mm is None:
            margin_mm = max(SOFT_MARGIN_MM, *self.grid.spacing)
        images = self.class_probabilities
        if not images or self.box is None:
            return out
        if tuple(labels.shape) != tuple(self.grid.shape):
            raise InputError(f"The label map (shape {labels.shape}) does not lie on the scan's grid "
                             f"(shape {self.grid.shape}).")
        part = sitk.GetImageFromArray(np.ascontiguousarray(labels.array[tuple(slice(a, b) for a, b in self.box)],
                                                           np.uint8))
        part.CopyInformation(part_image(self.grid, self.box))
        lab = sitk.GetArrayFromImage(sitk.Resample(part, images[0], sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                                   sitk.sitkUInt8))
        spacing = np.array(images[0].GetSpacing(), float)
        voxel_cm3 = float(np.prod(spacing)) / 1000.0
        pad = [int(math.ceil(margin_mm / s)) for s in spacing[::-1]]
        order = list(class_of)
        for v, c in class_of.items():
            box = bbox(lab == v, pad)                 # every voxel within the margin of v's
            if box is None or c not in images:
                continue
            near = _distance_mm(lab[box] == v, spacing) <= margin_mm
            # the same class's other values (the other side): a voxel nearer to one of them is theirs (ties: the
            # value listed first); only their voxels within the margin of this box can be nearer
            rivals = [w for w in order if w != v and class_of[w] == c]
            if rivals:
                big = grow(box, max(pad), lab.shape)
                inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big))
                mine = _distance_mm(lab[big] == v, spacing)[inner]
                for w in rivals:
                    if (lab[big] == w).any():
                        theirs = _distance_mm(lab[big] == w, spacing)[inner]
                        near &= (mine < theirs) | ((mine == theirs) & (order.index(v) < order.index(w)))
            prob = sitk.GetArrayViewFromImage(images[c])     # a view: the image is kept by self
            out[v] = float(prob[box][near].sum(dtype=np.float64)) * voxel_cm3
        return out


def _distance_mm(mask: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Distance (mm) of every voxel of ``mask``'s grid (spacing x, y, z) to the mask (0 inside)."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    img.SetSpacing(tuple(float(s) for s in spacing))
    d = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(img, insideIsPositive=False, squaredDistance=False,
                                                            useImageSpacing=True))
    return np.maximum(d, 0.0, out=d)
