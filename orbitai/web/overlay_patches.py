"""The page's copy of the shown scan's overlays kept up to date by what changed (issue 81): after an edit (a paint
stroke, SmartFill's Accept, Undo, Redo) the server sends the page only the box of each label map that changed, with
its offset, and the page writes it into its copy (``static/orbitai_overlays.js``); a layer that did not change is
named only, and a new one, one with other segments or another grid, or a changed heat map goes whole.

`plan` compares a packing's layers with the ones published before it (`orbitai.web.client_slices.ClientSlices` holds
the versions and packs each layer as the plan says, off the server's loop). Where the edits since then are known
(`EditBoxes`: the annotation tools record each edit's box, and Undo and Redo the box of the edit they take back or
again), a label map is rebuilt and compared in that box only, not over the whole grid; else it is compared whole.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Hashable, Optional, Union

import numpy as np

__all__ = ["layer_id", "changed_box", "box_of", "clip", "union", "EditBoxes", "plan", "WHOLE", "SAME", "NOTHING", "Box", "PRIVATE_KEYS", "work_voxels"]

#: How a layer goes to the page: whole, or named only (unchanged); otherwise its changed box (a tuple of slices).
WHOLE, SAME = "whole", "same"
#: A box [k, j, i] of a label map (three slices, steps of 1).
Box = tuple[slice, slice, slice]
#: The box of an edit that changed nothing.
NOTHING: tuple = ()
#: Layer keys that are the server's own (not compared between versions, not sent to the page).
PRIVATE_KEYS = ("array", "ijk_to_ras", "stamp", "box")


def layer_id(layer: dict[str, Any]) -> tuple[str, str]:
    """A layer's identity across versions: its kind (labels, preview, heat) and node ID."""
    return layer["kind"], layer["node"]


def changed_box(old: np.ndarray, new: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """The smallest box ([k, j, i] slices) holding every voxel where ``new`` differs from ``old`` (same shape), or None
    when none does."""
    return box_of(old != new)


def box_of(diff: np.ndarray) -> Optional[tuple[slice, slice, slice]]:
    """The smallest box ([k, j, i] slices) holding every true voxel of the 3D bool array ``diff``, or None."""
    k = np.flatnonzero(diff.any(axis=(1, 2)))
    if k.size == 0:
        return None
    inside = diff[k[0]:k[-1] + 1]              # the other two axes read in the changed slices only
    j, i = np.flatnonzero(inside.any(axis=(0, 2))), np.flatnonzero(inside.any(axis=(0, 1)))
    return slice(int(k[0]), int(k[-1]) + 1), slice(int(j[0]), int(j[-1]) + 1), slice(int(i[0]), int(i[-1]) + 1)


def union(a: Union[Box, tuple], b: Union[Box, tuple]) -> Union[Box, tuple]:
    """The smallest box holding the boxes ``a`` and ``b`` (either may be `NOTHING`)."""
    if not a or not b:
        return a or b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def clip(box: Union[Box, tuple], shape: tuple) -> Union[Box, tuple]:
    """``box`` within an array of ``shape`` (`NOTHING` when nothing of it is)."""
    if not box:
        return NOTHING
    out = tuple(slice(max(0, s.start), min(n, s.stop)) for s, n in zip(box, shape))
    return out if all(s.stop > s.start for s in out) else NOTHING


class EditBoxes:
    """Where the recorded edits of each segmentation node changed it: links (its content stamp before the edit, after
    it, the box [k, j, i] of the shown scan's grid holding every voxel it changed, or `NOTHING`).
    `orbitai.mrml.segment_editor.content_stamp` changes with any change of a node's label maps, so a change nobody
    recorded breaks the chain and `since` says it does not know (the caller then compares the whole map)."""

    def __init__(self, keep: int = 64) -> None:
        self._links: dict[str, deque] = {}
        self.keep = keep

    def record(self, node_id: str, before: Hashable, after: Hashable, box: Union[Box, tuple]) -> None:
        """An edit of node ``node_id`` took its stamp from ``before`` to ``after``, changing voxels in ``box`` only."""
        if before is None or after is None:
            return
        self._links.setdefault(node_id, deque(maxlen=self.keep)).append((before, after, box))

    def since(self, node_id: str, stamp: Hashable, now: Hashable) -> Optional[Union[Box, tuple]]:
        """The box holding every change of node ``node_id`` from stamp ``stamp`` to stamp ``now`` (`NOTHING` when
        they are equal); None when a change between them was not recorded."""
        if stamp is None or now is None:
            return None
        links = list(self._links.get(node_id, ()))
        box: Union[Box, tuple] = NOTHING
        for _ in range(len(links) + 1):
            if stamp == now:
                return box
            step = next((link for link in reversed(links) if link[0] == stamp), None)
            if step is None:
                return None
            stamp, box = step[1], union(box, step[2])
        return None


def _same_frame(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two layers hold the same values on the same grid (all but their voxels alike)."""
    keys = (set(a) | set(b)) - set(PRIVATE_KEYS)
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


def _changed_in(old: np.ndarray, new: np.ndarray, where: Union[Box, tuple, None]) -> Optional[Box]:
    """`changed_box` of ``old`` and ``new``, compared in the box ``where`` only when it is given (nothing changed
    outside it)."""
    if where is None:
        return changed_box(old, new)
    if not where:
        return None
    box = changed_box(old[where], new[where])
    if box is None:
        return None
    return tuple(slice(w.start + b.start, w.start + b.stop) for w, b in zip(where, box))    # type: ignore[return-value]


def plan(previous: dict[tuple[str, str], dict[str, Any]], layers: list[dict[str, Any]]) -> list[Any]:
    """For each of ``layers`` (with their arrays), how it goes to a page that holds ``previous`` (layer ID -> the
    layer published before): `SAME`, its changed box, or `WHOLE`. A layer's ``box`` (from `EditBoxes`), when it has
    one, holds every change since ``previous``: it is compared there only. A heat map goes whole when it changed at
    all (its values are scaled to 16 bits per map)."""
    out: list[Any] = []
    for layer in layers:
        old = previous.get(layer_id(layer))
        if old is None or not _same_frame(old, layer):
            out.append(WHOLE)
            continue
        box = _changed_in(old["array"], layer["array"], layer.get("box"))
        if box is None:
            out.append(SAME)
        elif layer["kind"] == "heat":
            out.append(WHOLE)
        else:
            out.append(box)
    return out


def work_voxels(previous: dict[tuple[str, str], dict[str, Any]], layers: list[dict[str, Any]]) -> int:
    """About how many voxels `plan` and the packing read for ``layers`` over ``previous``: a layer's known ``box``
    (an edit's), else its whole array."""
    total = 0
    for layer in layers:
        box = layer.get("box") if layer_id(layer) in previous else None
        total += int(np.prod([s.stop - s.start for s in box])) if box is not None else int(layer["array"].size)
    return total
