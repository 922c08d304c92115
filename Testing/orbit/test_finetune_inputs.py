"""``seg finetune`` round 4 (issues #62 and #69): what cannot teach is refused in one line naming the case before any
training; the bundled models and a user's folder beside ``--out`` are never written or removed; ``--base FOLDER``
trains from that folder; a stopped run is resumed only with the same inputs' contents."""
from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from orbitai.bundle import load_bundle, save_bundle
from orbitai.bundle import core as bundle_core
from orbitai.cohort.manifest import Case, read_manifest
from orbitai.errors import InputError, OrbitAIError
from orbitai.io import read_volume, write_volume
from orbitai.io.segfile import lesion_table, write_segmentation
from orbitai.orbit.finetune import Recipe, finetune
from orbitai.orbit.models import SEG_MODELS
from orbitai.phantoms import write_cohort
from orbitai.training.finetune import WORK_MARKER
from orbitai.staging import finetune_work_folder

SEED = 778240  # never used for training cohorts
RECIPE = Recipe(steps=4, eval_every=2, folds=2, batch_size=1, replay_share=0.0)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> list[Case]:
    return read_manifest(write_cohort("orbit-mri", 3, SEED, tmp_path_factory.mktemp("cohort"), montage_cases=0))


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def refused(cases, tmp_path, match: str) -> str:
    with pytest.raises(InputError, match=match) as exc:
        finetune(cases, tmp_path / "mine", recipe=RECIPE, progress=lambda *a: None)
    assert not (tmp_path / "mine").exists() and not finetune_work_folder(tmp_path / "mine").exists()
    return one_line(exc)


def with_labels(case: Case, tmp_path: Path, change, name: str = "labels.nii.gz") -> Case:
    """``case`` with its label map changed by ``change(array)``, written as a plain label volume."""
    lab = read_volume(case.segmentation)
    write_volume(lab.with_array(change(np.asarray(lab.array))), tmp_path / name)
    return Case(case.case_id, case.image, tmp_path / name, {})


# ------------------------------------------------------------------------------------- #62.10, #69.5
def test_every_label_map_empty_is_refused_naming_the_case(cohort, tmp_path):
    cases = [with_labels(c, tmp_path, lambda a: np.zeros(a.shape, np.uint8), f"{c.case_id}.nii.gz")
             for c in cohort[:2]]
    text = refused(cases, tmp_path, "marks none of the model's structures")
    assert cohort[0].case_id in text


def test_labels_times_half_as_float_are_refused(cohort, tmp_path):
    half = with_labels(cohort[0], tmp_path, lambda a: a.astype(np.float32) * 0.5)
    assert cohort[0].case_id in refused([half, cohort[1]], tmp_path, "not whole label values")


def test_negative_label_values_are_refused(cohort, tmp_path):
    negative = with_labels(cohort[0], tmp_path, lambda a: -a.astype(np.int16))
    assert cohort[0].case_id in refused([negative, cohort[1]], tmp_path, "outside the orbit scheme")


def test_the_image_as_its_own_segmentation_is_refused(cohort, tmp_path):
    c = cohort[0]
    text = refused([Case(c.case_id, c.image, c.image, {}), cohort[1]], tmp_path, "is the image itself")
    assert c.case_id in text


def test_one_image_under_two_case_ids_is_refused(cohort, tmp_path):
    twin = Case("twin", cohort[0].image, cohort[0].segmentation, {})
    text = refused([cohort[0], twin], tmp_path, "have the same image")
    assert cohort[0].case_id in text and "twin" in text


def test_lesion_masks_as_orbit_labels_are_refused_by_their_segment_names(cohort, tmp_path):
    lab = read_volume(cohort[0].segmentation)
    mask = lab.with_array((np.asarray(lab.array) == 1).astype(np.uint8))    # value 1, named as a lesion
    write_segmentation(mask, tmp_path / "lesions.seg.nrrd", lesion_table())
    case = Case(cohort[0].case_id, cohort[0].image, tmp_path / "lesions.seg.nrrd", {})
    text = refused([case, cohort[1]], tmp_path, "is not an orbit structure")
    assert "white_matter_lesion" in text and cohort[0].case_id in text


def test_an_image_smaller_than_the_training_patch_is_refused(cohort, tmp_path):
    img, lab = read_volume(cohort[0].image), read_volume(cohort[0].segmentation)
    z, y, x = (int(np.median(i)) for i in np.nonzero(np.asarray(lab.array) == 1))    # the left eyeball's centre
    n = [max(1, round(8 / s)) for s in img.spacing[::-1]]                        # 8 x 8 x 8 mm around it
    sl = tuple(slice(max(0, c - k // 2), max(0, c - k // 2) + k) for c, k in zip((z, y, x), n))
    origin = img.index_to_physical((sl[2].start, sl[1].start, sl[0].start))
    small = type(img)(np.asarray(img.array)[sl].copy(), img.spacing, origin, img.direction)
    small_lab = type(lab)(np.asarray(lab.array)[sl].copy(), lab.spacing, origin, lab.direction)
    write_volume(small, tmp_path / "small.nrrd")
    write_volume(small_lab, tmp_path / "small_labels.nrrd")
    case = Case("tiny", tmp_path / "small.nrrd", tmp_path / "small_labels.nrrd", {})
    assert "tiny" in refused([case, cohort[1]], tmp_path, "less than the training patch")


# ------------------------------------------------------------------------------------------- #62.5a
def test_out_in_the_bundled_models_folder_is_refused(cohort, tmp_path, monkeypatch):
    """On a copy of the bundled models folder (as a copy of the package first on PYTHONPATH would be)."""
    base = SEG_MODELS.find("MR")
    builtin = tmp_path / "resources" / "models"
    shutil.copytree(base.path, builtin / base.path.name)
    monkeypatch.setattr(bundle_core, "BUILTIN_DIR", builtin)
    before = digest(builtin)
    with pytest.raises(OrbitAIError, match="bundled models' folder") as exc:
        finetune(cohort[:1], builtin / base.path.name, recipe=RECIPE, progress=lambda *a: None)
    one_line(exc)
    assert digest(builtin) == before and sorted(p.name for p in builtin.iterdir()) == [base.path.name]


def test_the_command_refuses_out_in_the_bundled_models_folder(cohort, tmp_path, monkeypatch, capsys):
    from orbitai.cli import main

    base = SEG_MODELS.find("MR")
    builtin = tmp_path / "resources" / "models"
    shutil.copytree(base.path, builtin / base.path.name)
    monkeypatch.setattr(bundle_core, "BUILTIN_DIR", builtin)
    before = digest(builtin)
    manifest = write_manifest(tmp_path / "m.csv", cohort[:1])
    code = main(["seg", "finetune", "--manifest", str(manifest), "--out", str(builtin / base.path.name),
                 "--steps", "2", "--eval-every", "2", "--folds", "1", "--replay-share", "0"])
    err = capsys.readouterr().err
    assert code != 0 and "bundled models' folder" in err and "Traceback" not in err
    assert digest(builtin) == before


# --------------------------------------------------------------------------------------------- #62.6
def test_a_user_folder_where_the_work_folder_goes_is_never_removed(cohort, tmp_path):
    mine = finetune_work_folder(tmp_path / "mine")
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own")
    with pytest.raises(InputError, match="not made by an OrbitAI fine-tuning") as exc:
        finetune(cohort[:1], tmp_path / "mine", recipe=RECIPE, progress=lambda *a: None)
    text = one_line(exc)
    assert str(mine) in text
    assert (mine / "notes.txt").read_text() == "the user's own" and sorted(mine.iterdir()) == [mine / "notes.txt"]
    assert not (tmp_path / "mine").exists()


# --------------------------------------------------------------------------------------------- #62.8
@pytest.mark.slow   # 2 min on 2 busy cores; test_train_steps_discards_... keeps the bar in the default suite
def test_a_checkpoint_of_other_inputs_is_not_resumed(cohort, tmp_path):
    """Stopped in the first fold (before any fold finished: no state.json yet), then run again with one case's image
    and segmentation replaced by another scan's at the same paths: the first fold starts over. (The kept work
    folder carries the marker that makes it the fine-tuning's own, #62.6.)"""
    recipe = Recipe(steps=2, eval_every=1, folds=2, batch_size=1, replay_share=0.0)
    folder = tmp_path / "cases"
    cases = []
    for c in cohort[:2]:
        (folder / c.case_id).mkdir(parents=True)
        image, seg = folder / c.case_id / "image.nrrd", folder / c.case_id / "labels.seg.nrrd"
        shutil.copy(c.image, image)
        shutil.copy(c.segmentation, seg)
        cases.append(Case(c.case_id, image, seg, {}))

    def stop(done, total, message):
        if message.startswith("fold0: step 2/"):
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        finetune(cases, tmp_path / "mine", recipe=recipe, progress=stop)
    work = finetune_work_folder(tmp_path / "mine")
    assert (work / "checkpoint.pt").is_file() and (work / WORK_MARKER).is_file()
    shutil.copy(cohort[2].image, cases[1].image)                # same paths, another scan and its labels
    shutil.copy(cohort[2].segmentation, cases[1].segmentation)
    first: list[str] = []

    def first_fold_message(done, total, message):
        if message.startswith("fold0:"):
            first.append(message)
            raise KeyboardInterrupt("seen")

    with pytest.raises(KeyboardInterrupt):
        finetune(cases, tmp_path / "mine", recipe=recipe, progress=first_fold_message)
    assert first == ["fold0: starting"]


def test_train_steps_discards_a_checkpoint_of_another_fingerprint(tmp_path):
    from orbitai.training.finetune import RunContext, train_steps

    def run(fingerprint: str, stop_at: int | None = None) -> list[str]:
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        said: list[str] = []

        def tick(tag, step, message):
            said.append(message)
            if stop_at is not None and step == stop_at:
                raise KeyboardInterrupt

        def loss(step):
            return (model(torch.ones(1, 2)) - step).pow(2).sum()

        try:
            train_steps("fold0", model, opt, 4, [], 2, loss, None, RunContext(tmp_path, fingerprint, True, tick))
        except KeyboardInterrupt:
            pass
        return said

    run("inputs A", stop_at=3)
    assert (tmp_path / "checkpoint.pt").is_file()
    assert run("inputs B")[0] == "starting"                    # another run's checkpoint: discarded
    run("inputs A", stop_at=3)
    assert run("inputs A")[0] == "resumed at step 2"           # the same run goes on


# --------------------------------------------------------------------------------------------- #62.9
def write_manifest(path: Path, cases) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "image", "segmentation"])
        for c in cases:
            w.writerow([c.case_id, str(c.image), str(c.segmentation)])
    return path


def namesake_copy(tmp_path: Path):
    """A copy of the bundled MRI model with other weights, under the bundled model's name: (bundled, copy)."""
    bundled = SEG_MODELS.find("MR")
    model = bundled.load_model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.9)
    copy = save_bundle(model, tmp_path / "my_copy", dict(bundled.metadata))
    assert copy.name == bundled.name and copy.metadata["weights_sha256"] != bundled.metadata["weights_sha256"]
    return bundled, copy


def test_the_command_hands_the_base_folder_itself_to_the_fine_tuning(cohort, tmp_path, home, monkeypatch):
    from orbitai.bundle import Bundle
    from orbitai.cli import main
    from orbitai.orbit import finetune as module

    _, copy = namesake_copy(tmp_path)
    used: list[Path] = []

    def spy(cases, out, base, *args, **kwargs):
        used.append((base if isinstance(base, Bundle) else SEG_MODELS.find(base)).path)
        raise InputError("stopped by the test")

    monkeypatch.setattr(module, "finetune", spy)
    manifest = write_manifest(tmp_path / "m.csv", cohort[:1])
    assert main(["seg", "finetune", "--manifest", str(manifest), "--base", str(copy.path), "--out",
                 str(tmp_path / "tuned")]) != 0
    assert used == [copy.path]


@pytest.mark.slow   # a real fine-tuning (70 s on 2 busy cores); the test above keeps the bar in the default suite
def test_base_folder_trains_from_that_folder_not_a_namesake(cohort, tmp_path, home, capsys):
    """A copy of the bundled model with other weights, under the bundled model's name: the command starts from it."""
    from orbitai.cli import main

    _, copy = namesake_copy(tmp_path)
    manifest = write_manifest(tmp_path / "m.csv", cohort[:1])
    code = main(["seg", "finetune", "--manifest", str(manifest), "--base", str(copy.path), "--out",
                 str(tmp_path / "tuned"), "--steps", "2", "--eval-every", "2", "--folds", "1",
                 "--replay-share", "0"])
    assert code == 0, capsys.readouterr().err
    tuned = load_bundle(tmp_path / "tuned")
    assert tuned.metadata["initialised_from"]["weights_sha256"] == copy.metadata["weights_sha256"]
