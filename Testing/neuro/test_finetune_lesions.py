"""Fine-tuning the lesion network on the user's corrected FLAIRs (issue 48): ``orbitai neuro finetune-lesions``,
the installed bundle and its provenance, cancel and resume to the same weights, the replay phantoms, refusals."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from orbitai.bundle import load_bundle
from orbitai.errors import InputError
from orbitai.io import write_volume
from orbitai.neuro import finetune as ft
from orbitai.neuro.finetune import LesionRecipe, finetune_lesions, out_folder, prepare_case
from orbitai.neuro.lesionseg import lesion_bundle
from orbitai.neuro.models import LESION_MODELS
from orbitai.staging import finetune_work_folder

SEEDS = (778300, 778301)   # never used for training phantoms
RECIPE = LesionRecipe(steps=4, eval_every=2, folds=2, batch_size=2, replay_share=0.0)


@pytest.fixture(scope="module")
def flairs():
    from orbitai.phantoms.brain import brain_flair_case

    return [brain_flair_case(s, "ms", noise=True) for s in SEEDS]


@pytest.fixture(scope="module")
def cases(flairs):
    from orbitai.neuro.anatomy import extract_brain

    return [prepare_case(f"c{i}", c.image, c.labels, extract_brain(c.image).mask) for i, c in enumerate(flairs)]


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def weights(bundle: Path) -> dict[str, torch.Tensor]:
    return torch.load(bundle / "model.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def clean(cases, tmp_path_factory):
    base = lesion_bundle()
    before = (base.path / "model.pt").read_bytes()
    messages: list[str] = []
    report = finetune_lesions(cases, tmp_path_factory.mktemp("clean") / "mine", recipe=RECIPE,
                              progress=lambda d, t, m: messages.append(m))
    assert (base.path / "model.pt").read_bytes() == before       # the bundled model is never written
    return report, messages


def test_a_case_is_prepared_on_the_model_grid_as_inference_reads_it(cases, flairs):
    c = cases[0].training
    assert c.ratio.shape == c.label.shape == c.background.shape
    assert c.label.sum() > 0 and len(c.lesion_idx) == int(c.label.sum())
    inside = c.ratio > 0
    assert 0.8 < float(np.median(c.ratio[inside])) < 1.25            # intensity over the brain median
    assert not np.any(c.label[~inside])                               # lesions lie in the brain
    # the training draw of the base's own training works on it
    x, y = ft.lt.sample(c, np.random.default_rng(0))
    assert x.shape == (5, ft.lt.PATCH, ft.lt.PATCH) and y.shape == (ft.lt.PATCH, ft.lt.PATCH)


def test_installs_a_lesion_bundle_with_its_provenance(clean, cases):
    report, messages = clean
    b = load_bundle(report.bundle)
    f = b.metadata["finetune"]
    assert f["base"] == "neuro_lesion_unet_demo" and f["cases"] == ["c0", "c1"]
    assert f["measure"] == "mean of Dice and lesion F1"
    cv = f["cross_validation"]
    assert len(cv["folds"]) == 2 and all(len(x) == 3 for x in cv["folds"])
    assert cv["base_score"] == pytest.approx(np.mean([x[0] for x in cv["folds"]]))
    assert b.metadata["metrics"]["base_cross_validated_lesion_score"] == cv["base_score"]
    assert b.metadata["postprocess"] == lesion_bundle().metadata["postprocess"]    # inference as the base's
    assert any(m.startswith("fold1: step 4/4") for m in messages) and any(m.startswith("final:") for m in messages)
    assert not finetune_work_folder(report.bundle).exists()
    lesion_bundle(str(report.bundle)).load_model()       # a lesion network of the base's architecture


@pytest.mark.slow  # the default suite's 20-minute budget; ~16 s: the orbit fine-tuning's cancel/resume shares the plan runner
def test_a_cancel_keeps_the_work_and_the_same_call_resumes_to_the_same_weights(clean, cases, tmp_path):
    out = tmp_path / "mine"

    def stop_in_fold1(done, total, message):
        if message.startswith("fold1: step 3/"):
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        finetune_lesions(cases, out, recipe=RECIPE, progress=stop_in_fold1)
    work = finetune_work_folder(tmp_path / "mine")
    assert json.loads((work / "state.json").read_text())["curves"].keys() == {"fold0"}
    assert (work / "checkpoint.pt").is_file() and not out.exists()
    messages: list[str] = []
    report = finetune_lesions(cases, out, recipe=RECIPE, progress=lambda d, t, m: messages.append(m))
    assert not any(m.startswith("fold0:") for m in messages) and "fold1: resumed at step 2" in messages
    resumed, uninterrupted = weights(report.bundle), weights(clean[0].bundle)
    assert all(torch.equal(resumed[k], v) for k, v in uninterrupted.items())


def test_replay_draws_mix_the_base_training_data_in(cases, tmp_path, monkeypatch):
    """With a replay share, draws come from the replay phantoms too (here the cases themselves stand in for them,
    marked by a label the user cases lack); with none, never."""
    marked = ft.lc.Case(**{**cases[0].training.__dict__, "label": np.zeros_like(cases[0].training.label)})
    drawn: list[bool] = []
    real_sample = ft.lt.sample

    def spy(case, rng, **kw):
        drawn.append(case is marked)
        return real_sample(case, rng, **kw)

    monkeypatch.setattr(ft, "replay_cases", lambda seed, n: (marked,))
    monkeypatch.setattr(ft.lt, "sample", spy)
    finetune_lesions(cases[:1], tmp_path / "r", recipe=LesionRecipe(steps=3, eval_every=3, folds=1, batch_size=4,
                                                                       replay_share=0.5), progress=lambda *a: None)
    assert any(drawn) and not all(drawn)


@pytest.mark.slow  # the default suite's 20-minute budget; ~18 s: test_installs_a_lesion_bundle_with_its_provenance keeps the install
def test_the_command_installs_the_model_in_the_user_folder_and_lists_it(flairs, home, tmp_path, capsys):
    from orbitai.cli import main

    rows = []
    for i, c in enumerate(flairs):
        image, seg = tmp_path / f"f{i}.nrrd", tmp_path / f"f{i}_lesions.seg.nrrd"
        write_volume(c.image, image)
        write_volume(c.labels, seg)
        rows.append({"case_id": f"p{i}", "image": image.name, "segmentation": seg.name})
    with (tmp_path / "m.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    code = main(["neuro", "finetune-lesions", "--manifest", str(tmp_path / "m.csv"), "--name", "my_lesions",
                 "--steps", "2", "--eval-every", "2", "--folds", "2", "--replay-share", "0", "--summary",
                 str(tmp_path / "s")])
    assert code == 0
    out = capsys.readouterr().out
    assert "installed" in out and "cross-validated mean of Dice and lesion F1" in out
    summary = json.loads((tmp_path / "s" / "result.json").read_text())
    assert summary["model"] == "my_lesions" and summary["measure"] == "mean of Dice and lesion F1"
    assert (home / ".orbitai" / "models" / "my_lesions" / "model.pt").is_file()
    assert "my_lesions" in LESION_MODELS.choices().values()


def test_refusals_are_one_line_and_leave_nothing(home, tmp_path):
    with pytest.raises(InputError, match="at least one FLAIR"):
        finetune_lesions([], tmp_path / "x", recipe=RECIPE)
    with pytest.raises(InputError, match="plain name"):
        out_folder("neuro_lesion_unet_demo", "../elsewhere")
    with pytest.raises(InputError, match="bundled or installed model"):
        out_folder("neuro_lesion_unet_demo", "neuro_lesion_unet_demo")
    assert not (home / ".orbitai").exists() and not (tmp_path / "x").exists()
