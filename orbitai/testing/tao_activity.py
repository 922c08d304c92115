"""TAOActivity Logic and job panel on a real MRML scene: run by ``Testing/TAOActivity`` (pytest, headless
with slicer-core) and by the module's self-test inside Slicer (TAOActivityTest).

Two layers: `loadResults` against output folders built here from the ``orbitai tao predict``
contract (fast; no model), and the whole Logic end to end through the child process on a phantom
(these need the Network A / B demo bundles: see `installed`).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from orbitai.io import Volume, VolumeError, rotation, write_volume
from orbitai.phantoms import orbit_case
from orbitai.jobs.child import JobError
from orbitai.testing import node_ids, patched, raises, slicer_context  # noqa: F401 - slicer_context: self-test
from orbitai import selftest
from orbitai.testing import panel

SEED = 777061  # never used for training cohorts


def _node_ids(ctx) -> set[str]:
    return node_ids(ctx)


def installed(network: str) -> bool:
    """Whether the TAO Network ``network`` demo bundle is installed (the end-to-end tests need it)."""
    from orbitai.app.tao_activity import TAOActivityLogic

    return TAOActivityLogic.models.resolve(network) in TAOActivityLogic.availableModels()


# --------------------------------------------------------------------------- contract folders
def _reference_mri() -> Volume:
    """A small oblique, anisotropic 'MRI' grid (values irrelevant to loadResults)."""
    rng = np.random.default_rng(3)
    a = rng.normal(100.0, 10.0, (12, 48, 64)).astype(np.float32)
    return Volume(a, (0.9, 0.8, 3.0), (60.0, 40.0, -30.0), rotation(0.05, -0.04, 0.1))


def _box_at(ref: Volume, ijk_centre, size_mm=(30.0, 30.0, 15.0)) -> dict:
    """A crop box in RAS aligned with the image axes (the contract's crop_box_ras)."""
    m = ref.ijk_to_ras()
    centre = (m @ np.r_[np.asarray(ijk_centre, float), 1.0])[:3]
    axes = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)          # columns: the box's x, y, z in RAS
    half = np.asarray(size_mm) / 2
    corners = [centre + axes @ (np.array([sx, sy, sz]) * half)
               for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)]
    return {"center": centre.tolist(), "size_mm": list(size_mm), "axes": axes.T.tolist(),
            "corners": [c.tolist() for c in corners]}


def write_contract_result(out: Path, ref: Volume, probabilities=(0.83, 0.21), maps: bool = True) -> dict:
    """An output folder as ``orbitai tao predict`` writes it (`TaoResult.write`: result.json with its
    task and files, occlusion/gradcam.nrrd)."""
    from orbitai.tao.result import TaoResult

    # the patient's right eye sits at image i small here (RAS x is flipped from LPS i direction)
    eyes = []
    for side, p, i_c in zip(("right", "left"), probabilities, (16, 48)):
        eyes.append({"side": side, "probability_active": p, "call": "active" if p >= 0.5 else "inactive",
                     "crop_box_ras": _box_at(ref, (i_c, 24, 6)), "slices": 5})
    result = {"model": "tao_network_b_demo", "network": "B", "device": "cpu", "seconds": 1.25,
              "threshold": 0.5, "eyes": eyes}
    heat = {}
    if maps:
        for kind, peak in (("occlusion", 0.9), ("gradcam", 1.0)):
            a = np.zeros(ref.shape, np.float32)
            a[4:9, 14:34, 8:24] = np.linspace(0.1, peak, 16, dtype=np.float32)
            a[4:9, 14:34, 40:56] = 0.5 * peak
            heat[kind] = ref.with_array(a)
    TaoResult(result, heat).write(out)
    return result


def test_load_results_writes_table_rois_and_overlays(ctx, tmp_path: Path):
    from orbitai.mrml.results import scan_of
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.io import read_volume
    from orbitai.mrml import (box_of_roi_node, ijk_to_ras_of, rows_from_table_node, volume_from_volume_node,
                              volume_node_from_volume)

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    result = write_contract_result(tmp_path / "res", ref)
    before = _node_ids(ctx)
    out = TAOActivityLogic(ctx).loadResults(tmp_path / "res", mri)

    assert out.table_node.GetName() == "TAO activity"
    rows = rows_from_table_node(out.table_node)
    assert [r["side"] for r in rows] == ["right", "left"]
    assert np.allclose([r["P(active)"] for r in rows], [0.83, 0.21], rtol=1e-6, atol=1e-12)
    assert [r["call"] for r in rows] == ["active", "inactive"]
    assert {r["model"] for r in rows} == {"tao_network_b_demo"}
    assert out.table_node.GetColumnDescription("P(active)") == "probability of the active phase"

    assert [n.GetName() for n in out.roi_nodes] == ["TAO crop right", "TAO crop left"]
    for roi, eye in zip(out.roi_nodes, result["eyes"]):
        c, s, axes = box_of_roi_node(roi)
        box = eye["crop_box_ras"]
        assert np.allclose(c, box["center"], atol=1e-4) and np.allclose(s, box["size_mm"], atol=1e-4)
        assert np.allclose(axes, box["axes"], atol=1e-5)
        b = [0.0] * 6
        roi.GetRASBounds(b)                                   # the ROI's bounds are the corners'
        corners = np.array(box["corners"])
        assert np.allclose(b[0::2], corners.min(0), atol=1e-3) and np.allclose(b[1::2], corners.max(0), atol=1e-3)
        assert roi.GetDisplayNode() is not None

    assert set(out.map_nodes) == {"occlusion", "gradcam"}
    for kind, node in out.map_nodes.items():
        assert np.allclose(ijk_to_ras_of(node), ijk_to_ras_of(mri), atol=1e-5)
        assert node.GetAttribute("OrbitAI.Overlay") == "1"
        written = read_volume(tmp_path / "res" / f"{kind}.nrrd").array
        assert np.allclose(volume_from_volume_node(node).array, written)
    for node in [out.table_node, *out.roi_nodes, *out.map_nodes.values()]:
        assert scan_of(node) is mri
    added = _node_ids(ctx) - before
    assert {out.table_node.GetID()} | {n.GetID() for n in out.roi_nodes} <= added
    assert "right eye active" in out.summary()


def test_load_results_without_maps(ctx, tmp_path: Path):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    write_contract_result(tmp_path / "res", ref, maps=False)
    out = TAOActivityLogic(ctx).loadResults(tmp_path / "res", mri)
    assert out.map_nodes == {} and len(out.roi_nodes) == 2


def _break(path: Path, how: str, ref: Volume) -> None:
    res = json.loads((path / "result.json").read_text())
    if how == "no result.json":
        (path / "result.json").unlink()
    elif how == "not json":
        (path / "result.json").write_text("{ half")
    elif how == "probability":
        res["eyes"][1]["probability_active"] = 1.7
    elif how == "axes":
        res["eyes"][1]["crop_box_ras"]["axes"] = [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    elif how == "no eyes":
        res["eyes"] = []
    elif how == "map grid":
        shifted = Volume(np.zeros(ref.shape, np.float32), ref.spacing, (0.0, 0.0, 0.0), ref.direction)
        write_volume(shifted, path / "gradcam.nrrd")
    elif how == "map nan":
        a = np.zeros(ref.shape, np.float32)
        a[0, 0, 0] = np.nan
        write_volume(ref.with_array(a), path / "occlusion.nrrd")
    if how not in ("no result.json", "not json"):
        (path / "result.json").write_text(json.dumps(res))


BROKEN = {"no result.json": "no result.json", "not json": "cannot be read", "probability": r"\[0, 1\]",
          "axes": "orthonormal", "no eyes": "no eyes", "map grid": "grid", "map nan": "NaN"}


def test_load_results_refuses_broken_folders_scene_unchanged(ctx, tmp_path: Path):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    logic = TAOActivityLogic(ctx)
    before = _node_ids(ctx)
    for n, (how, message) in enumerate(BROKEN.items()):
        folder = tmp_path / f"broken{n}"
        write_contract_result(folder, ref)
        _break(folder, how, ref)
        with raises((VolumeError, RuntimeError, ValueError), match=message):
            logic.loadResults(folder, mri)
        assert _node_ids(ctx) == before, f"{how}: the scene changed"


def test_load_results_rolls_back_when_a_node_fails(ctx, tmp_path: Path):
    """A failure after the first nodes were added (here: the second overlay) removes them all."""
    import orbitai.mrml as bridge
    import orbitai.app.tao_activity as app_module
    from orbitai.app.tao_activity import TAOActivityLogic

    ref = _reference_mri()
    mri = bridge.volume_node_from_volume(ctx, ref, name="T2")
    write_contract_result(tmp_path / "res", ref)
    real, calls = bridge.overlay_node_from_volume, []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return real(*args, **kw)

    before = _node_ids(ctx)
    with patched(app_module, "overlay_node_from_volume", failing), raises(RuntimeError, match="out of memory"):
        TAOActivityLogic(ctx).loadResults(tmp_path / "res", mri)
    assert len(calls) == 2 and _node_ids(ctx) == before


# --------------------------------------------------------------------------- end to end
def _mri_node(ctx, modality="t2", seed=SEED):
    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume

    case = orbit_case(seed, modality, tao="active" if modality == "t2" else None, orientation="axial")
    node = volume_node_from_volume(ctx, case.image, name=f"phantom {modality}")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="orbits")
    return case, node, seg


def _check_end_to_end(ctx, out, node, maps: bool = True) -> None:
    from orbitai.mrml import box_of_roi_node, ijk_to_ras_of, rows_from_table_node, volume_from_volume_node

    rows = rows_from_table_node(out.table_node)
    assert sorted(r["side"] for r in rows) == ["left", "right"]
    threshold = out.result["threshold"]
    for r, e in zip(rows, out.result["eyes"]):
        assert r["side"] == e["side"]
        assert 0.0 <= r["P(active)"] <= 1.0
        assert abs(r["P(active)"] - e["probability_active"]) <= 1e-6
        assert r["call"] == ("active" if r["P(active)"] >= threshold else "inactive")
        assert r["model"] == out.result["model"]
    # each crop box sits on its eye's side of the head: RAS +x is the patient's right
    x = {e["side"]: box_of_roi_node(roi)[0][0] for e, roi in zip(out.result["eyes"], out.roi_nodes)}
    assert x["right"] > x["left"]
    if not maps:
        assert out.map_nodes == {}
        return
    ijk_to_ras = ijk_to_ras_of(node)
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    for kind in ("occlusion", "gradcam"):
        m = out.map_nodes[kind]
        assert np.allclose(ijk_to_ras_of(m), ijk_to_ras, atol=1e-4)
        assert m.GetImageData().GetDimensions() == node.GetImageData().GetDimensions()
        a = volume_from_volume_node(m).array
        assert a.min() >= 0.0 and a.max() <= 1.0 and a.max() > 0.0
        # zero outside the crop boxes (up to one voxel of interpolation at the border)
        k, j, i = np.nonzero(a > 0)
        ras = (ijk_to_ras @ np.stack([i, j, k, np.ones_like(i)]).astype(float))[:3].T
        inside = np.zeros(len(ras), bool)
        for roi in out.roi_nodes:
            c, s, axes = box_of_roi_node(roi)
            local = (ras - c) @ axes.T
            inside |= np.all(np.abs(local) <= s / 2 + spacing.max() * 1.5, axis=1)
        assert inside.all(), f"{kind}: {int((~inside).sum())} non-zero voxels outside the crop boxes"


def _run_end_to_end(ctx, network: str, with_segmentation: bool = True, maps: bool = True) -> None:
    from orbitai.app.tao_activity import TAOActivityLogic

    _, node, seg = _mri_node(ctx)
    events = []
    before = _node_ids(ctx)
    out = TAOActivityLogic(ctx).run(node, seg if with_segmentation else None, model=network, device="cpu",
                                    maps=maps, progress=lambda d, t, m: events.append(m))
    assert events, "no progress was reported"
    assert out.result["network"] == network
    _check_end_to_end(ctx, out, node, maps)
    assert out.table_node.GetID() in _node_ids(ctx) - before


def test_logic_classifies_phantom_into_scene(ctx):
    _run_end_to_end(ctx, "B", maps=False)


def test_logic_network_a_on_phantom(ctx):
    _run_end_to_end(ctx, "A", maps=False)


def test_logic_heat_maps_on_phantom(ctx):
    _run_end_to_end(ctx, "B", maps=True)


def test_logic_finds_orbits_without_segmentation(ctx):
    _run_end_to_end(ctx, "B", with_segmentation=False, maps=False)


def test_logic_cancel_leaves_scene_unchanged(ctx):
    from orbitai.app.tao_activity import TAOActivityLogic

    _, node, seg = _mri_node(ctx)
    before = _node_ids(ctx)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    logic = TAOActivityLogic(ctx)
    logic.warm_worker = False   # a warm worker may finish before the cancel (warm cancel: Testing/jobs)
    with raises(JobError, match="Cancelled"):
        logic.run(node, seg, device="cpu", cancel=cancel)
    assert _node_ids(ctx) == before


def test_logic_refuses_ct_and_2d_input(ctx):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    _, ct_node, ct_seg = _mri_node(ctx, "ct")
    flat = volume_node_from_volume(ctx, Volume(np.zeros((1, 64, 64), np.float32)), name="one slice")
    before = _node_ids(ctx)
    logic = TAOActivityLogic(ctx)
    with raises(JobError, match="looks like CT"):     # refused by the child: exit 2, one line
        logic.run(ct_node, ct_seg, device="cpu", maps=False)
    with raises(VolumeError, match="slice"):
        logic.start(flat)
    with raises(VolumeError, match="Select"):
        logic.start(None)
    assert _node_ids(ctx) == before


def test_logic_refuses_bad_choices_before_starting(ctx):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.bundle import BundleError
    from orbitai.errors import DeviceError
    from orbitai.mrml import volume_node_from_volume

    node = volume_node_from_volume(ctx, _reference_mri(), name="T2")
    labelmap = volume_node_from_volume(ctx, Volume(np.zeros((8, 8, 8), np.uint8)), name="labels", label=True)
    before = _node_ids(ctx)
    logic = TAOActivityLogic(ctx)
    with raises(BundleError, match="No model bundle named 'no_such_model'"):
        logic.start(node, model="no_such_model")
    with raises(DeviceError, match="Unknown device"):
        logic.start(node, device="tpu")
    with raises(VolumeError, match="not a scalar MRI"):
        logic.start(labelmap)
    with raises(ValueError, match="not a segmentation"):
        logic.start(node, segmentation_node=labelmap)
    assert _node_ids(ctx) == before


# --------------------------------------------------------------------------- the job panel
def test_panel_binds_results_to_starting_input(ctx):
    """Results attach to the MRI the job started on, not the one selected when it ends; the
    selectors are locked while the job runs."""
    from orbitai.mrml.results import scan_of
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    case, first, seg = _mri_node(ctx)
    second = volume_node_from_volume(ctx, case.image, name="second T2")
    out = panel.check_binds_results_to_starting_input(
        TAOActivityLogic(ctx), first, second, {"segmentation_node": seg, "device": "cpu", "maps": False})
    for node in [out.table_node, *out.roi_nodes]:
        assert scan_of(node) is first


def test_panel_results_land_while_module_hidden(ctx):
    """Leaving the module while the job runs: the results land in the scene, no error dialog, and they are
    shown when the user comes back."""
    from orbitai.app.tao_activity import TAOActivityLogic

    _, node, seg = _mri_node(ctx)
    out = panel.check_results_land_while_module_hidden(
        ctx, TAOActivityLogic(ctx), node, {"segmentation_node": seg, "device": "cpu", "maps": False})
    assert out.table_node.GetScene() is ctx.scene


def test_panel_failing_job_leaves_scene_unchanged(ctx):
    """The child refuses a CT (exit 2): one error dialog, nothing added to the scene."""
    from orbitai.app.tao_activity import TAOActivityLogic

    _, ct_node, ct_seg = _mri_node(ctx, "ct")
    panel.check_failing_job_leaves_scene_unchanged(
        ctx, TAOActivityLogic(ctx), ct_node, {"segmentation_node": ct_seg, "device": "cpu", "maps": False},
        "looks like CT")


def test_child_errors_are_one_line(ctx, tmp_path: Path):
    """cuda:99, an MRI with a NaN voxel, a crashing child: one line each, no traceback (#14)."""
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.testing.job_errors import check_child_errors_are_one_line

    _, node, seg = _mri_node(ctx)
    check_child_errors_are_one_line(ctx, TAOActivityLogic(ctx), node,
                                    {"segmentation_node": seg, "device": "cpu", "maps": False}, tmp_path)


def test_panel_missing_dependency_reaches_dialog(ctx, tmp_path: Path):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import volume_node_from_volume

    node = volume_node_from_volume(ctx, _reference_mri(), name="T2")
    panel.check_missing_dependency_reaches_dialog(ctx, TAOActivityLogic, node, tmp_path)


def test_panel_cancel_leaves_scene_unchanged(ctx):
    from orbitai.app.tao_activity import TAOActivityLogic

    _, node, seg = _mri_node(ctx)
    panel.check_cancel_leaves_scene_unchanged(ctx, TAOActivityLogic(ctx), node,
                                              {"segmentation_node": seg, "device": "cpu"})


def test_parameter_choices():
    """Model choices come from the installed bundles (labels resolve to them); map choices from the contract."""
    from orbitai.app.tao_activity import SHOWN_MAP_CHOICES, TAOActivityLogic

    a, b = "Network A (VGG-like)", "Network B (ResNet-like)"     # saved in scenes: never renamed
    labels = TAOActivityLogic.modelLabels()
    assert labels == list(TAOActivityLogic.modelChoices()) or labels == [b]
    for label, model in TAOActivityLogic.modelChoices().items():
        assert TAOActivityLogic.resolveModel(label).path == TAOActivityLogic.resolveModel(model).path
    assert SHOWN_MAP_CHOICES == ("occlusion", "Grad-CAM", "none")
    assert TAOActivityLogic.defaultModelLabel(labels) in labels
    assert TAOActivityLogic.defaultModelLabel([a, b]) == b
    assert TAOActivityLogic.defaultModelLabel(["other"]) == "other"


def test_load_results_refuses_input_removed_meanwhile(ctx, tmp_path: Path):
    """A job whose input volume (or orbit segmentation) left the scene while it ran adds nothing."""
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume

    ref = _reference_mri()
    mri = volume_node_from_volume(ctx, ref, name="T2")
    seg = segmentation_node_from_labels(ctx, ref.with_array(np.zeros(ref.shape, np.uint8)), reference_node=mri,
                                        name="orbits")
    write_contract_result(tmp_path / "res", ref)
    logic = TAOActivityLogic(ctx)
    ctx.scene.RemoveNode(seg)
    before = _node_ids(ctx)
    with raises(JobError, match="'orbits' was removed from the scene"):
        logic.loadResults(tmp_path / "res", mri, segmentation_node=seg)
    ctx.scene.RemoveNode(mri)
    with raises(JobError, match="'T2' was removed from the scene"):
        logic.loadResults(tmp_path / "res", mri)
    with raises(JobError, match="gone from the scene"):
        logic.loadResults(tmp_path / "res", None)
    assert _node_ids(ctx) == before - {mri.GetID()}


def _network_b() -> str:
    return "" if installed("B") else "the TAO Network B demo bundle is not installed"


#: What the steps that run a model need: the model stack and the rest of orbitai/app/requirements/TAOActivity.txt (Apply
#: checks them all before it starts a job), by import name.
MODEL_NEEDS = (selftest.MODEL,) + ("scipy", "sklearn", "skimage", "PIL", "matplotlib", "jsonschema", "captum")

#: The module's self-test (`orbitai.selftest`): the steps and what each needs.
SELF_TEST = (
    selftest.Step(test_load_results_writes_table_rois_and_overlays, ("ctx", "tmp")),
    selftest.Step(test_load_results_without_maps, ("ctx", "tmp")),
    selftest.Step(test_load_results_refuses_broken_folders_scene_unchanged, ("ctx", "tmp")),
    selftest.Step(test_load_results_refuses_input_removed_meanwhile, ("ctx", "tmp")),
    selftest.Step(test_logic_refuses_bad_choices_before_starting, ("ctx",)),
    selftest.Step(test_parameter_choices),
    selftest.Step(test_logic_heat_maps_on_phantom, ("ctx",), MODEL_NEEDS, _network_b),
    selftest.Step(test_logic_cancel_leaves_scene_unchanged, ("ctx",), MODEL_NEEDS, _network_b),
    selftest.Step(test_logic_refuses_ct_and_2d_input, ("ctx",), MODEL_NEEDS, _network_b),
    selftest.Step(test_panel_binds_results_to_starting_input, ("ctx",), MODEL_NEEDS, _network_b),
    selftest.Step(test_panel_results_land_while_module_hidden, ("ctx",), MODEL_NEEDS, _network_b),
)
