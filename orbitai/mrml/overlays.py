"""Heat-map overlays: a float volume node with a heat colour table, shown over the input."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import slicer

from orbitai.errors import InputError
from orbitai.io import Volume, VolumeError
from orbitai.mrml.scene import MRMLContext
from orbitai.mrml.volumes import as_volume, volume_node_from_volume

__all__ = ["HEAT_COLOR_NAME", "heat_color_node", "overlay_node_from_volume", "add_color_legend", "show_overlay",
           "show_volume", "jump_slices"]

#: Name of the colour table the bridge creates (an Inferno-like black-purple-orange-yellow ramp).
HEAT_COLOR_NAME = "OrbitAI Heat"
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
    node.SetAttribute("OrbitAI.Overlay", "1")
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
    return n


def jump_slices(ctx: MRMLContext, ras) -> None:
    """Move every slice view of the scene to the slices through the point ``ras`` (Slicer's "jump slices")."""
    slicer.vtkMRMLSliceNode.JumpAllSlices(ctx.scene, *(float(x) for x in ras))
