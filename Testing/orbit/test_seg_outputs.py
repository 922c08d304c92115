"""No ``orbitai seg`` command writes over its input (issue #14): ``--out`` equal to the input, a
result file named like an input, a bundle folder holding the cohort; and ``seg train`` refuses an
epoch count below 1 in the library too, recording the epochs it ran."""
from __future__ import annotations

import json

import pytest

from orbitai.cli import main
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError, UserError
from orbitai.io import write_volume
from orbitai.phantoms import orbit_case, write_cohort
from orbitai.result import check_outputs
from orbitai.orbit.configs import get_config
from orbitai.orbit.train import train

SEED = 777015  # never used for training cohorts


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    return write_volume(orbit_case(SEED, modality="ct").image, tmp_path_factory.mktemp("ct") / "ct.nrrd")


@pytest.fixture(scope="module")
def one_case(tmp_path_factory):
    """A one-case orbit CT cohort shared by the module's library tests (none writes into it)."""
    return read_manifest(write_cohort("orbit-ct", 1, SEED, tmp_path_factory.mktemp("one_case"), montage_cases=0))


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_predict_out_equal_to_the_input_is_refused(ct, tmp_path, capsys):
    before = ct.read_bytes()
    assert main(["seg", "predict", str(ct), "--out", str(ct)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"orbitai seg predict: error: --out {ct} is the input {ct}; choose another output folder."
    assert ct.read_bytes() == before


def test_predict_never_replaces_an_input_in_the_out_folder(ct, tmp_path, capsys):
    """The input named like an output (volumes.csv) or listed by the earlier result.json there."""
    out = tmp_path / "run"
    out.mkdir()
    image = write_volume(orbit_case(SEED, modality="ct").image, out / "uncertainty.nrrd")
    assert main(["seg", "predict", str(image), "--out", str(out), "--device", "cpu"]) == 2
    assert "Writing uncertainty.nrrd to" in capsys.readouterr().err
    old = out / "old.nrrd"
    image.rename(old)
    (out / "result.json").write_text(json.dumps({"task": "segmentation", "files": {"segmentation": "old.nrrd"}}))
    before = snapshot(out)
    assert main(["seg", "predict", str(old), "--out", str(out), "--device", "cpu"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err and snapshot(out) == before


def test_train_into_the_cohort_folder_is_refused(tmp_path, capsys):
    manifest = write_cohort("orbit-ct", 2, SEED, tmp_path / "cohort", montage_cases=0)
    before = snapshot(tmp_path)
    assert main(["seg", "train", "--manifest", str(manifest), "--config", "svnet-demo-ct", "--epochs", "1",
                 "--out", str(tmp_path / "cohort"), "--device", "cpu"]) == 2
    assert "would be replaced as a whole, but it holds the input" in capsys.readouterr().err
    assert snapshot(tmp_path) == before      # the cohort was not deleted, no work folder was left


def test_check_outputs_allows_a_separate_folder_and_inputs_beside_it(tmp_path):
    (tmp_path / "in.nrrd").write_text("x")
    assert check_outputs(tmp_path / "out", [tmp_path / "in.nrrd", None], ("a.csv",)) == tmp_path / "out"
    # a job's input inside OUT stays untouched by a result there, so it is allowed
    assert check_outputs(tmp_path, [tmp_path / "in.nrrd"], ("result.json",)) == tmp_path
    with pytest.raises(UserError, match="Writing in.nrrd-training"):
        check_outputs(tmp_path / "in.nrrd-b", [tmp_path / "in.nrrd-training"], beside=("in.nrrd-training",))


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_trainer_refuses_epochs_below_one(one_case, tmp_path, epochs):
    cohort = one_case[0].image.parent.parent
    before = snapshot(cohort)
    with pytest.raises(InputError, match="epochs must be a whole number of at least 1"):
        train(one_case, get_config("svnet-demo-ct", epochs=epochs), tmp_path / "b")
    assert list(tmp_path.iterdir()) == [] and snapshot(cohort) == before     # nothing written, no work folder


def test_bundle_records_the_epochs_run_and_a_finished_checkpoint_resumes(one_case, tmp_path):
    from dataclasses import replace

    from orbitai.bundle import load_bundle

    cases = one_case
    cfg = replace(get_config("svnet-demo-ct"), iters_per_epoch=1, batch_size=1, val_every=1)
    for _ in range(2):   # the work folder is gone after a success (issue 32): the rerun trains again, same record
        training = load_bundle(train(cases, replace(cfg, epochs=1), tmp_path / "b")).metadata["training"]
        assert training["epochs"] == 1 and training["planned_epochs"] == 1
