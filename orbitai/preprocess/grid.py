"""Model grids: an axis-aligned grid at a model's spacing covering a scan, and resampling onto it."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io import Volume


def model_grid(vol: Volume, spacing: Sequence[float]) -> sitk.Image:
    """An axis-aligned (LPS) grid at ``spacing`` covering the input's physical bounding box."""
    corners = np.array([[i, j, k] for i in (0, vol.size_xyz[0] - 1) for j in (0, vol.size_xyz[1] - 1)
                        for k in (0, vol.size_xyz[2] - 1)], float)
    pts = np.array([vol.index_to_physical(c) for c in corners])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    step = np.asarray(spacing, float)
    size = np.maximum(1, np.floor((hi - lo) / step + 1e-6).astype(int) + 1)
    ref = sitk.Image([int(s) for s in size], sitk.sitkFloat32)
    ref.SetSpacing(tuple(step))
    ref.SetOrigin(tuple(lo))
    ref.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return ref


def resample_onto(vol: Volume, ref: sitk.Image, label: bool = False) -> np.ndarray:
    """``vol`` on the grid ``ref`` as a [k, j, i] array: images linearly as float32 with the
    image's minimum outside it, label maps by nearest neighbour with 0 outside."""
    if label:
        return sitk.GetArrayFromImage(sitk.Resample(vol.to_sitk(), ref, sitk.Transform(),
                                                    sitk.sitkNearestNeighbor, 0))
    fill = float(np.min(vol.array))       # interpolated in double precision whatever the input type
    return sitk.GetArrayFromImage(sitk.Resample(vol.to_sitk(), ref, sitk.Transform(), sitk.sitkLinear, fill,
                                                sitk.sitkFloat32))
