"""``seg finetune`` (issue #48): fine-tuning on the user's corrected scans installs a new bundle in the user's model
folder with its provenance and cross-validated figures, never touches the bundled model, resumes after a cancel
with the weights of an uninterrupted run, and refuses what it cannot use in one line. ``seg rank`` puts the scan the
model cannot read first."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from orbitai.bundle import load_bundle
from orbitai.cohort.manifest import Case, read_manifest
from orbitai.errors import InputError
from orbitai.io import read_volume, write_volume
from orbitai.orbit.finetune import Recipe, finetune, out_folder
from orbitai.orbit.models import SEG_MODELS
from orbitai.phantoms import write_cohort
from orbitai.staging import finetune_work_folder

SEED = 778210  # never used for training cohorts
RECIPE = Recipe(steps=4, eval_every=2, folds=2, batch_size=1, replay_share=0.0)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    return read_manifest(write_cohort("orbit-mri", 2, SEED, tmp_path_factory.mktemp("cohort"), montage_cases=0))


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """A user home of its own: ``~/.orbitai/models`` is the user model folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def weights(bundle: Path) -> dict[str, torch.Tensor]:
    return torch.load(bundle / "model.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def clean(cases, tmp_path_factory):
    """An uninterrupted fine-tuning into a folder of its own: (report, progress messages)."""
    messages: list[str] = []
    base = SEG_MODELS.find("MR")
    before = (base.path / "model.pt").read_bytes()
    report = finetune(cases, tmp_path_factory.mktemp("clean") / "mine", recipe=RECIPE,
                      progress=lambda d, t, m: messages.append(m))
    assert (base.path / "model.pt").read_bytes() == before       # the bundled model is never written
    return report, messages


@pytest.mark.slow  # ~46 s (the fine-tuning in `clean`): a fine-tuned bundle is installed and listed in the default suite
# through mrml/test_learn_from_corrections.py and test_default_folder_is_the_user_model_folder_and_the_model_is_listed
def test_installs_a_bundle_with_its_provenance_and_figures(clean, cases):
    report, messages = clean
    b = load_bundle(report.bundle)          # checksum checked, weights_only
    ft = b.metadata["finetune"]
    assert ft["base"] == "orbit_svnet_mri_demo" and ft["cases"] == [c.case_id for c in cases]
    assert b.metadata["initialised_from"]["bundle"] == "orbit_svnet_mri_demo"
    cv = ft["cross_validation"]
    assert len(cv["folds"]) == 2 and all(len(f) == 3 for f in cv["folds"])   # steps 0, 2 and 4 of each fold
    assert cv["base_score"] == pytest.approx(np.mean([f[0] for f in cv["folds"]]))
    assert ft["steps"] in (2, 4)
    assert isinstance(cv["better_than_base"], bool)
    assert b.metadata["metrics"]["base_cross_validated_dice"] == cv["base_score"]
    assert any(m.startswith("fold1: step 4/4") for m in messages) and any(m.startswith("final:") for m in messages)
    assert not finetune_work_folder(report.bundle).exists()     # the work folder goes with success
    b.load_model()                                                      # the network is the base's architecture


def test_default_folder_is_the_user_model_folder_and_the_model_is_listed(home, cases):
    report = finetune(cases[:1], recipe=RECIPE)           # one case: nothing to hold out, the full schedule
    assert report.bundle == home / ".orbitai" / "models" / "orbit_svnet_mri_demo_ft"
    assert report.outcome.base_score is None and report.outcome.stop_step == RECIPE.steps
    assert "orbit_svnet_mri_demo_ft" in SEG_MODELS.choices().values()
    assert SEG_MODELS.find("orbit_svnet_mri_demo_ft").path == report.bundle


@pytest.mark.slow  # the default suite's 20-minute budget; ~40 s: cancel and resume stay in the default suite through mrml/test_learn_from_corrections.py
def test_a_cancel_keeps_the_work_and_the_same_command_resumes_to_the_same_weights(clean, cases, tmp_path):
    out = tmp_path / "mine"

    def stop_in_fold1(done, total, message):
        if message.startswith("fold1: step 3/"):
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        finetune(cases, out, recipe=RECIPE, progress=stop_in_fold1)
    work = finetune_work_folder(tmp_path / "mine")
    assert json.loads((work / "state.json").read_text())["curves"].keys() == {"fold0"}
    assert (work / "checkpoint.pt").is_file() and not out.exists()
    messages: list[str] = []
    report = finetune(cases, out, recipe=RECIPE, progress=lambda d, t, m: messages.append(m))
    assert not any(m.startswith("fold0:") for m in messages)            # the finished fold is not run again
    assert "fold1: resumed at step 2" in messages
    resumed, uninterrupted = weights(report.bundle), weights(clean[0].bundle)
    assert all(torch.equal(resumed[k], v) for k, v in uninterrupted.items())
    assert report.outcome.to_json() == clean[0].outcome.to_json()


@pytest.mark.slow   # ~60 s: a second interrupted run; the resume test above keeps the bar in the default suite
def test_other_cases_do_not_resume_a_stopped_run(cases, tmp_path):
    def stop(done, total, message):
        if message.startswith("fold1: step 3/"):
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        finetune(cases, tmp_path / "mine", recipe=RECIPE, progress=stop)
    messages: list[str] = []
    finetune(list(reversed(cases)), tmp_path / "mine", recipe=RECIPE, progress=lambda d, t, m: messages.append(m))
    assert any(m.startswith("fold0: step") for m in messages)


def test_refusals_are_one_line_and_leave_nothing(cases, home):
    with pytest.raises(InputError, match="no segmentation"):
        finetune([Case("a", cases[0].image, None, {})], recipe=RECIPE)
    with pytest.raises(InputError, match="at least one case"):
        finetune([], recipe=RECIPE)
    with pytest.raises(InputError, match="plain name"):
        out_folder("orbit_svnet_mri_demo", "../elsewhere")
    for taken in ("orbit_svnet_ct_demo", "tao_network_b_demo"):      # a bundled model of any task: never hidden
        with pytest.raises(InputError, match="bundled or installed model"):
            out_folder("orbit_svnet_mri_demo", taken)
    assert not (home / ".orbitai").exists()


@pytest.mark.slow   # ~40 s: the default suite's 20-minute budget; ranking stays in it through test_rank_cache.py and test_rank_scan_facts.py
def test_rank_puts_the_scan_the_model_cannot_read_first(cases, tmp_path):
    from orbitai.orbit.rank import rank_scans

    img = read_volume(cases[0].image)
    noise = img.with_array(np.random.default_rng(0).uniform(0, img.array.max(), img.shape).astype(np.float32))
    write_volume(noise, tmp_path / "noise.nii.gz")
    ranked = rank_scans([("good", cases[0].image), ("noise", tmp_path / "noise.nii.gz")])
    assert [r.case_id for r in ranked] == ["noise", "good"]
    assert ranked[0].score == 1.0 and 0.0 <= ranked[1].score < 1.0 and ranked[1].mean_confidence is not None
