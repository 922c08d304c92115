"""Superpixels (SLIC, cache, 2D/3D) and SmartPencil clicks on the orbit phantom."""
import numpy as np
import pytest

from orbitai.annotate import (AnnotationError, SuperpixelCache, SuperpixelSettings, compute_superpixels, dice,
                              next_click, smartpencil_click)


def test_superpixel_count_follows_resolution(right_orbit):
    image, _ = right_orbit
    counts = [compute_superpixels(image.array, image.spacing, n).n_labels for n in (100, 500, 2000)]
    assert counts[0] < counts[1] < counts[2]
    assert 0.3 * 2000 < counts[2] < 2.0 * 2000
    spx = compute_superpixels(image.array, image.spacing, 500)
    counts = np.bincount(spx.labels.ravel())
    assert spx.labels.min() == 0 and len(counts) == spx.n_labels and counts.min() > 0   # consecutive labels
    again = compute_superpixels(image.array, image.spacing, 500)
    assert np.array_equal(spx.labels, again.labels)                                     # deterministic


def test_cache_hits_and_keys(right_orbit):
    image, _ = right_orbit
    cache = SuperpixelCache(max_items=2)
    a = cache.get_or_compute(image.array, image.spacing, SuperpixelSettings(500))
    b = cache.get_or_compute(image.array, image.spacing, SuperpixelSettings(500))
    assert a is b and cache.hits == 1
    c = cache.get_or_compute(image.array, image.spacing, SuperpixelSettings(1000))
    assert c is not a
    changed = image.array.copy()
    changed[::4, ::4, ::4] += 100
    d = cache.get_or_compute(changed, image.spacing, SuperpixelSettings(500))
    assert d is not a                                   # a different image is not served from the cache


def test_2d_mode_and_boundaries(right_orbit):
    image, labels = right_orbit
    k = image.shape[0] // 2
    spx = compute_superpixels(image.array, image.spacing, 200, region=(slice(k, k + 1), slice(None), slice(None)),
                              mode="2d")
    assert spx.labels.shape == (1,) + image.shape[1:]
    b = spx.boundaries(k, 0, image.shape)
    assert b.shape == image.shape[1:] and 0 < b.mean() < 0.6
    assert not spx.boundaries(k + 1, 0, image.shape).any()


def test_click_adds_and_shift_click_removes(right_orbit):
    image, labels = right_orbit
    seg = np.zeros(image.shape, bool)
    p = tuple(np.argwhere(labels.array == 8)[0])
    r = smartpencil_click(image.array, image.spacing, seg, p, settings=SuperpixelSettings(1000))
    assert r.changed > 0 and r.mask[p] and not seg.any()
    r2 = smartpencil_click(image.array, image.spacing, r.mask, p, remove=True, settings=SuperpixelSettings(1000))
    assert not r2.mask.any()
    r3 = smartpencil_click(image.array, image.spacing, r2.mask, p, remove=True, settings=SuperpixelSettings(1000))
    assert r3.changed == 0 and "nothing changed" in r3.message


def test_smartpencil_rectus_bar(right_orbit):
    """<= 10 simulated clicks reach Dice >= 0.85 on the inferior rectus (1000 superpixels)."""
    image, labels = right_orbit
    truth = labels.array == 8
    seg = np.zeros(truth.shape, bool)
    for _ in range(10):
        nc = next_click(seg, truth, image.spacing)
        seg = smartpencil_click(image.array, image.spacing, seg, nc[0], remove=nc[1],
                                settings=SuperpixelSettings(1000)).mask
    assert dice(seg, truth) >= 0.85


@pytest.mark.parametrize("point", [(-1, 0, 0), (0, 10_000, 0), (1, 2), "abc"])
def test_click_outside_image_is_refused(right_orbit, point):
    image, _ = right_orbit
    with pytest.raises(AnnotationError, match="outside the image|three voxel indices"):
        smartpencil_click(image.array, image.spacing, np.zeros(image.shape, bool), point)


def test_click_outside_region_and_bad_inputs(right_orbit):
    image, _ = right_orbit
    seg = np.zeros(image.shape, bool)
    with pytest.raises(AnnotationError, match="working region"):
        smartpencil_click(image.array, image.spacing, seg, (0, 0, 0), region=(slice(5, 10), slice(5, 10), slice(5, 10)))
    with pytest.raises(AnnotationError, match="3D volume"):
        smartpencil_click(image.array[0], image.spacing, seg[0], (0, 0, 0))
    with pytest.raises(AnnotationError, match="same voxel grid"):
        smartpencil_click(image.array, image.spacing, seg[:-1], (0, 0, 0))
    bad = image.array.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(AnnotationError, match="NaN"):
        smartpencil_click(bad, image.spacing, seg, (1, 1, 1))
