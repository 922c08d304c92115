"""The max-flow/min-cut helper against brute force, and voxel/superpixel cuts on a phantom."""
import itertools

import numpy as np
import pytest

from orbitai.annotate import AnnotationError, dice
from orbitai.annotate.graphcut import contrast_weights, grid_cut, min_cut, superpixel_cut
from orbitai.annotate.superpixels import compute_superpixels


def _energy(L, e, w, cf, cb):
    return sum(cf[p] if L[p] else cb[p] for p in range(len(L))) + sum(w[k] * (L[a] != L[b]) for k, (a, b) in enumerate(e))


def test_min_cut_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(60):
        n = int(rng.integers(2, 8))
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        idx = rng.choice(len(pairs), int(rng.integers(1, len(pairs) + 1)), replace=False)
        e = np.array([pairs[i] for i in idx])
        w, cf, cb = rng.random(len(e)) * 3, rng.random(n) * 5, rng.random(n) * 5
        best = min(_energy(L, e, w, cf, cb) for L in itertools.product([0, 1], repeat=n))
        got = _energy(min_cut(n, e, w, cf, cb).astype(int), e, w, cf, cb)
        assert got == pytest.approx(best, rel=1e-3, abs=1e-3)


def test_min_cut_hard_constraints_and_errors():
    e = np.array([[0, 1], [1, 2]])
    w = np.array([100.0, 100.0])
    side = min_cut(3, e, w, np.zeros(3), np.zeros(3), hard_fg=np.array([1, 0, 0], bool),
                   hard_bg=np.array([0, 0, 1], bool))
    assert side[0] and not side[2]
    with pytest.raises(ValueError, match="both object and background"):
        min_cut(2, e[:1], w[:1], np.zeros(2), np.zeros(2), hard_fg=np.array([1, 0], bool), hard_bg=np.array([1, 0], bool))
    with pytest.raises(ValueError, match="NaN"):
        min_cut(2, e[:1], np.array([np.nan]), np.zeros(2), np.zeros(2))


def _sphere(shape=(24, 32, 32), r=8, noise=0.3, seed=0):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    truth = (z - shape[0] / 2) ** 2 + (y - shape[1] / 2) ** 2 + (x - shape[2] / 2) ** 2 < r * r
    img = truth.astype(np.float32) + np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    return img, truth


def test_grid_cut_and_superpixel_cut_recover_a_sphere():
    img, truth = _sphere()
    cf = ((img - 1.0) ** 2 / (2 * 0.09)).astype(np.float32)
    cb = (img ** 2 / (2 * 0.09)).astype(np.float32)
    w = contrast_weights(img, (1.0, 1.0, 1.0), sigma=0.6, smoothness=2.0)
    full = grid_cut(cf, cb, w)
    assert dice(full, truth) > 0.97
    spx = compute_superpixels(img, (1, 1, 1), 300)
    coarse = superpixel_cut(spx.labels, spx.n_labels, cf, cb, w)
    assert dice(coarse, truth) > 0.9
    # band refinement around the coarse result reaches the full-volume optimum's quality
    band = np.zeros_like(truth)
    from scipy import ndimage as ndi
    band = ndi.binary_dilation(coarse, iterations=2) & ~ndi.binary_erosion(coarse, iterations=2)
    fine = grid_cut(cf, cb, w, active=band, fixed=coarse)
    assert dice(fine, truth) >= dice(full, truth) - 0.01


def test_check_errors_are_clear():
    from orbitai.annotate._common import check_image
    with pytest.raises(AnnotationError, match="3D volume"):
        check_image(np.zeros((4, 4)))
    with pytest.raises(AnnotationError, match="NaN"):
        check_image(np.full((2, 2, 2), np.nan))
