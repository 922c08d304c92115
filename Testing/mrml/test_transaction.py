"""All-or-nothing scene changes on a real headless scene."""
from __future__ import annotations

import numpy as np
import pytest


def test_rollback_on_error_removes_every_added_node(ctx):
    from orbitai.io import Volume
    from orbitai.mrml import table_node_from_rows, volume_node_from_volume
    from orbitai.mrml.transaction import node_ids, rollback_on_error

    kept = table_node_from_rows(ctx, [{"a": 1}], name="kept")
    before = node_ids(ctx.scene)
    with pytest.raises(RuntimeError, match="boom"):
        with rollback_on_error(ctx.scene):
            volume_node_from_volume(ctx, Volume(np.zeros((3, 4, 5), np.float32)), name="half")
            table_node_from_rows(ctx, [{"b": 2}], name="half table")
            assert len(node_ids(ctx.scene)) > len(before)
            raise RuntimeError("boom")
    assert node_ids(ctx.scene) == before
    assert ctx.scene.GetNodeByID(kept.GetID()) is kept


def test_rollback_keeps_nodes_on_success(ctx):
    from orbitai.mrml import table_node_from_rows
    from orbitai.mrml.transaction import node_ids, rollback_on_error

    before = node_ids(ctx.scene)
    with rollback_on_error(ctx.scene):
        node = table_node_from_rows(ctx, [{"b": 2}], name="result")
    assert node_ids(ctx.scene) - before == {node.GetID()}


def test_temporary_nodes_always_removed(ctx):
    from orbitai.io import Volume
    from orbitai.mrml import segmentation_node_from_labels, volume_node_from_volume
    from orbitai.mrml import labels_from_segmentation_node
    from orbitai.mrml.transaction import node_ids, temporary_nodes

    a = np.zeros((4, 6, 8), np.uint8)
    a[1:3, 2:4, 2:6] = 2
    ref = volume_node_from_volume(ctx, Volume(a.astype(np.float32)), name="ref")
    seg = segmentation_node_from_labels(ctx, Volume(a), reference_node=ref, name="seg")
    before = node_ids(ctx.scene)
    with temporary_nodes(ctx.scene):
        labels = labels_from_segmentation_node(seg, ref)   # exports through helper nodes
    assert np.array_equal(labels.array, a)
    assert node_ids(ctx.scene) == before
    with pytest.raises(ValueError):
        with temporary_nodes(ctx.scene):
            volume_node_from_volume(ctx, Volume(a.astype(np.float32)), name="tmp")
            raise ValueError("x")
    assert node_ids(ctx.scene) == before
