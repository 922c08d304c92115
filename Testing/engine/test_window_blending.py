"""The plain-torch sliding window (orbitai.engine.windows.blend_windows) gives MONAI's
``sliding_window_inference`` numbers: same windows, weights, blending and padding."""
from __future__ import annotations

import pytest
import torch

from orbitai.engine.windows import blend_windows, window_starts, window_weights

monai_inferers = pytest.importorskip("monai.inferers")


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv3d(4, 3, 3, padding=1)).eval()


@pytest.mark.parametrize("shape, roi, overlap, mode, batch", [
    ((20, 40, 36), (16, 32, 32), 0.5, "gaussian", 1),      # several windows per axis
    ((10, 24, 30), (16, 32, 32), 0.5, "gaussian", 1),      # smaller than the window: padded, cropped
    ((13, 40, 50), (16, 32, 48), 0.5, "gaussian", 3),      # padded on one axis, batched windows
    ((21, 32, 32), (8, 32, 32), 7 / 8, "constant", 1),     # step-1: moved one slice at a time
    ((32, 32, 32), (32, 32, 32), 0.5, "gaussian", 1),      # exactly one window
])
@pytest.mark.parametrize("items", [1, 3])
def test_same_as_monai(shape, roi, overlap, mode, batch, items):
    """N = 1 and several items (each window's call gets the N items of every window of its batch)."""
    net = _net()
    torch.manual_seed(1)
    x = torch.randn(items, 1, *shape)
    with torch.inference_mode():
        ours = blend_windows(x, roi, net, overlap, mode, batch)
        ref = monai_inferers.sliding_window_inference(x, roi, batch, net, overlap=overlap, mode=mode,
                                                      padding_mode="constant", cval=0.0)
    assert ours.shape == ref.shape == (items, 3, *shape)
    assert torch.allclose(ours, torch.as_tensor(ref), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape, batch", [((150, 170), 1), ((200, 230), 2), ((200, 230), 8)])
def test_same_as_monai_2d_slices_as_items(shape, batch):
    """The lesion network's use: a batch of 2D slices (items) with context channels, 192 x 192 windows."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(5, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 2, 3, padding=1)).eval()
    x = torch.randn(6, 5, *shape)
    calls = []

    def predictor(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape[0])
        return net(t)

    with torch.inference_mode():
        ours = blend_windows(x, (192, 192), predictor, 0.25, "gaussian", batch)
        ref = monai_inferers.sliding_window_inference(x, (192, 192), 8, net, overlap=0.25, mode="gaussian")
    assert ours.shape == ref.shape == (6, 2, *shape)
    assert torch.allclose(ours, torch.as_tensor(ref), atol=1e-6, rtol=0)
    assert all(n % 6 == 0 and n <= 6 * batch for n in calls)
    # an item's result does not depend on the other items
    with torch.inference_mode():
        alone = blend_windows(x[2:3], (192, 192), net, 0.25, "gaussian", batch)
    assert torch.allclose(ours[2:3], alone, atol=1e-6, rtol=0)


def test_a_predictor_returning_the_wrong_count_is_refused():
    with pytest.raises(ValueError, match="predictions"):
        blend_windows(torch.zeros(2, 1, 8, 8), (8, 8), lambda t: t[:1], 0.5, "constant")


def test_window_starts_cover_the_axis_and_end_at_it():
    assert window_starts(100, 64, 0.5) == [0, 32, 36]
    assert window_starts(64, 64, 0.5) == [0]
    assert window_starts(40, 32, 31 / 32) == list(range(9))
    for n, r, o in ((257, 64, 0.5), (99, 16, 0.25), (33, 32, 0.9)):
        s = window_starts(n, r, o)
        assert s[0] == 0 and s[-1] + r == n and all(b - a <= r for a, b in zip(s, s[1:]))


def test_window_weights():
    w = window_weights((8, 16, 16), "gaussian")
    assert w.shape == (8, 16, 16) and float(w.min()) >= 1e-3
    assert 0.5 < float(w.max()) <= 1.0         # highest at the centre (1 there for an odd size)
    assert float(window_weights((5, 5), "gaussian")[2, 2]) == 1.0
    assert float(w[0, 0, 0]) < float(w[4, 8, 8])
    assert torch.equal(window_weights((4, 4), "constant"), torch.ones(4, 4))
    with pytest.raises(ValueError, match="blending mode"):
        window_weights((4, 4), "median")
