"""Issue 67.5 and 67.6, headless: the shown scan's heat maps listed with the colour bar of their colour node and
window, shown, hidden and faded; "Which scan next" offers scans only (not a heat map, whatever its links, nor a label,
vector or empty volume, nor an editor's hidden helper)."""
from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

from orbitai.app.corrections import unlabelled_scans  # noqa: E402
from orbitai.io import Volume  # noqa: E402
from orbitai.mrml import new_scene, overlay_node_from_volume, show_overlay, volume_node_from_volume  # noqa: E402
from orbitai.mrml.overlays import color_stops, heat_map_rows, is_heat_map, set_heat_map  # noqa: E402
from orbitai.mrml.results import mark_results  # noqa: E402


@pytest.fixture()
def scene():
    """Two patients' scans, each with a heat map (a module's result), and three slice views' composite nodes."""
    ctx = new_scene()
    try:
        grid = np.linspace(0.0, 1.0, 6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
        a = volume_node_from_volume(ctx, Volume(grid * 100, (1.0, 1.0, 2.0)), name="scan A")
        b = volume_node_from_volume(ctx, Volume(grid * 50, (1.0, 1.0, 2.0)), name="scan B")
        heat_a = overlay_node_from_volume(ctx, grid * 0.8, a, name="TAO occlusion", value_range=(0.0, 0.8))
        heat_b = overlay_node_from_volume(ctx, grid, b, name="B heat map")
        mark_results([heat_a], a)
        mark_results([heat_b], b)
        for _ in range(3):
            ctx.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
        yield ctx, a, b, heat_a, heat_b
    finally:
        ctx.close()


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb[:3])


def test_the_shown_scans_heat_maps_with_their_colour_bar(scene):
    ctx, a, b, heat_a, heat_b = scene
    rows = heat_map_rows(ctx.scene, a)
    assert [r["id"] for r in rows] == [heat_a.GetID()], "another patient's heat map is listed"
    row = rows[0]
    assert row["name"] == row["title"] == "TAO occlusion" and not row["shown"]
    assert (row["low"], row["high"]) == pytest.approx((0.0, 0.8)) and row["ticks"] == ["0", "0.4", "0.8"]
    # the colour bar: the colour node's own colours, darkest at the window's minimum, brightest at its maximum
    table = heat_a.GetDisplayNode().GetColorNode()
    rgba = [0.0] * 4
    table.GetColor(0, rgba)
    first = _hex(rgba)
    table.GetColor(table.GetNumberOfColors() - 1, rgba)
    assert row["colors"][0] == first and row["colors"][-1] == _hex(rgba) and len(row["colors"]) == 16
    assert row["colors"] == color_stops(table)
    assert [r["id"] for r in heat_map_rows(ctx.scene, b)] == [heat_b.GetID()]
    assert heat_map_rows(ctx.scene, None) == []


def test_show_hide_and_opacity_of_a_heat_map(scene):
    ctx, a, _b, heat_a, _heat_b = scene
    comps = [ctx.scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode") for i in range(3)]
    set_heat_map(ctx, heat_a, shown=True)
    assert all(c.GetForegroundVolumeID() == heat_a.GetID() and c.GetBackgroundVolumeID() == a.GetID() for c in comps)
    assert heat_map_rows(ctx.scene, a)[0]["shown"] and heat_map_rows(ctx.scene, a)[0]["opacity"] == 0.5
    set_heat_map(ctx, heat_a, opacity=0.8)
    assert all(c.GetForegroundOpacity() == pytest.approx(0.8) for c in comps)
    set_heat_map(ctx, heat_a, shown=False)
    assert all(c.GetForegroundVolumeID() is None for c in comps)
    legend = next(heat_a.GetNthDisplayNode(i) for i in range(heat_a.GetNumberOfDisplayNodes())
                  if heat_a.GetNthDisplayNode(i).IsA("vtkMRMLColorLegendDisplayNode"))
    assert not legend.GetVisibility(), "the colour legend stays in the views of a hidden heat map"
    row = heat_map_rows(ctx.scene, a)[0]
    assert not row["shown"] and row["opacity"] == 0.8, "the opacity the user chose is lost while hidden"
    set_heat_map(ctx, heat_a, shown=True)
    assert all(c.GetForegroundOpacity() == pytest.approx(0.8) for c in comps) and legend.GetVisibility()
    show_overlay(ctx, heat_a, a, opacity=0.3)             # a module's "Show map": the list follows the views
    assert heat_map_rows(ctx.scene, a)[0]["opacity"] == 0.3
    with pytest.raises(ValueError, match="not a heat map"):
        set_heat_map(ctx, a, shown=True)


def test_no_legend_of_one_scan_stays_over_another(scene):
    """Issue 81 item 1: after a heat map on scan A, Slicer's colour legend ("TAO occlusion 0.0-0.4") stayed in the
    views of every other scan (a legend is drawn in each slice view whatever they show). Showing another scan, or
    another heat map, hides every other legend; showing the heat map again brings its own back."""
    from orbitai.mrml import show_volume
    from orbitai.mrml.overlays import _legends

    ctx, a, b, heat_a, heat_b = scene
    show_overlay(ctx, heat_a, a, 0.5)
    assert all(g.GetVisibility() for g in _legends(heat_a))
    show_volume(ctx, b)
    shown = [n.GetName() for n in (heat_a, heat_b) for g in _legends(n) if g.GetVisibility()]
    assert shown == [], f"legends over scan B: {shown}"
    show_overlay(ctx, heat_b, b, 0.5)
    assert all(g.GetVisibility() for g in _legends(heat_b)) and not any(g.GetVisibility() for g in _legends(heat_a))
    set_heat_map(ctx, heat_a, shown=True)
    assert all(g.GetVisibility() for g in _legends(heat_a)) and not any(g.GetVisibility() for g in _legends(heat_b))


def test_which_scan_next_offers_scans_only(scene):
    ctx, a, b, heat_a, _heat_b = scene
    grid = np.ones((6, 7, 8), np.float32)
    loose = overlay_node_from_volume(ctx, grid, a, name="occlusion.nrrd")     # a heat map nobody marked
    assert is_heat_map(loose) and not is_heat_map(a)
    volume_node_from_volume(ctx, Volume(grid.astype(np.uint8), (1.0, 1.0, 2.0)), name="labels", label=True)
    hidden = volume_node_from_volume(ctx, Volume(grid, (1.0, 1.0, 2.0)), name="editor helper")
    hidden.SetHideFromEditors(True)
    ctx.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "no voxels")
    vector = ctx.scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", "RGB screenshot")
    vector.SetAndObserveImageData(a.GetImageData())
    ctx.scene.RemoveNode(a)                                # heat_a's scan gone: still a heat map, not a scan
    assert [s.GetName() for s in unlabelled_scans(ctx.scene)] == ["scan B"]
