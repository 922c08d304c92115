"""Issue #48 in Slicer (the OrbitSegmentation and NeuroDifferential Widgets driven as Slicer 5.8.1 drives them,
`slicer_widget_replay`, over a real scene and real child processes): the user marks corrected segmentations finished,
"Learn from my corrections" fine-tunes on them with progress, Cancel keeps the work and pressing it again goes on where
it stopped, the new model appears in the model list at once; "Which scan next" ranks the other loaded scans; in
NeuroDifferential the same for the lesion network, whose new model appears in the "Lesion model" list."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("slicer")

from orbitai.app.corrections import FINISHED, FinetuneLogic, finished_pairs
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import new_scene, rows_from_table_node, segmentation_node_from_labels, volume_node_from_volume
from orbitai.phantoms import orbit_case

from slicer_widget_replay import load_module_widget

SEEDS = (778301, 778302, 778303)   # never used for training cohorts


@pytest.fixture()
def panel(monkeypatch, tmp_path):
    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")     # enter() starts the warm worker: not in these tests
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the user model folder: ~/.orbitai/models
    # a short recipe: 4 steps a run, held-out scoring and a checkpoint every 2, no phantom replay
    monkeypatch.setattr(FinetuneLogic, "extra_arguments",
                        ("--steps", "4", "--eval-every", "2", "--folds", "2", "--replay-share", "0"))
    ctx = new_scene()
    nodes = []
    for n, seed in enumerate(SEEDS):
        case = orbit_case(seed, "t2", oblique=False)
        vol = volume_node_from_volume(ctx, case.image, name=f"scan{n}")
        seg = segmentation_node_from_labels(ctx, case.labels, reference_node=vol, name=f"corrected{n}")
        nodes.append((vol, seg))
    p = load_module_widget(monkeypatch, "OrbitSegmentation", "5.8.1")
    p.show()
    yield p, nodes, tmp_path / "home" / ".orbitai" / "models"
    p.widget.cleanup()
    ctx.close()


def run_until(section, done, timeout_s: float = 600.0) -> None:
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < timeout_s, "the job did not get there"
        section.timer.timeout.emit()
        time.sleep(0.1)


def test_mark_finetune_cancel_resume_and_the_new_model_is_listed(panel):
    p, nodes, models = panel
    w = p.widget
    finetune = w.sections[0]
    statuses: list[str] = []
    shown = finetune.setStatus
    finetune.setStatus = lambda text: (statuses.append(text), shown(text))   # type: ignore[method-assign]
    for vol, seg in nodes[:2]:
        w._parameterNode.inputVolume = vol
        w._parameterNode.finetuneCorrected = seg
        p.ui.markFinishedButton.clicked.emit(False)
    assert [s.GetName() for s, _ in finished_pairs(w.logic.ctx.scene)] == ["corrected0", "corrected1"]
    assert statuses[-1].startswith("2 finished segmentation(s)")
    w._parameterNode.finetuneName = "mine"
    w._parameterNode.finetuneDevice = "cpu"
    assert p.ui.finetuneApplyButton.enabled
    p.ui.finetuneApplyButton.clicked.emit(False)
    assert finetune.controller.running and p.ui.finetuneApplyButton.text == "Cancel"
    run_until(finetune, lambda: (models / ".mine-finetune" / "state.json").is_file())
    p.ui.finetuneApplyButton.clicked.emit(False)             # Cancel: the work stays for the next press
    assert not finetune.controller.running and statuses[-1].startswith("Cancelled")
    assert (models / ".mine-finetune" / "state.json").is_file() and not (models / "mine").exists()
    del statuses[:]
    p.ui.finetuneApplyButton.clicked.emit(False)
    run_until(finetune, lambda: not finetune.controller.running)
    assert not any("fold0: step" in s for s in statuses), "the finished fold ran again"
    assert any(s.startswith("fold1:") for s in statuses) and statuses[-1].startswith("Installed 'mine'"), statuses[-3:]
    assert (models / "mine" / "metadata.json").is_file() and not (models / ".mine-finetune").exists()
    assert "mine" in p.ui.modelSelector.items                 # listed at once, no restart
    outputs = finetune.controller.outputs
    assert (w._parameterNode.model == "mine") == bool(outputs.better_than_base)
    rows = rows_from_table_node(outputs.table_node)
    assert [r["model"] for r in rows] == ["orbit_svnet_mri_demo", "mine"]


def test_unmark_and_refusals_are_one_line(panel):
    p, nodes, _ = panel
    w = p.widget
    finetune = w.sections[0]
    w._parameterNode.finetuneCorrected = None
    p.ui.markFinishedButton.clicked.emit(False)
    assert p.ui.finetuneStatusLabel.text == "Select the scan and its corrected segmentation."
    p.ui.finetuneApplyButton.clicked.emit(False)              # nothing finished: refused before any child starts
    assert not finetune.controller.running and "No finished segmentation" in p.ui.finetuneStatusLabel.text
    vol, seg = nodes[0]
    w._parameterNode.inputVolume, w._parameterNode.finetuneCorrected = vol, seg
    p.ui.markFinishedButton.clicked.emit(False)
    assert seg.GetAttribute(FINISHED) == "segmentation"
    p.ui.unmarkFinishedButton.clicked.emit(False)
    assert seg.GetAttribute(FINISHED) is None and finished_pairs(w.logic.ctx.scene) == []


def test_which_scan_next_ranks_the_scans_without_a_finished_segmentation(panel):
    p, nodes, _ = panel
    w = p.widget
    rank = w.sections[1]
    vol, seg = nodes[0]
    w._parameterNode.inputVolume, w._parameterNode.finetuneCorrected = vol, seg
    p.ui.markFinishedButton.clicked.emit(False)
    w._parameterNode.rankDevice = "cpu"
    p.ui.rankApplyButton.clicked.emit(False)
    run_until(rank, lambda: not rank.controller.running)
    rows = rows_from_table_node(rank.controller.outputs.table_node)
    assert sorted(r["scan"] for r in rows) == ["scan1", "scan2"]          # scan0 is finished: not offered
    assert [r["rank"] for r in rows] == [1, 2] and rows[0]["doubt"] >= rows[1]["doubt"]
    assert p.ui.rankStatusLabel.text.startswith("2 scan(s) ranked; correct '")


@pytest.fixture()
def neuro_panel(monkeypatch, tmp_path):
    from orbitai.app.neuro_differential import LesionFinetuneLogic
    from orbitai.phantoms.brain import brain_flair_case

    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(LesionFinetuneLogic, "extra_arguments",
                        ("--steps", "2", "--eval-every", "2", "--folds", "2", "--replay-share", "0"))
    ctx = new_scene()
    nodes = []
    for n, seed in enumerate(SEEDS[:2]):
        case = brain_flair_case(seed, "ms", noise=True)
        vol = volume_node_from_volume(ctx, case.image, name=f"flair{n}")
        nodes.append((vol, segmentation_node_from_labels(ctx, case.labels, reference_node=vol, name=f"lesions{n}")))
    p = load_module_widget(monkeypatch, "NeuroDifferential", "5.8.1")
    p.show()
    yield p, nodes, tmp_path / "home" / ".orbitai" / "models"
    p.widget.cleanup()
    ctx.close()


@pytest.mark.slow  # the default suite's 20-minute budget; ~28 s: the orbit section's test keeps the panel path, neuro finetune-lesions' tests the lesion command
def test_neuro_lesion_corrections_teach_a_new_lesion_model_listed_at_once(neuro_panel):
    p, nodes, models = neuro_panel
    w = p.widget
    finetune = w.sections[0]
    for vol, seg in nodes:
        w._parameterNode.inputVolume = vol
        w._parameterNode.finetuneCorrected = seg
        p.ui.markFinishedButton.clicked.emit(False)
    scene = w.logic.ctx.scene
    assert nodes[0][1].GetAttribute(FINISHED) == "lesion_segmentation"
    assert [s.GetName() for s, _ in finished_pairs(scene, "lesion_segmentation")] == ["lesions0", "lesions1"]
    assert finished_pairs(scene) == []                 # not offered to the orbit fine-tuning
    assert p.ui.finetuneStatusLabel.text.startswith("2 finished segmentation(s)")
    assert list(p.ui.lesionModelSelector.items) == ["Bundled lesion model"]
    w._parameterNode.finetuneName = "my_lesions"
    w._parameterNode.finetuneDevice = "cpu"
    p.ui.finetuneApplyButton.clicked.emit(False)
    assert finetune.controller.running
    run_until(finetune, lambda: not finetune.controller.running)
    outputs = finetune.controller.outputs
    assert outputs is not None, p.ui.finetuneStatusLabel.text
    assert outputs.model == "my_lesions" and outputs.option == "lesion_model"
    assert (models / "my_lesions" / "model.pt").is_file()
    assert "my_lesions" in p.ui.lesionModelSelector.items              # listed at once, no restart
    assert (w._parameterNode.lesionModel == "my_lesions") == bool(outputs.better_than_base)
    assert w._parameterNode.model != "my_lesions"                     # the classifier choice is not touched
    rows = rows_from_table_node(outputs.table_node)
    assert [r["model"] for r in rows] == ["neuro_lesion_unet_demo", "my_lesions"]
    assert "held-out mean of Dice and lesion F1" in rows[0]
    # the panel's lesion analysis runs with the chosen lesion network
    w._parameterNode.lesionModel = "my_lesions"
    args = w.logic.jobArguments(JobFolder(models.parent), nodes[0][0], model="Lesions only (no NMOSD/MS classification)",
                                lesion_model="my_lesions")
    assert args[args.index("--lesion-model") + 1] == str(models / "my_lesions")
