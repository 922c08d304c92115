"""Heat-map overlay nodes: values, geometry, colour table, window/level, slice composites."""
import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from orbitai.io import VolumeError  # noqa: E402
from orbitai.mrml import (  # noqa: E402
    HEAT_COLOR_NAME, heat_color_node, overlay_node_from_volume, show_overlay, volume_from_volume_node,
    volume_node_from_volume,
)


@pytest.fixture()
def image_node(ctx, orbit_labels):
    return volume_node_from_volume(ctx, orbit_labels.with_array(orbit_labels.array.astype(np.int16) * 10), "input")


@pytest.fixture()
def heat(orbit_labels):
    rng = np.random.default_rng(1)
    return (rng.random(orbit_labels.shape) * 3.0 - 0.5).astype(np.float64)


def test_overlay_values_geometry_and_display(ctx, orbit_labels, image_node, heat):
    node = overlay_node_from_volume(ctx, heat, image_node, name="Grad-CAM")
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetName() == "Grad-CAM"
    back = volume_from_volume_node(node)
    assert back.array.dtype == np.float32
    np.testing.assert_allclose(back.array, heat.astype(np.float32))
    assert back.same_geometry(orbit_labels, tol=1e-6)
    display = node.GetDisplayNode()
    assert display.GetColorNode().GetName() == HEAT_COLOR_NAME
    assert not display.GetAutoWindowLevel()
    lo, hi = float(heat.astype(np.float32).min()), float(heat.astype(np.float32).max())
    assert display.GetWindow() == pytest.approx(hi - lo, rel=1e-5)
    assert display.GetLevel() == pytest.approx((hi + lo) / 2, rel=1e-5)
    assert node.GetAttribute("OrbitAI.Overlay") == "1"


def test_heat_table_is_a_dark_to_bright_ramp_made_once(ctx, orbit_labels, image_node, heat):
    table = heat_color_node(ctx)
    assert table.GetNumberOfColors() == 256
    rgba = [0.0] * 4
    table.GetColor(0, rgba)
    dark = sum(rgba[:3])
    table.GetColor(255, rgba)
    assert dark < 0.1 < 2.0 < sum(rgba[:3])
    overlay_node_from_volume(ctx, heat, image_node)
    overlay_node_from_volume(ctx, orbit_labels.with_array(heat), name="second")
    assert ctx.scene.GetNodesByClassByName("vtkMRMLColorTableNode", HEAT_COLOR_NAME).GetNumberOfItems() == 1


def test_range_threshold_and_other_colour_table(ctx, image_node, heat):
    node = overlay_node_from_volume(ctx, heat, image_node, value_range=(0.0, 2.0), threshold=0.5, colormap="Iron")
    display = node.GetDisplayNode()
    assert display.GetColorNode().GetName() == "Iron"
    assert display.GetWindow() == pytest.approx(2.0) and display.GetLevel() == pytest.approx(1.0)
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == pytest.approx(0.5)


def test_show_overlay_headless_and_with_views(ctx, image_node, heat):
    node = overlay_node_from_volume(ctx, heat, image_node)
    assert show_overlay(ctx, node, image_node, opacity=0.4) == 0  # no views headless: nothing fails
    selection = ctx.app_logic.GetSelectionNode()
    assert selection.GetActiveVolumeID() == image_node.GetID()
    assert selection.GetSecondaryVolumeID() == node.GetID()
    comps = [ctx.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode") for _ in range(3)]
    assert show_overlay(ctx, node, image_node, opacity=0.4) == 3
    for comp in comps:
        assert comp.GetBackgroundVolumeID() == image_node.GetID()
        assert comp.GetForegroundVolumeID() == node.GetID()
        assert comp.GetForegroundOpacity() == pytest.approx(0.4)


def test_constant_map_gets_a_valid_window(ctx, image_node, orbit_labels):
    node = overlay_node_from_volume(ctx, np.full(orbit_labels.shape, 2.0), image_node)
    assert node.GetDisplayNode().GetWindow() > 0


# ------------------------------------------------------------------------------------ bad input
def test_bad_overlays(ctx, image_node, heat, orbit_labels):
    bad = heat.copy()
    bad[0, 1, 2] = np.nan
    with pytest.raises(VolumeError, match="NaN"):
        overlay_node_from_volume(ctx, bad, image_node)
    with pytest.raises(VolumeError, match="shape"):
        overlay_node_from_volume(ctx, heat[:-1], image_node)
    with pytest.raises(VolumeError, match="2D"):
        overlay_node_from_volume(ctx, heat[0], image_node)
    with pytest.raises(ValueError, match="No colour table named 'nope'"):
        overlay_node_from_volume(ctx, heat, image_node, colormap="nope")
    with pytest.raises(ValueError, match="high > low"):
        overlay_node_from_volume(ctx, heat, image_node, value_range=(1.0, 1.0))
    node = overlay_node_from_volume(ctx, heat, image_node)
    with pytest.raises(ValueError, match="opacity"):
        show_overlay(ctx, node, image_node, opacity=1.5)


def test_a_heat_map_has_a_colour_legend_in_the_slice_views():
    import numpy as np

    from orbitai.io import Volume
    from orbitai.mrml import new_scene, overlay_node_from_volume

    ctx = new_scene()
    try:
        heat = Volume(np.linspace(0, 1, 8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10), (1.0, 1.0, 1.0))
        node = overlay_node_from_volume(ctx, heat, name="P(active)")
        legends = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())
                   if node.GetNthDisplayNode(i).IsA("vtkMRMLColorLegendDisplayNode")]
        assert len(legends) == 1 and legends[0].GetVisibility() and legends[0].GetTitleText() == "P(active)"
        assert legends[0].GetPrimaryDisplayNode() is node.GetDisplayNode()
    finally:
        ctx.close()
