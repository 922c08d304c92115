"""TAOActivity Logic on a real MRML scene: the same functions run as the module's self-test inside
Slicer (TAOActivityTest) and headless here with slicer-core."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from orbitai.io import Volume, VolumeError
from orbitai.phantoms import orbit_case
from orbitai.runner import JobError

SEED = 777061  # never used for training cohorts


def slicer_context():
    """The running application's scene (used by the in-Slicer self-test)."""
    from orbitai.mrml import get_context

    return get_context()


def _mri_node(ctx, modality="t2"):
    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume

    case = orbit_case(SEED, modality, tao="active" if modality == "t2" else None, orientation="axial")
    node = volume_node_from_volume(ctx, case.image, name=f"phantom {modality}")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="orbits")
    return case, node, seg


def test_logic_classifies_phantom_into_scene(ctx):
    from TAOActivityLib import TAOActivityLogic

    from orbitai.mrml import box_of_roi_node, ijk_to_ras_of, rows_from_table_node

    case, node, seg = _mri_node(ctx)
    events = []
    out = TAOActivityLogic(ctx).run(node, seg, model="B", device="cpu", progress=lambda d, t, m: events.append(m))
    assert events, "no progress was reported"
    rows = rows_from_table_node(out.table_node)
    assert [r["eye"] for r in rows] == ["right", "left"]
    for r, e in zip(rows, out.result["eyes"]):
        assert 0.0 <= r["P(active)"] <= 1.0
        assert r["P(active)"] == pytest.approx(e["probability_active"], abs=1e-6)
        assert r["call"] == ("active" if r["P(active)"] >= 0.5 else "inactive")
    # the crop boxes sit on each eye's side of the head (RAS x: right eye negative of the left)
    centres = [box_of_roi_node(n)[0] for n in out.roi_nodes]
    assert len(centres) == 2 and centres[0][0] < centres[1][0]
    for kind in ("occlusion", "gradcam"):
        m = out.map_nodes[kind]
        assert np.allclose(ijk_to_ras_of(m), ijk_to_ras_of(node), atol=1e-4)
        assert m.GetImageData().GetDimensions() == node.GetImageData().GetDimensions()
        assert m.GetAttribute("OrbitAI.Overlay") == "1"


def test_logic_cancel_leaves_scene_unchanged(ctx):
    from TAOActivityLib import TAOActivityLogic

    _, node, seg = _mri_node(ctx)
    before = ctx.scene.GetNumberOfNodes()
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(JobError, match="Cancelled"):
        TAOActivityLogic(ctx).run(node, seg, device="cpu", cancel=cancel)
    assert ctx.scene.GetNumberOfNodes() == before


def test_logic_refuses_ct_and_2d_input(ctx):
    from TAOActivityLib import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    _, ct_node, ct_seg = _mri_node(ctx, "ct")
    flat = volume_node_from_volume(ctx, Volume(np.zeros((1, 64, 64), np.float32)), name="one slice")
    before = ctx.scene.GetNumberOfNodes()
    logic = TAOActivityLogic(ctx)
    with pytest.raises(JobError, match="looks like CT"):
        logic.run(ct_node, ct_seg, device="cpu", maps=False)
    with pytest.raises(VolumeError, match="slice"):
        logic.start(flat)
    with pytest.raises(VolumeError, match="Select"):
        logic.start(None)
    assert ctx.scene.GetNumberOfNodes() == before
