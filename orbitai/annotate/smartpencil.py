"""SmartPencil: a click adds (or, with shift, removes) the superpixel under the cursor.

The superpixel map is computed once per image, working region, resolution and mode and then
served from the cache, so a click costs one label lookup and a copy of the superpixel's voxels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._common import AnnotationError, check_image, check_mask, check_point, normalize_region
from .superpixels import DEFAULT_CACHE, DEFAULT_SETTINGS, SuperpixelCache, Superpixels, SuperpixelSettings


@dataclass
class ClickResult:
    mask: np.ndarray          # the segment after the click (bool, image shape)
    modifier: np.ndarray      # the clicked superpixel (bool, image shape): what was added/removed
    label: int                # superpixel label
    changed: int              # number of voxels that changed
    superpixels: Superpixels  # the (cached) map used, e.g. for the boundary overlay
    message: str


def superpixel_map(image, spacing, settings: SuperpixelSettings = DEFAULT_SETTINGS, region=None,
                   slice_index: int | None = None, cache: SuperpixelCache | None = None,
                   key_extra=None, abort=None) -> Superpixels:
    """The superpixel map SmartPencil uses (from the cache; computed on first use) with ``settings`` (number or
    size in mm, mode, axis, compactness); ``abort``: see `compute_superpixels`."""
    cache = DEFAULT_CACHE if cache is None else cache
    return cache.get_or_compute(image, spacing, settings, region=region, slice_index=slice_index,
                                key_extra=key_extra, abort=abort)


def smartpencil_click(image, spacing, segment, point, *, remove: bool = False,
                      settings: SuperpixelSettings = DEFAULT_SETTINGS, region=None,
                      cache: SuperpixelCache | None = None, key_extra=None) -> ClickResult:
    """Add (``remove=False``) or remove the superpixel under voxel ``point`` = (k, j, i).

    ``settings.mode='2d'`` uses superpixels of the slice through the point (along ``settings.axis``); ``'3d'`` uses
    supervoxels of the working ``region`` (None = whole image); ``settings`` also give their number or size in mm
    and compactness (`SuperpixelSettings`). ``segment`` is not modified.
    """
    a, sp = check_image(image, spacing)
    seg = check_mask(segment, a.shape, "segment")
    p = check_point(point, a.shape)
    reg = normalize_region(region, a.shape)
    if not all(s.start <= v < s.stop for v, s in zip(p, reg)):
        raise AnnotationError(f"The point {p} is outside the working region "
                              f"{tuple((s.start, s.stop) for s in reg)}; move the region or click inside it.")
    spx = superpixel_map(a, sp, settings, reg, slice_index=p[settings.axis] if settings.mode == "2d" else None,
                         cache=cache, key_extra=key_extra)
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
