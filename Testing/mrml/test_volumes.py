"""Volume nodes <-> Volume: exact oblique geometry, RAS positions, label maps, bad input."""
import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
import vtk  # noqa: E402

from orbitai.io import Volume, VolumeError  # noqa: E402
from orbitai.mrml import ijk_to_ras_of, volume_from_volume_node, volume_node_from_volume  # noqa: E402


def node_matrix(node) -> np.ndarray:
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.float64])
def test_scalar_round_trip_oblique(ctx, oblique, dtype):
    spacing, origin, direction = oblique
    rng = np.random.default_rng(0)
    vol = Volume((rng.normal(size=(5, 6, 7)) * 100).astype(dtype), spacing, origin, direction)
    node = volume_node_from_volume(ctx, vol, "ct")
    assert node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")
    assert node.GetName() == "ct"
    np.testing.assert_allclose(node.GetSpacing(), spacing, atol=1e-6)
    back = volume_from_volume_node(node)
    assert back.array.dtype == vol.array.dtype
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.spacing, spacing, atol=1e-6)
    np.testing.assert_allclose(back.origin, origin, atol=1e-6)
    np.testing.assert_allclose(back.direction, direction, atol=1e-6)
    assert back.array is not vol.array


def test_voxel_ras_position_matches_volume(ctx, oblique):
    spacing, origin, direction = oblique
    vol = Volume(np.zeros((5, 6, 7), np.float32), spacing, origin, direction)
    node = volume_node_from_volume(ctx, vol, "ct")
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    for ijk in [(0, 0, 0), (6, 5, 4), (3, 1, 2), (2.5, 0.5, 3.25)]:
        ras_node = np.array(m.MultiplyPoint((*ijk, 1.0))[:3])
        ras_core = (vol.ijk_to_ras() @ np.array([*ijk, 1.0]))[:3]
        np.testing.assert_allclose(ras_node, ras_core, atol=1e-6)
        # and the same point in LPS, with the first two axes negated
        lps = vol.index_to_physical(ijk)
        np.testing.assert_allclose(ras_node, [-lps[0], -lps[1], lps[2]], atol=1e-6)
    # the voxel holding a value sits where the core says: check with the node's RASToIJK
    inv = vtk.vtkMatrix4x4()
    node.GetRASToIJKMatrix(inv)
    ras = (vol.ijk_to_ras() @ np.array([6, 5, 4, 1.0]))[:3]
    np.testing.assert_allclose(inv.MultiplyPoint((*ras, 1.0))[:3], (6, 5, 4), atol=1e-6)
    np.testing.assert_allclose(node_matrix(node), vol.ijk_to_ras(), atol=1e-9)


@pytest.mark.parametrize("dtype,stored", [(np.uint8, np.uint8), (np.int16, np.int16), (np.uint16, np.uint16),
                                          (np.int32, np.int32), (np.int64, np.int32), (bool, np.uint8)])
def test_label_map_keeps_integer_type(ctx, orbit_labels, dtype, stored):
    vol = Volume(orbit_labels.array.astype(dtype) if dtype is not bool else orbit_labels.array > 0,
                 orbit_labels.spacing, orbit_labels.origin, orbit_labels.direction)
    node = volume_node_from_volume(ctx, vol, "labels", label=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert node.GetDisplayNode() is not None and node.GetDisplayNode().GetColorNode() is not None
    back = volume_from_volume_node(node)
    assert back.array.dtype == stored
    np.testing.assert_array_equal(back.array, vol.array.astype(stored))
    assert back.same_geometry(orbit_labels, tol=1e-6)


def test_integral_float_labels_become_integers(ctx, orbit_labels):
    vol = orbit_labels.with_array(orbit_labels.array.astype(np.float32))
    back = volume_from_volume_node(volume_node_from_volume(ctx, vol, "labels", label=True))
    assert back.array.dtype.kind == "i"
    np.testing.assert_array_equal(back.array, orbit_labels.array)


def test_update_existing_node(ctx, orbit_labels):
    node = volume_node_from_volume(ctx, orbit_labels, "labels", label=True)
    changed = orbit_labels.with_array(orbit_labels.array * 0 + 2)
    assert volume_node_from_volume(ctx, changed, node=node, label=True) is node
    assert int(slicer.util.arrayFromVolume(node).sum()) == 2 * orbit_labels.array.size


def test_linear_parent_transform_is_applied(ctx, oblique):
    spacing, origin, direction = oblique
    vol = Volume(np.zeros((2, 3, 4), np.int16), spacing, origin, direction)
    node = volume_node_from_volume(ctx, vol, "moved")
    tnode = ctx.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = np.eye(4)
    shift[:3, 3] = (5.0, -7.0, 11.0)
    tnode.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(shift))
    node.SetAndObserveTransformNodeID(tnode.GetID())
    np.testing.assert_allclose(ijk_to_ras_of(node), shift @ vol.ijk_to_ras(), atol=1e-9)
    back = volume_from_volume_node(node)
    np.testing.assert_allclose(back.origin, np.array(origin) + (-5.0, 7.0, 11.0), atol=1e-6)  # RAS -> LPS


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("values", [np.nan, 1.5])
def test_label_map_rejects_nan_and_fractions(ctx, orbit_labels, values):
    a = orbit_labels.array.astype(np.float32)
    a[0, 0, 1] = values
    with pytest.raises(VolumeError, match="NaN|non-integer"):
        volume_node_from_volume(ctx, orbit_labels.with_array(a), "bad", label=True)
    assert ctx.scene.GetFirstNodeByName("bad") is None


def test_not_a_volume(ctx):
    with pytest.raises(TypeError, match="Volume"):
        volume_node_from_volume(ctx, np.zeros((3, 3, 3)), "x")
    with pytest.raises(VolumeError, match="volume node"):
        volume_from_volume_node(ctx.scene.AddNewNodeByClass("vtkMRMLTableNode"))
    with pytest.raises(VolumeError, match="no image data"):
        volume_from_volume_node(ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty"))


def test_vector_volume_rejected(ctx):
    node = ctx.scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "rgb")
    slicer.util.updateVolumeFromArray(node, np.zeros((2, 3, 4, 3), np.uint8))
    with pytest.raises(VolumeError, match="3 components"):
        volume_from_volume_node(node)
