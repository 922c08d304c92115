"""SmartFill and AutoCorrection on the orbit phantom: quality bars where cheap, bad input."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitai.annotate import AnnotationError, CorrectionParameters, autocorrect, dice, rough_mask, simulate_strokes, smartfill


def test_strokes_stay_inside_the_truth(right_orbit):
    _, labels = right_orbit
    for v in (2, 8, 12):
        truth = labels.array == v
        strokes = simulate_strokes(truth, labels.spacing, 3)
        assert 1 <= len(strokes) <= 3
        assert all(s.any() and not (s & ~truth).any() for s in strokes)


def test_smartfill_eyeball_bar(right_orbit):
    image, labels = right_orbit
    truth = labels.array == 2
    fg = np.any(simulate_strokes(truth, image.spacing, 3), axis=0)
    r = smartfill(image.array, image.spacing, fg)
    assert dice(r.mask, truth) >= 0.90
    assert r.mask[fg].all()                      # strokes are hard constraints


def test_smartfill_respects_background_strokes(right_orbit):
    image, labels = right_orbit
    truth = labels.array == 2
    fg = np.any(simulate_strokes(truth, image.spacing, 2), axis=0)
    bg = ndi.binary_dilation(truth, iterations=3) & ~ndi.binary_dilation(truth, iterations=2)
    r = smartfill(image.array, image.spacing, fg, bg)
    assert not r.mask[bg].any()


def test_smartfill_bad_input(right_orbit):
    image, _ = right_orbit
    empty = np.zeros(image.shape, bool)
    with pytest.raises(AnnotationError, match="at least one stroke"):
        smartfill(image.array, image.spacing, empty)
    fg = empty.copy()
    fg[5, 5, 5] = True
    with pytest.raises(AnnotationError, match="overlap"):
        smartfill(image.array, image.spacing, fg, fg)
    with pytest.raises(AnnotationError, match="3D volume"):
        smartfill(image.array[0], image.spacing, fg[0])


@pytest.mark.parametrize("value", [2, 8])
def test_autocorrect_bars(right_orbit, value):
    image, labels = right_orbit
    truth = labels.array == value
    bad = rough_mask(truth)
    fixed = autocorrect(image.array, image.spacing, bad)
    assert dice(fixed.mask, truth) - dice(bad, truth) >= 0.05
    kept = autocorrect(image.array, image.spacing, truth)
    assert dice(truth, truth) - dice(kept.mask, truth) <= 0.01


def test_autocorrect_moves_border_at_most_max_distance(right_orbit):
    image, labels = right_orbit
    m = ndi.binary_dilation(labels.array == 2, iterations=3)
    r = autocorrect(image.array, image.spacing, m,
                    CorrectionParameters(max_distance_mm=1.0, fill_holes=False, stay_cost=0.0))
    d_in = ndi.distance_transform_edt(m, sampling=image.spacing[::-1])
    d_out = ndi.distance_transform_edt(~m, sampling=image.spacing[::-1])
    assert not (r.mask & (d_out > 1.0)).any() and r.mask[d_in > 1.0].all()
    assert r.voxels_removed > 0


def test_autocorrect_fills_holes_and_removes_islands():
    img = np.zeros((20, 20, 20), np.float32)
    m = np.zeros(img.shape, bool)
    m[5:15, 5:15, 5:15] = True
    m[9, 9, 9] = False
    m[1, 1, 1] = True
    r = autocorrect(img, (1, 1, 1), m, CorrectionParameters(snap=False))
    assert r.holes_filled == 1 and r.islands_removed == 1 and r.mask[9, 9, 9] and not r.mask[1, 1, 1]


def test_autocorrect_bad_input(right_orbit):
    image, _ = right_orbit
    with pytest.raises(AnnotationError, match="non-empty"):
        autocorrect(image.array, image.spacing, np.zeros(image.shape, bool))
    with pytest.raises(AnnotationError, match="NaN"):
        autocorrect(image.array, image.spacing, np.full(image.shape, np.nan))


def test_correction_stroke_targets_the_largest_error(right_orbit):
    from orbitai.annotate import correction_stroke

    _, labels = right_orbit
    truth = labels.array == 2
    leak = ndi.binary_dilation(truth, iterations=4)
    stroke, background = correction_stroke(leak, truth, labels.spacing)
    assert background and stroke.any() and not (stroke & truth).any() and not (stroke & ~leak).any()
    short = truth & ~ndi.binary_dilation(~truth, iterations=6)
    stroke, background = correction_stroke(short, truth, labels.spacing)
    assert not background and stroke.any() and not (stroke & ~truth).any() and not (stroke & short).any()
