"""Slicer's Grow from seeds (vtkImageGrowCutSegment) as SmartFill's baseline: orbitai.mrml.growcut, and the
simulated user's background seeds, orbitai.testing.growcut."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitai.annotate import AnnotationError, dice, simulate_strokes
from orbitai.annotate._common import spacing_kji
from orbitai.annotate.smartfill import working_region as smartfill_region
from orbitai.mrml.growcut import effect_region, grow_from_seeds
from orbitai.testing.growcut import user_background_seeds

pytest.importorskip("slicer", reason="needs 3D Slicer's Python or the PyPI package slicer-core")

SPACING = (0.8, 0.8, 1.5)  # (x, y, z) mm


@pytest.fixture(scope="module")
def sphere():
    """(image, truth, object stroke): a bright sphere of radius 9 mm on a dark noisy background,
    the stroke a line through its middle on the central slice."""
    shape = (24, 48, 48)
    k, j, i = np.indices(shape).astype(float)
    sk = spacing_kji(SPACING)
    r = np.sqrt(((k - 12) * sk[0]) ** 2 + ((j - 24) * sk[1]) ** 2 + ((i - 24) * sk[2]) ** 2)
    truth = r <= 9.0
    rng = np.random.default_rng(0)
    image = np.where(truth, 100.0, 20.0) + rng.normal(0.0, 6.0, shape)
    stroke = np.zeros(shape, bool)
    stroke[12, 24, 16:33] = True
    return image.astype(np.float32), truth, stroke


def test_grow_from_seeds_fills_sphere(sphere):
    image, truth, stroke = sphere
    bg = user_background_seeds(truth, SPACING, stroke)
    # SmartFill's working region (10 mm around the seeds) holds the whole sphere
    mask = grow_from_seeds(image, SPACING, stroke, bg, region=smartfill_region(stroke | bg, SPACING))
    assert mask.shape == truth.shape and mask.dtype == bool
    assert dice(mask, truth) > 0.9
    # the effect's own region is 3 voxels around seeds drawn on one slice: the sphere's caps are cut
    clipped = grow_from_seeds(image, SPACING, stroke, bg)
    assert not np.any(clipped[:9]) and not np.any(clipped[16:]) and dice(clipped[9:16], truth[9:16]) > 0.9


def test_grow_from_seeds_refuses_missing_background(sphere):
    image, _, stroke = sphere
    with pytest.raises(AnnotationError, match="needs background seeds"):
        grow_from_seeds(image, SPACING, stroke, None)
    with pytest.raises(AnnotationError, match="needs background seeds"):
        grow_from_seeds(image, SPACING, stroke, np.zeros(image.shape, bool))
    with pytest.raises(AnnotationError, match="overlap"):
        grow_from_seeds(image, SPACING, stroke, stroke)


def test_background_ring_outside_truth_on_stroke_slices(sphere):
    _, truth, stroke = sphere
    ring = user_background_seeds(truth, SPACING, stroke, distance_mm=4.0)
    assert ring.any() and not np.any(ring & truth)
    assert set(np.unique(np.nonzero(ring)[0])) == {12}          # only the stroke's slice (axial)
    d = ndi.distance_transform_edt(~truth[12], sampling=spacing_kji(SPACING)[1:])
    assert np.all((d[ring[12]] > 4.0 - 0.8 - 1e-6) & (d[ring[12]] <= 4.0))   # one voxel thick, at 4 mm
    # a stroke drawn in another view (sagittal: flat along i) gets its ring in that view
    side = np.zeros(truth.shape, bool)
    side[np.arange(8, 17), np.arange(20, 29), 24] = True
    ring2 = user_background_seeds(truth, SPACING, side)
    assert set(np.unique(np.nonzero(ring2)[2])) == {24} and not np.any(ring2 & truth)


def test_effect_region_margin():
    seeds = np.zeros((40, 60, 80), bool)
    seeds[10, 20, 10] = seeds[12, 50, 70] = True
    reg = effect_region(seeds)
    # 10 % of the extent (2, 30, 60 voxels), at least 3 voxels
    assert reg == (slice(7, 16), slice(17, 54), slice(4, 77))
    # SmartFill's: 10 mm around the seeds (x, y, z spacing 1, 2, 2.5 mm: 10, 5, 4 voxels)
    assert smartfill_region(seeds, (1.0, 2.0, 2.5)) == (slice(6, 17), slice(15, 56), slice(0, 80))


@pytest.mark.slow
def test_grow_from_seeds_on_orbit_phantom():
    """Superior rectus (5) and eyeball (1) of the left orbit of phantom 0 from the simulated
    annotator's object strokes plus the ring of background seeds (sanity bar only; ~9 s, mostly
    building the phantom)."""
    from orbitai.testing.annotation_effects import orbit_box

    image, labels = orbit_box(0, "left")
    a, sp = image.array, image.spacing
    for v in (5, 1):
        truth = labels.array == v
        fg = np.any(simulate_strokes(truth, sp, 3), axis=0)
        mask = grow_from_seeds(a, sp, fg, user_background_seeds(truth, sp, fg))
        d = dice(mask, truth)
        print(f"Grow from seeds, label {v}: Dice {d:.3f}")
        assert d > 0.3
