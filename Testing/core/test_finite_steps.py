"""A training step with non-finite gradients is skipped, never applied (`orbitai.training.finite`): the MRI ninth
stage's first run turned every weight to NaN in epoch 53 of 120, and its checkpoint with it."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from orbitai.errors import TrainingError
from orbitai.training.finite import FiniteSteps


def _model_and_opt():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.BatchNorm1d(2))
    return model, torch.optim.Adam(model.parameters(), lr=0.1)


def _backward(model, x, guard=None):
    model.zero_grad(set_to_none=True)
    if guard is not None:
        guard.begin()
    model(x).sum().backward()


def test_a_finite_step_runs_as_a_plain_step_and_a_nan_step_changes_nothing():
    model, opt = _model_and_opt()
    plain, plain_opt = _model_and_opt()
    guard = FiniteSteps(model)
    x = torch.arange(12.0).reshape(3, 4)
    _backward(model, x, guard)
    _backward(plain, x)
    assert guard.step(opt)
    plain_opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))

    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: {n: t.clone() for n, t in v.items() if torch.is_tensor(t)} for k, v in opt.state.items()}
    _backward(model, torch.full((3, 4), float("nan")), guard)
    assert not torch.isfinite(model[1].running_mean).all()      # the forward pass wrote NaN into the statistics
    assert not guard.step(opt, "epoch 1 iteration 2")
    assert guard.skipped == 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(state[p][n], t) for p, v in opt.state.items() for n, t in v.items() if torch.is_tensor(t))
    assert all(p.grad is None for p in model.parameters())


def test_too_many_non_finite_steps_in_a_row_end_the_run_in_one_line():
    model, opt = _model_and_opt()
    guard = FiniteSteps(model, limit=3, what="seg train")
    for _ in range(2):
        _backward(model, torch.full((2, 4), float("inf")), guard)
        guard.step(opt)
    _backward(model, torch.arange(8.0).reshape(2, 4), guard)
    assert guard.step(opt) and guard.in_a_row == 0          # a finite step in between starts the count again
    for _ in range(2):
        _backward(model, torch.full((2, 4), float("inf")), guard)
        guard.step(opt)
    _backward(model, torch.full((2, 4), float("inf")), guard)
    with pytest.raises(TrainingError, match=r"^seg train stopped: 3 steps in a row gave non-finite gradients") as e:
        guard.step(opt)
    assert "\n" not in str(e.value)


def test_seg_training_skips_a_nan_patch_and_writes_finite_weights(tmp_path, monkeypatch, caplog):
    """One patch of a short real training run is NaN: the run ends with finite weights and a finite loss row."""
    from orbitai.cohort.manifest import Case
    from orbitai.io import write_volume
    from orbitai.orbit import train as seg_train
    from orbitai.orbit.configs import get_config
    from orbitai.phantoms import orbit_case

    case = orbit_case(777031, "ct", oblique=False)
    img, seg = write_volume(case.image, tmp_path / "ct.nrrd"), write_volume(case.labels, tmp_path / "ct_seg.nrrd")
    real_augment = seg_train.augment
    calls = []

    def nan_once(im, lab, rng, cfg):
        im, lab = real_augment(im, lab, rng, cfg)
        calls.append(1)
        return (np.full_like(im, np.nan) if len(calls) == 2 else im), lab

    monkeypatch.setattr(seg_train, "augment", nan_once)
    cfg = replace(get_config("svnet-demo-ct", seed=1, epochs=1), iters_per_epoch=3, batch_size=1)
    with caplog.at_level("WARNING", logger="orbitai.training.finite"):
        out = seg_train.train([Case("a", img, seg, {})], cfg, tmp_path / "bundle")
    assert "seg train: a step with non-finite gradients skipped at epoch 1 iteration" in caplog.text
    from orbitai.bundle.core import load_bundle
    weights = load_bundle(out).load_state_dict()
    assert all(torch.isfinite(v.float()).all() for v in weights.values())
    rows = (tmp_path / "bundle-metrics.csv").read_text().splitlines()
    assert np.isfinite(float(rows[1].split(",")[1]))
