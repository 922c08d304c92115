"""Markups nodes from core geometry: an oriented box as a markups ROI node."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import vtk

from orbitai.errors import InputError
from orbitai.mrml.scene import MRMLContext


def roi_node_from_box(ctx: MRMLContext, center: Sequence[float], size_mm: Sequence[float],
                      axes: Sequence[Sequence[float]] | None = None, name: str = "ROI", locked: bool = True):
    """A ``vtkMRMLMarkupsROINode`` for a box in RAS: ``center``, edge lengths ``size_mm`` along the box's
    own unit ``axes`` (three RAS vectors; default the RAS axes)."""
    c = np.asarray(center, float)
    s = np.asarray(size_mm, float)
    a = np.eye(3) if axes is None else np.asarray(axes, float)
    if c.shape != (3,) or s.shape != (3,) or a.shape != (3, 3):
        raise InputError("center and size_mm need 3 numbers, axes three 3-vectors.")
    if np.any(s <= 0):
        raise InputError(f"Box size must be positive, got {s.tolist()}.")
    if not np.allclose(a @ a.T, np.eye(3), atol=1e-4):
        raise InputError("Box axes must be orthonormal.")
    node = ctx.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", name)
    m = vtk.vtkMatrix4x4()
    for r in range(3):
        for col in range(3):
            m.SetElement(r, col, float(a[col][r]))   # columns = the box axes
        m.SetElement(r, 3, float(c[r]))
    node.SetAndObserveObjectToNodeMatrix(m)
    node.SetSize(*s.tolist())
    node.SetLocked(bool(locked))
    if locked:      # a result's box: its outline, without a fill or handles to drag
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        display.SetFillVisibility(False)
        display.SetHandlesInteractive(False)
    return node


def box_of_roi_node(node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(center, size_mm, axes as rows) of a markups ROI node, in RAS."""
    m = node.GetObjectToNodeMatrix()
    axes = np.array([[m.GetElement(r, col) for r in range(3)] for col in range(3)])
    center = np.array([m.GetElement(r, 3) for r in range(3)])
    return center, np.array(node.GetSize()), axes
