"""Model prior in SmartFill and AutoCorrection: off means today's result, on separates touching
structures of the same intensity, strokes always win, bad priors are refused."""
import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitai.annotate import AnnotationError, autocorrect, dice, rough_mask, simulate_strokes, smartfill, smartfill_full


@pytest.fixture(scope="module")
def touching_boxes():
    """(image, truth of box A, truth of box B, object stroke in A): two boxes of the same intensity
    sharing a face, in noise; no edge tells them apart."""
    rng = np.random.default_rng(0)
    img = rng.normal(0.0, 5.0, (32, 40, 32)).astype(np.float32)
    a = np.zeros(img.shape, bool)
    b = np.zeros(img.shape, bool)
    a[8:24, 8:20, 8:24] = True
    b[8:24, 20:32, 8:24] = True
    img[a | b] += 100.0
    fg = np.zeros(img.shape, bool)
    fg[16, 14, 10:22] = True
    fg[12, 14, 10:22] = True
    return img, a, b, fg


def _soft(truth: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """A network-like probability: the truth blurred and squeezed into [0.1, 0.9]."""
    return (0.1 + 0.8 * ndi.gaussian_filter(truth.astype(np.float32), sigma)).astype(np.float32)


def test_prior_off_is_todays_result(right_orbit):
    image, labels = right_orbit
    truth = labels.array == 8
    fg = np.any(simulate_strokes(truth, image.spacing, 2), axis=0)
    p = _soft(truth)
    base = smartfill(image.array, image.spacing, fg).mask
    assert np.array_equal(smartfill(image.array, image.spacing, fg, prior=None).mask, base)
    assert np.array_equal(smartfill(image.array, image.spacing, fg, prior=p, prior_weight=0.0).mask, base)
    bad = rough_mask(truth)
    base = autocorrect(image.array, image.spacing, bad).mask
    assert np.array_equal(autocorrect(image.array, image.spacing, bad, prior=p, prior_weight=0).mask, base)
    assert not np.array_equal(autocorrect(image.array, image.spacing, bad, prior=1.0 - p, prior_weight=3).mask, base)


def test_prior_separates_touching_same_intensity_structures(touching_boxes):
    img, a, b, fg = touching_boxes
    without = smartfill(img, (1, 1, 1), fg).mask
    with_prior = smartfill(img, (1, 1, 1), fg, prior=_soft(a)).mask
    assert dice(without, a) < 0.88                # the boxes run together without the prior
    assert dice(with_prior, a) >= 0.95 and (with_prior & b).sum() <= (b[:, 20, :]).sum()
    sharp = smartfill(img, (1, 1, 1), fg, prior=np.where(a, 0.95, 0.05)).mask   # superpixels split on p = 1/2
    assert np.array_equal(sharp, a)
    full = smartfill_full(img, (1, 1, 1), fg, prior=_soft(a))
    assert dice(full, a) >= dice(without, a) + 0.05


def test_prior_pulls_autocorrect_back_from_a_same_intensity_neighbour(touching_boxes):
    img, a, b, _ = touching_boxes
    leak = a.copy()
    leak[:, 20, :] = b[:, 20, :]                  # one voxel into the neighbour, no edge there
    confident = np.where(a, 0.98, 0.02)
    without = autocorrect(img, (1, 1, 1), leak).mask
    # weight 2: 7.8 nats against the stay cost of the drawn border (3) and the intensity models
    with_prior = autocorrect(img, (1, 1, 1), leak, prior=confident, prior_weight=2.0).mask
    assert (without & b).sum() > 0.9 * (leak & b).sum()
    assert (with_prior & b).sum() < 0.1 * (leak & b).sum() and dice(with_prior, a) >= 0.99


def test_strokes_win_over_a_confident_prior(touching_boxes):
    img, a, _, fg = touching_boxes
    p = _soft(a)
    p[fg] = 0.0
    bg = np.zeros(img.shape, bool)
    bg[16, 4, 10:22] = True
    r = smartfill(img, (1, 1, 1), fg, bg, prior=p, prior_weight=10.0)
    assert r.mask[fg].all() and not r.mask[bg].any()
    p[bg] = 1.0
    assert smartfill_full(img, (1, 1, 1), fg, bg, prior=p, prior_weight=10.0)[fg].all()


def test_bad_prior_is_refused(touching_boxes):
    img, a, _, fg = touching_boxes
    p = _soft(a)
    for prior, weight, match in ((p[:-1], 1.0, "shape"), (np.where(a, np.nan, p), 1.0, "NaN"),
                                 (p + 0.5, 1.0, r"\[0, 1\]"), (p, -1.0, "weight"), (p, float("nan"), "weight"),
                                 (p.astype(str), 1.0, "voxel type")):
        with pytest.raises(AnnotationError, match=match):
            smartfill(img, (1, 1, 1), fg, prior=prior, prior_weight=weight)
        with pytest.raises(AnnotationError, match=match):
            autocorrect(img, (1, 1, 1), a, prior=prior, prior_weight=weight)
