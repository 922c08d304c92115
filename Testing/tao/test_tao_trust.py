"""TAO calls say how far to trust them (issue 51): the bundled networks carry out-of-distribution statistics and a
calibration; noise and a T2 without fat suppression are flagged, a CT is refused, an in-distribution phantom is not."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.classify.trust import NO_TRUST_WARNING, OOD_MESSAGE, Trust
from orbitai.errors import OrbitAIError
from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case
from orbitai.tao.models import load_tao_model
from orbitai.tao.predict import predict_tao

SEED = 3990123


@pytest.fixture(scope="module")
def phantom():
    return orbit_case(SEED, "t2", tao="active", orientation="axial")


@pytest.mark.parametrize("network", ["A", "B"])
def test_bundled_networks_carry_their_trust_statistics(network):
    bundle, _ = load_tao_model(network, "cpu")
    trust = Trust.of_bundle(bundle)
    assert trust is not None and trust.threshold > 0 and 0.2 < trust.temperature < 5


def test_an_in_distribution_phantom_is_not_flagged(phantom):
    pred = predict_tao(phantom.image, phantom.labels, "B", "cpu", maps=False)
    assert not any(e.flagged for e in pred.eyes) and NO_TRUST_WARNING not in pred.warnings
    assert all("ood" in e and "trust" not in e for e in pred.to_json()["eyes"])


def test_noise_is_flagged_outside_the_training_data(phantom):
    noise = np.random.default_rng(0).normal(500, 200, phantom.image.shape).clip(0).astype(np.int16)
    pred = predict_tao(phantom.image.with_array(noise), phantom.labels, "B", "cpu", maps=False)
    assert all(e.flagged for e in pred.eyes)
    assert all(e["trust"] == OOD_MESSAGE for e in pred.to_json()["eyes"])
    assert sum(OOD_MESSAGE in w for w in pred.warnings) == 2


def test_a_brain_protocol_t2_without_fat_suppression_is_flagged():
    case = orbit_case(SEED, "t2", tao="active", orientation="axial", spacing=(0.6, 0.6, 3.3),
                      rendering=Rendering(contrast=CONTRASTS["t2_no_fat_suppression"]))
    pred = predict_tao(case.image, case.labels, "B", "cpu", maps=False)
    assert any(e.flagged for e in pred.eyes), [(e.ood_distance, e.trust and e.trust.threshold) for e in pred.eyes]


def test_a_ct_is_refused():
    ct = orbit_case(SEED, "ct", orientation="axial")
    with pytest.raises(OrbitAIError, match="CT"):
        predict_tao(ct.image, ct.labels, "B", "cpu", maps=False)
