"""Heat-map overlays: a float volume node with a heat colour table, shown over the input.

A viewer of one scan at a time (the browser app) lists the shown scan's heat maps with their colour bar, read from
the map's colour node and display window (what Slicer's colour legend draws: `heat_map_rows`), and shows, hides or
fades one (`set_heat_map`)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import slicer

from orbitai.errors import InputError
from orbitai.io import Volume, VolumeError
from orbitai.mrml.queries import nodes_of_class
from orbitai.mrml.results import results_of, scan_of
from orbitai.mrml.scene import MRMLContext
from orbitai.mrml.volumes import as_volume, volume_node_from_volume

__all__ = ["HEAT_COLOR_NAME", "OVERLAY", "heat_color_node", "overlay_node_from_volume", "add_color_legend", "hide_legends",
           "show_overlay", "show_volume", "jump_slices", "is_heat_map", "heat_map_rows", "set_heat_map",
           "color_stops", "color_samples"]

#: Name of the colour table the bridge creates (an Inferno-like black-purple-orange-yellow ramp).
HEAT_COLOR_NAME = "OrbitAI Heat"
#: Volume-node attribute ("1") of a heat map (`overlay_node_from_volume`): a result drawn over a scan, never a scan.
OVERLAY = "OrbitAI.Overlay"
#: Volume-node attribute: the foreground opacity the user gave the heat map (kept while it is hidden).
OVERLAY_OPACITY = "OrbitAI.OverlayOpacity"
#: The opacity a heat map is shown at until the user sets one.
DEFAULT_OPACITY = 0.5
#: Colours sampled from a colour node for the page's colour bar.
BAR_STOPS = 16
# Anchor colours (RGB 0-255) at equal steps from 0 to 1, close to matplotlib's perceptually
# uniform "inferno" map; the table linearly interpolates between them.
_ANCHORS = np.array([
    (0, 0, 4), (40, 11, 84), (101, 21, 110), (159, 42, 99),
    (212, 72, 66), (245, 125, 21), (250, 193, 39), (252, 255, 164),
], dtype=float) / 255.0


def heat_color_node(ctx: MRMLContext, name: str = HEAT_COLOR_NAME, n_colors: int = 256):
    """The heat colour table node of the scene (created once, found by name afterwards)."""
    nodes = ctx.scene.GetNodesByClassByName("vtkMRMLColorTableNode", name)
    if nodes.GetNumberOfItems() > 0:
        return nodes.GetItemAsObject(0)
    node = ctx.scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    node.SetTypeToUser()
    node.SetNumberOfColors(n_colors)
    pos = np.linspace(0.0, 1.0, len(_ANCHORS))
    t = np.linspace(0.0, 1.0, n_colors)
    rgb = np.stack([np.interp(t, pos, _ANCHORS[:, c]) for c in range(3)], axis=1)
    for i, (r, g, b) in enumerate(rgb):
        node.SetColor(i, f"{t[i]:.3f}", float(r), float(g), float(b), 1.0)
    node.SetAttribute("Category", "OrbitAI")
    return node


def _color_node(ctx: MRMLContext, colormap):
    if colormap is None or colormap == HEAT_COLOR_NAME:
        return heat_color_node(ctx)
    if not isinstance(colormap, str):
        return colormap  # a colour node
    found = ctx.scene.GetNodesByClassByName("vtkMRMLColorNode", colormap)
    if found.GetNumberOfItems() == 0:
        names = sorted({ctx.scene.GetNthNodeByClass(i, "vtkMRMLColorNode").GetName()
                        for i in range(ctx.scene.GetNumberOfNodesByClass("vtkMRMLColorNode"))})
        raise InputError(f"No colour table named {colormap!r} in the scene; available: {', '.join(names)}.")
    return found.GetItemAsObject(0)


def overlay_node_from_volume(ctx: MRMLContext, heat, reference_node=None, name: str = "Heat map",
                             colormap=None, value_range: Optional[Sequence[float]] = None,
                             threshold: Optional[float] = None):
    """A float32 scalar volume node showing ``heat`` with a heat colour table.

    ``heat``: a `Volume`, or a [k, j, i] array on ``reference_node``'s grid. The display window
    spans ``value_range`` (default: the map's min..max); ``threshold`` hides voxels below it.
    """
    vol = as_volume(heat, reference_node, what="heat map")
    array = np.asarray(vol.array, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        raise VolumeError(
            f"The heat map has {int((~finite).sum())} NaN/infinite voxels. Replace them (e.g. with 0) "
            "before showing it."
        )
    if value_range is None:
        lo, hi = float(array.min()), float(array.max())
    elif len(value_range) != 2:
        raise InputError(f"value_range must be (low, high), got {value_range!r}.")
    else:
        lo, hi = float(value_range[0]), float(value_range[1])
    if not hi > lo:
        if value_range is not None:
            raise InputError(f"value_range must be (low, high) with high > low, got {tuple(value_range)}.")
        hi = lo + 1.0  # a constant map: any non-empty window
    node = volume_node_from_volume(ctx, Volume(array, vol.spacing, vol.origin, vol.direction), name)
    node.SetAttribute(OVERLAY, "1")
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(_color_node(ctx, colormap).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(lo, hi)
    if threshold is not None:
        display.SetApplyThreshold(1)
        display.SetAutoThreshold(0)
        display.SetLowerThreshold(float(threshold))
        display.SetUpperThreshold(float(max(hi, array.max())))
    add_color_legend(ctx, node)
    return node


def add_color_legend(ctx: MRMLContext, volume_node, title: Optional[str] = None):
    """A colour legend (Slicer's colour bar) of ``volume_node`` in the slice views, shown with it, as the Colors
    module's "Show color legend" adds (`vtkMRMLColorLegendDisplayNode` on the volume's display node)."""
    legend = slicer.vtkMRMLColorLegendDisplayNode()
    if not ctx.scene.IsNodeClassRegistered(legend.GetClassName()):    # a scene without the Colors module's logic
        ctx.scene.RegisterNodeClass(legend)
    legend.SetName(f"{volume_node.GetName()} legend")
    ctx.scene.AddNode(legend)
    legend.SetAndObservePrimaryDisplayNode(volume_node.GetDisplayNode())
    legend.SetTitleText(title or volume_node.GetName())
    legend.SetVisibility3D(False)
    volume_node.AddAndObserveDisplayNodeID(legend.GetID())
    return legend


def show_overlay(ctx: MRMLContext, overlay_node, background_node=None, opacity: float = 0.5) -> int:
    """Show ``overlay_node`` as the foreground (at ``opacity``) over ``background_node`` in every
    slice view; returns the number of slice composite nodes set (0 headless: no views)."""
    if not 0.0 <= float(opacity) <= 1.0:
        raise InputError(f"opacity must be between 0 and 1, got {opacity}.")
    scene = ctx.scene
    selection = ctx.app_logic.GetSelectionNode() if ctx.app_logic is not None else None
    if selection is not None:
        if background_node is not None:
            selection.SetActiveVolumeID(background_node.GetID())
        selection.SetSecondaryVolumeID(overlay_node.GetID())
    n = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(n):
        comp = scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        if background_node is not None:
            comp.SetBackgroundVolumeID(background_node.GetID())
        comp.SetForegroundVolumeID(overlay_node.GetID())
        comp.SetForegroundOpacity(float(opacity))
    hide_legends(scene, keep=overlay_node)      # one overlay at a time: the others' legends go with them
    for legend in _legends(overlay_node):
        legend.SetVisibility(True)
    return n


def show_volume(ctx: MRMLContext, volume_node) -> int:
    """Show ``volume_node`` alone (background, no foreground) in every slice view of the scene, as
    ``slicer.util.setSliceViewerLayers(background=..., foreground=None)`` does in the application, also in
    front ends without ``slicer.util`` (the web app); returns the number of slice composite nodes set."""
    selection = ctx.app_logic.GetSelectionNode() if ctx.app_logic is not None else None
    if selection is not None:
        selection.SetActiveVolumeID(volume_node.GetID())
        selection.SetSecondaryVolumeID(None)
    n = ctx.scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(n):
        comp = ctx.scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode")
        comp.SetBackgroundVolumeID(volume_node.GetID())
        comp.SetForegroundVolumeID(None)
    hide_legends(ctx.scene, keep=volume_node)
    return n


def hide_legends(scene: Any, keep: Any = None) -> None:
    """Hide the colour legend of every volume but ``keep``: a legend is drawn in every slice view whatever they show,
    so a heat map's legend left on stood over the next scan (issue 81: "TAO occlusion 0.0-0.4" over a CT)."""
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if node is not keep:
            for legend in _legends(node):
                legend.SetVisibility(False)


def jump_slices(ctx: MRMLContext, ras) -> None:
    """Move every slice view of the scene to the slices through the point ``ras`` (Slicer's "jump slices")."""
    slicer.vtkMRMLSliceNode.JumpAllSlices(ctx.scene, *(float(x) for x in ras))


def is_heat_map(node: Any) -> bool:
    """Whether ``node`` is a heat map made by `overlay_node_from_volume` (also after the scene was saved and loaded)."""
    return node is not None and node.GetAttribute(OVERLAY) == "1"


def _legends(node: Any) -> list[Any]:
    """The colour legend display nodes (Slicer's colour bar) of a volume node."""
    return [d for d in (node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes()))
            if d is not None and d.IsA("vtkMRMLColorLegendDisplayNode")]


def _opacity(node: Any) -> float:
    try:
        return min(max(float(node.GetAttribute(OVERLAY_OPACITY) or DEFAULT_OPACITY), 0.0), 1.0)
    except ValueError:
        return DEFAULT_OPACITY


def color_samples(color_node: Any, n: int = 256) -> list[list[int]]:
    """``n`` RGB colours (0-255) evenly spaced over the whole range of ``color_node`` (a table or a procedural colour
    node), from its lowest value to its highest: the colours a window maps from its minimum to its maximum (a grey
    ramp without a colour node)."""
    lut = color_node.GetScalarsToColors() if color_node is not None else None
    if lut is None:
        return [[v, v, v] for v in np.linspace(0, 255, max(int(n), 2)).round().astype(int).tolist()]
    lo, hi = lut.GetRange()
    out = []
    for t in np.linspace(0.0, 1.0, max(int(n), 2)):
        rgb = [0.0, 0.0, 0.0]
        lut.GetColor(lo + t * (hi - lo), rgb)
        out.append([int(round(255 * min(max(c, 0.0), 1.0))) for c in rgb])
    return out


def color_stops(color_node: Any, n: int = BAR_STOPS) -> list[str]:
    """`color_samples` as ``#rrggbb`` stops (a colour bar's gradient; black to white without a colour node)."""
    if color_node is None or color_node.GetScalarsToColors() is None:
        return ["#000000", "#ffffff"]
    return ["#%02x%02x%02x" % tuple(rgb) for rgb in color_samples(color_node, n)]


def heat_map_rows(scene: Any, scan: Any) -> list[dict[str, Any]]:
    """The heat maps of ``scan`` (its results that `is_heat_map`; none of another scan), oldest first: ID, name, the
    colour legend's title, whether the slice views show it, its opacity, and its colour bar as Slicer's colour legend
    draws it: the colour node's colours (``colors``) from the display window's minimum (``low``) to its maximum
    (``high``), and three tick labels."""
    shown = {c.GetForegroundVolumeID(): c.GetForegroundOpacity()
             for c in nodes_of_class(scene, "vtkMRMLSliceCompositeNode") if c.GetForegroundVolumeID()}
    rows = []
    for node in results_of(scene, scan, "vtkMRMLScalarVolumeNode"):
        display = node.GetDisplayNode()
        if not is_heat_map(node) or display is None:
            continue
        lo, hi = float(display.GetWindowLevelMin()), float(display.GetWindowLevelMax())
        legends = _legends(node)
        on = node.GetID() in shown
        rows.append({"id": node.GetID(), "name": node.GetName(),
                     "title": legends[0].GetTitleText() if legends else node.GetName(),
                     "shown": on, "opacity": round(float(shown[node.GetID()]) if on else _opacity(node), 2),
                     "low": lo, "high": hi, "colors": color_stops(display.GetColorNode()),
                     "ticks": [f"{v:.3g}" for v in (lo, (lo + hi) / 2.0, hi)]})
    return rows


def set_heat_map(ctx: MRMLContext, node: Any, shown: Optional[bool] = None, opacity: Optional[float] = None) -> None:
    """Show (as the slice views' foreground, over its scan: one heat map at a time) or hide the heat map ``node``, and/or
    set its opacity (0-1, kept for when it is shown again); its colour legend is shown with it."""
    if not is_heat_map(node):
        raise InputError(f"'{node.GetName() if node is not None else None}' is not a heat map.")
    if opacity is not None:
        node.SetAttribute(OVERLAY_OPACITY, f"{min(max(float(opacity), 0.0), 1.0):.3f}")
    comps = nodes_of_class(ctx.scene, "vtkMRMLSliceCompositeNode")
    if shown:
        show_overlay(ctx, node, scan_of(node), _opacity(node))
    elif shown is not None:
        for comp in comps:
            if comp.GetForegroundVolumeID() == node.GetID():
                comp.SetForegroundVolumeID(None)
        selection = ctx.app_logic.GetSelectionNode() if ctx.app_logic is not None else None
        if selection is not None and selection.GetSecondaryVolumeID() == node.GetID():
            selection.SetSecondaryVolumeID(None)
    elif opacity is not None:
        for comp in comps:
            if comp.GetForegroundVolumeID() == node.GetID():
                comp.SetForegroundOpacity(_opacity(node))
    if shown is not None:
        for legend in _legends(node):
            legend.SetVisibility(bool(shown))
