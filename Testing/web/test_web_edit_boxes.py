"""Issue 81, no browser: where trame-slicer's brush and eraser strokes, and their Undo and Redo, changed a segmentation
is recorded (`orbitai.web.annotate_editor.TrameSlicerEditor`), so the label map the page is sent is read again in that
box only (`orbitai.web.client_slices.label_layer`) and stays equal to the whole map read again."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

SHAPE = (20, 24, 28)          # [k, j, i]


@pytest.fixture()
def edited() -> Iterator[dict[str, Any]]:
    """A trame-slicer app whose segment editor edits a one-segment segmentation of a 1 mm scan through a
    `TrameSlicerEditor` (as the web app's annotation panel does)."""
    pytest.importorskip("trame_slicer")
    from trame_slicer.core import SlicerApp
    from undo_stack import UndoStack

    from orbitai.io.volume import Volume
    from orbitai.mrml import volume_node_from_volume
    from orbitai.mrml.scene import adopt_context
    from orbitai.mrml.segmentations import segmentation_node_from_labels
    from orbitai.web.annotate_editor import TrameSlicerEditor

    app = SlicerApp()
    ctx = adopt_context(app.scene, app.app_logic, app.register_module_logic, colors=app.color_logic,
                        segmentations=app.segmentations_logic, volumes=app.volumes_logic,
                        subject_hierarchy=app.subject_hierarchy_logic, terminologies=app.terminologies_logic)
    m = np.eye(4)
    m[:3, 3] = [-10.0, 5.0, 3.0]
    scan = volume_node_from_volume(ctx, Volume.from_ijk_to_ras(np.zeros(SHAPE, np.float32), m))
    labels = np.zeros(SHAPE, np.uint8)
    labels[4:8, 4:10, 4:12] = 1
    seg = segmentation_node_from_labels(ctx, labels, scan)
    se = app.segmentation_editor
    se.set_undo_stack(UndoStack(undo_limit=20))
    editor = TrameSlicerEditor(se)
    sid = seg.GetSegmentation().GetNthSegmentID(0)
    editor.setInputs(seg, scan, sid)
    yield {"app": app, "se": se, "editor": editor, "scan": scan, "seg": seg, "sid": sid, "m": m}
    app.scene.Clear(0)


def _stroke(se: Any, effect_type: type, ras: list[list[float]], radius_mm: float = 1.5) -> None:
    """One stroke of trame-slicer's brush or eraser effect ``effect_type``: a sphere of ``radius_mm`` at each RAS
    point of ``ras`` (what its paint pipeline hands the effect when the mouse button goes up)."""
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkFiltersSources import vtkSphereSource

    effect = se.set_active_effect_type(effect_type)
    sphere = vtkSphereSource()
    sphere.SetRadius(radius_mm)
    sphere.SetThetaResolution(16)
    sphere.SetPhiResolution(16)
    sphere.Update()
    points = vtkPoints()
    for p in ras:
        points.InsertNextPoint(*p)
    effect.paint_glyph_at_world_coordinates(sphere.GetOutput(), points)


def _ras(m: np.ndarray, kji: tuple[int, int, int]) -> list[float]:
    k, j, i = kji
    return [float(c) for c in (m @ [i, j, k, 1.0])[:3]]


def _size(box: tuple) -> int:
    return int(np.prod([s.stop - s.start for s in box]))


def test_a_brush_or_eraser_stroke_and_its_undo_and_redo_are_read_again_in_their_box_only(edited):
    from trame_slicer.segmentation import SegmentationEffectErase, SegmentationEffectPaint

    from orbitai.web.client_slices import label_layer
    from orbitai.web.overlay_patches import SAME, plan

    scan, seg, editor, m = edited["scan"], edited["seg"], edited["editor"], edited["m"]
    layers = [label_layer(seg, scan, None, editor.boxes)]

    def again(changed: bool = True) -> dict[str, Any]:
        """The layer read again from the last: in a box that holds every change (not the whole grid), equal to the
        whole map read again, and planned as that change's box (or as unchanged)."""
        last = layers[-1]
        layer = label_layer(seg, scan, last, editor.boxes)
        whole = label_layer(seg, scan)["array"]
        assert "box" in layer, "the change's box was not recorded: the whole map would be compared"
        assert 0 < _size(layer["box"]) < whole.size // 10
        assert np.array_equal(layer["array"], whole)
        diff = np.argwhere(last["array"] != whole)
        assert (diff.size > 0) == changed
        how = plan({("labels", seg.GetID()): last}, [layer])[0]
        if changed:
            lo, hi = diff.min(axis=0), diff.max(axis=0) + 1
            assert how == tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        else:
            assert how == SAME
        layers.append(layer)
        return layer

    _stroke(edited["se"], SegmentationEffectPaint, [_ras(m, (14, 16, 20)), _ras(m, (14, 17, 22))])
    painted = again()
    assert painted["array"][14, 16, 20] == 1 and painted["box"][0].start >= 8     # the stroke's, not the block's
    _stroke(edited["se"], SegmentationEffectErase, [_ras(m, (5, 6, 6))])
    erased = again()
    assert erased["array"][5, 6, 6] == 0 and erased["array"][7, 9, 11] == 1
    assert editor.undo()            # the eraser's stroke back
    assert again()["array"][5, 6, 6] == 1
    assert editor.undo()            # the brush's
    assert again()["array"][14, 16, 20] == 0
    assert editor.redo()
    assert again()["array"][14, 16, 20] == 1
    # a stroke that changes nothing (the eraser where the segment is not): recorded as no change
    _stroke(edited["se"], SegmentationEffectErase, [_ras(m, (16, 3, 3))])
    again(changed=False)


def test_a_set_or_a_change_on_another_grid_is_not_given_a_box_and_the_annotation_tools_keep_their_own(edited):
    from orbitai.mrml.editors import MODE_ADD
    from orbitai.mrml.labelmaps import fill_oriented_image
    from orbitai.web.client_slices import label_layer

    scan, seg, editor, se = edited["scan"], edited["seg"], edited["editor"], edited["se"]
    first = label_layer(seg, scan, None, editor.boxes)
    # trame-slicer's "Set" (a whole segment replaced): not known, the whole map is compared
    modifier = se.create_modifier_labelmap()
    mask = np.zeros(SHAPE, bool)
    mask[10:12, 10:12, 10:12] = True
    fill_oriented_image(modifier, mask)
    se.active_segment_modifier.set_segment_labelmap(edited["sid"], modifier)
    second = label_layer(seg, scan, first, editor.boxes)
    assert "box" not in second and second["array"][10, 10, 10] == 1 and second["array"][5, 5, 5] == 0
    # the annotation tools' edit (`AnnotationLogic._apply`): the box of the voxels it changed, not the modifier's
    modifier, _ = editor.aligned()
    mask[:] = False
    mask[2, 3, 4:6] = True
    fill_oriented_image(modifier, mask)
    editor.modifySelectedSegment(modifier, MODE_ADD)
    editor.changedVoxels(modifier, mask)
    third = label_layer(seg, scan, second, editor.boxes)
    assert third["box"] == (slice(2, 3), slice(3, 4), slice(4, 6))
    assert np.array_equal(third["array"], label_layer(seg, scan)["array"])


def test_a_small_update_of_boxes_comes_with_its_notice_and_a_large_or_whole_one_is_fetched():
    from orbitai.web.client_slices import NOTICE_BYTES, _pack, _small
    from orbitai.web.overlay_patches import SAME, WHOLE

    labels = {"kind": "labels", "node": "seg1", "segments": ["a"], "array": np.zeros((40, 40, 40), np.uint8)}
    other = {**labels, "node": "seg2"}
    labels["array"][2:5, 3:9, 4:6] = 1
    box = (slice(2, 5), slice(3, 9), slice(4, 6))
    assert _small(_pack([labels, other], [box, SAME], np.eye(4)))
    assert _small(_pack([other], [SAME], np.eye(4)))                 # nothing changed: named only
    assert not _small(_pack([labels, other], [box, WHOLE], np.eye(4)))
    # a box whose gzip'd voxels pass the limit (random ones do not pack)
    noisy = {**labels, "array": np.random.default_rng(0).integers(0, 2, (128, 128, 128), dtype=np.uint8)}
    update = _pack([noisy], [(slice(0, 128),) * 3], np.eye(4))
    assert len(update[0]["patch"]["data"]) > NOTICE_BYTES and not _small(update)
