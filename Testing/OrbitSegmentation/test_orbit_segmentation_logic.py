"""OrbitSegmentation Logic on a real MRML scene: the same functions run as the module's self-test
inside Slicer (OrbitSegmentationTest) and headless here with slicer-core."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from orbitai.io import VolumeError
from orbitai.labels import values_for
from orbitai.phantoms import orbit_case
from orbitai.runner import JobError

SEED = 777001  # never used for training cohorts


def slicer_context():
    """The running application's scene (used by the in-Slicer self-test)."""
    from orbitai.mrml import get_context

    return get_context()


def _phantom_node(ctx, seed=SEED):
    from orbitai.mrml import volume_node_from_volume

    case = orbit_case(seed, modality="ct", oblique=False)
    return case, volume_node_from_volume(ctx, case.image, name="phantom CT")


def _node_count(ctx) -> int:
    return ctx.scene.GetNumberOfNodes()


def test_logic_segments_phantom_into_scene(ctx, tmp_path: Path):
    from OrbitSegmentationLib import OrbitSegmentationLogic

    from orbitai.mrml import (rows_from_table_node, segment_voxel_counts, segmentation_node_from_labels,
                              labels_from_segmentation_node)

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
    assert by_name["eyeball_left"]["volume (cm3)"] == pytest.approx(counts["eyeball_left"] * vv, rel=1e-4)
    assert 5.0 < by_name["eyeball_left"]["volume (cm3)"] < 9.5     # a globe of 22-26 mm
    metrics = {r["structure"]: r for r in rows_from_table_node(out.metrics_table_node)}
    assert metrics["eyeball"]["dice"] == pytest.approx(dice, abs=1e-3)


def test_logic_cancel_leaves_scene_unchanged(ctx, tmp_path: Path):
    from OrbitSegmentationLib import OrbitSegmentationLogic

    _, node = _phantom_node(ctx)
    before = _node_count(ctx)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(JobError, match="Cancelled"):
        OrbitSegmentationLogic(ctx).run(node, cancel=cancel)
    assert _node_count(ctx) == before


def test_logic_refuses_2d_input(ctx):
    from OrbitSegmentationLib import OrbitSegmentationLogic

    from orbitai.io import Volume
    from orbitai.mrml import volume_node_from_volume

    node = volume_node_from_volume(ctx, Volume(np.zeros((1, 64, 64), np.float32)), name="one slice")
    before = _node_count(ctx)
    with pytest.raises(VolumeError, match="3D"):
        OrbitSegmentationLogic(ctx).start(node)
    with pytest.raises(VolumeError, match="Select an input volume"):
        OrbitSegmentationLogic(ctx).start(None)
    assert _node_count(ctx) == before
