"""Quality bars on orbitai.phantoms (slow: one phantom takes ~8 s to synthesise)."""
import numpy as np
import pytest

from orbitai import annotate as A

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def orbit(right_orbit):
    """(image array, labels array, spacing) of the right orbit of the benchmark's phantom case."""
    image, labels = right_orbit
    return image.array, labels.array, image.spacing


def test_smartfill_eyeball_and_inferior_rectus(orbit):
    img, lab, sp = orbit
    for value, bar in ((2, 0.90), (8, 0.80)):
        truth = lab == value
        fg = np.any(A.simulate_strokes(truth, sp, 3), axis=0)
        assert A.dice(A.smartfill(img, sp, fg).mask, truth) >= bar


@pytest.mark.parametrize("value", [2, 8, 10, 12])
def test_smartfill_interactive_session(orbit, value):
    """<= 3 strokes with a correction stroke on the preview's largest error (superior rectus is
    left out: it touches the levator with no edge between them and stays near 0.70)."""
    img, lab, sp = orbit
    truth = lab == value
    mask, fg, bg = A.interactive_fill(lambda f, b: A.smartfill(img, sp, f, b).mask, truth, sp, 3)
    assert A.dice(mask, truth) >= (0.90 if value == 2 else 0.80)
    assert bg is None or not (bg & truth).any()


def test_smartpencil_inferior_rectus(orbit):
    img, lab, sp = orbit
    truth = lab == 8
    seg = np.zeros(truth.shape, bool)
    for _ in range(10):
        nc = A.next_click(seg, truth, sp)
        seg = A.smartpencil_click(img, sp, seg, nc[0], remove=nc[1], settings=A.SuperpixelSettings(1000)).mask
    assert A.dice(seg, truth) >= 0.85


def test_autocorrect_keeps_correct_masks(orbit):
    img, lab, sp = orbit
    for value in (2, 4, 6, 8, 10, 12):
        truth = lab == value
        assert 1.0 - A.dice(A.autocorrect(img, sp, truth).mask, truth) <= 0.01


def test_autocorrect_gain_on_dilated_holey_masks(orbit):
    """The issue's bar: truth dilated by one voxel with holes gains >= 0.05 Dice (the eyeball is the
    hardest: it starts at 0.946, and muscle and nerve insertions show no edge)."""
    img, lab, sp = orbit
    for value in (2, 4, 6, 8, 10, 12):
        truth = lab == value
        bad = A.rough_mask(truth)
        assert A.dice(A.autocorrect(img, sp, bad).mask, truth) - A.dice(bad, truth) >= 0.05, value
