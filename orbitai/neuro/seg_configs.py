"""White-matter lesion network and the intensity normalisation shared by training and inference.

The network is a 2.5D MONAI U-Net: it segments one axial 1 mm slice from ``CONTEXT`` neighbouring
slices (channels). A 2D network fits the CPU budget (training <= 30 min, a whole-head 1 mm FLAIR in
seconds) and, trained on slices degraded like 3-5 mm acquisitions, reads thick-slice clinical FLAIR
resampled to 1 mm.

Normalisation (inside the brain mask only): ``z = (x - median) / (1.4826 * MAD)`` of the brain's
intensities, clipped to ``[Z_FLOOR, Z_CEIL]``; outside the brain ``z = Z_FLOOR``.
"""
from __future__ import annotations

import numpy as np
from torch import nn

from orbitai.models import register

ARCHITECTURE = "neuro_lesion_unet25d"
#: Slice offsets fed as channels (slice k-2 .. k+2 on the 1 mm model grid).
CONTEXT = (-2, -1, 0, 1, 2)
Z_FLOOR, Z_CEIL = -6.0, 12.0
MAD_TO_SD = 1.4826


@register(ARCHITECTURE)
def neuro_lesion_unet25d(in_channels: int = len(CONTEXT), out_channels: int = 2,
                         channels: tuple[int, ...] | list[int] = (16, 32, 64, 128),
                         num_res_units: int = 1) -> nn.Module:
    """MONAI 2D residual U-Net (batch norm, PReLU), strides of 2 between levels."""
    from monai.networks.nets import UNet

    ch = tuple(int(c) for c in channels)
    return UNet(spatial_dims=2, in_channels=in_channels, out_channels=out_channels, channels=ch,
                strides=(2,) * (len(ch) - 1), num_res_units=num_res_units, norm="batch")


def brain_stats(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD (not scaled) of the brain's intensities."""
    v = np.asarray(values, np.float64)
    med = float(np.median(v))
    return med, float(np.median(np.abs(v - med)))


def normalise(image: np.ndarray, brain: np.ndarray, median: float, mad: float) -> np.ndarray:
    """Robust z-score inside the brain (see module docstring), ``Z_FLOOR`` outside; float32."""
    z = (np.asarray(image, np.float32) - np.float32(median)) / np.float32(MAD_TO_SD * max(mad, 1e-6))
    z = np.clip(z, Z_FLOOR, Z_CEIL)
    return np.where(brain, z, np.float32(Z_FLOOR)).astype(np.float32)
