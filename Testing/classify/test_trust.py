"""Out-of-distribution score and calibration of a classifier (issue 51): orbitai.classify.trust."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from orbitai.classify.trust import (Trust, expected_calibration_error, features_and_logits, fit_temperature,
                                    fit_trust, softmax)


def test_expected_calibration_error_of_known_cases():
    probs = np.array([[0.1, 0.9]] * 10)
    assert expected_calibration_error(probs, np.array([1] * 9 + [0])) == pytest.approx(0.0)
    assert expected_calibration_error(probs, np.array([1] * 5 + [0] * 5)) == pytest.approx(0.4)


def test_temperature_calibrates_overconfident_logits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    margin = rng.normal(1.0, 1.0, len(y)) * np.where(y == 1, 1, -1)     # true log-odds
    logits = np.stack([np.zeros_like(margin), 4 * margin], 1)           # four times too sure
    labels = (rng.random(len(y)) < 1 / (1 + np.exp(-margin))).astype(int)
    t = fit_temperature(logits, labels)
    assert 3.0 < t < 5.0
    assert expected_calibration_error(softmax(logits, t), labels) < 0.03 < expected_calibration_error(softmax(logits), labels)


def test_mahalanobis_flags_about_five_percent_in_distribution_and_every_far_case():
    rng = np.random.default_rng(1)
    cov = np.diag(np.linspace(0.5, 3, 16))

    def draw(n: int, cls: int) -> np.ndarray:
        return rng.multivariate_normal(np.full(16, 3.0 * cls), cov, n)
    train = np.concatenate([draw(400, 0), draw(400, 1)])
    y = np.repeat([0, 1], 400)
    val = np.concatenate([draw(300, 0), draw(300, 1)])
    logits = np.stack([np.zeros(600), np.repeat([-2.0, 2.0], 300)], 1)
    trust = fit_trust(train, y, val, logits, np.repeat([0, 1], 300), "synthetic")
    test = np.concatenate([draw(1000, 0), draw(1000, 1)])
    share = float(np.mean(trust.distance(test) > trust.threshold))
    assert 0.02 < share < 0.09
    far = rng.normal(0, 1, (50, 16)) * 10 + 30
    assert np.all(trust.distance(far) > trust.threshold)
    again = Trust(**trust.to_json())                                    # what metadata.json holds
    assert np.allclose(again.distance(test[:5]), trust.distance(test[:5]))


def test_without_a_cam_layer_the_features_are_the_input_of_the_last_linear_layer():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    x = np.random.default_rng(2).normal(size=(7, 3, 4)).astype(np.float32)
    feats, logits = features_and_logits(net, x)
    with torch.no_grad():
        hidden = net[2](net[1](net[0](torch.from_numpy(x)))).numpy()
        out = net(torch.from_numpy(x)).numpy()
    assert feats.shape == (7, 5) and np.allclose(feats, hidden, atol=1e-6) and np.allclose(logits, out, atol=1e-6)


def test_with_a_cam_layer_the_features_are_its_pooled_channels():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cam_layer = torch.nn.Conv2d(1, 3, 3)
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(self.cam_layer(x).mean((2, 3)))
    net = Net()
    x = np.random.default_rng(3).normal(size=(4, 1, 8, 8)).astype(np.float32)
    feats, _ = features_and_logits(net, x)
    with torch.no_grad():
        a = net.cam_layer(torch.from_numpy(x))
    assert np.allclose(feats, np.concatenate([a.mean((2, 3)), a.std((2, 3))], 1), atol=1e-6)
