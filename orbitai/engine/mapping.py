"""Between the model grid and the input's grid: the box of one on the other (`grid_region_on_input`,
`input_box_on_grid`, `foreground_box`, `content_box`), the class probabilities on a box of the model grid
(`region_probabilities`) and the exact class map and confidence on the input's grid from them (`map_classes`)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, cast

import numpy as np
import SimpleITK as sitk
import torch

from orbitai.boxes import Region, bbox, grow, split_boxes
from orbitai.io import Volume
from orbitai.preprocess.grid import empty_image

#: A region of the input as [(k0, k1), (j0, j1), (i0, i1)] (half-open voxel ranges).
Box = list[tuple[int, int]]


def grid_region_on_input(region: Region, grid: sitk.Image, vol: Volume, margin_mm: float = 0.0) -> Box:
    """[(k0, k1), (j0, j1), (i0, i1)] of ``vol`` covering the box ``region`` of the model grid
    ``grid`` (three slices [k, j, i]) plus ``margin_mm``, clipped to ``vol``."""
    lo = np.array([region[2].start, region[1].start, region[0].start], float)
    hi = np.array([region[2].stop, region[1].stop, region[0].stop], float) - 1
    m = np.ceil(margin_mm / np.array(grid.GetSpacing())) if margin_mm else np.zeros(3)
    lo, hi = lo - m, hi + m
    corners = [grid.TransformContinuousIndexToPhysicalPoint([float(c) for c in (x, y, z)])
               for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    ijk = np.array([vol.physical_to_index(c) for c in corners])
    size = np.array(vol.size_xyz)
    a = np.clip(np.floor(ijk.min(0)).astype(int), 0, size - 1)
    b = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 1, size)
    return [(int(a[2]), int(b[2])), (int(a[1]), int(b[1])), (int(a[0]), int(b[0]))]


def foreground_box(fg: np.ndarray, grid: sitk.Image, vol: Volume, margin_mm: float = 5.0) -> Box | None:
    """[(k0, k1), (j0, j1), (i0, i1)] of ``vol`` covering the model-grid mask ``fg`` plus a margin;
    None when ``fg`` is empty."""
    region = bbox(fg)
    return None if region is None else grid_region_on_input(region, grid, vol, margin_mm)


def content_box(x: np.ndarray, margin: int = 8) -> tuple[slice, slice, slice]:
    """Slices of ``x`` (a normalised model-grid scan) around every voxel above its minimum, plus
    ``margin`` voxels: what lies outside is the scan's lowest value only (CT air and the fill around a
    resampled tilted series, all 0 after the CT window), which the sliding window pads with anyway,
    so the network runs on the box alone."""
    return bbox(x > x.min() + 1e-6, margin) or (slice(None), slice(None), slice(None))


def input_box_on_grid(box: Box, vol: Volume, grid: sitk.Image, grow: int = 2) -> Region:
    """The box (three slices [k, j, i]) of the model grid ``grid`` covering the part ``box`` of ``vol``
    plus ``grow`` voxels: every grid voxel a linear interpolation there reads. Clipped to ``grid``."""
    corners = [vol.index_to_physical([i, j, k]) for i in (box[2][0], box[2][1] - 1)
               for j in (box[1][0], box[1][1] - 1) for k in (box[0][0], box[0][1] - 1)]
    ijk = np.array([grid.TransformPhysicalPointToContinuousIndex([float(v) for v in c]) for c in corners])
    size = np.array(grid.GetSize())
    lo = np.clip(np.floor(ijk.min(0)).astype(int) - grow, 0, size)
    hi = np.clip(np.ceil(ijk.max(0)).astype(int) + grow + 1, 0, size)
    return cast(Region, tuple(slice(int(lo[a]), int(hi[a])) for a in (2, 1, 0)))


def part_image(vol: Volume, part: Box) -> sitk.Image:
    """An empty image on the part ``part`` of ``vol``'s grid: a resampling target."""
    return empty_image([b - a for a, b in part], vol.spacing, vol.direction,
                       vol.index_to_physical([part[2][0], part[1][0], part[0][0]]))


def class_image(probs: np.ndarray, c: int, grid: sitk.Image) -> sitk.Image:
    """Class ``c`` of the model-grid probabilities ``probs`` (C, k, j, i) as an image on ``grid``."""
    img = sitk.GetImageFromArray(probs[c])
    img.CopyInformation(grid)
    return img


def resample_class(img: sitk.Image, c: int, ref: sitk.Image) -> np.ndarray:
    """Class ``c``'s probability image linearly resampled onto ``ref`` (outside the model grid:
    background, certain)."""
    return sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear,
                                                1.0 if c == 0 else 0.0, sitk.sitkFloat32))


def region_probabilities(logits: torch.Tensor, crop: tuple[slice, ...], shape: tuple[int, ...],
                         region: Region) -> np.ndarray:
    """Softmax of ``logits`` (C, *crop shape: the content box ``crop`` of a model grid of ``shape``) on the
    box ``region`` of that grid, (C, *region shape); outside the crop background, certain."""
    probs = np.zeros((logits.shape[0], *(r.stop - r.start for r in region)), np.float32)
    probs[0] = 1.0
    inside = tuple(slice(max(r.start, c.start or 0), min(r.stop, c.stop if c.stop is not None else n))
                   for r, c, n in zip(region, crop, shape))
    if all(v.stop > v.start for v in inside):           # softmax over that part of the crop only
        part = logits[(slice(None),) + tuple(slice(v.start - (c.start or 0), v.stop - (c.start or 0))
                                             for v, c in zip(inside, crop))]
        probs[(slice(None),) + tuple(slice(v.start - r.start, v.stop - r.start) for v, r in zip(inside, region))] = \
            torch.softmax(part, dim=0).numpy()
    return probs


def map_classes(probs: np.ndarray, grid: sitk.Image, vol: Volume, box: Box,
                images: dict[int, sitk.Image] | None = None) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """Class (argmax, ties to the lower class) on the part ``box`` of ``vol`` from the class
    probabilities ``probs`` (C, k, j, i) on the model grid ``grid``, linearly interpolated, and a
    function giving the winning probability there (the confidence: made only when asked for).

    Exact, and fast: an interpolated value is a weighted mean of 8 neighbours and the winner's is at
    least 1/C, so a foreground class can win only within one voxel of where it reaches 1/C on the model
    grid. There (one box per piece, e.g. per orbit) it and the background are resampled; everywhere
    else the class is background. The resamplings run on two threads (SimpleITK releases the GIL) and
    are merged in class order. The probability images made for it (background and each class that can win, on
    ``grid``) are also put into ``images`` when given: the confidence keeps them, so a caller reads them at no
    cost."""
    floor = 1.0 / probs.shape[0] - 1e-4          # below 1/C by more than rounding: never the winner
    parts: list[tuple[int, Box]] = []
    for c in range(1, probs.shape[0]):
        for piece in split_boxes(probs[c] >= floor):
            part = [(max(a, pa), min(b, pb)) for (a, b), (pa, pb)
                    in zip(box, grid_region_on_input(grow(piece, 1, probs[c].shape), grid, vol))]
            if all(b > a for a, b in part):
                parts.append((c, part))

    made = {c: class_image(probs, c, grid) for c in {0, *(c for c, _ in parts)}}   # one copy per class
    if images is not None:
        images.update(made)
    images = made

    def resampled(c: int, part: Box) -> np.ndarray:
        return resample_class(images[c], c, part_image(vol, part))

    with ThreadPoolExecutor(2) as pool:
        maps = list(pool.map(lambda job: (resampled(0, job[1]), resampled(*job)), parts))
    shape = tuple(b - a for a, b in box)
    cls = np.zeros(shape, np.uint8)
    # the best probability so far, over the parts' joint box ``used`` only (-1: no class can win here)
    used = [(min(p[ax][0] for _, p in parts), max(p[ax][1] for _, p in parts)) if parts else (a, a)
            for ax, (a, _) in enumerate(box)]
    best = np.full([b - a for a, b in used], -1.0, np.float32)
    for (c, part), (p0, pc) in zip(parts, maps):   # in class order: ties go to the lower class
        bv = best[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, used))]   # views: updated in place
        cv = cls[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(part, box))]
        np.maximum(bv, p0, out=bv)
        better = pc > bv
        bv[better] = pc[better]
        cv[better] = c

    def confidence() -> np.ndarray:
        """The winning probability on ``box``: background's where no foreground class can win."""
        out = resampled(0, box)
        inner = out[tuple(slice(a - o, b - o) for (a, b), (o, _) in zip(used, box))]
        np.copyto(inner, best, where=best >= 0)
        return out

    return cls, confidence
