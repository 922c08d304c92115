"""OrbitSegmentation Logic and panel on a real MRML scene: run by ``Testing/OrbitSegmentation`` (pytest,
headless with slicer-core) and by the module's self-test inside Slicer (OrbitSegmentationTest)."""
from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from orbitai.io import VolumeError
from orbitai.labels import values_for
from orbitai.phantoms import orbit_case
from orbitai.jobs.child import JobError
from orbitai.testing import node_ids, patched, raises, slicer_context  # noqa: F401 - slicer_context: self-test
from orbitai import selftest
from orbitai.testing import panel

SEED = 777001  # never used for training cohorts


def _phantom_node(ctx, seed=SEED, name="phantom CT"):
    from orbitai.mrml import volume_node_from_volume

    case = orbit_case(seed, modality="ct", oblique=False)
    return case, volume_node_from_volume(ctx, case.image, name=name)


def _node_count(ctx) -> int:
    return ctx.scene.GetNumberOfNodes()


def test_logic_segments_phantom_into_scene(ctx, tmp_path: Path):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.mrml import (labels_from_segmentation_node, rows_from_table_node, segment_voxel_counts,
                              segmentation_node_from_labels)

    case, node = _phantom_node(ctx)
    truth_node = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="truth")
    events = []
    out = OrbitSegmentationLogic(ctx).run(node, reference_node=truth_node, progress=lambda d, t, m: events.append(d))
    assert events, "no progress was reported"
    seg = out.segmentation_node.GetSegmentation()
    names = {seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())}
    assert {"eyeball_left", "eyeball_right", "optic_nerve_left", "medial_rectus_muscle_right"} <= names
    # The predicted labels read back from the node lie on the input grid and overlap the truth.
    pred = labels_from_segmentation_node(out.segmentation_node, node)
    assert pred.shape == case.image.shape
    eye = np.isin(pred.array, values_for("eyeball"))
    true_eye = np.isin(case.labels.array, values_for("eyeball"))
    dice = 2 * np.count_nonzero(eye & true_eye) / (eye.sum() + true_eye.sum())
    assert dice > 0.85, f"eyeball Dice {dice:.3f}"
    counts = segment_voxel_counts(out.segmentation_node)
    rows = rows_from_table_node(out.volumes_table_node)
    by_name = {r["structure"]: r for r in rows}
    vv = case.image.voxel_volume_mm3() / 1000
    assert math.isclose(by_name["eyeball_left"]["volume (cm3)"], counts["eyeball_left"] * vv, rel_tol=1e-4)
    assert 5.0 < by_name["eyeball_left"]["volume (cm3)"] < 9.5     # a globe of 22-26 mm
    # the plausibility columns: empty where the structure is normal, the status and a sentence where not
    for r in rows:
        assert r["check"] in ("", "not found", "outside the normal adult range", "uncertain",
                              "enlarged, within the thyroid eye disease range"), r
        assert bool(r["check"]) == bool(r["note"]), r
    metrics = {r["structure"]: r for r in rows_from_table_node(out.metrics_table_node)}
    assert abs(metrics["eyeball"]["dice"] - dice) <= 1e-3


def test_logic_cancel_leaves_scene_unchanged(ctx, tmp_path: Path):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    _, node = _phantom_node(ctx)
    before = _node_count(ctx)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    logic = OrbitSegmentationLogic(ctx)
    # a one-shot child: a warm worker holding the CT model segments this phantom in under a second, so the
    # cancel would come after the end (the warm job's cancel is tested in Testing/jobs)
    logic.warm_worker = False  # type: ignore[misc]  # this instance only
    with raises(JobError, match="Cancelled"):
        logic.run(node, cancel=cancel)
    assert _node_count(ctx) == before


def test_logic_refuses_2d_input(ctx):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.io import Volume
    from orbitai.mrml import volume_node_from_volume

    node = volume_node_from_volume(ctx, Volume(np.zeros((1, 64, 64), np.float32)), name="one slice")
    before = _node_count(ctx)
    with raises(VolumeError, match="3D"):
        OrbitSegmentationLogic(ctx).start(node)
    with raises(VolumeError, match="Select an input volume"):
        OrbitSegmentationLogic(ctx).start(None)
    assert _node_count(ctx) == before


def write_contract_result(folder: Path, labels) -> Path:
    """A result folder as ``orbitai seg predict --out`` writes it, for ``labels`` (orbit scheme)."""
    from orbitai.labels import ORBIT_LABELS
    from orbitai.orbit.result import SegmentationResult

    values, counts = np.unique(labels.array.astype(int), return_counts=True)
    vv = labels.voxel_volume_mm3() / 1000
    rows = [{"label": int(v), "name": ORBIT_LABELS[int(v)].name, "structure": ORBIT_LABELS[int(v)].structure,
             "side": ORBIT_LABELS[int(v)].side, "voxels": int(n), "volume_cm3": float(n * vv)}
            for v, n in zip(values, counts) if v != 0]
    SegmentationResult(labels, rows, "orbit_svnet_ct_demo", ["a test warning"]).write(folder)
    return folder


def test_load_results_all_or_nothing(ctx, tmp_path: Path):
    """Importing a result folder adds all of its nodes or, when anything fails, none: a folder that
    fails validation, or a node that fails after the segmentation was added (rolled back)."""
    import orbitai.app.orbit_segmentation as app_module
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    case, node = _phantom_node(ctx)
    logic = OrbitSegmentationLogic(ctx)
    before = node_ids(ctx)

    def failing_table(*args, **kw):
        raise RuntimeError("table could not be written")

    folder = write_contract_result(Path(tmp_path) / "res", case.labels)
    with patched(app_module, "table_node_from_rows", failing_table), raises(RuntimeError, match="table could not"):
        logic.loadResults(folder, node)
    assert node_ids(ctx) == before, "a failure after the segmentation node was added left nodes behind"
    (folder / "volumes.csv").write_text("label,name\n")
    with raises(RuntimeError, match="different structures"):
        logic.loadResults(folder, node)
    assert node_ids(ctx) == before
    out = logic.loadResults(write_contract_result(Path(tmp_path) / "good", case.labels), node)
    assert out.segmentation_node.GetName() == "phantom CT orbit segmentation"
    assert out.warnings == ["a test warning"] and "a test warning" in out.summary()
    assert {out.segmentation_node.GetID(), out.volumes_table_node.GetID()} <= node_ids(ctx) - before


def test_volume_table_flags_implausible_structures(ctx, tmp_path: Path):
    """The volume table says which structures lie outside the normal adult range or are missing, with a
    sentence each; an enlarged muscle reads as a finding (thyroid eye disease), not an error."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.mrml import rows_from_table_node
    from orbitai.orbit.anatomy import check_structures
    from orbitai.orbit.result import SegmentationResult, check_row
    from orbitai.orbit.rules import structure_volumes

    case, node = _phantom_node(ctx)
    arr = case.labels.array.copy()
    arr[arr == 3] = 0                                            # the left optic nerve missing
    mr = np.argwhere(arr == 9)                                   # the left medial rectus, thickened to > 1.6 cm3
    lo, hi = mr.min(0), mr.max(0) + 1
    grow = np.zeros_like(arr, bool)
    grow[lo[0]:hi[0], max(lo[1] - 8, 0):hi[1] + 8, max(lo[2] - 8, 0):hi[2] + 8] = True
    arr[~np.isin(arr, [1, 2, 3, 4, 9, 10])] = 0                 # the structures the result lists
    arr[grow & (arr == 0)] = 9
    labels = case.labels.with_array(arr)
    rows = structure_volumes(labels, ("eyeball", "optic_nerve", "medial_rectus_muscle"))
    checks = {c.label: c for c in check_structures(labels, ("eyeball", "optic_nerve", "medial_rectus_muscle"),
                                                    population="healthy")}
    for r in rows:
        r.update(check_row(checks[r["label"]]))
    SegmentationResult(labels, rows, "orbit_svnet_ct_demo").write(Path(tmp_path) / "res")
    out = OrbitSegmentationLogic(ctx).loadResults(Path(tmp_path) / "res", node)
    table = {r["structure"]: r for r in rows_from_table_node(out.volumes_table_node)}
    assert table["medial_rectus_muscle_left"]["volume (cm3)"] > 1.6
    assert table["medial_rectus_muscle_left"]["check"] == "outside the normal adult range"
    assert "thyroid eye disease" in table["medial_rectus_muscle_left"]["note"]
    assert table["optic_nerve_left"]["check"] == "not found"
    assert table["eyeball_left"]["check"] == "" and table["eyeball_left"]["note"] == ""


def test_results_file_into_the_inputs_dicom_study_ready_for_slicers_export(ctx, tmp_path: Path):
    """A result of a volume loaded from DICOM lands in the volume's study, and its segmentation carries what
    Slicer's own DICOM SEG export (QuantitativeReporting's DICOMSegmentationPlugin) requires: referenced
    instances, the reference volume, terminology and the algorithm per segment. A volume not from DICOM is
    left where it was."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.mrml.dicom_export import (ALGORITHM_NAME_TAG, ALGORITHM_TYPE_TAG, INSTANCE_UIDS,
                                           REFERENCED_INSTANCE_UIDS, subject_hierarchy)
    from orbitai.mrml.segmentations import TERMINOLOGY_TAG, segment_tag

    case, node = _phantom_node(ctx)
    uids = " ".join(f"1.2.826.0.1.3680043.2.1125.7.{k + 1}" for k in range(case.image.array.shape[0]))
    node.SetAttribute(INSTANCE_UIDS, uids)                 # as Slicer's DICOM browser loads a series
    sh = subject_hierarchy(ctx.scene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "patient"), "study")
    item = sh.GetItemByDataNode(node) or sh.CreateItem(study, node)
    sh.SetItemParent(item, study)
    folder = write_contract_result(Path(tmp_path) / "res", case.labels)
    out = OrbitSegmentationLogic(ctx).loadResults(folder, node)
    seg = out.segmentation_node
    seg_item = sh.GetItemByDataNode(seg)
    assert sh.GetItemParent(seg_item) == study
    assert sh.GetItemParent(sh.GetItemByDataNode(out.volumes_table_node)) == study
    assert sh.GetItemAttribute(seg_item, REFERENCED_INSTANCE_UIDS) == uids
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is node
    segmentation = seg.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(set(np.unique(case.labels.array)) - {0})

    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        assert segment_tag(segment, ALGORITHM_TYPE_TAG) == "AUTOMATIC"
        assert segment_tag(segment, ALGORITHM_NAME_TAG) == "orbit_svnet_ct_demo"
        assert "SCT^" in segment_tag(segment, TERMINOLOGY_TAG)
    # not from DICOM: nothing is moved or tagged
    _, plain = _phantom_node(ctx, name="plain CT")
    out = OrbitSegmentationLogic(ctx).loadResults(write_contract_result(Path(tmp_path) / "plain", case.labels), plain)
    plain_item = sh.GetItemByDataNode(out.segmentation_node)
    assert not plain_item or not sh.GetItemAttribute(plain_item, REFERENCED_INSTANCE_UIDS)
    assert not segment_tag(out.segmentation_node.GetSegmentation().GetNthSegment(0), ALGORITHM_TYPE_TAG)


def test_failing_job_leaves_scene_unchanged(ctx):
    """The child exits non-zero (no such model): one error dialog, nothing added to the scene."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    _, node = _phantom_node(ctx)
    panel.check_failing_job_leaves_scene_unchanged(ctx, OrbitSegmentationLogic(ctx), node,
                                                   {"model": "no_such_model", "device": "cpu"}, "no_such_model")


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    """cuda:99, an image with a NaN voxel, a crashing child: one line each, no traceback (#14)."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.testing.job_errors import check_child_errors_are_one_line

    _, node = _phantom_node(ctx)
    check_child_errors_are_one_line(ctx, OrbitSegmentationLogic(ctx), node, {"device": "cpu"}, tmp_path)


def test_panel_binds_results_to_starting_input(ctx):
    """Results attach to the volume the job started on, not the one selected when it ends; the
    selectors are locked while the job runs."""
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    _, first = _phantom_node(ctx, name="first CT")
    _, second = _phantom_node(ctx, SEED + 1, name="second CT")
    out = panel.check_binds_results_to_starting_input(OrbitSegmentationLogic(ctx), first, second, {"device": "cpu"})
    assert out.segmentation_node.GetName() == "first CT orbit segmentation"
    assert out.volumes_table_node.GetName() == "first CT orbit volumes"
    ref = out.segmentation_node.GetNodeReference("referenceImageGeometryRef")
    assert ref is None or ref is first


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    _, node = _phantom_node(ctx)
    panel.check_missing_dependency_reaches_dialog(ctx, OrbitSegmentationLogic, node, tmp_path)


def test_panel_cancel_leaves_scene_unchanged(ctx):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    _, node = _phantom_node(ctx)
    panel.check_cancel_leaves_scene_unchanged(ctx, OrbitSegmentationLogic(ctx), node, {"device": "cpu"})


def test_parameter_choices():
    """Every panel choice comes from one list: devices from orbitai.device, models from the installed bundles."""
    from orbitai.app.orbit_segmentation import AUTOMATIC_MODEL, WINDOW_CHOICES, OrbitSegmentationLogic

    from orbitai.device import DEVICE_CHOICES

    choices = OrbitSegmentationLogic.modelLabels()
    assert choices[0] == AUTOMATIC_MODEL and set(choices[1:]) == set(OrbitSegmentationLogic.availableModels())
    assert "orbit_svnet_ct_demo" in choices
    assert DEVICE_CHOICES[0] == "auto" and WINDOW_CHOICES[0] == "overlap"


def test_annotation_effects(ctx):
    """The annotation effects' scenario: in Slicer's Segment Editor inside Slicer, else through the logic
    the effects call (`orbitai.testing.annotation_effects`)."""
    from orbitai.mrml import in_slicer_app
    from orbitai.testing import annotation_effects

    if in_slicer_app():
        annotation_effects.run_in_segment_editor(ctx)
    else:
        annotation_effects.run_with_logic(ctx)


#: What the steps that run a model need: the model stack and the rest of orbitai/app/requirements/OrbitSegmentation.txt (Apply
#: checks them all before it starts a job), by import name.
MODEL_NEEDS = (selftest.MODEL,) + ("scipy", "sklearn", "skimage", "PIL", "matplotlib", "jsonschema")

#: The module's self-test (`orbitai.selftest`): the steps and what each needs.
SELF_TEST = (
    selftest.Step(test_logic_refuses_2d_input, ("ctx",)),
    selftest.Step(test_load_results_all_or_nothing, ("ctx", "tmp")),
    selftest.Step(test_volume_table_flags_implausible_structures, ("ctx", "tmp")),
    selftest.Step(test_results_file_into_the_inputs_dicom_study_ready_for_slicers_export, ("ctx", "tmp")),
    selftest.Step(test_parameter_choices),
    selftest.Step(test_panel_missing_dependency_reaches_dialog, ("ctx", "tmp")),
    # the effects' algorithms (orbitai.annotate): scipy and scikit-image, which Slicer does not bundle
    selftest.Step(test_annotation_effects, ("ctx",), ("scipy", "skimage")),
    selftest.Step(test_logic_segments_phantom_into_scene, ("ctx", "tmp"), MODEL_NEEDS),
    selftest.Step(test_logic_cancel_leaves_scene_unchanged, ("ctx", "tmp"), MODEL_NEEDS),
    selftest.Step(test_failing_job_leaves_scene_unchanged, ("ctx",), MODEL_NEEDS),
    selftest.Step(test_panel_binds_results_to_starting_input, ("ctx",), MODEL_NEEDS),
)
