"""Segmentation nodes from label arrays and back: names, colours, terminology, values, counts."""
import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from orbitai.io import Volume, VolumeError  # noqa: E402
from orbitai.labels import ORBIT_LABELS, STRUCTURE_CODES  # noqa: E402
from orbitai.mrml import (  # noqa: E402
    labels_from_segmentation_node,
    segment_info,
    segment_voxel_counts,
    segmentation_node_from_labels,
    volume_node_from_volume,
)


@pytest.fixture()
def ref_node(ctx, orbit_labels):
    image = orbit_labels.with_array(np.arange(orbit_labels.array.size, dtype=np.float32).reshape(orbit_labels.shape))
    return volume_node_from_volume(ctx, image, "orbit ct")


def test_segments_follow_the_orbit_table(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, orbit_labels.array, ref_node, name="orbits")
    assert node.GetName() == "orbits" and node.GetDisplayNode() is not None
    segmentation = node.GetSegmentation()
    values = [1, 4, 6, 16]
    assert segmentation.GetNumberOfSegments() == len(values)
    info = {row["label_value"]: row for row in segment_info(node)}
    assert sorted(info) == values
    for v in values:
        lab = ORBIT_LABELS[v]
        assert info[v]["name"] == lab.name
        assert info[v]["colour"] == lab.colour
        assert info[v]["terminology"] == lab.slicer_terminology()
        seg = segmentation.GetSegment(info[v]["id"])
        np.testing.assert_allclose(seg.GetColor(), np.array(lab.colour) / 255.0, atol=1e-6)
    counts = segment_voxel_counts(node)
    assert counts == {ORBIT_LABELS[v].name: int(np.count_nonzero(orbit_labels.array == v)) for v in values}
    # temporary helper nodes are gone
    assert ctx.scene.GetNumberOfNodesByClass("vtkMRMLLabelMapVolumeNode") == 0
    assert ctx.scene.GetFirstNodeByName("orbitai-import") is None


def test_round_trip_on_oblique_reference(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, orbit_labels, ref_node)
    back = labels_from_segmentation_node(node, ref_node)
    np.testing.assert_array_equal(back.array, orbit_labels.array)
    assert back.same_geometry(orbit_labels, tol=1e-6)
    # a Volume as the reference gives the same
    back2 = labels_from_segmentation_node(node, orbit_labels)
    np.testing.assert_array_equal(back2.array, orbit_labels.array)
    assert ctx.scene.GetFirstNodeByName("orbitai-export") is None


def test_volume_without_reference_node(ctx, orbit_labels):
    node = segmentation_node_from_labels(ctx, orbit_labels, name="no reference")
    back = labels_from_segmentation_node(node, orbit_labels)
    np.testing.assert_array_equal(back.array, orbit_labels.array)
    assert back.same_geometry(orbit_labels, tol=1e-6)


def test_terminology_codes_are_the_verified_ones():
    # SNOMED CT codes checked against Slicer's TotalSegmentator mapping and Slicer's terminology
    expected = {"eyeball": "79652003", "optic_nerve": "18234004", "superior_rectus_muscle": "5815008",
                "inferior_rectus_muscle": "47869003", "medial_rectus_muscle": "24937009",
                "lateral_rectus_muscle": "31836009", "superior_oblique_muscle": "66041005",
                "levator_palpebrae_superioris": "58641002"}
    assert {k: STRUCTURE_CODES[k].value for k in expected} == expected
    term = ORBIT_LABELS[7].slicer_terminology()
    parts = term.split("~")
    assert len(parts) == 7 and parts[2] == "SCT^47869003^Inferior rectus muscle" and parts[3] == "SCT^7771000^Left"


def test_custom_table_forms(ctx, orbit_labels, ref_node):
    from orbitai.io.segfile import LabelInfo

    table = {1: ("globe", (10, 20, 30)), 4: ("nerve", [40, 50, 60], "custom~term"), 6: "muscle",
             16: LabelInfo(16, "other", (1, 2, 3), "x~y")}
    node = segmentation_node_from_labels(ctx, orbit_labels, ref_node, table=table, include_empty=False)
    info = {r["name"]: r for r in segment_info(node)}
    assert info["globe"]["colour"] == (10, 20, 30) and "SCT^79652003" not in info["globe"]["terminology"]
    assert info["nerve"]["terminology"] == "custom~term" and info["nerve"]["label_value"] == 4
    assert info["muscle"]["colour"] == (128, 128, 128)
    assert info["other"]["colour"] == (1, 2, 3) and info["other"]["label_value"] == 16
    back = labels_from_segmentation_node(node, ref_node, table=table)
    np.testing.assert_array_equal(back.array, orbit_labels.array)


def test_include_empty_segments(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, orbit_labels, ref_node, include_empty=True)
    assert node.GetSegmentation().GetNumberOfSegments() == len(ORBIT_LABELS)
    counts = segment_voxel_counts(node)
    assert counts["optic_nerve_left"] == 0 and counts["eyeball_left"] == int((orbit_labels.array == 1).sum())
    values = {r["name"]: r["label_value"] for r in segment_info(node)}
    assert values == {lab.name: v for v, lab in ORBIT_LABELS.items()}
    np.testing.assert_array_equal(labels_from_segmentation_node(node, ref_node).array, orbit_labels.array)


def test_user_segment_named_with_spaces(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, orbit_labels, ref_node)
    segmentation = node.GetSegmentation()
    sid = segmentation.GetSegmentIdBySegmentName("eyeball_left")
    segmentation.GetSegment(sid).SetName("Eyeball Left")
    np.testing.assert_array_equal(labels_from_segmentation_node(node, ref_node).array, orbit_labels.array)
    # two segments for one label value are ambiguous
    node.GetSegmentation().AddEmptySegment("", "eyeball_left")
    with pytest.raises(ValueError, match="both map to label value 1"):
        labels_from_segmentation_node(node, ref_node)


def test_empty_labels_and_empty_segmentation(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, np.zeros(orbit_labels.shape, np.uint8), ref_node)
    assert node.GetSegmentation().GetNumberOfSegments() == 0
    back = labels_from_segmentation_node(node, ref_node)
    assert back.shape == orbit_labels.shape and not back.array.any()


# ------------------------------------------------------------------------------------ bad input
def _nodes(ctx):
    return ctx.scene.GetNumberOfNodes()


@pytest.mark.parametrize("shape,match", [((9, 11), "2D"), ((2, 7, 9, 11), "4D")])
def test_wrong_dimensionality(ctx, ref_node, shape, match):
    n = _nodes(ctx)
    with pytest.raises(VolumeError, match=match):
        segmentation_node_from_labels(ctx, np.zeros(shape, np.uint8), ref_node)
    assert _nodes(ctx) == n


def test_nan_in_labels(ctx, orbit_labels, ref_node):
    a = orbit_labels.array.astype(float)
    a[3, 3, 3] = np.nan
    n = _nodes(ctx)
    with pytest.raises(VolumeError, match="1 NaN"):
        segmentation_node_from_labels(ctx, a, ref_node)
    assert _nodes(ctx) == n


def test_shape_mismatch(ctx, orbit_labels, ref_node):
    with pytest.raises(VolumeError, match=r"shape \(7, 9, 10\).*\(7, 9, 11\).*resample"):
        segmentation_node_from_labels(ctx, orbit_labels.array[:, :, :10], ref_node)


def test_grid_mismatch(ctx, orbit_labels, ref_node):
    moved = Volume(orbit_labels.array, orbit_labels.spacing, (0.0, 0.0, 0.0), orbit_labels.direction)
    with pytest.raises(VolumeError, match="grid.*resample_like"):
        segmentation_node_from_labels(ctx, moved, ref_node)


def test_unknown_label_values(ctx, orbit_labels, ref_node):
    a = orbit_labels.array.copy()
    a[0, 0, 1] = 42
    n = _nodes(ctx)
    with pytest.raises(ValueError, match="Label values 42 are not in the label table"):
        segmentation_node_from_labels(ctx, a, ref_node)
    with pytest.raises(ValueError, match="not in the label table"):
        segmentation_node_from_labels(ctx, orbit_labels, ref_node, table={1: "a", 4: "b", 6: "c"})
    assert _nodes(ctx) == n


def test_array_without_reference(ctx, orbit_labels):
    with pytest.raises(VolumeError, match="no geometry"):
        segmentation_node_from_labels(ctx, orbit_labels.array)


@pytest.mark.parametrize("table,match", [({0: "bg"}, "background"), ({1: ("a", (300, 0, 0))}, "0-255"),
                                         ({1: "a", 2: "a"}, "unique"), ({1: ("", (1, 2, 3))}, "non-empty")])
def test_bad_tables(ctx, orbit_labels, ref_node, table, match):
    with pytest.raises(ValueError, match=match):
        segmentation_node_from_labels(ctx, orbit_labels, ref_node, table=table)


def test_export_unknown_segment_name(ctx, orbit_labels, ref_node):
    node = segmentation_node_from_labels(ctx, orbit_labels, ref_node)
    node.GetSegmentation().AddEmptySegment("tumour", "tumour")
    with pytest.raises(ValueError, match="'tumour' are not in the label table"):
        labels_from_segmentation_node(node, ref_node)
