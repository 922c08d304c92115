"""Where on the model grid a task's structures can lie (:class:`Focus`), and the engine's use of a focus that looks
on a coarser grid than the model's (:func:`focused_part`: a 1 mm whole head is never resampled whole onto the
model's finer grid)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional, cast

import numpy as np
import SimpleITK as sitk

from orbitai.boxes import Region
from orbitai.io import Volume
from orbitai.preprocess.grid import model_grid, resample_onto, subgrid
from orbitai.preprocess.intensity import normalisation_of, normalise_with

__all__ = ["Focus", "focused_part", "intersect", "shifted"]


@dataclass(frozen=True)
class Focus:
    """Where on the model grid a task's structures can lie: ``find`` (normalised grid [k, j, i], spacing x, y, z)
    -> a box of slices, or None for the whole scan (e.g. :func:`orbitai.orbit.rules.orbit_search_box`).
    ``grid_factor`` > 1: ``find`` is given the scan on a grid that many times coarser than the model's, and its box
    (on that grid) is the only part resampled onto the model's grid (:func:`focused_part`)."""

    find: Callable[[np.ndarray, Sequence[float]], Optional[Region]]
    grid_factor: float = 1.0

    def __call__(self, norm: np.ndarray, spacing: Sequence[float]) -> Optional[Region]:
        return self.find(norm, spacing)


def intersect(a: tuple[slice, ...], b: tuple[slice, ...], shape: Sequence[int]) -> tuple[slice, slice, slice]:
    """The box both ``a`` and ``b`` cover in an array of ``shape`` (at least one voxel along each axis)."""
    out = []
    for x, y, n in zip(a, b, shape):
        lo = max(x.start or 0, y.start or 0)
        out.append(slice(lo, max(lo + 1, min(n if x.stop is None else x.stop, n if y.stop is None else y.stop))))
    return cast("tuple[slice, slice, slice]", tuple(out))


def shifted(box: tuple[slice, ...], by: tuple[slice, ...]) -> tuple[slice, slice, slice]:
    """``box`` (slices with starts and stops) moved by the starts of ``by``."""
    return tuple(slice(b.start + o.start, b.stop + o.start) for b, o in zip(box, by))  # type: ignore[return-value]


def focused_part(vol: Volume, ref: sitk.Image, spacing: Sequence[float], intensity: dict[str, Any],
                 focus: Focus) -> tuple[np.ndarray, tuple[slice, slice, slice]] | None:
    """A focus that looks on a coarse grid (``grid_factor`` > 1, e.g. the orbits' in a whole head): the scan resampled
    onto that grid and normalised there (the normalisation's figures measured on the whole scan), the focus run on
    it, and only the part of the model grid ``ref`` it returns resampled and normalised with the same figures. A 1 mm
    head is then never resampled whole onto the model's finer grid (0.5 s of 2 s). (normalised part, its region of
    ``ref``), or None when the focus keeps the whole scan (the caller resamples it whole)."""
    factor = focus.grid_factor
    coarse_spacing = [float(v) * factor for v in spacing]
    coarse = resample_onto(vol, model_grid(vol, coarse_spacing))
    figures = normalisation_of(coarse, intensity)
    found = focus(normalise_with(coarse, intensity, figures, reuse=True), coarse_spacing)
    del coarse
    if found is None:
        return None
    shape = ref.GetSize()[::-1]
    region = cast("tuple[slice, slice, slice]", tuple(
        slice(max(0, int(np.floor(r.start * factor))), min(n, int(np.ceil((r.stop - 1) * factor)) + 1))
        for r, n in zip(found, shape)))
    if any(r.stop <= r.start for r in region):
        return None
    part = resample_onto(vol, subgrid(ref, region))
    return normalise_with(part, intensity, figures, reuse=True), region
