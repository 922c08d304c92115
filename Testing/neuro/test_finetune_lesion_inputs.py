"""``neuro finetune-lesions`` round 4 (issues #62 and #69): lesion maps that cannot teach are refused in one line
naming the case before any training (negative or fractional marks, another task's label map, the FLAIR itself, one
FLAIR under two case_ids, no lesion marked anywhere); the bundled models' folder and a user's folder beside ``--out``
are never written."""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from orbitai.bundle import core as bundle_core
from orbitai.cohort.manifest import Case
from orbitai.errors import InputError, OrbitAIError
from orbitai.io import write_volume
from orbitai.io.segfile import orbit_table, write_segmentation
from orbitai.neuro.finetune import LesionRecipe, check_lesion_labels, finetune_lesions, prepare_case
from orbitai.neuro.lesionseg import lesion_bundle
from orbitai.staging import finetune_work_folder

SEED = 778310   # never used for training phantoms
RECIPE = LesionRecipe(steps=2, eval_every=2, folds=1, batch_size=2, replay_share=0.0)


@pytest.fixture(scope="module")
def flair_case():
    from orbitai.phantoms.brain import brain_flair_case

    return brain_flair_case(SEED, "ms", noise=True)


@pytest.fixture(scope="module")
def files(flair_case, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("flair")
    write_volume(flair_case.image, folder / "flair.nrrd")
    write_volume(flair_case.labels, folder / "lesions.nrrd")
    return folder / "flair.nrrd", folder / "lesions.nrrd"


@pytest.fixture(scope="module")
def prepared(flair_case):
    from orbitai.neuro.anatomy import extract_brain

    return prepare_case("c0", flair_case.image, flair_case.labels, extract_brain(flair_case.image).mask)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def lesion_map(flair_case, tmp_path: Path, change, name: str = "changed.nii.gz") -> Case:
    labels = flair_case.labels
    write_volume(labels.with_array(change(np.asarray(labels.array))), tmp_path / name)
    return Case("p7", tmp_path / "flair.nrrd", tmp_path / name, {})


def test_lesions_marked_with_negative_values_are_refused(flair_case, tmp_path):
    case = lesion_map(flair_case, tmp_path, lambda a: -a.astype(np.int16))
    with pytest.raises(InputError, match="outside the lesion scheme") as exc:
        check_lesion_labels(case)
    assert "p7" in one_line(exc) and "-1" in str(exc.value)


def test_lesion_values_times_half_as_float_are_refused(flair_case, tmp_path):
    case = lesion_map(flair_case, tmp_path, lambda a: a.astype(np.float32) * 0.5)
    with pytest.raises(InputError, match="not whole label values") as exc:
        check_lesion_labels(case)
    assert "p7" in one_line(exc)


def test_an_orbit_segmentation_is_refused_as_a_lesion_map(flair_case, tmp_path):
    lab = flair_case.labels
    # several orbit labels: values outside the lesion scheme
    case = lesion_map(flair_case, tmp_path, lambda a: (a > 0).astype(np.uint8) * 3)
    with pytest.raises(InputError, match="outside the lesion scheme"):
        check_lesion_labels(case)
    # one orbit structure of value 1 (eyeball_left) in a .seg.nrrd: refused by its segment's name
    write_segmentation(lab.with_array((np.asarray(lab.array) > 0).astype(np.uint8)), tmp_path / "orbit.seg.nrrd",
                       orbit_table(), include_empty=False)
    with pytest.raises(InputError, match="is an orbit structure") as exc:
        check_lesion_labels(Case("p8", tmp_path / "flair.nrrd", tmp_path / "orbit.seg.nrrd", {}))
    assert "p8" in one_line(exc) and "eyeball_left" in str(exc.value)


def test_a_plain_lesion_map_passes(flair_case, tmp_path):
    check_lesion_labels(lesion_map(flair_case, tmp_path, lambda a: (a > 0).astype(np.uint8)))


def test_the_only_lesion_map_empty_is_refused(prepared, tmp_path):
    empty = prepare_case("c9", prepared.flair, prepared.lesions.with_array(np.zeros(prepared.lesions.shape, np.uint8)),
                         prepared.brain)
    with pytest.raises(InputError, match="No lesion is marked") as exc:
        finetune_lesions([empty], tmp_path / "mine", recipe=RECIPE, progress=lambda *a: None)
    assert "c9" in one_line(exc)
    assert not (tmp_path / "mine").exists() and not finetune_work_folder(tmp_path / "mine").exists()


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_in_the_bundled_models_folder_and_a_user_work_folder_are_refused(prepared, tmp_path, monkeypatch):
    base = lesion_bundle()
    builtin = tmp_path / "resources" / "models"
    shutil.copytree(base.path, builtin / base.path.name)
    monkeypatch.setattr(bundle_core, "BUILTIN_DIR", builtin)
    before = digest(builtin)
    with pytest.raises(OrbitAIError, match="bundled models' folder"):
        finetune_lesions([prepared], builtin / base.path.name, recipe=RECIPE, progress=lambda *a: None)
    assert digest(builtin) == before
    mine = finetune_work_folder(tmp_path / "mine")
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own")
    with pytest.raises(InputError, match="not made by an OrbitAI fine-tuning"):
        finetune_lesions([prepared], tmp_path / "mine", recipe=RECIPE, progress=lambda *a: None)
    assert (mine / "notes.txt").read_text() == "the user's own" and not (tmp_path / "mine").exists()


def command(tmp_path: Path, rows: list[tuple[str, Path, Path]], capsys) -> tuple[int, str]:
    from orbitai.cli import main

    with (tmp_path / "m.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "image", "segmentation"])
        w.writerows([(c, str(i), str(s)) for c, i, s in rows])
    code = main(["neuro", "finetune-lesions", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"),
                 "--steps", "2", "--eval-every", "2", "--folds", "1", "--replay-share", "0"])
    err = capsys.readouterr().err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    return code, err


def test_the_command_refuses_one_flair_under_two_case_ids(files, tmp_path, capsys):
    flair, lesions = files
    code, err = command(tmp_path, [("a", flair, lesions), ("b", flair, lesions)], capsys)
    assert code != 0 and "Cases a and b have the same FLAIR" in err


def test_the_command_refuses_a_flair_given_as_its_own_lesion_map(files, tmp_path, capsys):
    flair, _ = files
    code, err = command(tmp_path, [("a", flair, flair)], capsys)
    assert code != 0 and "Case a: the segmentation flair.nrrd is the FLAIR itself" in err


def test_the_command_checks_every_lesion_map_before_the_first_brain_extraction(files, flair_case, tmp_path, capsys):
    flair, lesions = files
    other = tmp_path / "flair2.nrrd"
    write_volume(flair_case.image.with_array(flair_case.image.array * 1.01), other)
    negative = lesion_map(flair_case, tmp_path, lambda a: -a.astype(np.int16), "negative.nii.gz").segmentation
    from orbitai.cli import main

    with (tmp_path / "m.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("case_id", "image", "segmentation"), ("a", flair, lesions), ("b", other, negative)])
    code = main(["neuro", "finetune-lesions", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"),
                 "--steps", "2", "--eval-every", "2", "--folds", "1", "--replay-share", "0"])
    said = capsys.readouterr()
    assert code != 0 and "Case b: the lesion segmentation negative.nii.gz holds label values outside" in said.err
    assert "brain extraction" not in said.out + said.err
