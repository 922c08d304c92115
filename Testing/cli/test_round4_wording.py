"""Round 4 wording (issues #62.14 and #69.9): a refusal credits what really said it and names what to do with the
options the command has: ``--modality CT`` on an MRI is the user's statement, not "the scan's image and tags";
``--name CON`` is refused as a model name; an IVGC cohort without clinical columns is told which columns to add
to its manifest (it has no ``--clinical``)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from orbitai.cli import main
from orbitai.errors import InputError
from orbitai.io import write_volume
from orbitai.phantoms.orbit import orbit_case


def test_modality_ct_stated_on_an_mri_is_credited_to_the_statement(tmp_path, capsys):
    write_volume(orbit_case(2, "t1").image, tmp_path / "mri.nrrd")
    code = main(["seg", "predict", str(tmp_path / "mri.nrrd"), "--modality", "CT", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "as stated with --modality CT" in err and "the scan's image and tags" not in err, err
    assert "--modality MR" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["CON", "nul", "com1.models"])
def test_a_windows_device_name_is_refused_as_a_model_name(name, tmp_path, monkeypatch):
    from orbitai.orbit.finetune import out_folder

    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputError) as exc:
        out_folder("orbit_svnet_mri_demo", name)
    text = str(exc.value)
    assert "is not a model name" in text and "Windows reserves it" in text and "case_id" not in text
    assert not (tmp_path / ".orbitai").exists()


def test_the_command_refuses_name_con_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    case = orbit_case(2, "t1")
    write_volume(case.image, tmp_path / "a.nrrd")
    write_volume(case.labels, tmp_path / "a_labels.nrrd")
    (tmp_path / "m.csv").write_text("case_id,image,segmentation\na,a.nrrd,a_labels.nrrd\n")
    code = main(["seg", "finetune", "--manifest", str(tmp_path / "m.csv"), "--name", "CON", "--steps", "1",
                 "--folds", "1", "--replay-share", "0"])
    err = capsys.readouterr().err
    assert code != 0 and "--name 'CON' is not a model name (Windows reserves it for a device)" in err
    assert not (tmp_path / "home").exists()


def test_an_ivgc_cohort_without_clinical_columns_is_told_which_columns_to_add(tmp_path, capsys):
    assert main(["phantom", "ivgc", "--n", "1", "--seed", "778400", "--out", str(tmp_path / "c"),
                 "--montage-cases", "0"]) == 0
    with (tmp_path / "c" / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    bare = tmp_path / "c" / "bare.csv"
    with bare.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "image", "segmentation"])
        w.writerows([(r["case_id"], r["image"], r["segmentation"]) for r in rows])
    capsys.readouterr()
    code = main(["ivgc", "predict", "--manifest", str(bare), "--model", "rdinet_clinical", "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr()
    text = err.out + err.err
    assert code != 0 and "Traceback" not in text
    assert "--clinical" not in text, text
    assert f"Add the columns age_years, sex_male, cas_score to the manifest {bare}" in text, text
    assert Path(bare).is_file()
