"""Classifier input of paper 003: crop kernel, modes, orientation, the heat-map round trip, augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.neuro.data import (DEFAULT_MODE, INPUT_MODES, augment, classifier_input, crop_kernel,
                                  heat_to_flair)


def _head(shape=(40, 56, 48), spacing=(1.0, 1.2, 3.0), seed=0) -> tuple[Volume, Volume]:
    """An ellipsoidal 'head' (intensity 100 + noise) in a black background, a lesion blob inside it."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape).astype(float)
    c = (np.array(shape) - 1) / 2
    r = np.array(shape) * 0.35
    head = ((z - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((x - c[2]) / r[2]) ** 2 <= 1
    a = np.where(head, 100.0, 0.0) + rng.normal(0, 1, shape) * head
    les = (((z - c[0] - 4) / 5) ** 2 + ((y - c[1] + 5) / 6) ** 2 + ((x - c[2] - 3) / 5) ** 2 <= 1)
    a = np.where(les, 180.0, a).astype(np.float32)
    geo = dict(spacing=spacing, origin=(-30.0, 12.0, 5.0), direction=np.eye(3))
    return Volume(a, **geo), Volume(les.astype(np.uint8), **geo)


def _reoriented(vol: Volume, code: str) -> Volume:
    """The same physical image stored in another orientation (axes permuted/flipped)."""
    return Volume.from_sitk(sitk.DICOMOrient(vol.to_sitk(), code))


def test_default_mode_is_the_lesion_image():
    assert DEFAULT_MODE == "lesion_mask" and set(INPUT_MODES) == {"lesion_mask", "flair", "flair_in_lesions"}


def test_crop_kernel_is_the_head_bounding_box_without_specks():
    a = np.zeros((30, 40, 50), np.float32)
    a[5:20, 10:30, 8:41] = 100
    a[0, 0, 0] = 100          # a lone bright speck outside the head is not part of it
    a[28:30, 38:40, 48:50] = 90   # nor a small separate blob
    box = crop_kernel(a)
    assert box == (slice(5, 20), slice(10, 30), slice(8, 41))
    with pytest.raises(InputError):
        crop_kernel(np.zeros((5, 5, 5)))
    with pytest.raises(InputError):
        crop_kernel(np.ones((5, 5)))


@pytest.mark.parametrize("mode", INPUT_MODES)
def test_modes_shape_and_values(mode):
    flair, les = _head()
    x, info = classifier_input(flair, les, mode)
    assert x.shape == (100, 100, 100) and x.dtype == np.float32 and info.mode == mode
    if mode == "lesion_mask":
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    if mode == "flair":
        a = flair.array
        expect = 100.0 / np.percentile(a[a > 0], 99)               # head intensity / the 99th percentile
        assert np.percentile(x[x > 0.3], 50) == pytest.approx(expect, rel=0.05)
    if mode == "flair_in_lesions":
        assert (x[classifier_input(flair, les, "lesion_mask")[0] == 0] == 0).all() and x.max() > 0.9


def test_lesion_volume_is_kept_by_the_resize():
    flair, les = _head()
    x, info = classifier_input(flair, les, "lesion_mask")
    ml_in = les.array.sum() * np.prod(les.spacing)
    ml_out = x.sum() * np.prod(info.spacing)
    assert ml_out == pytest.approx(ml_in, rel=0.1)


def test_orientation_does_not_change_the_input():
    flair, les = _head()
    x0, info0 = classifier_input(flair, les, "flair_in_lesions")
    for code in ("RAS", "PIR", "SLA"):
        f2, l2 = _reoriented(flair, code), _reoriented(les, code)
        assert not np.allclose(f2.direction, flair.direction)
        x1, info1 = classifier_input(f2, l2, "flair_in_lesions")
        np.testing.assert_allclose(x1, x0, atol=1e-4)
        assert info1.box == info0.box and np.allclose(info1.origin, info0.origin)


def test_heat_to_flair_round_trip_is_exact_geometry():
    """A heat map equal to each input voxel's physical coordinates comes back, on any FLAIR orientation,
    as each FLAIR voxel's own physical coordinates (trilinear is exact on a linear function)."""
    flair0, les0 = _head(spacing=(0.9, 1.1, 3.5))
    for code in ("LPS", "PIR"):
        flair, les = _reoriented(flair0, code), _reoriented(les0, code)
        _, info = classifier_input(flair, les, "lesion_mask")
        grid = info.grid()
        idx = np.indices((100, 100, 100)).reshape(3, -1)[::-1].T      # (x, y, z) index per voxel
        d = np.asarray(info.direction).reshape(3, 3)
        phys = np.asarray(info.origin) + (idx * np.asarray(grid.GetSpacing())) @ d.T
        for axis in range(3):
            heat = phys[:, axis].reshape(100, 100, 100)    # numpy order z, y, x = C order of (x fastest)
            back = heat_to_flair(heat.astype(np.float32), info, flair)
            assert back.same_geometry(flair)
            fidx = np.indices(flair.array.shape).reshape(3, -1)[::-1].T
            fphys = np.asarray(flair.origin) + (fidx * np.asarray(flair.spacing)) @ np.asarray(flair.direction).T
            want = fphys[:, axis].reshape(flair.array.shape)
            inside = back.array != 0
            # voxels whose centres lie well inside the input grid's box
            lo = phys.min(0) + 1e-3
            hi = phys.max(0) - 1e-3
            core = np.all((fphys > lo) & (fphys < hi), axis=1).reshape(flair.array.shape)
            assert core.sum() > 1000
            np.testing.assert_allclose(back.array[core], want[core], atol=1e-2)
            assert inside[core].mean() > 0.99 or np.abs(want[core]).min() < 1e-2


def test_lesion_mask_maps_back_onto_itself():
    flair, les = _head()
    x, info = classifier_input(flair, les, "lesion_mask")
    back = heat_to_flair(x, info, flair).array > 0.5
    truth = les.array > 0
    dice = 2 * (back & truth).sum() / (back.sum() + truth.sum())
    assert dice > 0.8


def test_bad_inputs_are_one_line_errors():
    flair, les = _head()
    with pytest.raises(InputError, match="Unknown input mode"):
        classifier_input(flair, les, "t1")
    with pytest.raises(InputError, match="grid differs"):
        classifier_input(flair, Volume(les.array, spacing=(2.0, 2.0, 2.0)), "lesion_mask")
    bad = flair.with_array(np.where(les.array > 0, np.nan, flair.array).astype(np.float32))
    with pytest.raises(InputError, match="NaN"):
        classifier_input(bad, les, "lesion_mask")
    with pytest.raises(InputError, match="needs a lesion"):
        classifier_input(flair, None, "lesion_mask")
    _, info = classifier_input(flair, None, "flair")
    with pytest.raises(InputError, match="heat map has shape"):
        heat_to_flair(np.zeros((50, 50, 50)), info, flair)


def test_augment_shifts_and_flips():
    rng = np.random.default_rng(0)
    x = np.zeros((1, 30, 30, 30), np.float32)
    x[0, 10:20, 12:18, 5:9] = 1
    flipped = augment(x, np.random.default_rng(1), max_shift=0, flip_p=1.0)
    np.testing.assert_array_equal(flipped, x[..., ::-1])
    same = augment(x, np.random.default_rng(1), max_shift=0, flip_p=0.0)
    np.testing.assert_array_equal(same, x)
    outs = [augment(x, rng) for _ in range(20)]
    assert all(o.shape == x.shape and o.sum() == x.sum() for o in outs)     # content inside: shifted, not cut
    assert len({o.tobytes() for o in outs}) > 10
    np.testing.assert_array_equal(augment(x, np.random.default_rng(7)), augment(x, np.random.default_rng(7)))
    assert augment(x[0], np.random.default_rng(3)).shape == x[0].shape
