"""The page's copy of the shown scan's overlays kept up to date by what changed (issue 81): after an edit (a paint
stroke, SmartFill's Accept, Undo, Redo) the server sends the page only the box of each label map that changed, with
its offset, and the page writes it into its copy (``static/orbitai_overlays.js``); a layer that did not change is
named only, and a new one, one with other segments or another grid, or a changed heat map goes whole.

`plan` compares a packing's layers with the ones published before it (`orbitai.web.client_slices.ClientSlices` holds
the versions and packs each layer as the plan says, off the server's loop).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__ = ["layer_id", "changed_box", "plan", "WHOLE", "SAME"]

#: How a layer goes to the page: whole, or named only (unchanged); otherwise its changed box (a tuple of slices).
WHOLE, SAME = "whole", "same"


def layer_id(layer: dict[str, Any]) -> tuple[str, str]:
    """A layer's identity across versions: its kind (labels, preview, heat) and node ID."""
    return layer["kind"], layer["node"]


def changed_box(old: np.ndarray, new: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """The smallest box ([k, j, i] slices) holding every voxel where ``new`` differs from ``old`` (same shape), or None
    when none does."""
    diff = old != new
    k = np.flatnonzero(diff.any(axis=(1, 2)))
    if k.size == 0:
        return None
    inside = diff[k[0]:k[-1] + 1]              # the other two axes read in the changed slices only
    j, i = np.flatnonzero(inside.any(axis=(0, 2))), np.flatnonzero(inside.any(axis=(0, 1)))
    return slice(int(k[0]), int(k[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1), slice(int(i[0]), int(i[-1]) + 1)


def _same_frame(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two layers hold the same values on the same grid (all but their voxels alike)."""
    keys = (set(a) | set(b)) - {"array", "ijk_to_ras"}
    if any(_differs(a.get(k), b.get(k)) for k in keys):
        return False
    ma, mb = a.get("ijk_to_ras"), b.get("ijk_to_ras")
    if ma is None or mb is None:
        return ma is None and mb is None and _same_voxels_grid(a, b)
    return bool(np.allclose(ma, mb)) and _same_voxels_grid(a, b)


def _same_voxels_grid(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["array"].shape == b["array"].shape and a["array"].dtype == b["array"].dtype)


def _differs(x: Any, y: Any) -> bool:
    return bool(np.any(np.asarray(x) != np.asarray(y))) if np.shape(x) == np.shape(y) else True


def plan(previous: dict[tuple[str, str], dict[str, Any]], layers: list[dict[str, Any]]) -> list[Any]:
    """For each of ``layers`` (with their arrays), how it goes to a page that holds ``previous`` (layer ID -> the
    layer published before): `SAME`, its changed box, or `WHOLE`. A heat map goes whole when it changed at all (its
    values are scaled to 16 bits per map)."""
    out: list[Any] = []
    for layer in layers:
        old = previous.get(layer_id(layer))
        if old is None or not _same_frame(old, layer):
            out.append(WHOLE)
            continue
        box = changed_box(old["array"], layer["array"])
        if box is None:
            out.append(SAME)
        elif layer["kind"] == "heat":
            out.append(WHOLE)
        else:
            out.append(box)
    return out
