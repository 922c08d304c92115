"""Classifier input of paper 003 ("Data Processing"): crop the FLAIR's black background with a fixed
crop kernel, crop the lesion image with the same kernel, resize to 100 x 100 x 100, augment by
shifting and flipping.

Any orientation and spacing: the FLAIR is first read in one canonical orientation (SimpleITK
``DICOMOrient`` to ``"LPS"``: array axes [z, y, x] = superior, posterior, left increasing), so
that the two views of :class:`orbitai.neuro.nets.TwoViewNet` mean the same anatomy for every
scan. The crop kernel is a box of that canonical grid; the 100^3 input is one resample of the
scan onto a regular grid covering the box (its own spacing per axis, the canonical direction), so
:func:`heat_to_flair` maps a 100^3 map back onto the FLAIR's grid with the exact inverse geometry.
The paper resizes with OpenCV per slice (bilinear); here one trilinear resample after a Gaussian
anti-aliasing filter (sigma = 0.4 x the output spacing along axes that shrink), so a small
lesion is blurred into the coarser grid rather than dropped between two samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.errors import InputError
from orbitai.io import Volume

#: The classifier's input image choices.
INPUT_MODES: tuple[str, ...] = ("lesion_mask", "flair", "flair_in_lesions")
#: The paper's wording supports the lesion image: "ii) we crop the WMH brain lesion image with the
#: fixed crop kernel that obtained at pervious step" -- the FLAIR only supplies the crop kernel
#: ("i) we crop the raw MRI T2-FLAIR images to remove the black background and get the fixed crop
#: kernel"), and the Discussion says the models "process WMH segmentation T2-FLAIR images".
DEFAULT_MODE = "lesion_mask"
#: Canonical orientation (SimpleITK/DICOM convention: axes increase towards Left, Posterior, Superior).
CANONICAL = "LPS"
#: Largest shift (voxels of the 100^3 input) of :func:`augment`.
MAX_SHIFT = 5


@dataclass(frozen=True)
class CropInfo:
    """Where a classifier input came from: the crop box on the canonical grid and the input grid."""

    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]   # [start, stop) per array axis z, y, x
    canonical_shape: tuple[int, int, int]
    size: int
    spacing: tuple[float, float, float]      # input grid (x, y, z) spacing, mm
    origin: tuple[float, float, float]       # physical (LPS) centre of input voxel [0, 0, 0]
    direction: tuple[float, ...]             # row-major 3x3 (the canonical direction)
    mode: str

    def grid(self) -> sitk.Image:
        """An empty image on the input grid (for resampling onto or from it)."""
        img = sitk.Image([self.size] * 3, sitk.sitkFloat32)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img


def canonical(vol: Volume) -> sitk.Image:
    """``vol`` as a SimpleITK image in :data:`CANONICAL` orientation (a lossless axis permutation/flip)."""
    return sitk.DICOMOrient(vol.to_sitk(), CANONICAL)


def crop_kernel(flair_array: np.ndarray, fraction: float = 0.1) -> tuple[slice, slice, slice]:
    """The fixed crop kernel: bounding box of the head (or brain, when skull-stripped) in a FLAIR array.

    Foreground = voxels above ``fraction`` of the 99th percentile of the positive voxels, opened
    once (noise specks), largest connected component (a stray marker or ghost outside the head is
    left out)."""
    a = np.asarray(flair_array, dtype=np.float32)
    if a.ndim != 3:
        raise InputError(f"The FLAIR is {a.ndim}D; the crop kernel needs a 3D image.")
    pos = a[a > 0]
    if pos.size == 0:
        raise InputError("The FLAIR holds no positive voxel; it looks blank, nothing to crop.")
    fg = a > fraction * float(np.percentile(pos, 99))
    opened = ndi.binary_opening(fg)
    fg = opened if opened.any() else fg
    lab, n = ndi.label(fg)
    if n > 1:
        fg = lab == 1 + int(np.argmax(ndi.sum(fg, lab, range(1, n + 1))))
    idx = np.argwhere(fg)
    lo, hi = idx.min(0), idx.max(0) + 1
    return (slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1])), slice(int(lo[2]), int(hi[2])))


def _input_grid(can: sitk.Image, box: tuple[slice, slice, slice], size: int, mode: str) -> CropInfo:
    """The size^3 grid whose voxels tile the box (array order z, y, x; SimpleITK order x, y, z)."""
    start = [box[2].start, box[1].start, box[0].start]
    n = [box[2].stop - box[2].start, box[1].stop - box[1].start, box[0].stop - box[0].start]
    sp = np.asarray(can.GetSpacing(), float)
    out_sp = sp * np.asarray(n, float) / size
    # output voxel i covers input continuous index [start - 0.5 + i n/size, start - 0.5 + (i+1) n/size]
    first = np.asarray(start, float) - 0.5 + 0.5 * np.asarray(n, float) / size
    origin = can.TransformContinuousIndexToPhysicalPoint([float(v) for v in first])
    b = [(int(s.start), int(s.stop)) for s in box]
    cz, cy, cx = (int(v) for v in can.GetSize()[::-1])
    return CropInfo(box=(b[0], b[1], b[2]), canonical_shape=(cz, cy, cx),
                    size=size, spacing=tuple(float(v) for v in out_sp),  # type: ignore[arg-type]
                    origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
                    direction=tuple(float(v) for v in can.GetDirection()), mode=mode)


def _resample(img: sitk.Image, info: CropInfo, interp=sitk.sitkLinear) -> np.ndarray:
    can = sitk.DICOMOrient(sitk.Cast(img, sitk.sitkFloat32), CANONICAL)
    sp_can = np.asarray(can.GetSpacing(), float)
    # anti-aliasing (sigma in mm) along the axes that shrink
    sig = 0.4 * np.asarray(info.spacing, float)
    sigma = [float(s) if o > 1.0001 * i else 0.0 for s, o, i in zip(sig, info.spacing, sp_can)]
    if any(sigma):
        can = sitk.SmoothingRecursiveGaussian(can, [max(s, 1e-3) for s in sigma])
    out = sitk.Resample(can, info.grid(), sitk.Transform(), interp, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(out).astype(np.float32)


def _check_pair(flair: Volume, lesions: Volume | None) -> None:
    if flair.array.ndim != 3 or min(flair.array.shape) < 2:
        raise InputError(f"The FLAIR has shape {flair.array.shape}; the classifier needs a 3D volume.")
    if not np.all(np.isfinite(flair.array)):
        raise InputError("The FLAIR contains NaN or infinite values; give a valid image.")
    if lesions is not None and not lesions.same_geometry(flair):
        raise InputError("The lesion segmentation's grid differs from the FLAIR's (size, spacing, origin or "
                         "direction); give a segmentation made on this FLAIR.")


def classifier_input(flair: Volume, lesions: Volume | None, mode: str = DEFAULT_MODE,
                     size: int = 100) -> tuple[np.ndarray, CropInfo]:
    """The (size, size, size) float32 classifier input and where it came from.

    ``mode``: ``lesion_mask`` (the binary lesion image, resampled: values in [0, 1]), ``flair``
    (the FLAIR, divided by the 99th percentile of its cropped foreground), ``flair_in_lesions``
    (that FLAIR times the lesion mask). The array axes are canonical (superior, posterior, left)."""
    if mode not in INPUT_MODES:
        raise InputError(f"Unknown input mode {mode!r}; choose one of {', '.join(INPUT_MODES)}.")
    if lesions is None and mode != "flair":
        raise InputError(f"Input mode {mode!r} needs a lesion segmentation.")
    _check_pair(flair, lesions)
    can = canonical(flair)
    a = sitk.GetArrayViewFromImage(can)
    box = crop_kernel(a)
    info = _input_grid(can, box, size, mode)
    out: np.ndarray | None = None
    if mode in ("flair", "flair_in_lesions"):
        fg = np.asarray(a[box], np.float32)
        scale = float(np.percentile(fg[fg > 0], 99)) if (fg > 0).any() else 1.0
        out = _resample(flair.to_sitk(), info) / max(scale, 1e-6)
    if mode in ("lesion_mask", "flair_in_lesions"):
        assert lesions is not None
        les = lesions.with_array((lesions.array > 0).astype(np.float32))
        m = np.clip(_resample(les.to_sitk(), info), 0.0, 1.0)
        out = m if out is None else out * m
    assert out is not None
    return np.ascontiguousarray(out, dtype=np.float32), info


def heat_to_flair(heat: np.ndarray, info: CropInfo, flair: Volume) -> Volume:
    """A (size, size, size) map on the classifier's input grid, resampled (trilinear) onto the FLAIR's
    own grid and geometry; 0 outside the crop box."""
    h = np.asarray(heat, dtype=np.float32)
    if h.shape != (info.size,) * 3:
        raise InputError(f"The heat map has shape {h.shape}; expected {(info.size,) * 3} (the classifier input).")
    img = sitk.GetImageFromArray(h)
    img.CopyInformation(info.grid())
    ref = flair.to_sitk()
    out = sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return flair.with_array(sitk.GetArrayFromImage(out).astype(np.float32))


def augment(x: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_SHIFT,
            flip_p: float = 0.5) -> np.ndarray:
    """The paper's augmentation on the last three (canonical) axes: a random shift of up to
    ``max_shift`` voxels per axis (zero fill) and, with probability ``flip_p``, a left-right flip
    (the last axis; the brain's only near-symmetry)."""
    a = np.asarray(x)
    out = np.zeros_like(a)
    shifts = rng.integers(-max_shift, max_shift + 1, size=3)
    src, dst = [], []
    for s, n in zip(shifts, a.shape[-3:]):
        s = int(s)
        src.append(slice(max(0, -s), n - max(0, s)))
        dst.append(slice(max(0, s), n - max(0, -s)))
    lead = (slice(None),) * (a.ndim - 3)
    out[lead + tuple(dst)] = a[lead + tuple(src)]
    if rng.random() < flip_p:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)
