"""A segmentation against its image's grid: the one check that both lie in the same physical space (half a
voxel), a crop of the image's own voxels embedded losslessly, and resampling onto another grid."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io.volume import Volume, VolumeError


#: How far (in the image's voxels, at any corner) a segmentation's grid may lie from its image's and still
#: be the same physical space: the round-off of file headers, never a misplaced segmentation.
HALF_VOXEL = 0.5
#: The option that asks for a segmentation on another grid to be resampled onto its image's.
RESAMPLE_OPTION = "--resample-masks"


def grid_difference(image: Volume, other: Volume, voxels: float = HALF_VOXEL) -> str | None:
    """How ``other``'s grid differs from ``image``'s physical space (shape, spacing, origin or direction),
    or None when it is the same grid: as many voxels per axis, and each corner voxel of ``other`` within
    ``voxels`` (per axis, in ``image``'s voxels) of the same corner voxel of ``image``."""
    if image.shape != other.shape:
        return f"shape {other.shape} instead of the image's {image.shape}"
    n = np.asarray(image.size_xyz, float) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
    off = np.abs(image.physical_to_index(other.index_to_physical(corners)) - corners).max()
    if off <= voxels:
        return None
    sp_i, sp_o = np.asarray(image.spacing, float), np.asarray(other.spacing, float)
    shift = np.asarray(other.origin, float) - np.asarray(image.origin, float)
    if (np.abs(sp_o - sp_i) / sp_i * np.maximum(n, 1)).max() > voxels:
        return (f"spacing {tuple(round(float(v), 4) for v in sp_o)} mm instead of "
                f"{tuple(round(float(v), 4) for v in sp_i)} mm")
    if np.abs(image.physical_to_index(other.origin)).max() > voxels:
        return (f"origin shifted by {tuple(round(float(v), 3) for v in shift)} mm "
                f"({float(np.linalg.norm(shift)):.3f} mm)")
    return "a different direction (orientation) matrix"


def embed_on_lattice(image: Volume, labels: Volume, voxels: float = HALF_VOXEL) -> Volume | None:
    """``labels`` put into an empty array of ``image``'s grid when it is a crop of the image's voxels (same
    spacing and direction, every corner within ``voxels`` of a voxel centre, its whole box inside the image
    and smaller than it: a segmentation cropped to its extent, as Slicer saves ``.seg.nrrd`` files); else
    None. Lossless: voxels are copied, never interpolated. A grid of the image's size moved by whole voxels
    is not a crop (it is a shifted segmentation) and gives None."""
    if labels.array.ndim != 3:
        return None
    n = np.asarray(labels.size_xyz, float) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
    at = image.physical_to_index(labels.index_to_physical(corners))
    start = np.round(at[0])
    if np.abs(at - (corners + start)).max() > voxels:
        return None
    lo = start.astype(int)[::-1]                      # (k, j, i) of labels' first voxel in the image
    src = np.asarray(labels.array)
    hi = lo + np.asarray(src.shape)
    # a crop lies inside the image and is smaller than it; a whole-size grid moved by whole voxels is a shift
    if src.shape == image.shape or np.any(lo < 0) or np.any(hi > np.asarray(image.shape)):
        return None
    out = np.zeros(image.shape, src.dtype)
    out[tuple(slice(a, b) for a, b in zip(lo, hi))] = src
    return image.with_array(out)


def segmentation_on_image(image: Volume, labels: Volume, what: str, resample: bool = False,
                          image_name: str = "image", option: str | None = RESAMPLE_OPTION,
                          min_inside: float = 0.5) -> tuple[Volume, str | None]:
    """``labels`` on ``image``'s grid, and a warning when it had to be resampled.

    The one check of a segmentation given with an image (:func:`grid_difference`, half a voxel): on the
    same grid it is taken as it is (with the image's exact geometry), and so is a crop of the image's own
    voxels (:func:`embed_on_lattice`, e.g. Slicer's ``.seg.nrrd``); on another grid it is refused in one
    line starting with ``what`` (e.g. "Case c1: the segmentation seg.nrrd"), unless ``resample`` (what the
    user asked for with ``option``): then it is resampled by nearest neighbour, refused when less than
    ``min_inside`` of its labelled volume lands inside the image, and the warning says so."""
    what = what[:1].upper() + what[1:]
    diff = grid_difference(image, labels)
    if diff is None:
        return image.with_array(np.asarray(labels.array)), None
    embedded = embed_on_lattice(image, labels)
    if embedded is not None:     # a crop of the image's own voxels (e.g. Slicer's .seg.nrrd): nothing resampled
        return embedded, None
    if not resample:
        hint = f", or give {option} to resample it onto the {image_name}'s grid" if option else \
            f" (resample it onto the {image_name}'s grid first)"
        raise VolumeError(f"{what} does not lie in the {image_name}'s physical space: {diff}; give the "
                          f"segmentation made on this {image_name}{hint}.")
    before = float(np.count_nonzero(labels.array)) * labels.voxel_volume_mm3()
    moved = resample_like(labels, image, label=True)
    after = float(np.count_nonzero(moved.array)) * moved.voxel_volume_mm3()
    if before == 0 or after < min_inside * before:
        share = 0.0 if before == 0 else 100 * after / before
        raise VolumeError(f"{what} does not overlap the {image_name} (only {share:.0f} % of its labelled volume "
                          f"lies inside it); give the segmentation made on this {image_name}.")
    return moved, (f"{what} was not on the {image_name}'s grid ({diff}); it was resampled onto it (nearest "
                   f"neighbour, {100 * after / before:.0f} % of its labelled volume inside) as {option} asks")


def resample_like(vol: Volume, reference: Volume, label: bool = False, default: float = 0.0) -> Volume:
    """Resample ``vol`` onto ``reference``'s grid in physical space (nearest for labels)."""
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(vol.to_sitk(), reference.to_sitk(), sitk.Transform(), interp, default,
                        vol.to_sitk().GetPixelID())
    return Volume.from_sitk(out)


def resample_spacing(vol: Volume, spacing: Sequence[float], label: bool = False) -> Volume:
    """Resample to a new voxel spacing, covering the same physical extent."""
    img = vol.to_sitk()
    new_size = [max(1, int(round(n * s / t))) for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing)]
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(img, new_size, sitk.Transform(), interp, img.GetOrigin(), tuple(spacing),
                        img.GetDirection(), 0.0, img.GetPixelID())
    return Volume.from_sitk(out)
