"""Training data for segmentation: a case's image and label map on the model grid, and label
values turned into model classes."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orbitai.io import Volume, VolumeError, segmentation_on_image
from orbitai.preprocess.grid import model_grid, resample_onto


def to_classes(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Label values -> the model's classes through a lookup table (for the orbit scheme,
    :func:`orbitai.orbit.rules.class_lut`)."""
    if labels.min() < 0 or labels.max() >= len(lut):
        raise VolumeError(f"Label values must lie in 0..{len(lut) - 1} (the orbit scheme); found "
                          f"{int(labels.min())}..{int(labels.max())}.")
    return lut[labels.astype(np.int64)]


def resample_pair(image: Volume, labels: Volume, spacing: Sequence[float],
                  what: str = "the segmentation") -> tuple[np.ndarray, np.ndarray]:
    """Image (linear) and labels (nearest) on the model's axis-aligned grid; labels off the image's grid
    are refused in one line starting with ``what`` (:func:`orbitai.io.segmentation_on_image`)."""
    labels, _ = segmentation_on_image(image, labels, what, option=None)
    ref = model_grid(image, spacing)
    return resample_onto(image, ref), resample_onto(labels, ref, label=True)
