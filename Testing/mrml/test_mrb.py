"""Scene bundles: save a scene with volume, segmentation, overlay, table and plot; load it back."""
import os

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from orbitai.mrml import (  # noqa: E402
    HEAT_COLOR_NAME, column_units, labels_from_segmentation_node, load_mrb, overlay_node_from_volume, roc_chart,
    rows_from_table_node, save_mrb, segment_info, segmentation_node_from_labels, volume_from_volume_node,
    volume_node_from_volume, table_node_from_rows,
)
from orbitai.mrml.mrb import SceneError  # noqa: E402

CLASSES = ("vtkMRMLScalarVolumeNode", "vtkMRMLLabelMapVolumeNode", "vtkMRMLSegmentationNode", "vtkMRMLTableNode",
           "vtkMRMLPlotChartNode", "vtkMRMLPlotSeriesNode")


def counts(scene):
    return {c: scene.GetNumberOfNodesByClass(c) for c in CLASSES}


@pytest.fixture()
def saved(ctx, orbit_labels, tmp_path):
    image = orbit_labels.with_array((orbit_labels.array.astype(np.int16) * 40 - 100))
    ct = volume_node_from_volume(ctx, image, "orbit ct")
    volume_node_from_volume(ctx, orbit_labels, "label map", label=True)
    segmentation_node_from_labels(ctx, orbit_labels, ct, name="orbit segmentation")
    heat = np.linspace(0.0, 1.0, orbit_labels.array.size, dtype=np.float32).reshape(orbit_labels.shape)
    overlay_node_from_volume(ctx, heat, ct, name="occlusion map")
    table_node_from_rows(ctx, [{"structure": "eyeball_left", "volume": 7.25}, {"structure": "optic_nerve_right",
                                                                              "volume": 0.5}],
                         name="volumes", units={"volume": "cm3"})
    roc_chart(ctx, [0, 0.25, 1], [0, 0.75, 1], auc=0.75)
    path = save_mrb(ctx, tmp_path / "out" / "case 1.mrb")
    return path, counts(ctx.scene), image, heat


def test_save_and_load_round_trip(saved, orbit_labels):
    path, before, image, heat = saved
    assert path.is_file() and path.stat().st_size > 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["case 1.mrb"]  # no temporary leftovers
    loaded = load_mrb(path)
    try:
        scene = loaded.scene
        assert counts(scene) == before
        ct = scene.GetFirstNodeByName("orbit ct")
        vol = volume_from_volume_node(ct)
        np.testing.assert_array_equal(vol.array, image.array)
        assert vol.same_geometry(orbit_labels, tol=1e-6)
        labels = volume_from_volume_node(scene.GetFirstNodeByName("label map"))
        assert scene.GetFirstNodeByName("label map").IsA("vtkMRMLLabelMapVolumeNode")
        np.testing.assert_array_equal(labels.array, orbit_labels.array)

        seg = scene.GetFirstNodeByName("orbit segmentation")
        info = segment_info(seg)
        assert [r["name"] for r in info] == ["eyeball_left", "optic_nerve_right", "superior_rectus_muscle_right",
                                            "levator_palpebrae_superioris_right"]
        assert all("SCT^123037004^Anatomical Structure" in r["terminology"] for r in info)
        np.testing.assert_array_equal(labels_from_segmentation_node(seg, ct).array, orbit_labels.array)

        overlay = scene.GetFirstNodeByName("occlusion map")
        np.testing.assert_allclose(volume_from_volume_node(overlay).array, heat)
        display = overlay.GetDisplayNode()
        assert display.GetColorNode().GetName() == HEAT_COLOR_NAME
        assert display.GetWindow() == pytest.approx(1.0, rel=1e-5)

        table = scene.GetFirstNodeByName("volumes")
        assert rows_from_table_node(table) == [{"structure": "eyeball_left", "volume": 7.25},
                                               {"structure": "optic_nerve_right", "volume": 0.5}]
        assert column_units(table) == {"volume": "cm3"}
        chart = scene.GetFirstNodeByName("ROC")
        assert chart.GetNumberOfPlotSeriesNodes() == 1
        assert chart.GetNthPlotSeriesNode(0).GetTableNode().GetNumberOfRows() == 3
    finally:
        loaded.close()


def test_overwrite_and_load_into_existing(ctx, saved, tmp_path):
    path, before, _, _ = saved
    again = save_mrb(ctx, path)  # replaces the file
    assert again == path and sorted(p.name for p in path.parent.iterdir()) == ["case 1.mrb"]
    n = ctx.scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    load_mrb(path, ctx, clear=False)
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == 2 * n


def test_bad_paths(ctx, tmp_path):
    with pytest.raises(ValueError, match=r"\.mrb"):
        save_mrb(ctx, tmp_path / "scene.zip")
    with pytest.raises(FileNotFoundError):
        load_mrb(tmp_path / "missing.mrb", ctx)
    junk = tmp_path / "junk.mrb"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(OSError, match="is not a scene bundle: a .mrb is a zip archive"):
        load_mrb(junk, ctx)


def _zip(path, members: dict[str, bytes], link: str | None = None):
    import stat
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc")
    return path


@pytest.mark.parametrize("members, link, says", [
    ({"s/s.mrml": b"<MRML></MRML>", "../../outside.txt": b"x"}, None, "named outside its folder"),
    ({"s/s.mrml": b"<MRML></MRML>", "/tmp/abs.txt": b"x"}, None, "named outside its folder"),
    ({"s/s.mrml": b"<MRML></MRML>"}, "s/Data", "holds a link"),
    ({"s/readme.txt": b"x"}, None, "holds no .mrml scene"),
])
def test_a_bundle_is_checked_before_slicer_unpacks_it(ctx, tmp_path, members, link, says):
    """Slicer's unpacker takes member names as paths: a member outside the bundle's folder or a link is refused by
    name first, and nothing is written outside (or added to the scene)."""
    nodes = ctx.scene.GetNumberOfNodes()
    (tmp_path / "in").mkdir()
    bundle = _zip(tmp_path / "in" / "b.mrb", members, link)
    with pytest.raises(SceneError, match=says) as err:
        load_mrb(bundle, ctx)
    assert "\n" not in str(err.value) and ctx.scene.GetNumberOfNodes() == nodes
    assert not (tmp_path / "outside.txt").exists()


def test_failed_load_keeps_working_directory(ctx, tmp_path, monkeypatch):
    """A bad .mrb must not leave the process in ReadFromMRB's deleted temporary folder (later child
    processes would start in a folder that no longer exists)."""
    monkeypatch.chdir(tmp_path)
    _zip(tmp_path / "junk.mrb", {"junk/junk.mrml": b"not a scene"})
    with pytest.raises(OSError, match="Could not load"):
        load_mrb("junk.mrb", ctx)
    assert os.getcwd() == str(tmp_path)
