"""AutoCorrection's consistent border shift on a small synthetic globe (fast, no atlas needed).

The globe has a bright rim (like the sclera) and a muscle of the same intensity inserting on its
side. A mask drawn one voxel too large everywhere must come in by one voxel also where it runs
into the muscle (no edge there); the drawn border is kept where the image cannot tell only when
the visible border around it did not move either.
"""
import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitai.annotate import CorrectionParameters, autocorrect, dice, rough_mask

SPACING = (0.45, 0.45, 0.6)          # x, y, z mm (anisotropic, like the orbit CT phantom)


def _globe(seed=0, noise=10.0):
    """(image, globe truth, muscle mask) on a 48 x 72 x 72 grid [k, j, i]."""
    shape = (48, 72, 72)
    sk = np.asarray(SPACING[::-1])
    z, y, x = (np.indices(shape).T * sk).T
    c = (np.asarray(shape) - 1) / 2 * sk
    r = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    globe = r <= 10.0
    rim = globe & (r > 9.0)
    # a muscle band touching the globe on its +x side, running away from it
    muscle = (np.abs(z - c[0]) <= 2.0) & (np.abs(y - c[1]) <= 4.0) & (x > c[2] + 7.0) & ~globe
    img = np.full(shape, -100.0, np.float32)          # fat
    img[globe] = 12.0                                   # vitreous
    img[rim] = 55.0                                     # sclera
    img[muscle] = 52.0                                  # muscle, same intensity as the sclera
    img = ndi.gaussian_filter(img, (0.35, 0.65, 0.65))
    img += np.random.default_rng(seed).normal(0.0, noise, shape).astype(np.float32)
    return img, globe, muscle


@pytest.fixture(scope="module")
def globe():
    return _globe()


def test_too_large_mask_comes_in_also_where_a_muscle_touches(globe):
    img, truth, muscle = globe
    bad = rough_mask(truth)
    into_muscle = bad & muscle
    assert into_muscle.sum() > 30                      # the drawn mask runs one voxel into the muscle
    fixed = autocorrect(img, SPACING, bad).mask
    old = autocorrect(img, SPACING, bad, CorrectionParameters(shift_sigma_mm=None)).mask
    # without the consistent shift the layer in the muscle stays (no edge, the stay cost keeps it)
    assert (old & into_muscle).sum() > 0.8 * into_muscle.sum()
    # with it, the border follows the shift measured on the visible border around it
    assert (fixed & into_muscle).sum() < 0.2 * into_muscle.sum()
    assert dice(fixed, truth) > dice(old, truth)
    assert dice(fixed, truth) - dice(bad, truth) >= 0.05


def test_correct_mask_is_kept_next_to_the_muscle(globe):
    img, truth, muscle = globe
    kept = autocorrect(img, SPACING, truth).mask
    assert 1.0 - dice(kept, truth) <= 0.01
    assert not (kept & muscle).any() or (kept & muscle).sum() < 10


def test_too_small_mask_grows_back(globe):
    img, truth, _ = globe
    small = ndi.binary_erosion(truth)
    grown = autocorrect(img, SPACING, small).mask
    assert dice(grown, truth) - dice(small, truth) >= 0.03


def test_shift_is_off_for_zero_or_none(globe):
    img, truth, _ = globe
    a = autocorrect(img, SPACING, truth, CorrectionParameters(shift_sigma_mm=0)).mask
    b = autocorrect(img, SPACING, truth, CorrectionParameters(shift_sigma_mm=None)).mask
    assert np.array_equal(a, b)
