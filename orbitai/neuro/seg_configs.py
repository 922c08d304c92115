"""White-matter lesion network: its input (context slices) and the intensity normalisation shared by
training and inference.

The network (:mod:`orbitai.neuro.lesion_net`, registered as ``ARCHITECTURE``) is a 2.5D MONAI U-Net:
it segments one axial 1 mm slice from ``CONTEXT`` neighbouring slices (channels).

Normalisation (inside the brain mask only): ``z = (x - median) / (1.4826 * MAD)`` of the brain's
intensities, clipped to ``[Z_FLOOR, Z_CEIL]``; outside the brain ``z = Z_FLOOR``
(:func:`orbitai.preprocess.intensity.masked_zscore`; the bundle's metadata names these constants).
"""
from __future__ import annotations

import numpy as np

from orbitai.neuro.lesion_net import ARCHITECTURE
from orbitai.preprocess.intensity import masked_zscore, median_mad

__all__ = ["ARCHITECTURE", "CONTEXT", "MAD_TO_SD", "Z_CEIL", "Z_FLOOR", "brain_stats", "normalise"]

#: Slice offsets fed as channels (slice k-2 .. k+2 on the 1 mm model grid).
CONTEXT = (-2, -1, 0, 1, 2)
Z_FLOOR, Z_CEIL = -6.0, 12.0
MAD_TO_SD = 1.4826


def brain_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD (not scaled) of the brain's intensities."""
    return median_mad(values)


def normalise(image: np.ndarray, brain: np.ndarray, median: float, mad: float) -> np.ndarray:
    """Robust z-score inside the brain (see module docstring), ``Z_FLOOR`` outside; float32."""
    return masked_zscore(image, brain, median, MAD_TO_SD * max(mad, 1e-6), (Z_FLOOR, Z_CEIL))
