"""Many ROIs of one image with each filtered image computed once.

pyradiomics' ``RadiomicsFeatureExtractor.execute(image, mask)`` normalises the image, checks the
mask (a label-statistics pass over the whole image), and recomputes every filtered image
(wavelet bands, square, square root, ...) for each call. None of the filters depends on the mask
(only LBP3D reads it), so for several ROIs of one patient -- the IVGC ROI strategies -- this module
runs those steps once and then, per ROI, calls the extractor's own ``computeShape`` and
``computeFeatures`` on the same crops ``execute`` would make. The values are the ones ``execute``
gives (tested to a relative difference <= 1e-6; in practice they are identical).

Steps of ``execute`` reproduced here, each by pyradiomics' own function: ``normalizeImage``
(whole image, before filtering), the ``get<Type>Image`` generators, ``cropToTumorMask`` with no
padding. The mask's bounding box is computed with numpy instead of ``checkMask``'s
``LabelStatisticsImageFilter`` over the whole image (same box: lowest and highest voxel index of the
ROI per axis), with ``checkMask``'s checks (more than one voxel, ``minimumROIDimensions``,
``minimumROISize``). Settings that make ``execute`` change the grid or the mask per ROI
(``resampledPixelSpacing``, ``preCrop``, ``resegmentRange``) and mask-dependent filters (LBP3D) are
run through ``execute`` per ROI instead, so any parameter file still gives pyradiomics' values.
"""
from __future__ import annotations

import collections
import time
from typing import Any, Dict, Mapping, Optional

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.radiomics.protocol import RadiomicsProtocol, make_extractor

#: Image types whose filter reads the mask: computed per ROI.
MASK_DEPENDENT_TYPES = frozenset({"LBP3D"})
#: Settings under which ``execute`` resamples, crops or re-segments per ROI: the whole pass runs per ROI.
PER_ROI_SETTINGS = ("resampledPixelSpacing", "preCrop", "resegmentRange")

#: One ROI's features: pyradiomics name -> value, in ``execute``'s order.
Features = Dict[str, Any]


def bounding_box(mask: np.ndarray, roi: str, settings: Mapping[str, Any]) -> np.ndarray:
    """pyradiomics' bounding box ``[x0, x1, y0, y1, z0, z1]`` (inclusive voxel indices) of a
    [z, y, x] boolean mask, with ``checkMask``'s validity checks as one-line InputErrors."""
    idx = np.nonzero(mask)
    if not idx[0].size:
        raise InputError(f"ROI {roi!r} is empty; radiomics needs at least two voxels.")
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) for i in idx]
    box = np.array([lo[2], hi[2], lo[1], hi[1], lo[0], hi[0]])
    ndims = int(np.sum((box[1::2] - box[0::2] + 1) > 1))
    min_dims = settings.get("minimumROIDimensions", 2)
    if ndims == 0:
        raise InputError(f"ROI {roi!r} holds a single voxel; radiomics needs more.")
    if ndims < min_dims:
        raise InputError(f"ROI {roi!r} spans only {ndims} dimension(s); the parameters need {min_dims} "
                         "(minimumROIDimensions).")
    min_size = settings.get("minimumROISize")
    if min_size is not None and idx[0].size <= min_size:
        raise InputError(f"ROI {roi!r} has {idx[0].size} voxels; the parameters need more than {min_size} "
                         "(minimumROISize).")
    return box


def _mask_image(mask: np.ndarray, reference: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(mask.astype(np.uint32))   # getMask's UInt32
    img.CopyInformation(reference)
    return img


def _wavelet_region(image: sitk.Image, masks: Mapping[str, sitk.Image], boxes: Mapping[str, np.ndarray],
                    args: Mapping[str, Any]) -> tuple[sitk.Image, dict[str, sitk.Image], dict[str, np.ndarray]]:
    """The part of the image the wavelet bands of the ROIs depend on, with the masks and boxes in it.

    pyradiomics' stationary wavelet transform filters each axis with a periodic (wrap-around)
    extension, so a band value depends on the input within the filter's reach along each axis (the
    filter length, doubled per level). On an axis where the ROIs lie at least that far inside the
    image, the bands over the ROIs are the same when computed on a crop reaching that far beyond
    them; an axis where they come closer to an edge (where wrap-around matters) is kept whole. This
    cuts the transform, the dominant shared cost, to the orbit region of a large scan.
    """
    import pywt  # type: ignore[import-untyped]

    wavelet = args.get("wavelet", "coif1")
    length = (wavelet if isinstance(wavelet, pywt.Wavelet) else pywt.Wavelet(wavelet)).dec_len
    reach = length * 2 ** (int(args.get("start_level", 0)) + int(args.get("level", 1))) + 2
    stacked = np.array(list(boxes.values()))
    size = np.array(image.GetSize())
    lo, hi = stacked[:, 0::2].min(axis=0) - reach, stacked[:, 1::2].max(axis=0) + reach
    whole = (lo < 0) | (hi > size - 1)
    lo, hi = np.where(whole, 0, lo), np.where(whole, size - 1, hi)
    if whole.all():
        return image, dict(masks), dict(boxes)
    index, extent = [int(v) for v in lo], [int(v) for v in hi - lo + 1]
    crop = sitk.RegionOfInterest(image, extent, index)
    shift = np.repeat(lo, 2)
    return (crop, {k: sitk.RegionOfInterest(m, extent, index) for k, m in masks.items()},
            {k: b - shift for k, b in boxes.items()})


#: Feature classes whose values depend only on the ROI's voxels and on which of them are neighbours
#: (at most ``distances`` apart): safe to compute on a compacted ROI (see :func:`_compacted`).
COMPACTABLE_CLASSES = frozenset({"firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"})


def _compacted(mask: sitk.Image, box: np.ndarray, gap: int) -> Optional[tuple[tuple[np.ndarray, ...], sitk.Image]]:
    """Index arrays that cut the ROI's bounding box down to the ROI, and the mask on them; None when
    that would not make the box smaller.

    A bilateral ROI (the same rectus of both orbits) has a bounding box reaching across the head,
    mostly empty, and pyradiomics' texture matrices, discretisation and first-order statistics run
    over the whole box. Along each axis, every run of box planes holding no ROI voxel is shortened to
    ``gap`` planes (more than the largest neighbour distance): no two ROI voxels become neighbours
    that were not, none stop being, the ROI's voxels keep their order and spacing. First-order,
    GLCM, GLRLM, GLSZM, GLDM and NGTDM values are therefore unchanged (tested against ``execute``);
    shape, which depends on the ROI's geometry, is always computed on the original grid.
    """
    arr = sitk.GetArrayViewFromImage(mask)
    lo = (box[4], box[2], box[0])
    hi = (box[5], box[3], box[1])
    sub = arr[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1] != 0
    keep: list[np.ndarray] = []
    for axis in range(3):
        occupied = sub.any(axis=tuple(a for a in range(3) if a != axis))
        idx, empty_run = [], 0
        for i, filled in enumerate(occupied):
            empty_run = 0 if filled else empty_run + 1
            if filled or empty_run <= gap:
                idx.append(lo[axis] + i)
        keep.append(np.asarray(idx))
    if all(len(k) == h - lo_ + 1 for k, h, lo_ in zip(keep, hi, lo)):
        return None
    index = tuple(keep)
    return index, _take(mask, index)


def _take(image: sitk.Image, index: tuple[np.ndarray, ...]) -> sitk.Image:
    """The voxels of ``image`` at the [z, y, x] index arrays, as an image with its spacing and direction."""
    arr = sitk.GetArrayViewFromImage(image)
    out = sitk.GetImageFromArray(np.ascontiguousarray(arr[np.ix_(*index)]))
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint([int(index[2][0]), int(index[1][0]), int(index[0][0])]))
    return out


class _Clock:
    """Adds up the wall seconds spent inside ``with clock:`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start


class SharedExtractor:
    """pyradiomics extraction of several ROIs of one image, each filtered image computed once."""

    def __init__(self, protocol: RadiomicsProtocol | str = "ivgc"):
        self.protocol = protocol if isinstance(protocol, RadiomicsProtocol) else RadiomicsProtocol.load(protocol)
        self.extractors = [make_extractor(p, f"{self.protocol.source or self.protocol.name}, pass {i}")
                           for i, p in enumerate(self.protocol.passes, start=1)]

    def execute(self, image: sitk.Image, masks: Mapping[str, np.ndarray],
                timings: Optional[dict[str, float]] = None) -> dict[str, Features]:
        """ROI name -> pyradiomics' feature dict (no diagnostics) for each [z, y, x] boolean mask
        on ``image``'s grid, in the order ``execute`` gives them, passes one after another.

        ``timings``, when given, receives ``per_roi_s``: the seconds spent in pyradiomics' own
        per-ROI feature code (``computeShape``/``computeFeatures``), which no sharing can remove."""
        clock = _Clock()
        if not masks:
            raise InputError("No ROI to extract radiomics features from.")
        out: dict[str, Features] = {roi: collections.OrderedDict() for roi in masks}
        normalised: dict[tuple, sitk.Image] = {}
        boxes: dict[str, np.ndarray] = {}
        mask_images: dict[str, sitk.Image] = {}
        for ex in self.extractors:
            settings = dict(ex.settings)
            settings["label"] = 1
            if any(settings.get(k) for k in PER_ROI_SETTINGS):
                for roi, m in masks.items():
                    out[roi].update(self._plain(ex, image, _mask_image(m, image), roi))
                continue
            for roi, m in masks.items():
                boxes[roi] = bounding_box(m, roi, settings)
                mask_images.setdefault(roi, _mask_image(m, image))
            img = self._normalised(image, settings, normalised)
            for roi in masks:
                with clock:
                    out[roi].update(ex.computeShape(img, mask_images[roi], boxes[roi], **settings))
            self._filtered(ex, img, settings, masks, boxes, mask_images, out, clock)
        if timings is not None:
            timings["per_roi_s"] = clock.seconds
        return out

    @staticmethod
    def _normalised(image: sitk.Image, settings: Mapping[str, Any], cache: dict[tuple, sitk.Image]) -> sitk.Image:
        """``loadImage``'s normalisation (whole image), once per distinct normalisation setting."""
        from radiomics import imageoperations

        if not settings.get("normalize", False):
            return image
        key = (settings.get("normalizeScale", 1), settings.get("removeOutliers"))
        if key not in cache:
            cache[key] = imageoperations.normalizeImage(image, **settings)
        return cache[key]

    @staticmethod
    def _filtered(ex, img: sitk.Image, settings: Mapping[str, Any], masks: Mapping[str, np.ndarray],
                  boxes: Mapping[str, np.ndarray], mask_images: Mapping[str, sitk.Image],
                  out: dict[str, Features], clock: "_Clock") -> None:
        from radiomics import imageoperations

        compact = set(ex.enabledFeatures) - {"shape", "shape2D"} <= COMPACTABLE_CLASSES
        gap = max(settings.get("distances") or [1]) + 1
        for image_type, custom in ex.enabledImagetypes.items():
            args = dict(settings)
            args.update(custom)
            make = getattr(imageoperations, f"get{image_type}Image")
            source, source_masks, source_boxes = img, mask_images, boxes
            if image_type == "Wavelet":
                source, source_masks, source_boxes = _wavelet_region(img, mask_images, boxes, args)
            views = {roi: _compacted(source_masks[roi], source_boxes[roi], gap) if compact else None
                     for roi in masks}
            runs: list[Optional[str]] = list(masks) if image_type in MASK_DEPENDENT_TYPES else [None]
            for only in runs:
                first = source_masks[only if only is not None else next(iter(masks))]
                for filtered, type_name, kwargs in make(source, first, **args):
                    for roi in (masks if only is None else [only]):
                        view = views[roi]
                        if view is None:
                            crop, crop_mask = imageoperations.cropToTumorMask(filtered, source_masks[roi],
                                                                              source_boxes[roi])
                        else:
                            crop, crop_mask = _take(filtered, view[0]), view[1]
                        with clock:
                            out[roi].update(ex.computeFeatures(crop, crop_mask, type_name, **kwargs))

    @staticmethod
    def _plain(ex, image: sitk.Image, mask: sitk.Image, roi: str) -> Features:
        try:
            result = ex.execute(image, mask, label=1)
        except ValueError as exc:
            raise InputError(f"Radiomics of ROI {roi!r} failed: {' '.join(str(exc).split())}") from exc
        return collections.OrderedDict((k, v) for k, v in result.items() if not k.startswith("diagnostics_"))
