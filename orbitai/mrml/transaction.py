"""All-or-nothing scene changes: nodes added inside a block are removed again on error (or always).

Module Logics write several nodes for one result (a table, ROIs, overlays); if any step fails the
scene must be left as it was. Some MRML calls also add helper nodes as a side effect (e.g. a label
map export adds a display node and a colour table); `temporary_nodes` removes those.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["node_ids", "remove_nodes_added_since", "rollback_on_error", "temporary_nodes"]


def node_ids(scene) -> set[str]:
    """IDs of all nodes in ``scene`` now."""
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


def remove_nodes_added_since(scene, before: set[str]) -> int:
    """Remove every node whose ID is not in ``before`` (newest first); returns how many were removed."""
    added = [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]
    added = [i for i in added if i not in before]
    removed = 0
    for node_id in reversed(added):
        node = scene.GetNodeByID(node_id)
        if node is not None and scene.IsNodePresent(node):  # removing one node may remove others
            scene.RemoveNode(node)
            removed += 1
    return removed


@contextmanager
def rollback_on_error(scene) -> Iterator[None]:
    """Nodes added to ``scene`` inside the block are removed if the block raises (then re-raised)."""
    before = node_ids(scene)
    try:
        yield
    except BaseException:
        remove_nodes_added_since(scene, before)
        raise


@contextmanager
def temporary_nodes(scene) -> Iterator[None]:
    """Nodes added to ``scene`` inside the block are removed when it ends, however it ends."""
    before = node_ids(scene)
    try:
        yield
    finally:
        remove_nodes_added_since(scene, before)
