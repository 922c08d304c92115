"""Oriented boxes as markups ROI nodes on a real headless scene."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import rotation


def test_roi_round_trip_and_bounds(ctx):
    from orbitai.mrml import box_of_roi_node, roi_node_from_box

    axes = rotation(0.1, 0.2, 0.3).T          # rows = the box's axes in RAS
    node = roi_node_from_box(ctx, [10, 20, 30], [40, 50, 6], axes.tolist(), name="crop")
    c, s, a = box_of_roi_node(node)
    assert np.allclose(c, [10, 20, 30]) and np.allclose(s, [40, 50, 6]) and np.allclose(a, axes)
    b = [0.0] * 6
    node.GetRASBounds(b)
    assert np.allclose([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2], [10, 20, 30])
    assert node.GetName() == "crop" and node.GetLocked()


def test_roi_rejects_bad_boxes(ctx):
    from orbitai.mrml import roi_node_from_box

    before = ctx.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="positive"):
        roi_node_from_box(ctx, [0, 0, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="orthonormal"):
        roi_node_from_box(ctx, [0, 0, 0], [1, 1, 1], [[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    assert ctx.scene.GetNumberOfNodes() == before
