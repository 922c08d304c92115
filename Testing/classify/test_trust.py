"""Out-of-distribution score and calibration of a classifier (issue 51): orbitai.classify.trust."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from orbitai.classify.calibration import (binary_logits, ece_floor, expected_calibration_error, fit_calibration,
                                          fit_temperature, reliability, softmax)
from orbitai.classify.trust import OOD_MESSAGE, Trust, fit_trust, flag_threshold, write_trust
from orbitai.classify.trust_features import features_and_logits


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
    again = Trust.from_metadata({"trust": trust.to_json()}, trust.arrays())   # what the bundle holds
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
    assert np.allclose(feats, np.concatenate([a.mean((2, 3)), a.std((2, 3), correction=0)], 1), atol=1e-6)


def test_a_bias_calibrates_a_model_that_leans_to_one_class():
    rng = np.random.default_rng(4)
    margin = rng.normal(0.0, 1.5, 4000)                                  # true log-odds of class 1
    labels = (rng.random(len(margin)) < 1 / (1 + np.exp(-margin))).astype(int)
    logits = np.stack([np.zeros_like(margin), margin + 1.5], 1)         # says class 1 too often
    t_alone = fit_temperature(logits, labels)
    t, bias, method = fit_calibration(logits, labels)
    assert method == "temperature+bias"
    assert bias == pytest.approx(-1.5, abs=0.2) and t == pytest.approx(1.0, abs=0.15)
    after = expected_calibration_error(softmax(logits, t, bias), labels)
    assert after < 0.03 < expected_calibration_error(softmax(logits, t_alone), labels)


def test_probabilities_of_a_model_without_logits_round_trip():
    p = np.array([0.0, 0.2, 0.5, 0.97, 1.0])
    back = softmax(binary_logits(p))[:, 1]
    assert np.allclose(back, np.clip(p, 1e-7, 1 - 1e-7))


def test_reliability_bins_and_the_report_agree_with_the_error():
    rng = np.random.default_rng(5)
    p1 = rng.random(500)
    y = (rng.random(500) < p1).astype(int)
    probs = np.stack([1 - p1, p1], 1)
    bins = reliability(probs, y)
    assert sum(b["cases"] for b in bins) == 500
    ece = sum(b["cases"] / 500 * abs(b["accuracy"] - b["confidence"]) for b in bins)
    assert ece == pytest.approx(expected_calibration_error(probs, y))
    trust = Trust([[0.0], [1.0]], [[1.0]], 2.0, 1.0, 0.0, 0.0, "synthetic")
    report = trust.report(np.concatenate([np.zeros((490, 1)), np.full((10, 1), 9.0)]), np.log(probs), y)
    assert report["flagged_share"] == pytest.approx(0.02) and report["cases"] == 500


def test_an_older_trust_block_without_a_bias_still_loads():
    block = {"means": [[0.0], [1.0]], "precision": [[1.0]], "threshold": 2.0, "temperature": 1.5, "ece_before": 0.1,
             "ece_after": 0.05, "fitted_on": "older"}
    trust = Trust.from_metadata({"trust": block})
    assert trust is not None and trust.bias == 0.0 and trust.calibration == "temperature"
    assert Trust.from_metadata({}) is None
    assert trust.ood_json(3.0) == {"ood": {"distance": 3.0, "threshold": 2.0, "flagged": True}, "trust": OOD_MESSAGE}
    assert trust.warning(1.0) is None and OOD_MESSAGE in str(trust.warning(3.0))


def test_named_inputs_go_to_the_model_in_the_order_of_its_input_names():
    class TwoInputs(torch.nn.Module):
        input_names = ("image", "radiomics")

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4 + 3, 2)

        def forward(self, image, radiomics):
            return self.fc(torch.cat([image.flatten(1), radiomics], 1))
    torch.manual_seed(1)
    net = TwoInputs()
    rng = np.random.default_rng(6)
    image, radiomics = rng.normal(size=(5, 1, 2, 2)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    feats, logits = features_and_logits(net, {"radiomics": radiomics, "image": image})
    with torch.no_grad():
        out = net(torch.from_numpy(image), torch.from_numpy(radiomics)).numpy()
    assert np.allclose(logits, out, atol=1e-6) and feats.shape == (5, 7)


def test_a_nearly_separable_validation_set_keeps_a_calibration_that_does_not_overfit():
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1], 80)
    logits = np.stack([np.zeros(160), np.where(y == 1, 6.0, -6.0) + rng.normal(0, 1.0, 160)], 1)
    logits[0, 1] = 3.0                                                   # one confident mistake
    t, bias, method = fit_calibration(logits, y)
    assert method in ("none", "temperature") and bias == 0.0


def test_the_threshold_flags_at_most_five_percent_with_ninety_percent_confidence():
    from scipy.stats import beta

    d = np.arange(1.0, 401.0)
    threshold = flag_threshold(d)
    k = int(np.sum(d > threshold))
    assert beta.ppf(0.9, k + 1, 400 - k) <= 0.05 < beta.ppf(0.9, k + 2, 400 - k - 1)
    assert 0 < k < 20
    assert flag_threshold(np.arange(1.0, 11.0)) == 10.0                # ten cases: none can be flagged


def test_the_statistics_live_in_a_checksummed_bundle_file(tmp_path):
    import json

    from orbitai.bundle.formats import load_file

    (tmp_path / "metadata.json").write_text(json.dumps({"name": "x", "files": {}}))
    trust = Trust([[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]], 2.0, 1.3, 0.1, 0.05, "synthetic", -0.2,
                  "temperature+bias")
    write_trust(tmp_path, trust)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert "means" not in meta["trust"] and meta["files"]["trust"]["format"] == "npz"
    again = Trust.from_metadata(meta, load_file(tmp_path, meta["files"]["trust"], "trust"))
    assert again == trust
    (tmp_path / "trust.npz").write_bytes(b"PK not an npz")
    with pytest.raises(Exception, match="checksum"):
        load_file(tmp_path, meta["files"]["trust"], "trust")


def test_the_calibration_error_of_a_perfectly_calibrated_model_shrinks_with_the_cases():
    rng = np.random.default_rng(8)
    few = rng.uniform(0.5, 0.9, 200)
    many = rng.uniform(0.5, 0.9, 20000)
    floor_few = ece_floor(np.stack([1 - few, few], 1), draws=200)
    floor_many = ece_floor(np.stack([1 - many, many], 1), draws=50)
    assert floor_many["mean"] < 0.01 < 0.04 < floor_few["mean"] < floor_few["p95"]
