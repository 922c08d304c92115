"""``orbitai tao`` refuses what would give a silently wrong result or overwrite an input (issue #14):
a label other than 0/1 or a case listed twice in ``evaluate`` (before any prediction, nothing
written), an epoch count below 1 in the trainer itself, and ``--out`` over an input."""
from __future__ import annotations

import pytest

from orbitai.cli import main
from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError
from orbitai.io import write_volume
from orbitai.phantoms import orbit_case, write_cohort
from orbitai.tao.configs import get_config
from orbitai.tao.train import cross_validate, train_tao

SEED = 777061  # never used for training cohorts


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_cohort("tao", 2, SEED, tmp_path_factory.mktemp("tao"), montage_cases=0)


def manifest_with(cohort, path, rows):
    """``rows`` (case index, label) of the cohort as a manifest with absolute paths."""
    cases = read_manifest(cohort)
    path.write_text("case_id,image,segmentation,label\n" + "".join(
        f"{cases[i].case_id},{cases[i].image},{cases[i].segmentation},{label}\n" for i, label in rows))
    return path


def evaluate(manifest, out):
    return main(["tao", "evaluate", "--manifest", str(manifest), "--model", "B", "--no-maps", "--device", "cpu",
                 "--out", str(out)])


def test_evaluate_refuses_a_fractional_label_before_predicting(cohort, tmp_path, capsys):
    manifest = manifest_with(cohort, tmp_path / "m.csv", [(0, 1), (1, 0.7)])
    assert evaluate(manifest, tmp_path / "report") == 2
    captured = capsys.readouterr()
    assert "label must be 0 (inactive) or 1 (active), got '0.7'" in captured.err
    assert "PROGRESS" not in captured.out           # refused before the first case was predicted
    assert not (tmp_path / "report").exists()


def test_evaluate_refuses_a_case_listed_twice(cohort, tmp_path, capsys):
    manifest = manifest_with(cohort, tmp_path / "m.csv", [(0, 1), (1, 0), (0, 1)])
    assert evaluate(manifest, tmp_path / "report") == 2
    assert "is listed more than once (lines 2, 4)" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_evaluate_report_never_replaces_the_manifest(cohort, tmp_path, capsys):
    manifest = manifest_with(cohort, tmp_path / "predictions.csv", [(0, 1), (1, 0)])
    before = manifest.read_text()
    assert evaluate(manifest, tmp_path) == 2
    assert "Writing predictions.csv to" in capsys.readouterr().err and manifest.read_text() == before


@pytest.mark.parametrize("epochs", [0, -1])
def test_trainers_refuse_epochs_below_one(cohort, tmp_path, epochs):
    cases = read_manifest(cohort)
    with pytest.raises(InputError, match="epochs must be a whole number of at least 1"):
        train_tao(cases, get_config("B"), tmp_path / "b", epochs=epochs)
    with pytest.raises(InputError, match="epochs must be a whole number of at least 1"):
        cross_validate(cases, get_config("B"), tmp_path / "cv", folds=2, epochs=epochs)
    assert list(tmp_path.iterdir()) == []          # refused before any work: no cache, no work folder


def test_predict_out_over_an_input_is_refused(tmp_path, capsys):
    case = orbit_case(SEED, "t2", orientation="axial")
    image = write_volume(case.image, tmp_path / "t2.nrrd")
    assert main(["tao", "predict", str(image), "--out", str(image)]) == 2
    assert f"--out {image} is the input {image}" in capsys.readouterr().err
    out = tmp_path / "run"
    out.mkdir()
    seg = write_volume(case.labels, out / "occlusion.nrrd")     # a label map named like the occlusion map
    before = seg.read_bytes()
    assert main(["tao", "predict", str(image), "--segmentation", str(seg), "--out", str(out)]) == 2
    assert "Writing occlusion.nrrd to" in capsys.readouterr().err and seg.read_bytes() == before
