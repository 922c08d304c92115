"""Shared classifier trainer: learns a separable problem, per-epoch CSV, paper L2 groups, and an
interrupted run resumes to exactly the weights of an uninterrupted one."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import orbitai.tao  # noqa: F401  (registers the TAO networks these tests train)
from orbitai.classify.train import TrainSettings, lr_at, make_optimizer, predict_proba, train_classifier
from orbitai.models import build_model


def _data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, 5, 32, 32)).astype(np.float32)
    x[y == 1, :, 8:16, 8:16] += 3.0          # a bright square marks class 1
    return x, y


def _model():
    torch.manual_seed(0)
    return build_model("tao_network_b", base_channels=8, dropout=0.1)


def test_learns_and_writes_csv(tmp_path):
    x, y = _data()
    s = TrainSettings(epochs=25, lr=3e-3, lr_after=1e-3, decay_epoch=20, batch_size=16,
                      conv_weight_decay=0.0, fc_weight_decay=0.0)
    model = _model()
    train_classifier(model, x, y, s, tmp_path, val=(x, y), seed=1)
    xt, yt = _data(seed=5)
    acc = float(np.mean(predict_proba(model, xt).argmax(1) == yt))
    assert acc >= 0.9
    rows = list(csv.DictReader((tmp_path / "epochs.csv").open()))
    assert [int(r["epoch"]) for r in rows] == list(range(25))
    assert float(rows[0]["lr"]) == 3e-3 and float(rows[-1]["lr"]) == 1e-3
    # trained channels-last for speed, handed back in the default layout (and so saved)
    assert all(p.is_contiguous() for p in model.parameters())


def test_resume_is_exact(tmp_path):
    x, y = _data()
    s = TrainSettings(epochs=4, lr=1e-3, lr_after=1e-4, decay_epoch=3, batch_size=16)
    full = _model()
    train_classifier(full, x, y, s, tmp_path / "a", seed=3)
    part = _model()
    train_classifier(part, x, y, TrainSettings(**{**s.__dict__, "epochs": 2}), tmp_path / "b", seed=3)
    resumed = _model()
    train_classifier(resumed, x, y, s, tmp_path / "b", seed=3)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert len(list(csv.DictReader((tmp_path / "b" / "epochs.csv").open()))) == 4


def test_schedule_groups_and_one_class_error(tmp_path):
    s = TrainSettings(epochs=400, lr=3e-4, lr_after=5e-5, decay_epoch=300)
    assert lr_at(299, s) == 3e-4 and lr_at(300, s) == 5e-5
    opt = make_optimizer(_model(), s)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.001, 0.0]
    assert opt.defaults["betas"] == (0.9, 0.999)
    x, _ = _data(8)
    with pytest.raises(ValueError, match="one class"):
        train_classifier(_model(), x, np.zeros(8, int), s, tmp_path)


def test_sgd_with_step_decay_applies_the_schedule_to_the_optimizer(tmp_path):
    """Paper 003's recipe: SGD, lr 0.01 x 0.9 every ten epochs; the lr the optimizer used each epoch is logged."""
    s = TrainSettings(epochs=21, lr=0.01, lr_after=0.01, decay_epoch=21, batch_size=4, optimizer="sgd", momentum=0.0,
                      lr_step=10, lr_gamma=0.9)
    assert [round(lr_at(e, s), 10) for e in (0, 9, 10, 19, 20)] == [0.01, 0.01, 0.009, 0.009, 0.0081]
    opt = make_optimizer(_model(), s)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.0
    with pytest.raises(ValueError, match="optimizer"):
        make_optimizer(_model(), TrainSettings(epochs=1, lr=0.1, lr_after=0.1, decay_epoch=1, optimizer="lbfgs"))
    x, y = _data(8)
    train_classifier(_model(), x, y, s, tmp_path, seed=0)
    rows = list(csv.DictReader((tmp_path / "epochs.csv").open()))
    assert [round(float(r["lr"]), 10) for r in rows][9:12] == [0.01, 0.009, 0.009]
