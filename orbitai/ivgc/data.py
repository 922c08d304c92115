"""The image input of paper 001's deep models (ResNet-50, RDINet) and a streaming dataset.

Preprocessing (paper 001, "Convolutional neural network"): the bounding box of the muscle
annotation of the ROI strategy (:mod:`orbitai.ivgc.rois`; both orbits: the box spans the chosen
recti of the two sides),
the slices that hold the ROI (no margin along the slice axis), an in-plane margin of
:data:`MARGIN_MM` (the paper gives none; a 2 mm rim keeps the muscle borders inside the box), then
resized to 128 x 128 x 32 (:data:`TARGET_SHAPE`, array order slices x rows x columns) and z-scored.
The resize runs before the z-score so that the network's input has mean 0 and SD 1 exactly.
The slice axis is the volume's third index axis (k), the acquisition axis of a coronal series.

Every crop is a :class:`RoiCrop`: the box in the MRI's voxel indices and the MRI's geometry, from
which :meth:`RoiCrop.to_volume` places a map on the network's grid (a Grad-CAM) back onto the MRI.

:class:`IvgcImageDataset` streams a cohort from disk; with ``cache_dir`` each case's deterministic
preprocessing is kept as a checksummed ``.npz`` keyed by the files (path, size, modification time)
and the preprocessing parameters, so later epochs skip reading and resizing the MRI.

Online augmentation (:class:`ImageAugment`, the paper's random noise, rotation and scaling) uses
MONAI's Rand* transforms seeded from the trainer's generator, so a run is repeatable.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np
import torch
from monai.transforms import Compose, NormalizeIntensity, RandGaussianNoise, RandRotate, RandZoom, Resize
from monai.transforms.utils import generate_spatial_bounding_box

from orbitai.bundle.core import sha256_input
from orbitai.classify.data import FileDataset, Sample
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.cohort.manifest import Case, ManifestError, binary_label, naming_case
from orbitai.errors import InputError
from orbitai.io import Volume, require_values, resample_like
from orbitai.ivgc.features import load_case
from orbitai.ivgc.rois import RoiStrategy, parse_strategies, strategy_masks
from orbitai.training.checkpoint import load_arrays, save_arrays

if TYPE_CHECKING:
    from orbitai.bundle.core import Bundle
    from orbitai.ivgc.rois import RoiStrategy

#: The paper's network input, 128 x 128 x 32, in array order (slices, rows, columns).
TARGET_SHAPE: tuple[int, int, int] = (32, 128, 128)
#: In-plane margin around the ROI's bounding box (mm).
MARGIN_MM = 2.0
#: Version of the preprocessing; part of the cache key, so a change here invalidates cached inputs.
PREPROCESS_VERSION = 1


def strategy_of(strategy: "str | RoiStrategy") -> "RoiStrategy":
    """An ROI strategy of :mod:`orbitai.ivgc.rois` by name (``mrlr``, ``all``, ...) or as given."""
    return strategy if isinstance(strategy, RoiStrategy) else parse_strategies([str(strategy)])[0]


def roi_mask(labels: Volume, strategy: "str | RoiStrategy") -> np.ndarray:
    """The ROI of ``strategy`` (its recti, both orbits) as a boolean array; labels outside the orbit
    scheme and a rectus the strategy needs but the segmentation lacks are refused, named
    (:func:`orbitai.ivgc.rois.strategy_masks`)."""
    s = strategy_of(strategy)
    return strategy_masks(np.asarray(labels.array), [s])[s.name]


@dataclass(frozen=True)
class RoiCrop:
    """A crop box of an MRI (array indices ``[start, stop)`` in (k, j, i) order), the network shape it
    was resized to, and the MRI's grid."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    shape: tuple[int, int, int]
    image_shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def around(cls, image: Volume, mask: np.ndarray, shape: Sequence[int] = TARGET_SHAPE,
               margin_mm: float = MARGIN_MM) -> "RoiCrop":
        """The bounding box of ``mask`` on ``image``'s grid: the mask's slices, ``margin_mm`` in-plane
        (MONAI's bounding-box helper, clipped to the image)."""
        if not mask.any():
            raise InputError("The ROI mask is empty; the segmentation holds none of the ROI's muscles.")
        sx, sy, _ = image.spacing
        margin = [0, math.ceil(margin_mm / sy - 1e-9), math.ceil(margin_mm / sx - 1e-9)]
        start, end = generate_spatial_bounding_box(mask[None], margin=margin, allow_smaller=True)
        start = [max(0, int(s)) for s in start]
        end = [min(n, int(e)) for n, e in zip(mask.shape, end)]
        return cls(tuple(start), tuple(end), tuple(int(n) for n in shape),  # type: ignore[arg-type]
                   tuple(int(n) for n in image.shape), image.spacing, image.origin,  # type: ignore[arg-type]
                   tuple(float(v) for v in np.asarray(image.direction).ravel()))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop))  # type: ignore[return-value]

    def reference(self) -> Volume:
        """An empty volume on the MRI's grid."""
        return Volume(np.zeros(self.image_shape, np.float32), self.spacing, self.origin,
                      np.reshape(self.direction, (3, 3)))

    def network_grid(self, values: np.ndarray) -> Volume:
        """``values`` (the network shape) as a volume at the physical place of the network's voxels.

        The resize samples with ``align_corners=False``: output voxel o of an axis of n_in input
        voxels resized to n_out lies at input index start + (o + 0.5) n_in / n_out - 0.5."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != self.shape:
            raise InputError(f"Expected a map of the network's shape {self.shape}, got {values.shape}.")
        scale_kji = [(b - a) / n for a, b, n in zip(self.start, self.stop, self.shape)]
        first_kji = [a + 0.5 * s - 0.5 for a, s in zip(self.start, scale_kji)]
        ref = self.reference()
        origin = ref.index_to_physical(first_kji[::-1])
        sx, sy, sz = (sp * s for sp, s in zip(self.spacing, scale_kji[::-1]))
        return Volume(values, (sx, sy, sz), tuple(origin), ref.direction)

    def to_volume(self, values: np.ndarray) -> Volume:
        """A map on the network's grid placed on the MRI's grid (linear interpolation, 0 outside the box)."""
        return resample_like(self.network_grid(values), self.reference(), label=False, default=0.0)


def check_pair(image: Volume, labels: Volume) -> None:
    """Refuse a non-finite MRI or a segmentation off the MRI's grid."""
    require_values(image, "MRI")
    if labels.shape != image.shape or not labels.same_geometry(image, tol=1e-3):
        raise InputError(f"The segmentation (size {labels.size_xyz}, spacing {tuple(round(s, 4) for s in labels.spacing)})"
                         f" does not lie on the MRI's grid (size {image.size_xyz}, spacing "
                         f"{tuple(round(s, 4) for s in image.spacing)}); resample it onto the MRI first.")


def preprocess(image: Volume, labels: Volume, strategy: "str | RoiStrategy", shape: Sequence[int] = TARGET_SHAPE,
               margin_mm: float = MARGIN_MM, roi_only: bool = False) -> tuple[np.ndarray, RoiCrop]:
    """The network input (1, slices, rows, columns) float32 and its :class:`RoiCrop`.

    ``roi_only`` (one reading of the paper's "region segmentation" step; off by default, the paper's
    input being the bounding box): after the z-score over the box, voxels outside the ROI's muscles
    are set to 0 (the box's mean), so the network sees the muscles' intensities alone."""
    check_pair(image, labels)
    mask = roi_mask(labels, strategy)
    crop = RoiCrop.around(image, mask, shape, margin_mm)
    box = torch.from_numpy(np.ascontiguousarray(image.array[crop.slices], dtype=np.float32))[None]
    resized = Resize(crop.shape, mode="trilinear", align_corners=False, anti_aliasing=True)(box)
    x = np.asarray(NormalizeIntensity()(resized), dtype=np.float32)
    if roi_only:
        m = torch.from_numpy(np.ascontiguousarray(mask[crop.slices], dtype=np.float32))[None]
        inside = np.asarray(Resize(crop.shape, mode="trilinear", align_corners=False)(m)) > 0.5
        x = np.where(inside, x, np.float32(0.0))
    return np.ascontiguousarray(x, dtype=np.float32), crop


@dataclass(frozen=True)
class AugmentSpec:
    """The paper's online augmentation (random noise, rotation, scaling); it gives no magnitudes, these
    are ours: in-plane rotation within +-``rotate_deg``, isotropic zoom within ``zoom``, Gaussian noise
    of SD ``noise_std`` (the input is z-scored), each applied with probability ``prob``."""

    noise_std: float = 0.1
    rotate_deg: float = 10.0
    zoom: tuple[float, float] = (0.9, 1.1)
    prob: float = 0.5


class ImageAugment:
    """A trainer ``SampleAugment``: MONAI's RandRotate (about the slice axis, i.e. in-plane), RandZoom
    (keeping the size) and RandGaussianNoise on ``sample[key]``, seeded from the trainer's generator."""

    def __init__(self, spec: AugmentSpec = AugmentSpec(), key: str = "image"):
        self.spec, self.key = spec, key
        self.transform = Compose([
            RandRotate(range_x=math.radians(spec.rotate_deg), prob=spec.prob, keep_size=True, mode="bilinear",
                       padding_mode="border"),
            RandZoom(prob=spec.prob, min_zoom=spec.zoom[0], max_zoom=spec.zoom[1], mode="trilinear",
                     align_corners=False, padding_mode="edge", keep_size=True),
            RandGaussianNoise(prob=spec.prob, mean=0.0, std=spec.noise_std),
        ])

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        self.transform.set_random_state(seed=int(rng.integers(2 ** 31 - 1)))
        out = self.transform(torch.as_tensor(np.asarray(sample[self.key], dtype=np.float32)))
        return {**sample, self.key: np.ascontiguousarray(np.asarray(out, dtype=np.float32))}


def case_label(case: Case) -> int:
    """The manifest's ``label`` (1 = responder to IVGC, 0 = non-responder)."""
    return binary_label(case, "non-responder", "responder")


def _path(path: Path) -> np.ndarray:
    """The dataset's file "reader": the path as a 0-d string array; :meth:`IvgcImageDataset.prepare`
    reads the MRI and its segmentation together (the crop needs both)."""
    return np.asarray(str(path))


class IvgcImageDataset(FileDataset):
    """Streams IVGC cases: each ``__getitem__`` reads one MRI and its segmentation and returns
    ``{"image": (1, 32, 128, 128), <vectors>..., "case_id", "label"}``; nothing of the cohort is
    held in memory beyond the per-case vectors (``radiomics``, ``clinical``). The file columns
    reach :meth:`prepare` (the :class:`FileDataset` transform) as paths."""

    def __init__(self, images: Sequence[str | os.PathLike], segmentations: Sequence[str | os.PathLike],
                 strategy: "str | RoiStrategy", labels: Optional[Sequence[int] | np.ndarray] = None, *,
                 vectors: Optional[Mapping[str, np.ndarray]] = None, case_ids: Optional[Sequence[str]] = None,
                 shape: Sequence[int] = TARGET_SHAPE, margin_mm: float = MARGIN_MM, roi_only: bool = False,
                 cache_dir: Optional[str | os.PathLike] = None):
        super().__init__({"image": images, "segmentation": segmentations}, labels, vectors=vectors,
                         case_ids=case_ids, transform=self.prepare, reader=_path)
        self.strategy = strategy_of(strategy)
        self.shape = tuple(int(n) for n in shape)
        self.margin_mm = float(margin_mm)
        self.roi_only = bool(roi_only)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)

    @classmethod
    def from_cases(cls, cases: Sequence[Case], strategy: "str | RoiStrategy", *, with_labels: bool = True,
                   vectors: Optional[Mapping[str, np.ndarray]] = None, **kw) -> "IvgcImageDataset":
        """A dataset of manifest cases (labels from the ``label`` column when ``with_labels``)."""
        missing = [c.case_id for c in cases if c.segmentation is None]
        if missing:
            raise ManifestError(f"Case {missing[0]} has no segmentation; the image input is cropped to the "
                                "muscles of the manifest's 'segmentation' column.")
        segmentations = [c.segmentation for c in cases if c.segmentation is not None]
        labels = [case_label(c) for c in cases] if with_labels else None
        return cls([c.image for c in cases], segmentations, strategy, labels, vectors=vectors,
                   case_ids=[c.case_id for c in cases], **kw)

    def _cache_path(self, image: Path, segmentation: Path) -> Path:
        assert self.cache_dir is not None

        key = {"files": [[str(p.resolve()), sha256_input(p)] for p in (image, segmentation)],
               "roi": [self.strategy.name, *self.strategy.values], "shape": self.shape,
               "margin_mm": self.margin_mm, "roi_only": self.roi_only, "version": PREPROCESS_VERSION}
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
        return self.cache_dir / f"{digest}.npz"

    def read(self, image: Path, segmentation: Path, who: str) -> tuple[np.ndarray, RoiCrop]:
        """One case's network input and crop (from the cache when there is one); errors name ``who``."""
        cache = self._cache_path(image, segmentation) if self.cache_dir is not None else None
        if cache is not None:
            z = load_arrays(cache, "IVGC preprocessing cache")
            if z is not None and z["x"].shape == (1, *self.shape):
                return z["x"], RoiCrop(*(tuple(z[k].tolist()) for k in RoiCrop.__dataclass_fields__))
        # the checks of the radiomics path (3D, finite, MRI not CT, orbit labels, segmentation resampled
        # onto the MRI when it overlaps it): one set of rules for every IVGC model's input
        sitk_image, label_array = load_case(image, segmentation, who)
        mri = Volume.from_sitk(sitk_image)
        try:
            x, crop = preprocess(mri, mri.with_array(label_array), self.strategy, self.shape, self.margin_mm,
                                 self.roi_only)
        except InputError as exc:
            raise InputError(f"Case {who}: {exc}") from None
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            save_arrays(cache, {"x": x, **{k: np.asarray(v) for k, v in vars(crop).items()}})
        return x, crop

    def load(self, index: int) -> tuple[np.ndarray, RoiCrop]:
        """Case ``index``'s network input and crop."""
        image = self.files["image"][index]
        who = self.case_ids[index] if self.case_ids else image.name
        with naming_case(self.case_ids[index] if self.case_ids else ""):
            return self.read(image, self.files["segmentation"][index], who)

    def prepare(self, sample: Sample) -> Sample:
        """The :class:`FileDataset` transform: the case's file paths become its network input."""
        image, segmentation = Path(str(sample.pop("image"))), Path(str(sample.pop("segmentation")))
        with naming_case(str(sample.get("case_id") or "")):
            sample["image"], _ = self.read(image, segmentation, str(sample.get("case_id") or image.name))
        return sample


def deep_dataset(bundle: "Bundle", net: Any, cases: Sequence[Case], radiomics: Optional[np.ndarray],
                 cache_dir: Optional[Path] = None) -> IvgcImageDataset:
    """A deep bundle's inputs of ``cases`` as in training: the image crop by its input block and its strategy; the
    selected ``radiomics`` and the clinical features (the training cohort's fill for missing ones) when it takes them."""
    meta = bundle.metadata
    spec = meta.get("input") or {}
    vectors: dict[str, np.ndarray] = {}
    if "radiomics" in net.input_names:
        assert radiomics is not None
        vectors["radiomics"] = radiomics.astype(np.float32)
    if "clinical" in net.input_names:
        raw = IVGC_CLINICAL.parse_rows([c.row for c in cases], [c.case_id for c in cases])
        vectors["clinical"] = IVGC_CLINICAL.impute(raw, meta.get("clinical_fill") or {}).astype(np.float32)
    return IvgcImageDataset.from_cases(list(cases), str(meta["strategy"]), with_labels=False, vectors=vectors or None,
                                       shape=tuple(spec.get("shape_array", TARGET_SHAPE)),
                                       margin_mm=float(spec.get("margin_mm", MARGIN_MM)),
                                       roi_only=bool(spec.get("roi_only", False)), cache_dir=cache_dir)
