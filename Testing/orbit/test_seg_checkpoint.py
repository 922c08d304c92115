"""``seg train`` resumes only from a checkpoint that passes its checksum (issue #14): a corrupt or
truncated one is named in one warning and training starts over and finishes with the weights of a
clean run; and a refused argument (folds, fold, too few cases) leaves no work folder behind."""
from __future__ import annotations

import csv
import logging
from dataclasses import replace

import pytest
import torch

from orbitai.bundle import load_bundle
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError
from orbitai.phantoms import write_cohort
from orbitai.orbit.configs import get_config
from orbitai.orbit.train import TrainRun, train
from orbitai.testing.damage import flip_bytes, truncate
from orbitai.staging import training_work_folder

SEED = 777141  # never used for training cohorts
CFG = replace(get_config("svnet-demo-ct"), iters_per_epoch=1, batch_size=1, val_every=1)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return read_manifest(write_cohort("orbit-ct", 2, SEED, tmp_path_factory.mktemp("cohort"), montage_cases=0))


def weights(bundle):
    return torch.load(bundle / "model.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def clean(cases, tmp_path_factory):
    """The weights of an uninterrupted two-epoch run."""
    return weights(train(cases, replace(CFG, epochs=2), tmp_path_factory.mktemp("clean") / "b"))


@pytest.mark.parametrize("damage", [flip_bytes, truncate])
def test_corrupt_checkpoint_is_named_and_training_starts_over(cases, clean, tmp_path, caplog, damage):
    train(cases, replace(CFG, epochs=2), tmp_path / "b", TrainRun(time_limit_s=1e-9))   # cut short after one epoch: the checkpoint stays
    ckpt = training_work_folder(tmp_path / "b") / "checkpoint.pt"
    damage(ckpt)
    with caplog.at_level(logging.WARNING):
        bundle = train(cases, replace(CFG, epochs=2), tmp_path / "b")
    named = [r.getMessage() for r in caplog.records if "corrupt" in r.getMessage()]
    assert named == [f"checkpoint {ckpt} is corrupt (checksum mismatch); starting over."]
    assert load_bundle(bundle).metadata["training"]["epochs"] == 2
    rows = list(csv.DictReader((tmp_path / "b-metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]          # started over: no row of the damaged run is kept
    trained = weights(bundle)
    assert all(torch.equal(trained[k], v) for k, v in clean.items())


@pytest.mark.parametrize("folds, fold, message", [
    (3, 0, "--folds 3 needs at least 3 cases, the manifest has 2"),
    (2, 2, "--fold must be in 0..1"),
    (2, -1, "--fold must be in 0..1"),
])
def test_refused_fold_arguments_leave_no_work_folder(cases, tmp_path, folds, fold, message):
    with pytest.raises(InputError, match=message):
        train(cases, replace(CFG, epochs=1), tmp_path / "b", TrainRun(folds=folds, fold=fold))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_case_leaves_no_work_folder(cases, tmp_path):
    broken = tmp_path / "broken.nrrd"
    broken.write_bytes(b"NRRD0004\nnot an image\n")
    bad = replace(cases[1], image=broken)
    with pytest.raises(InputError):
        train([cases[0], bad], replace(CFG, epochs=1), tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.nrrd"]
