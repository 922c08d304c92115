"""The scene queries a front end asks: a node by an ID a page sent, the nodes of a class, the order nodes were added,
the crosshair, the scans a user may pick.

The browser's rooms (`orbitai.web`) ask the scene through these instead of calling ``vtkMRMLScene`` themselves
(issue 82: a typed seam between the rooms and the scene), so that an ID that is not a string, an empty one or one of
a node of another class reads as no node in one place.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["node_by_id", "nodes_of_class", "scene_order", "crosshair_node", "scalar_volumes", "node_count"]


def node_by_id(scene: Any, node_id: Any, cls: Optional[str] = None) -> Any:
    """The node ``node_id`` of ``scene`` (of class ``cls`` when given), or None: an ID that is not a non-empty string
    (a page may send anything), no such node, or a node of another class."""
    if not isinstance(node_id, str) or not node_id:
        return None
    node = scene.GetNodeByID(node_id)
    return node if node is not None and (cls is None or node.IsA(cls)) else None


def nodes_of_class(scene: Any, cls: str) -> list[Any]:
    """The nodes of class ``cls`` (subclasses included), in the scene's order."""
    return [scene.GetNthNodeByClass(i, cls) for i in range(scene.GetNumberOfNodesByClass(cls))]


def scene_order(scene: Any) -> dict[str, int]:
    """Node ID -> its place in the scene (the order nodes were added)."""
    return {scene.GetNthNode(i).GetID(): i for i in range(scene.GetNumberOfNodes())}


def node_count(scene: Any) -> int:
    """How many nodes the scene holds (views, singletons and the user's nodes)."""
    return int(scene.GetNumberOfNodes())


def crosshair_node(scene: Any) -> Any:
    """The scene's crosshair node (Slicer's singleton), or None."""
    return scene.GetFirstNodeByClass("vtkMRMLCrosshairNode")


def scalar_volumes(scene: Any) -> list[Any]:
    """The scalar volumes a user may pick as a scan: no label map, none hidden from editors."""
    return [n for n in nodes_of_class(scene, "vtkMRMLScalarVolumeNode")
            if not n.IsA("vtkMRMLLabelMapVolumeNode") and not n.GetHideFromEditors()]
