"""The fast post-processing gives what the plain methods give: class mapping against resampling every
class over the whole box, hole filling against SimpleITK's BinaryFillhole, boxes that cover the mask."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from orbitai.boxes import bbox, split_boxes
from orbitai.io import Volume
from orbitai.preprocess.grid import model_grid
from orbitai.engine.mapping import map_classes
from orbitai.engine.postprocess import fill_holes


def naive_map(probs: np.ndarray, grid: sitk.Image, vol: Volume, box) -> tuple[np.ndarray, np.ndarray]:
    """Every class resampled over the whole box, then the running argmax (ties to the lower class)."""
    sub = Volume(np.zeros([b - a for a, b in box], np.uint8), vol.spacing,
                 tuple(vol.index_to_physical([box[2][0], box[1][0], box[0][0]])), vol.direction).to_sitk()
    best = np.full(sub.GetSize()[::-1], -1.0, np.float32)
    cls = np.zeros(best.shape, np.uint8)
    for c in range(probs.shape[0]):
        p = sitk.GetImageFromArray(probs[c])
        p.CopyInformation(grid)
        pc = sitk.GetArrayFromImage(sitk.Resample(p, sub, sitk.Transform(), sitk.sitkLinear, 1.0 if c == 0 else 0.0,
                                                  sitk.sitkFloat32))
        better = pc > best
        best[better], cls[better] = pc[better], c
    return cls, best


def blob_probs(shape, n_classes: int, rng) -> np.ndarray:
    """Softmax of smooth random logits with a few strong blobs per class (on both 'sides')."""
    logits = ndi.gaussian_filter(rng.normal(size=(n_classes, *shape)), sigma=(0, 2, 2, 2)) * 3
    k, j, i = np.indices(shape)
    for c in range(1, n_classes):
        for _ in range(2):
            ck, cj, ci = (rng.uniform(0.2, 0.8) * n for n in shape)
            logits[c] += 8 * np.exp(-((k - ck) ** 2 + (j - cj) ** 2 + (i - ci) ** 2) / 12.0)
    e = np.exp(logits - logits.max(0))
    return (e / e.sum(0)).astype(np.float32)


@pytest.mark.parametrize("spacing,angle", [((0.4, 0.4, 0.7), 0.0), ((1.7, 1.3, 2.5), 0.0), ((0.6, 0.9, 1.1), 20.0)])
def test_map_classes_equals_resampling_every_class_everywhere(spacing, angle):
    rng = np.random.default_rng(int(angle) + int(10 * spacing[0]))
    th = np.deg2rad(angle)
    d = np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
    n = (np.array([24.0, 20.0, 18.0]) / np.array(spacing)).astype(int)       # ~24x20x18 mm
    vol = Volume(np.zeros(n[::-1], np.float32), spacing, (3.0, -7.0, 2.0), d)
    grid = model_grid(vol, (1.0, 1.0, 1.0))
    probs = blob_probs(grid.GetSize()[::-1], 5, rng)
    box = [(1, vol.shape[0] - 1), (2, vol.shape[1]), (0, vol.shape[2] - 3)]
    cls, confidence = map_classes(probs, grid, vol, box)
    ref_cls, ref_best = naive_map(probs, grid, vol, box)
    assert len(np.unique(ref_cls)) == 5                   # every class wins somewhere
    np.testing.assert_array_equal(cls, ref_cls)
    np.testing.assert_allclose(confidence(), ref_best, atol=1e-6)


def test_fill_holes_equals_simpleitk_binary_fillhole():
    rng = np.random.default_rng(3)
    for t in range(60):
        shape = tuple(int(v) for v in rng.integers(3, 24, 3))
        m = rng.random(shape) < rng.uniform(0.3, 0.9)
        if t % 2:
            m = ndi.binary_opening(m)
        ref = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(m.astype(np.uint8)),
                                                         fullyConnected=False, foregroundValue=1)).astype(bool)
        np.testing.assert_array_equal(fill_holes(m), ref)


def test_split_boxes_cover_the_mask_tightly_and_skip_the_gap():
    m = np.zeros((12, 20, 40), bool)
    m[2:6, 3:9, 2:8] = True          # one side
    m[3:9, 4:10, 28:35] = True       # the other
    boxes = split_boxes(m)
    assert len(boxes) == 2
    covered = np.zeros_like(m)
    for b in boxes:
        covered[b] = True
        assert bbox(m[b]) == tuple(slice(0, s.stop - s.start) for s in b)     # tight
    assert np.all(covered[m]) and covered.sum() < 0.5 * np.prod([s.stop - s.start for s in bbox(m)])
    assert split_boxes(np.zeros((3, 3, 3), bool)) == []
