"""SmartPencil: a click adds (or, with shift, removes) the superpixel under the cursor.

The superpixel map is computed once per image, working region, resolution and mode and then
served from the cache, so a click costs one label lookup and a copy of the superpixel's voxels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import AnnotationError, check_image, check_mask, check_point, normalize_region
from .superpixels import DEFAULT_CACHE, DEFAULT_COMPACTNESS, Superpixels, SuperpixelCache


@dataclass
class ClickResult:
    mask: np.ndarray          # the segment after the click (bool, image shape)
    modifier: np.ndarray      # the clicked superpixel (bool, image shape): what was added/removed
    label: int                # superpixel label
    changed: int              # number of voxels that changed
    superpixels: Superpixels  # the (cached) map used, e.g. for the boundary overlay
    message: str


def superpixel_map(image, spacing, n_superpixels: int = 1000, region=None, mode: str = "3d",
                   slice_index: int | None = None, axis: int = 0,
                   compactness: float = DEFAULT_COMPACTNESS, cache: SuperpixelCache | None = None,
                   key_extra=None, size_mm: float | None = None, abort=None) -> Superpixels:
    """The superpixel map SmartPencil uses (from the cache; computed on first use). ``size_mm``: superpixel
    size in mm instead of a number over the region; ``abort``: see `compute_superpixels`."""
    cache = DEFAULT_CACHE if cache is None else cache
    return cache.get_or_compute(image, spacing, n_superpixels, region=region, mode=mode,
                                slice_index=slice_index, axis=axis, compactness=compactness,
                                key_extra=key_extra, size_mm=size_mm, abort=abort)


def smartpencil_click(image, spacing, segment, point, *, remove: bool = False,
                      n_superpixels: int = 1000, region=None, mode: str = "3d", axis: int = 0,
                      cache: SuperpixelCache | None = None, key_extra=None,
                      size_mm: float | None = None) -> ClickResult:
    """Add (``remove=False``) or remove the superpixel under voxel ``point`` = (k, j, i).

    ``mode='2d'`` uses superpixels of the slice through the point (along ``axis``); ``'3d'`` uses
    supervoxels of the working ``region`` (None = whole image). ``size_mm``: superpixel size in mm (then
    ``n_superpixels`` is not used). ``segment`` is not modified. The superpixels' compactness is
    `DEFAULT_COMPACTNESS` (`superpixel_map` takes another).
    """
    a, sp = check_image(image, spacing)
    seg = check_mask(segment, a.shape, "segment")
    p = check_point(point, a.shape)
    reg = normalize_region(region, a.shape)
    if not all(s.start <= v < s.stop for v, s in zip(p, reg)):
        raise AnnotationError(f"The point {p} is outside the working region "
                              f"{tuple((s.start, s.stop) for s in reg)}; move the region or click inside it.")
    spx = superpixel_map(a, sp, n_superpixels, reg, mode, slice_index=p[axis] if mode == "2d" else None,
                         axis=axis, cache=cache, key_extra=key_extra, size_mm=size_mm)
    label = spx.label_at(p)
    box, sub = spx.voxels_of(label)
    modifier = np.zeros(a.shape, bool)
    modifier[box] = sub
    out = seg.copy()
    before = out[box].copy()
    if remove:
        out[box] &= ~sub
    else:
        out[box] |= sub
    changed = int(np.count_nonzero(before != out[box]))
    verb = "removed" if remove else "added"
    msg = (f"Superpixel {label} ({int(sub.sum())} voxels): {changed} voxels {verb}." if changed else
           f"Superpixel {label} was already {'outside' if remove else 'inside'} the segment: nothing changed.")
    return ClickResult(out, modifier, label, changed, spx, msg)
