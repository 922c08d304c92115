"""Superpixel / supervoxel maps for SmartPencil and SmartFill, computed once and cached.

SLIC (SimpleITK ``SLICImageFilter``, multi-threaded) on the working region. The annotator's resolution is
a superpixel size in millimetres (``size_mm``: the edge of the seed grid's cells, so a 1 mm head gets
regions of a few hundred voxels and a 0.5 mm orbit scan the same anatomy per region), or a number of
superpixels over the region (100, 500, 1000, 2000) when no size is given: the seed grid is chosen so
that superpixels are about cubic in millimetres. Intensities are divided by the
image's own noise level before SLIC, so one compactness works for CT (HU) and MRI (arbitrary
units) alike.

The cache is keyed by image identity (buffer address, shape, dtype, spacing and a checksum of a
strided sample of the voxels), region, resolution, mode (3D or the 2D slice) and compactness.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence, cast

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.lru import LRU

from ._common import AnnotationError, Region, check_image, noise_sigma, normalize_region, spacing_kji

RESOLUTIONS = (100, 500, 1000, 2000)
DEFAULT_COMPACTNESS = 3.0
#: SmartPencil's default superpixel size (mm): the seed grid's cell edge (benchmarks/bench_annotation.py measures the
#: median region on 1 mm heads: at most 500 voxels is the bar).
DEFAULT_SIZE_MM = 5.0


@dataclass(frozen=True)
class SuperpixelSettings:
    """How a superpixel map is made: ``n_superpixels`` over the region, or cells of ``size_mm`` when given (then the
    number is not used); ``mode`` '3d' (supervoxels of the region) or '2d' (the one slice along ``axis``); SLIC's
    ``compactness``."""

    n_superpixels: int = 1000
    size_mm: float | None = None
    mode: str = "3d"
    axis: int = 0
    compactness: float = DEFAULT_COMPACTNESS


#: SmartPencil's defaults: 1000 supervoxels over the region.
DEFAULT_SETTINGS = SuperpixelSettings()


@dataclass
class Superpixels:
    """Superpixel labels over a region of an image.

    ``labels`` has the region's shape (3D mode) or shape (1, rows, cols) of the one slice (2D mode;
    ``region`` then has a one-slice extent along ``axis``). Labels are 0..n_labels-1.
    """

    labels: np.ndarray
    region: Region
    n_labels: int
    mode: str = "3d"
    axis: int = 0
    _objects: list | None = field(default=None, repr=False)

    @property
    def objects(self) -> list:
        """Bounding box (slices in region coordinates) of every label."""
        if self._objects is None:
            self._objects = ndi.find_objects(self.labels + 1)
        return self._objects

    def label_at(self, point) -> int:
        """Superpixel label under an image voxel (k, j, i), or -1 outside the region."""
        rel = [int(p) - s.start for p, s in zip(point, self.region)]
        if any(r < 0 or r >= s.stop - s.start for r, s in zip(rel, self.region)):
            return -1
        return int(self.labels[tuple(rel)])

    def voxels_of(self, label: int) -> tuple[Region, np.ndarray]:
        """(image-space box, boolean mask in that box) of one superpixel."""
        box = self.objects[label]
        sub = self.labels[box] == label
        img_box = tuple(slice(r.start + b.start, r.start + b.stop) for r, b in zip(self.region, box))
        return cast(Region, img_box), sub

    def mask_of(self, label: int, shape) -> np.ndarray:
        out = np.zeros(shape, bool)
        box, sub = self.voxels_of(label)
        out[box] = sub
        return out

    def boundaries(self, slice_index: int, axis: int = 0, shape=None) -> np.ndarray:
        """Boolean boundary overlay of the superpixels on one image slice (image-slice shape).

        ``shape`` is the full image shape (defaults to the region's extent)."""
        if shape is None:
            shape = tuple(s.stop for s in self.region)
        plane = [n for a, n in enumerate(shape) if a != axis]
        out = np.zeros(plane, bool)
        r = self.region[axis]
        if not (r.start <= slice_index < r.stop):
            return out
        sl = np.take(self.labels, slice_index - r.start, axis=axis)
        b = np.zeros(sl.shape, bool)
        b[:-1, :] |= sl[:-1, :] != sl[1:, :]
        b[:, :-1] |= sl[:, :-1] != sl[:, 1:]
        others = [s for a, s in enumerate(self.region) if a != axis]
        out[others[0], others[1]] = b
        return out


def _fingerprint(image: np.ndarray, spacing) -> tuple:
    a = np.asarray(image)
    step = max(1, int(round((a.size / 32768) ** (1 / 3))))
    sample = np.ascontiguousarray(a[::step, ::step, ::step])
    h = hashlib.blake2b(sample.tobytes(), digest_size=12).hexdigest()
    addr = a.__array_interface__["data"][0]
    return (addr, a.shape, a.dtype.str, tuple(round(float(s), 6) for s in spacing), h)


class SuperpixelCache:
    """Small thread-safe LRU of `Superpixels` keyed by image identity, region and settings."""

    def __init__(self, max_items: int = 8):
        self._items: LRU[Superpixels] = LRU(max_items)
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, image, spacing, settings: SuperpixelSettings = DEFAULT_SETTINGS, region=None,
                       slice_index=None, key_extra=None, abort=None) -> Superpixels:
        """The cached map made with ``settings``, else a new one (kept). ``slice_index``: the slice of a 2D map;
        ``abort``: a `threading.Event` that stops a computation (raises `AnnotationError`)."""
        n_superpixels, size_mm, mode = settings.n_superpixels, settings.size_mm, settings.mode
        axis, compactness = settings.axis, settings.compactness
        a, sp = check_image(image, spacing)
        reg = normalize_region(region, a.shape)
        if mode == "2d":
            if slice_index is None:
                raise AnnotationError("2D superpixels need the slice index (the slice being annotated).")
            if not reg[axis].start <= int(slice_index) < reg[axis].stop:
                raise AnnotationError(f"Slice {slice_index} is outside the working region.")
            parts = list(reg)
            parts[axis] = slice(int(slice_index), int(slice_index) + 1)
            reg = cast(Region, tuple(parts))
        size = float(size_mm) if size_mm else None
        # 3D maps do not depend on the clicked view's axis: one map serves clicks in every view
        key = (_fingerprint(a, sp), tuple((s.start, s.stop) for s in reg), None if size else int(n_superpixels),
               size, mode, axis if mode == "2d" else 0, float(compactness), key_extra)
        found = self._items.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        result = compute_superpixels(a, sp, n_superpixels, reg, mode=mode, axis=axis, compactness=compactness,
                                     size_mm=size, abort=abort)
        self._items.put(key, result)
        return result

    def clear(self) -> None:
        self._items.clear()


#: Process-wide cache used by default (Slicer effects and scripts share it).
DEFAULT_CACHE = SuperpixelCache()


def compute_superpixels(image: np.ndarray, spacing: Sequence[float], n_superpixels: int = 1000,
                        region=None, mode: str = "3d", axis: int = 0,
                        compactness: float = DEFAULT_COMPACTNESS, iterations: int = 5,
                        size_mm: float | None = None, abort=None) -> Superpixels:
    """SLIC superpixels (``mode='2d'``: on the one slice the region spans along ``axis``). ``size_mm``: the
    superpixel size in mm (the seed grid's cell edge) instead of a number over the region; ``abort``: a
    `threading.Event` whose setting stops the computation (`AnnotationError`)."""
    a, sp = check_image(image, spacing)
    if mode not in ("2d", "3d"):
        raise AnnotationError(f"Superpixel mode must be '2d' or '3d', got {mode!r}.")
    n = int(n_superpixels)
    if size_mm is not None and not (np.isfinite(size_mm) and size_mm > 0):
        raise AnnotationError(f"The superpixel size must be a positive number of mm, got {size_mm}.")
    if n < 1 and size_mm is None:
        raise AnnotationError(f"The number of superpixels must be at least 1, got {n_superpixels}.")
    reg = normalize_region(region, a.shape)
    sub = np.asarray(a[reg], np.float32)
    sk = spacing_kji(sp)
    if mode == "2d":
        if sub.shape[axis] != 1:
            raise AnnotationError("2D superpixels need a region one slice thick along the slice axis.")
        plane = np.take(sub, 0, axis=axis)
        psp = np.delete(sk, axis)
        x = _normalise(plane)
        cell_mm = size_mm or np.sqrt(plane.size * np.prod(psp) / n)
        grid = [max(1, int(round(cell_mm / s))) for s in psp[::-1]]      # ITK order (x, y)
    else:
        x = _normalise(sub)
        cell_mm = size_mm or np.cbrt(sub.size * np.prod(sk) / n)
        grid = [max(1, int(round(cell_mm / s))) for s in sk[::-1]]
    img = sitk.GetImageFromArray(x)
    f = sitk.SLICImageFilter()
    f.SetSuperGridSize(grid)
    f.SetSpatialProximityWeight(float(compactness))
    f.SetMaximumNumberOfIterations(int(iterations))
    f.SetEnforceConnectivity(True)
    if abort is not None:       # checked at each of ITK's progress events (the filter stops with an exception)
        f.AddCommand(sitk.sitkProgressEvent, lambda: f.Abort() if abort.is_set() else None)
    try:
        out_img = f.Execute(img)
    except RuntimeError:
        if abort is not None and abort.is_set():
            raise AnnotationError("The superpixels were cancelled (the scan changed).") from None
        raise
    lab = sitk.GetArrayViewFromImage(out_img)          # a view: ``out_img`` must stay alive below
    # Consecutive labels 0..n-1 (SLIC may leave gaps after connectivity enforcement); a lookup
    # table is much faster than np.unique's sort on millions of voxels.
    present = np.bincount(lab.ravel()) > 0
    lut = (np.cumsum(present) - 1).astype(np.int32)
    uniq = np.nonzero(present)[0]
    lab = lut[lab]
    del out_img
    if mode == "2d":
        lab = np.expand_dims(lab, axis)
    return Superpixels(lab, reg, int(len(uniq)), mode, axis)


def _normalise(x: np.ndarray) -> np.ndarray:
    """Intensities in units of the image noise (so SLIC's compactness is modality independent)."""
    s = noise_sigma(x)
    med = float(np.median(x.ravel()[:: max(1, x.size // 100_000)]))
    out = x - np.float32(med)
    out *= np.float32(1.0 / s)
    return np.clip(out, -500, 500, out=out)
