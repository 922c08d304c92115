"""NeuroDifferential Logic and job panel on a real MRML scene: run by ``Testing/NeuroDifferential`` (pytest,
headless with slicer-core) and by the module's self-test inside Slicer (NeuroDifferentialTest).

Two layers: `loadResults` and the start checks against a brain phantom's real FLAIR and lesion mask,
with output folders written by the core's own writer (`orbitai.neuro.result.write_neuro_result`: fast,
no model); and the whole Logic end to end through the child process (``orbitai neuro predict|lesions``;
see `cli_missing` and `installed`). The phantom, the folders and the nodes: `orbitai.testing.neuro_fixtures`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from orbitai import selftest
from orbitai.errors import DeviceError, InputError, OrbitAIError
from orbitai.io import Volume
from orbitai.jobs.inputs import JobFolder
from orbitai.testing import node_ids, panel, patched, raises, slicer_context  # noqa: F401 - slicer_context: self-test
from orbitai.testing.neuro_fixtures import (LOCATIONS, break_result, cli_missing, installed, lesion_mask,
                                            lesion_model_installed, lesion_node, phantom_flair,
                                            write_contract_result)


# --------------------------------------------------------------------------- loadResults
def test_load_results_adds_lesions_tables_and_heat_map(ctx, tmp_path: Path):
    """A ``neuro predict`` folder on the phantom's grid: lesion segmentation over the FLAIR (voxel for
    voxel), summary table (all + per location), per-lesion table, NMOSD/MS table, heat map, hidden
    intracranial mask; every node tagged with the FLAIR; nothing else added."""
    from orbitai.mrml.results import scan_of
    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.io import read_volume
    from orbitai.mrml import ijk_to_ras_of, rows_from_table_node, segment_info, volume_from_volume_node

    case, flair = phantom_flair(ctx)
    data = write_contract_result(tmp_path / "res", case.image, case.labels)
    before = node_ids(ctx)
    out = NeuroDifferentialLogic(ctx).loadResults(tmp_path / "res", flair)

    assert [s["name"] for s in segment_info(out.lesion_segmentation)] == ["white_matter_lesion"]
    assert np.array_equal(lesion_mask(out.lesion_segmentation, flair), np.asarray(case.labels.array) != 0)
    summary = rows_from_table_node(out.summary_table)
    n = data["lesions"]["count"]
    assert n >= 3 and summary[0]["location"] == "all" and summary[0]["lesions"] == n
    assert abs(summary[0]["volume"] - case.info["lesion_volume_ml"]) < 1e-6
    assert [r["location"] for r in summary[1:]] == list(LOCATIONS)
    assert sum(r["lesions"] for r in summary[1:]) == n
    assert abs(sum(r["volume"] for r in summary[1:]) - summary[0]["volume"]) < 1e-9
    assert abs(summary[0]["% of ICV"] - 100 * summary[0]["volume"] / summary[0]["ICV"]) < 1e-9
    assert abs(summary[0]["ICV"] - data["lesions"]["icv_ml"]) < 1e-9
    lesions = rows_from_table_node(out.lesion_table)
    assert [r["id"] for r in lesions] == list(range(1, n + 1)) and sum(r["voxels"] for r in lesions) == case.labels.array.sum()
    prob = rows_from_table_node(out.probability_table)
    assert len(prob) == 1 and abs(prob[0]["P(NMOSD)"] - 0.27) < 1e-9 and abs(prob[0]["P(MS)"] - 0.73) < 1e-9
    assert prob[0]["call"] == "MS" and prob[0]["model"] == "Two-view ResNet-18" and prob[0]["input"] == "lesion_mask"
    heat = out.heatmap_node
    assert heat.GetAttribute("OrbitAI.Overlay") == "1"
    assert np.allclose(ijk_to_ras_of(heat), ijk_to_ras_of(flair), atol=1e-5)
    assert np.allclose(volume_from_volume_node(heat).array, read_volume(tmp_path / "res" / "heatmap.nrrd").array)
    assert out.brain_segmentation.GetDisplayNode().GetVisibility() == 0
    nodes = [out.lesion_segmentation, out.summary_table, out.lesion_table, out.probability_table, heat,
             out.brain_segmentation]
    added = node_ids(ctx) - before
    for node in nodes:
        assert node.GetID() in added and scan_of(node) is flair
    text = out.summary()
    assert f"{n} lesions" in text and "Two-view ResNet-18: MS (P(NMOSD) = 0.27)" in text
    NeuroDifferentialLogic(ctx).show(out, flair)      # headless: nothing to lay out, and no error
    assert out.lesion_segmentation.GetDisplayNode().GetVisibility() == 1 and node_ids(ctx) - before == added


def test_load_results_classifier_does_not_apply(ctx, tmp_path: Path):
    """No lesion: an empty lesion segment (ready to draw in), no per-lesion table, no heat map, and the
    NMOSD/MS table says the classifier does not apply and why."""
    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.mrml import rows_from_table_node, segment_info

    case, flair = phantom_flair(ctx)
    empty = case.labels.with_array(np.zeros(case.labels.shape, np.uint8))
    write_contract_result(tmp_path / "res", case.image, empty, applies=False)
    out = NeuroDifferentialLogic(ctx).loadResults(tmp_path / "res", flair)
    assert [s["name"] for s in segment_info(out.lesion_segmentation)] == ["white_matter_lesion"]
    assert out.lesion_table is None and out.heatmap_node is None
    row = rows_from_table_node(out.probability_table)[0]
    assert row["call"] == "does not apply" and "does not apply" in row["reason"] and row["P(NMOSD)"] == ""
    assert rows_from_table_node(out.summary_table)[0]["lesions"] == 0
    assert "0 lesions" in out.summary() and "does not apply" in out.summary()


def test_load_results_lesions_only(ctx, tmp_path: Path):
    """A ``neuro lesions`` folder: lesions and tables, no NMOSD/MS table and no heat map."""
    from orbitai.app.neuro_differential import NeuroDifferentialLogic

    case, flair = phantom_flair(ctx)
    write_contract_result(tmp_path / "res", case.image, case.labels, applies=None)
    out = NeuroDifferentialLogic(ctx).loadResults(tmp_path / "res", flair)
    assert out.probability_table is None and out.heatmap_node is None and out.lesion_table is not None
    assert "P(NMOSD)" not in out.summary()


def test_load_results_refuses_broken_folders_scene_unchanged(ctx, tmp_path: Path):
    """Broken folders and a result for another FLAIR grid: one line each, the scene as it was."""
    import shutil

    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.mrml import volume_node_from_volume

    case, flair = phantom_flair(ctx)
    img = case.image
    other = volume_node_from_volume(ctx, Volume(img.array, img.spacing, (0.0, 0.0, 0.0), img.direction), name="other")
    logic = NeuroDifferentialLogic(ctx)
    write_contract_result(tmp_path / "good", img, case.labels)
    before = node_ids(ctx)
    for n, how in enumerate(("no result.json", "wrong task", "count", "call", "heat map NaN", "lesions missing",
                             "other FLAIR")):
        folder = tmp_path / f"broken{n}"
        shutil.copytree(tmp_path / "good", folder)
        if how != "other FLAIR":
            break_result(folder, how)
        try:
            logic.loadResults(folder, other if how == "other FLAIR" else flair)
        except (OrbitAIError, ValueError) as exc:
            assert "\n" not in str(exc) and str(exc), f"{how}: {exc!r}"
            if how == "other FLAIR":
                assert "does not lie on the FLAIR's grid" in str(exc), str(exc)
        else:
            raise AssertionError(f"{how}: the broken folder was accepted")
        assert node_ids(ctx) == before, f"{how}: the scene changed"


def test_load_results_rolls_back_when_a_node_fails(ctx, tmp_path: Path):
    """A failure after the segmentation and tables were added (here: the heat map) removes them too."""
    import orbitai.app.neuro_differential as app_module
    from orbitai.app.neuro_differential import NeuroDifferentialLogic

    case, flair = phantom_flair(ctx)
    write_contract_result(tmp_path / "res", case.image, case.labels)

    def failing(*args, **kw):
        raise RuntimeError("out of memory")

    before = node_ids(ctx)
    with patched(app_module, "overlay_node_from_volume", failing), raises(RuntimeError, match="out of memory"):
        NeuroDifferentialLogic(ctx).loadResults(tmp_path / "res", flair)
    assert node_ids(ctx) == before


# --------------------------------------------------------------------------- start checks
def test_job_arguments_write_inputs_and_name_the_command(ctx, tmp_path: Path):
    """The start hook writes the FLAIR and the given lesions (on the FLAIR's grid) and names the command:
    ``neuro lesions`` for lesions only, ``neuro predict --model BUNDLE`` otherwise; the scene is unchanged."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.io import read_volume

    case, flair = phantom_flair(ctx)
    seg = lesion_node(ctx, case.labels, flair)
    logic = NeuroDifferentialLogic(ctx)
    before = node_ids(ctx)
    work = tmp_path / "in"
    work.mkdir(parents=True)
    args = logic.jobArguments(JobFolder(work), flair, model=LESIONS_ONLY, device="CPU")
    assert args == ["neuro", "lesions", str(work / "flair.nrrd"), "--device", "cpu", "--out", "{out}"]
    written = read_volume(work / "flair.nrrd")
    assert written.same_geometry(case.image, tol=1e-5) and np.array_equal(written.array, case.image.array)
    args = logic.jobArguments(JobFolder(work), flair, seg, model=LESIONS_ONLY, device="cpu")
    assert args[args.index("--lesions") + 1] == str(work / "lesions.nrrd")   # a label map, made a slab per tick (#63)
    mask = read_volume(work / "lesions.nrrd")
    assert mask.same_geometry(case.image, tol=1e-5) and np.array_equal(mask.array != 0, case.labels.array != 0)
    choices = NeuroDifferentialLogic.modelChoices()
    if choices:
        label, name = next(iter(choices.items()))
        args = logic.jobArguments(JobFolder(work), flair, seg, model=label, device="cpu", heatmap=False)
        assert args[:2] == ["neuro", "predict"] and "--no-heatmap" in args and "--lesions" in args
        assert Path(args[args.index("--model") + 1]) == NeuroDifferentialLogic.resolveModel(name).path
    assert node_ids(ctx) == before


def test_logic_refuses_bad_inputs_before_starting(ctx):
    """Everything the Logic can check is refused before a child starts, one line each, scene unchanged."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NO_MODEL, NeuroDifferentialLogic
    from orbitai.errors import BundleError
    from orbitai.mrml import volume_node_from_volume

    case, flair = phantom_flair(ctx)
    labelmap = volume_node_from_volume(ctx, case.labels, name="lesion labels", label=True)
    flat = volume_node_from_volume(ctx, Volume(np.ones((1, 64, 64), np.float32)), name="one slice")
    empty = lesion_node(ctx, case.labels.with_array(np.zeros(case.labels.shape, np.uint8)), flair, name="empty")
    before = node_ids(ctx)
    logic = NeuroDifferentialLogic(ctx)
    with raises(InputError, match=r"^Select a brain FLAIR volume\.$"):
        logic.start(None, model=LESIONS_ONLY)
    with raises(InputError, match="'lesion labels' is a label map"):
        logic.start(labelmap, model=LESIONS_ONLY)
    with raises(InputError, match=r"'one slice' is not a 3D volume \(shape \(1, 64, 64\)\)"):
        logic.start(flat, model=LESIONS_ONLY)
    with raises(DeviceError, match="Unknown device 'tpu'"):
        logic.start(flair, model=LESIONS_ONLY, device="tpu")
    with raises(InputError, match="No NMOSD-vs-MS model is installed.*or choose 'Lesions only"):
        logic.start(flair, model=NO_MODEL)
    with raises(BundleError, match="no_such_model"):
        logic.start(flair, model="no_such_model")
    with raises(InputError, match="'lesion labels' is not a segmentation node"):
        logic.start(flair, labelmap, model=LESIONS_ONLY)
    with raises(InputError, match=r"^Lesion segmentation 'empty' holds no lesion voxel"):
        logic.start(flair, empty, model=LESIONS_ONLY)
    assert node_ids(ctx) == before


def test_lesion_segmentation_elsewhere_is_refused(ctx):
    """A lesion segmentation that does not lie on the FLAIR (another patient's position) is refused in one
    line naming it; one on another grid over the same head (2 mm) is resampled onto the FLAIR's grid."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.io import resample_spacing

    case, flair = phantom_flair(ctx)
    lab = case.labels
    far = lesion_node(ctx, Volume(lab.array, lab.spacing, tuple(np.asarray(lab.origin) + 150.0), lab.direction),
                       name="elsewhere")
    coarse = resample_spacing(lab, (2.0, 2.0, 2.0), label=True)
    coarse_node = lesion_node(ctx, coarse, name="2 mm")
    logic = NeuroDifferentialLogic(ctx)
    before = node_ids(ctx)
    with raises(InputError, match=r"^Lesion segmentation 'elsewhere' does not lie on the FLAIR 'FLAIR' \(only 0 %"):
        logic.start(flair, far, model=LESIONS_ONLY)
    mask = logic.lesionMask(coarse_node, flair)
    assert mask.same_geometry(case.image, tol=1e-5)
    truth = np.asarray(lab.array) != 0
    dice = 2 * np.logical_and(mask.array != 0, truth).sum() / (mask.array.sum() + truth.sum())
    assert dice > 0.6, dice
    assert node_ids(ctx) == before


def test_lesion_segmentation_every_segment_counts(ctx):
    """Segments of any name and label value (here two, as drawn in the Segment Editor) all count as lesion."""
    from scipy import ndimage as ndi

    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.mrml import segmentation_node_from_labels

    case, flair = phantom_flair(ctx)
    truth = np.asarray(case.labels.array) != 0
    comp, n = ndi.label(truth, structure=np.ones((3, 3, 3)))
    two = np.where(comp > n // 2, 2, np.where(comp > 0, 1, 0)).astype(np.uint8)   # lesions split over two segments
    seg = segmentation_node_from_labels(ctx, case.labels.with_array(two), reference_node=flair, name="drawn",
                                        table={1: "Segment_1", 2: "my lesions"})
    from orbitai.mrml.segment_labelmaps import segments_volume_mm3

    before = node_ids(ctx)
    assert abs(segments_volume_mm3(seg) - truth.sum() * case.image.voxel_volume_mm3()) < 1e-6
    mask = NeuroDifferentialLogic(ctx).lesionMask(seg, flair)
    assert np.array_equal(mask.array != 0, truth) and set(np.unique(mask.array)) == {0, 1}
    assert node_ids(ctx) == before


def test_model_choices():
    """Installed NMOSD-vs-MS bundles (labels resolve to them), or a 'none installed' choice whose reason
    disables Apply; 'lesions only' always last and always ready."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NO_MODEL, NeuroDifferentialLogic

    choices = NeuroDifferentialLogic.modelChoices()
    labels = NeuroDifferentialLogic.modelLabels()
    assert labels == [*(list(choices) or [NO_MODEL]), LESIONS_ONLY]
    assert NeuroDifferentialLogic.defaultModelLabel() in labels
    assert NeuroDifferentialLogic.whyNotReady(LESIONS_ONLY) == ""
    assert NeuroDifferentialLogic.whyNotReady(NO_MODEL).startswith("No NMOSD-vs-MS model is installed")
    for label, name in choices.items():
        assert NeuroDifferentialLogic.whyNotReady(label) == ""
        assert NeuroDifferentialLogic.resolveModel(label).metadata["task"] == "neuro_differential"
        assert NeuroDifferentialLogic.resolveModel(label).path == NeuroDifferentialLogic.resolveModel(name).path


# --------------------------------------------------------------------------- the job panel
def test_panel_apply_disabled_without_flair_or_model(ctx):
    """Apply is disabled with the reason as its tool tip: no FLAIR, then no installed model."""
    from orbitai.app.neuro_differential import NO_MODEL, NeuroDifferentialLogic
    from orbitai.mrml.controller import JobController
    from orbitai.testing.panel import RecordingView

    _, flair = phantom_flair(ctx)
    chosen: dict[str, Any] = {"input": None, "model": NO_MODEL}

    def why() -> str:   # the Widget's whyNotReady: the FLAIR first, then the model
        if chosen["input"] is None:
            return "Select a brain FLAIR volume."
        return NeuroDifferentialLogic.whyNotReady(chosen["model"])

    view = RecordingView()
    controller = JobController(NeuroDifferentialLogic(ctx), view, lambda: (chosen["input"], {}), lambda o, n: None, why)
    controller.refresh()
    assert view.button == ("Apply", False, "Select a brain FLAIR volume.")
    chosen["input"] = flair
    controller.refresh()
    assert view.button[:2] == ("Apply", False) and view.button[2].startswith("No NMOSD-vs-MS model is installed")
    assert view.statuses[-1] == view.button[2]


def test_panel_refuses_lesions_of_another_geometry(ctx):
    """Apply with a lesion segmentation that does not lie on the FLAIR: one error dialog naming it, no
    child, inputs never locked, scene unchanged."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic

    case, flair = phantom_flair(ctx)
    lab = case.labels
    far = lesion_node(ctx, Volume(lab.array, lab.spacing, tuple(np.asarray(lab.origin) - 200.0), lab.direction),
                       name="other patient")
    before = node_ids(ctx)
    p = panel.Panel(NeuroDifferentialLogic(ctx), flair, {"lesion_segmentation": far, "model": LESIONS_ONLY})
    p.controller.apply()
    assert not p.controller.running and p.controller.job is None
    assert len(p.view.errors) == 1 and "'other patient' does not lie on the FLAIR" in p.view.errors[0], p.view.errors
    assert ("inputs", False) not in p.view.calls and p.view.button[0] == "Apply"
    assert node_ids(ctx) == before


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic

    _, flair = phantom_flair(ctx)
    panel.check_missing_dependency_reaches_dialog(ctx, NeuroDifferentialLogic, flair, tmp_path, {"model": LESIONS_ONLY})


# --------------------------------------------------------------------------- end to end (the real child)
def test_logic_predicts_phantom_into_scene(ctx):
    """``neuro predict`` end to end on the phantom FLAIR with its lesion segmentation given: the lesions in
    the scene are the given ones voxel for voxel, the table counts them, P(NMOSD) and the call agree,
    the heat map lies on the FLAIR in [0, 1]; progress was reported."""
    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.mrml import ijk_to_ras_of, rows_from_table_node, volume_from_volume_node

    case, flair = phantom_flair(ctx)
    given = lesion_node(ctx, case.labels, flair, name="given lesions")
    events: list[str] = []
    before = node_ids(ctx)
    out = NeuroDifferentialLogic(ctx).run(flair, given, model=NeuroDifferentialLogic.defaultModelLabel(), device="cpu",
                                          progress=lambda d, t, m: events.append(m))
    assert events, "no progress was reported"
    r = out.result
    assert r["applies"] is True and 0.0 <= r["probability_nmosd"] <= 1.0
    assert r["call"] == ("NMOSD" if r["probability_nmosd"] >= r["threshold"] else "MS")
    assert np.array_equal(lesion_mask(out.lesion_segmentation, flair), np.asarray(case.labels.array) != 0)
    summary = rows_from_table_node(out.summary_table)[0]
    assert summary["lesions"] == r["lesions"]["count"] >= 1 and 900 < summary["ICV"] < 2000
    assert abs(summary["volume"] - case.info["lesion_volume_ml"]) < 0.1 * case.info["lesion_volume_ml"]
    row = rows_from_table_node(out.probability_table)[0]
    assert abs(row["P(NMOSD)"] - r["probability_nmosd"]) < 1e-9 and row["call"] == r["call"]
    heat = out.heatmap_node
    assert np.allclose(ijk_to_ras_of(heat), ijk_to_ras_of(flair), atol=1e-4)
    a = volume_from_volume_node(heat).array
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.0
    assert out.summary_table.GetID() in node_ids(ctx) - before


def test_logic_finds_lesions_of_phantom(ctx):
    """``neuro lesions`` end to end (OrbitAI's own lesion model): the lesions it adds overlap the phantom's
    true lesions (Dice > 0.5) and the tables count them; no classification."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.mrml import rows_from_table_node

    case, flair = phantom_flair(ctx)
    out = NeuroDifferentialLogic(ctx).run(flair, model=LESIONS_ONLY, device="cpu")
    assert out.probability_table is None and out.heatmap_node is None and "applies" not in out.result
    found = lesion_mask(out.lesion_segmentation, flair)
    truth = np.asarray(case.labels.array) != 0
    dice = 2 * np.logical_and(found, truth).sum() / max(found.sum() + truth.sum(), 1)
    # the demo lesion network reaches Dice 0.52 on held-out phantoms (bar 0.80 still open, issue #16): the
    # check here is that the Logic brings the model's lesions into the scene, not the model's quality
    assert dice > 0.3, f"lesion Dice {dice:.2f} on the phantom"
    assert rows_from_table_node(out.summary_table)[0]["lesions"] == out.result["lesions"]["count"] >= 1


def test_panel_cancel_leaves_scene_unchanged(ctx):
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic

    _, flair = phantom_flair(ctx)
    panel.check_cancel_leaves_scene_unchanged(ctx, NeuroDifferentialLogic(ctx), flair,
                                              {"model": LESIONS_ONLY, "device": "cpu"})


def test_panel_binds_results_to_starting_input(ctx):
    """Results attach to the FLAIR the job started on; inputs locked while it runs, Apply -> Cancel."""
    from orbitai.mrml.results import scan_of
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.mrml import volume_node_from_volume

    case, first = phantom_flair(ctx)
    second = volume_node_from_volume(ctx, case.image, name="second FLAIR")
    given = lesion_node(ctx, case.labels, first, name="given lesions")
    out = panel.check_binds_results_to_starting_input(NeuroDifferentialLogic(ctx), first, second,
                                                      {"lesion_segmentation": given, "model": LESIONS_ONLY,
                                                       "device": "cpu"})
    assert scan_of(out.lesion_segmentation) is first
    assert np.array_equal(lesion_mask(out.lesion_segmentation, first), np.asarray(case.labels.array) != 0)


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    """cuda:99, a FLAIR with a NaN voxel, a crashing child: one line each, no traceback (#14), scene unchanged."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.testing.job_errors import check_child_errors_are_one_line

    _, flair = phantom_flair(ctx)
    check_child_errors_are_one_line(ctx, NeuroDifferentialLogic(ctx), flair, {"model": LESIONS_ONLY, "device": "cpu"},
                                    tmp_path)


def _lesions_runnable() -> str:
    if cli_missing("lesions"):
        return cli_missing("lesions")
    return "" if lesion_model_installed() else "the default lesion segmentation bundle is not installed"


def _predict_runnable() -> str:
    if cli_missing("predict"):
        return cli_missing("predict")
    return "" if installed() else "no NMOSD-vs-MS bundle is installed"


#: What the steps that run a model need: the model stack and the rest of orbitai/app/requirements/NeuroDifferential.txt (Apply
#: checks them all before it starts a job), by import name.
MODEL_NEEDS = (selftest.MODEL,) + ("scipy", "skimage", "jsonschema", "captum")

#: The module's self-test (`orbitai.selftest`): the steps and what each needs.
SELF_TEST = (
    selftest.Step(test_load_results_adds_lesions_tables_and_heat_map, ("ctx", "tmp")),
    selftest.Step(test_load_results_classifier_does_not_apply, ("ctx", "tmp")),
    selftest.Step(test_load_results_lesions_only, ("ctx", "tmp")),
    selftest.Step(test_load_results_refuses_broken_folders_scene_unchanged, ("ctx", "tmp")),
    selftest.Step(test_load_results_rolls_back_when_a_node_fails, ("ctx", "tmp")),
    selftest.Step(test_job_arguments_write_inputs_and_name_the_command, ("ctx", "tmp")),
    selftest.Step(test_logic_refuses_bad_inputs_before_starting, ("ctx",)),
    selftest.Step(test_lesion_segmentation_elsewhere_is_refused, ("ctx",)),
    selftest.Step(test_lesion_segmentation_every_segment_counts, ("ctx",)),
    selftest.Step(test_model_choices),
    selftest.Step(test_panel_apply_disabled_without_flair_or_model, ("ctx",)),
    selftest.Step(test_panel_refuses_lesions_of_another_geometry, ("ctx",), MODEL_NEEDS),
    selftest.Step(test_logic_finds_lesions_of_phantom, ("ctx",), MODEL_NEEDS, _lesions_runnable),
    selftest.Step(test_logic_predicts_phantom_into_scene, ("ctx",), MODEL_NEEDS, _predict_runnable),
)
