"""Issue 32, part A: a training never empties a folder it did not create (defect 1), no work folder left
after a successful training (9), shipped names before paths (4), constant and empty images (5), Dask's
cancel (6) and the wording cases (8). Each case runs through ``orbitai.cli.main`` on tiny inputs and is
refused before any work: exit 2, one line naming what to do, the user's files untouched."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from orbitai.bundle import load_bundle, write_bundle
from orbitai.cli import main
from orbitai.errors import InputError, UserError
from orbitai.io import Volume, write_volume

BUILTIN = Path(__file__).resolve().parents[2] / "orbitai" / "resources" / "models"


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """Blank 16^3 images (one a constant), a 4-case labelled manifest and a few folders to write into."""
    d = tmp_path_factory.mktemp("issue32a")
    write_volume(Volume(np.zeros((16, 16, 16), np.float32)), d / "img.nrrd")
    write_volume(Volume(np.full((16, 16, 16), 7.0, np.float32)), d / "const.nrrd")
    seg = np.zeros((16, 16, 16), np.uint8)
    seg[6:10, 6:10, 6:10] = 1
    write_volume(Volume(seg), d / "seg.nrrd")
    (d / "m.csv").write_text("case_id,image,segmentation,label\n"
                             + "".join(f"c{i},img.nrrd,seg.nrrd,{i % 2}\n" for i in range(4)))
    return d


def _user_folder(root: Path, name: str = "mine") -> Path:
    """A folder of the user's: a file and a sub-folder with a file."""
    f = root / name
    (f / "sub").mkdir(parents=True)
    (f / "notes.txt").write_text("mine")
    (f / "sub" / "scan.txt").write_text("mine too")
    return f


def _intact(f: Path) -> bool:
    return (f / "notes.txt").read_text() == "mine" and (f / "sub" / "scan.txt").read_text() == "mine too"


def _trainings(d: Path, out: Path) -> dict[str, list[str]]:
    m = str(d / "m.csv")
    return {
        "ivgc train": ["ivgc", "train", "--manifest", m, "--model", "resnet50", "--epochs", "1", "--out", str(out)],
        "tao train": ["tao", "train", "--manifest", m, "--epochs", "1", "--holdout", "0", "--out", str(out)],
        "neuro train": ["neuro", "train", "--manifest", m, "--epochs", "1", "--holdout", "0", "--out", str(out)],
        "seg train": ["seg", "train", "--manifest", m, "--config", "svnet-demo-ct", "--epochs", "1", "--out", str(out)],
    }


TRAININGS = ["ivgc train", "tao train", "neuro train", "seg train"]
TASKS = {"ivgc train": "tao_network_b_demo", "tao train": "neuro_twoview18_demo", "neuro train": "orbit_svnet_ct_demo",
         "seg train": "tao_network_b_demo"}   # a shipped bundle of another task for each training


# ----------------------------------------------------------------------------------------- defect 1
def test_write_bundle_never_empties_a_folder_that_is_not_a_bundle(tmp_path):
    mine = _user_folder(tmp_path)
    meta = json.loads((BUILTIN / "tao_network_b_demo" / "metadata.json").read_text())
    with pytest.raises(UserError, match="is not a model bundle"):
        write_bundle(mine, meta, lambda tmp: {})
    assert _intact(mine) and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_write_bundle_replaces_an_earlier_bundle_and_moves_one_with_other_files_aside(tmp_path, capsys):
    meta = json.loads((BUILTIN / "ivgc_svm_demo" / "metadata.json").read_text())
    out = tmp_path / "b"
    shutil.copytree(BUILTIN / "ivgc_svm_demo", out)

    def copy(tmp: Path) -> dict:
        for p in (BUILTIN / "ivgc_svm_demo").iterdir():
            if p.name != "metadata.json":
                shutil.copy(p, tmp)
        return {}

    write_bundle(out, meta, copy)          # an earlier bundle of the same task, nothing else: replaced
    assert load_bundle(out).name == "ivgc_svm_demo" and sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="add --overwrite to move the old folder aside"):
        write_bundle(out, meta, copy)
    assert (out / "notes.txt").read_text() == "mine"
    write_bundle(out, meta, copy, overwrite=True)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("b.old-")]
    assert len(aside) == 1 and (aside[0] / "notes.txt").read_text() == "mine" and not (out / "notes.txt").exists()
    assert f"moved the earlier {out} aside to {aside[0]}" in capsys.readouterr().out


@pytest.mark.parametrize("command", TRAININGS)
def test_training_refuses_a_folder_that_is_not_its_bundle_before_any_work(d, tmp_path, capsys, command):
    mine = _user_folder(tmp_path)
    assert main(_trainings(d, mine)[command]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a model bundle (it holds notes.txt, sub)" in err[0], err
    assert "choose a new folder name" in err[0] and _intact(mine)
    other = tmp_path / "other"            # another task's bundle
    shutil.copytree(BUILTIN / TASKS[command], other)
    assert main(_trainings(d, other)[command]) == 2
    assert "bundle, not a" in capsys.readouterr().err and (other / "model.pt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "other"]


@pytest.mark.parametrize("command", TRAININGS)
def test_training_into_its_bundle_with_other_files_needs_overwrite(d, tmp_path, capsys, command):
    own = {"ivgc train": "ivgc_resnet50_demo", "tao train": "tao_network_b_demo", "neuro train": "neuro_twoview18_demo",
           "seg train": "orbit_svnet_ct_demo"}[command]
    out = tmp_path / "b"
    shutil.copytree(BUILTIN / own, out)
    (out / "notes.txt").write_text("mine")
    assert main(_trainings(d, out)[command]) == 2
    assert "add --overwrite" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"


def test_predict_and_evaluate_never_replace_a_file_they_did_not_write(d, tmp_path, capsys):
    mine = _user_folder(tmp_path)
    (mine / "gradcam.nrrd").write_text("mine")
    (mine / "summary.csv").write_text("mine")
    args = {"tao predict": ["tao", "predict", str(d / "img.nrrd"), "--segmentation", str(d / "seg.nrrd"),
                            "--device", "cpu", "--out", str(mine)],
            "ivgc predict": ["ivgc", "predict", str(d / "img.nrrd"), "--segmentation", str(d / "seg.nrrd"),
                             "--out", str(mine)],
            "seg evaluate": ["seg", "evaluate", "--manifest", str(d / "m.csv"), "--model", "orbit_svnet_ct_demo",
                             "--out", str(mine)]}
    for name, argv in args.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "not written by this command" in err and "choose another output folder" in err, (name, err)
    assert _intact(mine) and (mine / "gradcam.nrrd").read_text() == "mine"


def test_cv_never_replaces_folders_it_did_not_write(d, tmp_path, capsys):
    out = tmp_path / "cv"
    (out / "work").mkdir(parents=True)
    (out / "work" / "mine.txt").write_text("mine")
    (out / "fold0").mkdir()
    (out / "run0_fold0").mkdir()
    m = str(d / "m.csv")
    for argv in (["neuro", "cv", "--manifest", m, "--folds", "2", "--epochs", "1", "--out", str(out)],
                 ["tao", "cv", "--manifest", m, "--folds", "2", "--epochs", "1", "--out", str(out)],
                 ["ivgc", "cv", "--manifest", m, "--model", "resnet50", "--folds", "2", "--epochs", "1",
                  "--out", str(out)]):
        assert main(argv) == 2, argv
        assert "not written by this command" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["fold0", "run0_fold0", "work"]


def test_phantom_never_replaces_a_real_cohort(tmp_path, capsys):
    out = tmp_path / "cohort"
    (out / "images").mkdir(parents=True)
    (out / "images" / "patient1.nrrd").write_text("mine")
    (out / "manifest.csv").write_text("case_id,image\np1,images/patient1.nrrd\n")
    assert main(["phantom", "tao", "--n", "1", "--montage-cases", "0", "--out", str(out)]) == 2
    assert "already holds manifest.csv, images" in capsys.readouterr().err
    assert (out / "images" / "patient1.nrrd").read_text() == "mine"


# ----------------------------------------------------------------------------------------- defect 9
def test_training_folder_is_removed_on_success_and_kept_when_cut_short(tmp_path, capsys):
    from orbitai.staging import training_folder

    work = tmp_path / ".b-training"
    with training_folder(work):
        work.mkdir()
        (work / "cache.npz").write_bytes(b"x" * 1000)
    assert not work.exists()
    with training_folder(work, finished=lambda: False):   # seg train --time-limit: the rerun goes on
        work.mkdir()
        (work / "checkpoint.pt").write_bytes(b"x")
    assert (work / "checkpoint.pt").is_file() and "kept" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------- defect 4
def test_shipped_names_come_before_folders_of_the_same_name(d, tmp_path, monkeypatch):
    from orbitai.bundle import find_bundle
    from orbitai.errors import BundleError
    from orbitai.radiomics.protocol import RadiomicsProtocol

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ivgc").mkdir()                      # the obvious name for a cohort folder
    (tmp_path / "ivgc_svm_demo").mkdir()
    assert RadiomicsProtocol.load("ivgc").to_dict() == RadiomicsProtocol.load("ivgc").to_dict()
    assert find_bundle("ivgc_svm_demo").path == BUILTIN / "ivgc_svm_demo"
    with pytest.raises(BundleError, match=r"The folder \./ivgc is not a model bundle \(it has no metadata.json\)"):
        find_bundle("./ivgc")
    with pytest.raises(BundleError, match="No model bundle folder models/x: it does not exist"):
        find_bundle("models/x")
    with pytest.raises(InputError, match="radiomics parameter file ivgc is a folder"):
        RadiomicsProtocol.load("./ivgc")


def test_ivgc_features_with_a_cohort_folder_named_ivgc(d, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ivgc").mkdir()
    assert main(["ivgc", "features", "--manifest", str(d / "m.csv"), "--out", "f.csv", "--workers", "0",
                 "--strategies", "mrlr"]) != 0
    assert "radiomics parameter file" not in capsys.readouterr().err   # the shipped protocol was used


# ----------------------------------------------------------------------------------------- defects 5 and 8
@pytest.mark.parametrize("argv, words", [
    (["ivgc", "predict", "{d}/const.nrrd", "--segmentation", "{d}/seg.nrrd", "--out", "{t}/o"],
     "The image const.nrrd is empty or constant (every voxel is 7)"),
    (["tao", "predict", "{d}/const.nrrd", "--segmentation", "{d}/seg.nrrd", "--out", "{t}/o"],
     "The image is empty or constant (every voxel is 7)"),
    (["seg", "predict", "{d}/const.nrrd", "--out", "{t}/o"], "The image is empty or constant (every voxel is 7)"),
    (["seg", "predict", "{t}/zero.nrrd", "--out", "{t}/o"], "zero.nrrd is empty (0 bytes)"),
    (["ivgc", "evaluate", "--manifest", "{t}/one.csv", "--model", "resnet50", "--out", "{t}/o"],
     "evaluation (AUC, sensitivity, specificity) needs responders (1) and non-responders (0)"),
    (["neuro", "train", "--manifest", "{t}/one.csv", "--epochs", "1", "--out", "{t}/o"],
     "All 4 cases have label 1; training needs MS (0) and NMOSD (1)"),
    (["neuro", "train", "--manifest", "{t}/missing.csv", "--epochs", "1", "--out", "{t}/o"],
     "Case c2: the image"),
    (["tao", "train", "--manifest", "{t}/semi.csv", "--epochs", "1", "--out", "{t}/o"],
     "separated by ';': save it as a comma-separated CSV"),
    (["ivgc", "predict", "{d}/img.nrrd", "--segmentation", "{d}/seg.nrrd", "--model", "{t}", "--out", "{t}/o"],
     "is not a model bundle (it has no metadata.json)"),
    (["tao", "train", "--manifest", "{t}/zero.csv", "--epochs", "1", "--holdout", "0", "--out", "{t}/o"],
     "Case c0: the image is empty or constant"),   # cohort errors name the case
])
def test_one_clear_line(d, tmp_path, capsys, argv, words):
    t = tmp_path
    (t / "zero.nrrd").write_bytes(b"")
    (t / "one.csv").write_text("case_id,image,segmentation,label\n"
                               + "".join(f"c{i},{d}/img.nrrd,{d}/seg.nrrd,1\n" for i in range(4)))
    (t / "missing.csv").write_text((d / "m.csv").read_text().replace("c2,img.nrrd", f"c2,{t}/nope.nrrd")
                                   .replace("img.nrrd", f"{d}/img.nrrd").replace(",seg.nrrd", f",{d}/seg.nrrd"))
    (t / "semi.csv").write_text((d / "m.csv").read_text().replace(",", ";"))
    (t / "zero.csv").write_text(f"case_id,image,segmentation,label\nc0,{d}/img.nrrd,{d}/seg.nrrd,0\n"
                                f"c1,{t}/zero.nrrd,{d}/seg.nrrd,1\n")
    assert main([a.replace("{d}", str(d)).replace("{t}", str(t)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0], err
    assert not (t / "o").exists()


def test_a_score_range_is_said_once():
    from orbitai.cohort.clinical import IVGC_CLINICAL
    from orbitai.cohort.manifest import ManifestError

    cas = next(f for f in IVGC_CLINICAL.features if f.name == "cas_score")
    with pytest.raises(ManifestError) as exc:
        cas.parse("9", "c7")
    assert "outside the valid range 0 to 7 (" in str(exc.value) and "0-7" not in str(exc.value)
