"""Issue #63: a segmentation's label map for a job's input file, made a k-slab at a time from its binary-labelmap layers
(`LabelSlabs`) instead of one export of the whole map on Slicer's main thread: the very file the whole export gives
(`labels_from_segmentation_node` written by `JobInputWriter`), byte for byte, for the segment-to-label rules of
Slicer's ``ExportSegmentsToLabelmapNode`` (v5.8.1, v5.10.0): one shared layer cropped to its effective extent, layers
of their own that overlap (a later segment over an earlier one, interleaved across layers), a layer reaching past the
grid, a ``short`` layer, an empty segment, names with spaces in any case. Where only the whole export gives the map (a
layer on another grid, another transform) no slabs are made and the whole export stays, in a tick of its own."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")

import vtk  # noqa: E402
from vtk.util import numpy_support  # noqa: E402

from orbitai.errors import InputError  # noqa: E402
from orbitai.io import Volume, read_volume  # noqa: E402
from orbitai.jobs.inputs import JobInputWriter, write_job_input  # noqa: E402
from orbitai.mrml import labels_from_segmentation_node, segmentation_node_from_labels, volume_node_from_volume  # noqa: E402
from orbitai.mrml.jobs import JobLogic  # noqa: E402
from orbitai.mrml.label_slabs import LabelSlabs, label_slabs_from_segmentation_node  # noqa: E402

SHAPE = (23, 31, 37)
BINARY = "Binary labelmap"


def _direction() -> np.ndarray:
    q, _ = np.linalg.qr(np.array([[0.9, -0.3, 0.1], [0.3, 0.95, 0.05], [-0.1, 0.0, 0.99]]))
    return q


@pytest.fixture()
def scan(ctx):
    rng = np.random.default_rng(63)
    vol = Volume(rng.integers(-1000, 1000, SHAPE).astype(np.int16), (0.47, 0.53, 1.3), (10.1, -20.3, 30.7),
                 _direction().ravel())
    return vol, volume_node_from_volume(ctx, vol, "scan")


def _layer(node, array: np.ndarray, start=(0, 0, 0), vtk_type=vtk.VTK_UNSIGNED_CHAR, spacing_factor: float = 1.0):
    """A binary labelmap ([k, j, i] ``array``) on ``node``'s grid, its first voxel at index ``start`` (k, j, i)."""
    image = slicer.vtkOrientedImageData()
    k, j, i = start
    image.SetExtent(i, i + array.shape[2] - 1, j, j + array.shape[1] - 1, k, k + array.shape[0] - 1)
    image.AllocateScalars(vtk_type, 1)
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    for r in range(3):
        m.SetElement(r, 0, m.GetElement(r, 0) * spacing_factor)
    image.SetGeometryFromImageToWorldMatrix(m)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = array.ravel()
    return image


def _add(seg_node, name: str, image, value: int = 1):
    segment = slicer.vtkSegment()
    segment.SetName(name)
    segment.SetLabelValue(value)
    if image is not None:
        segment.AddRepresentation(BINARY, image)
    seg_node.GetSegmentation().AddSegment(segment, name)
    return segment


def _file_bytes(vol, path, chunk_bytes: int) -> bytes:
    w = JobInputWriter(vol, path, chunk_bytes=chunk_bytes)
    while not w.step():
        pass
    return path.read_bytes()


def _same_file_as_the_whole_export(seg_node, node, tmp_path, table=None) -> np.ndarray:
    whole = labels_from_segmentation_node(seg_node, node, table=table)
    slabs = label_slabs_from_segmentation_node(seg_node, node, table=table)
    assert isinstance(slabs, LabelSlabs)
    assert slabs.dtype == whole.array.dtype and slabs.shape == whole.shape
    np.testing.assert_array_equal(slabs.volume().array, whole.array)
    values, counts = np.unique(whole.array, return_counts=True)
    assert slabs.label_counts() == {int(v): int(n) for v, n in zip(values, counts) if v}   # from the layers' box
    assert slabs.present_values() == [int(v) for v in values if v]
    # one slice per step (the chunk is smaller than a slice), then two and a half slices per step
    slice_bytes = SHAPE[1] * SHAPE[2] * whole.array.dtype.itemsize
    expected = _file_bytes(whole, tmp_path / "whole.nrrd", 10**9)
    for chunk in (1, slice_bytes * 5 // 2):
        assert _file_bytes(slabs, tmp_path / f"slabs{chunk}.nrrd", chunk) == expected
    back = read_volume(tmp_path / "whole.nrrd")
    np.testing.assert_array_equal(back.array, whole.array)
    return whole.array


def test_a_shared_layer_on_an_oblique_grid_gives_the_whole_exports_file(ctx, scan, tmp_path):
    vol, node = scan
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:12, 5:20, 4:30] = 1            # eyeball_left
    labels[8:20, 12:28, 20:35] = 3          # optic_nerve_left
    labels[15:22, 2:6, 2:9] = 16
    seg = segmentation_node_from_labels(ctx, vol.with_array(labels), reference_node=node)
    layer = seg.GetSegmentation().GetNthSegment(0).GetRepresentation(BINARY)
    assert layer.GetExtent() != (0, SHAPE[2] - 1, 0, SHAPE[1] - 1, 0, SHAPE[0] - 1)   # cropped to the segments
    out = _same_file_as_the_whole_export(seg, node, tmp_path)
    np.testing.assert_array_equal(out, labels)


def test_overlapping_layers_interleaved_past_the_grid_short_and_empty(ctx, scan, tmp_path):
    vol, node = scan
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "edited")
    seg.SetReferenceImageGeometryParameterFromVolumeNode(node)
    rng = np.random.default_rng(7)
    shared = np.zeros((30, 20, 25), np.uint8)                        # reaches past the grid on every side
    shared[rng.random(shared.shape) < 0.3] = 2
    shared[rng.random(shared.shape) < 0.3] = 5
    shared_image = _layer(node, shared, start=(-4, 18, -6))
    own = (rng.random((10, 25, 30)) < 0.5).astype(np.int16) * 7      # a short layer, value 7
    _add(seg, "Eyeball Left", shared_image, 2)                       # another case and a space
    _add(seg, "optic nerve left", _layer(node, own, start=(5, 3, 4), vtk_type=vtk.VTK_SHORT), 7)
    _add(seg, "medial_rectus_muscle_left", shared_image, 5)                 # the shared layer again, after the other
    _add(seg, "levator_palpebrae_superioris_left", None)                                     # no voxels
    seg.GetSegmentation().SetSourceRepresentationName(BINARY) if hasattr(
        seg.GetSegmentation(), "SetSourceRepresentationName") else seg.GetSegmentation().SetMasterRepresentationName(BINARY)
    segmentation = seg.GetSegmentation()
    assert segmentation.GetNthSegment(0).GetRepresentation(BINARY) is not segmentation.GetNthSegment(1).GetRepresentation(BINARY)
    out = _same_file_as_the_whole_export(seg, node, tmp_path)
    assert {0, 1, 3, 9} <= set(np.unique(out).tolist())               # eyeball 1, nerve 3 over it, rectus 9 over the nerve
    table = {1: "eyeball_left", 3: "optic_nerve_left", 300: "medial_rectus_muscle_left", 22: "levator_palpebrae_superioris_left"}
    out = _same_file_as_the_whole_export(seg, node, tmp_path, table=table)   # a uint16 label map
    assert out.dtype == np.uint16 and 300 in out


def test_one_short_layer_with_values_of_no_segment(ctx, scan, tmp_path):
    vol, node = scan
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "short")
    own = np.zeros((8, 9, 10), np.int16)
    own[1:5, 2:7, 3:9] = 300
    own[6:, :, :] = -3                                                   # no segment's value
    image = _layer(node, own, start=(20, 25, 30), vtk_type=vtk.VTK_SHORT)  # past the grid's end
    _add(seg, "eyeball_right", image, 300)
    _add(seg, "optic_nerve_right", image, 4)                             # no voxel holds it
    out = _same_file_as_the_whole_export(seg, node, tmp_path)
    assert set(np.unique(out).tolist()) == {0, 2}


def test_no_segment_gives_the_background(ctx, scan, tmp_path):
    vol, node = scan
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    out = _same_file_as_the_whole_export(seg, node, tmp_path)
    assert not out.any()


def test_a_layer_on_another_grid_keeps_the_whole_export_in_a_tick_of_its_own(ctx, scan, tmp_path):
    """Slicer resamples such a layer onto the reference as a whole (`ResampleOrientedImageToReferenceGeometry`): a
    k-slab of the result is no k-slab of the layer, so no slabs are made; the job's file is the whole export's, made
    when the file is written (a function), not when it is asked for."""
    vol, node = scan
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "other grid")
    block = np.zeros((10, 12, 9), np.uint8)
    block[2:8, 3:10, 1:8] = 1
    _add(seg, "eyeball_left", _layer(node, block, start=(4, 5, 6), spacing_factor=2.0))
    assert label_slabs_from_segmentation_node(seg, node) is None
    logic = JobLogic()
    made = logic.segmentationLabelSlabs(seg, node, "'other grid'")
    assert callable(made) and not isinstance(made, LabelSlabs)
    whole = labels_from_segmentation_node(seg, node)
    assert whole.array.any()
    np.testing.assert_array_equal(made().array, whole.array)
    assert ctx.scene.GetFirstNodeByName("orbitai-export") is None       # the export's helper nodes removed
    path = write_job_input(made, tmp_path / "labels.nrrd")
    np.testing.assert_array_equal(read_volume(path).array, whole.array)


def test_another_transform_keeps_the_whole_export(ctx, scan, tmp_path):
    vol, node = scan
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:12, 5:20, 4:30] = 1
    seg = segmentation_node_from_labels(ctx, vol.with_array(labels), reference_node=node)
    assert isinstance(label_slabs_from_segmentation_node(seg, node), LabelSlabs)
    moved = ctx.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "moved")
    turn = np.eye(4)
    turn[:3, :3] = _direction().T
    turn[:3, 3] = (5.5, -7.25, 3.0)
    moved.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(turn))
    seg.SetAndObserveTransformNodeID(moved.GetID())
    assert label_slabs_from_segmentation_node(seg, node) is None
    node.SetAndObserveTransformNodeID(moved.GetID())                  # both under it: slabs again, the same file
    slabs = label_slabs_from_segmentation_node(seg, node)
    assert isinstance(slabs, LabelSlabs)
    whole = labels_from_segmentation_node(seg, node)
    np.testing.assert_array_equal(slabs.volume().array, whole.array)
    assert _file_bytes(slabs, tmp_path / "slabs.nrrd", 10**9) == _file_bytes(whole, tmp_path / "whole.nrrd", 10**9)


def test_unknown_segment_names_are_one_line_naming_the_segmentation(ctx, scan):
    vol, node = scan
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "odd")
    _add(seg, "tumour", _layer(node, np.ones((2, 2, 2), np.uint8)))
    with pytest.raises(InputError) as err:
        JobLogic().segmentationLabelSlabs(seg, node, "Orbit segmentation 'odd'")
    assert str(err.value).startswith("Orbit segmentation 'odd': Segments 'tumour' are not in the label table")
    assert "\n" not in str(err.value)


def _count_whole_exports(monkeypatch) -> tuple[list[str], Any]:
    """Record each segmentation the job code exports whole (`labels_from_segmentation_node`): (the names recorded,
    the real export)."""
    import orbitai.mrml.jobs

    exported: list[str] = []
    export = orbitai.mrml.jobs.labels_from_segmentation_node
    monkeypatch.setattr(orbitai.mrml.jobs, "labels_from_segmentation_node",
                        lambda s, *a, **k: exported.append(s.GetName()) or export(s, *a, **k))
    return exported, export


def test_tao_apply_with_a_segmentation_exports_it_neither_in_the_press_nor_whole(ctx, monkeypatch):
    """TAOActivity's Apply with an orbit segmentation exported it whole in the press (its job's ``orbit_labels.nrrd``);
    now the press checks its names and the file is made a slab per tick: the whole export's file."""
    from orbitai.app.tao_activity import TAOActivityLogic
    from orbitai.phantoms import orbit_case

    case = orbit_case(630002, "t2", oblique=True)
    node = volume_node_from_volume(ctx, case.image, "T2")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="orbits")
    exported, export = _count_whole_exports(monkeypatch)
    job = TAOActivityLogic(ctx).start(node, segmentation_node=seg, device="cpu")
    try:
        writers = {w.path.name: w for w in job.inputs.writers}
        assert isinstance(writers["orbit_labels.nrrd"]._source, LabelSlabs)
        assert exported == [] and not (job.workdir / "orbit_labels.nrrd").exists()
        job.inputs.finish()
        assert exported == []
        whole = export(seg, node)
        np.testing.assert_array_equal(read_volume(job.workdir / "orbit_labels.nrrd").array, whole.array)
        assert (job.workdir / "orbit_labels.nrrd").read_bytes() == _file_bytes(whole, job.workdir / "whole.nrrd", 10**9)
    finally:
        job.cleanup()
    assert not job.workdir.exists()


def test_ivgc_apply_checks_the_recti_from_the_layers_and_makes_the_map_a_slab_per_tick(ctx, monkeypatch, tmp_path):
    """IVGCResponse's Apply exported the recti segmentation whole in the press to check that the ROI strategy's recti
    are there; now it checks the values present in the part of the grid the layers cover (the same one-line refusal)
    and the job's ``recti_labels.nrrd`` is made a slab per tick: the whole export's file."""
    from orbitai.app.ivgc_response import IVGCResponseLogic
    from orbitai.phantoms import orbit_case

    case = orbit_case(630003, "t2", oblique=True)
    node = volume_node_from_volume(ctx, case.image, "T2")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=node, name="recti")
    exported, export = _count_whole_exports(monkeypatch)
    logic = IVGCResponseLogic(ctx)
    job = logic.start(node, seg, strategy="mrlr", device="cpu")
    try:
        writer = next(w for w in job.inputs.writers if w.path.name == "recti_labels.nrrd")
        assert isinstance(writer._source, LabelSlabs) and exported == []
        job.inputs.finish()
        assert exported == []
        whole = export(seg, node)
        assert writer.path.read_bytes() == _file_bytes(whole, tmp_path / "whole.nrrd", 10**9)
    finally:
        job.cleanup()
    s = seg.GetSegmentation()
    s.RemoveSegment(s.GetSegmentIdBySegmentName("medial_rectus_muscle_left"))
    with pytest.raises(InputError, match=r"^Segmentation 'recti' lacks medial_rectus_muscle_left \(label 9\), which "
                                         r"ROI strategy 'mrlr'"):
        logic.start(node, seg, strategy="mrlr", device="cpu")
    assert exported == []


def _flair_with_lesions(ctx):
    vol = Volume(np.random.default_rng(5).normal(100, 20, (20, 40, 36)).astype(np.float32), (1.0, 1.1, 4.0),
                 (1.0, 2.0, 3.0), _direction().ravel())
    node = volume_node_from_volume(ctx, vol, "FLAIR")
    seg = ctx.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "lesions")
    a = np.zeros((6, 8, 8), np.uint8)
    a[1:5, 2:7, 1:6] = 1
    _add(seg, "lesion 1", _layer(node, a, start=(3, 4, 5)))
    _add(seg, "lesion 2", _layer(node, a * 3, start=(12, -2, 30)), 3)      # partly outside the grid
    return node, seg


def _spied_exports(monkeypatch) -> tuple[list[str], Any]:

    exported, export = _count_whole_exports(monkeypatch)
    return exported, export


def test_lesion_finetuning_marks_and_writes_its_mask_without_a_whole_export(ctx, monkeypatch, tmp_path):
    """The lesion fine-tuning's "Mark finished" exported the lesion segmentation whole in the press to check that it lies
    on the FLAIR, and its Apply exported it whole again in a tick; now both count the layers' voxels and the case's
    mask is made a slab per tick: the very file of the whole export's 0/1 mask."""
    from orbitai.app.neuro_differential import LesionFinetuneLogic, lesion_mask

    node, seg = _flair_with_lesions(ctx)
    exported, _ = _spied_exports(monkeypatch)
    logic = LesionFinetuneLogic(ctx)
    logic.markFinished(seg, node)
    assert exported == [], "Mark finished exported the lesion segmentation whole"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    job = logic.start(None)
    try:
        job.inputs.finish()
        assert exported == []
        written = job.workdir / "case000_labels.nrrd"
        expected = lesion_mask(logic, seg, node)                                # the whole export's mask, as before
        assert expected.array.any()
        assert written.read_bytes() == _file_bytes(expected, tmp_path / "whole.nrrd", 10**9)
    finally:
        job.cleanup()


def test_neuro_apply_with_a_lesion_segmentation_makes_its_map_a_slab_per_tick(ctx, monkeypatch):
    """NeuroDifferential's Apply with a lesion segmentation exported it whole in the press (a 0/1 mask, written as a
    .seg.nrrd there); now its inside-the-FLAIR check counts the layers' voxels in the grid and the job's
    ``lesions.nrrd`` is made a slab per tick: the whole export's map (every non-zero voxel is lesion)."""
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic

    node, seg = _flair_with_lesions(ctx)
    exported, export = _spied_exports(monkeypatch)
    job = NeuroDifferentialLogic(ctx).start(node, lesion_segmentation=seg, model=LESIONS_ONLY, device="cpu")
    try:
        writer = next(w for w in job.inputs.writers if w.path.name == "lesions.nrrd")
        assert isinstance(writer._source, LabelSlabs) and exported == []
        job.inputs.finish()
        assert exported == []
        whole = export(seg, node, table={1: "lesion 1", 2: "lesion 2"})
        np.testing.assert_array_equal(read_volume(writer.path).array != 0, whole.array != 0)
        assert (whole.array != 0).any()
    finally:
        job.cleanup()


def test_a_segmentation_edited_while_its_file_is_written_fails_the_job_in_one_line(ctx, scan):
    """The map is read from the layers as its file is written: an edit in between (the Segment Editor's) would make a
    file half old, half new, so the job fails in one line and nothing is started; the whole map is never mixed."""
    from orbitai.app.tao_activity import TAOActivityLogic

    vol, node = scan
    labels = np.zeros(SHAPE, np.uint8)
    labels[3:12, 5:20, 4:30] = 1
    seg = segmentation_node_from_labels(ctx, vol.with_array(labels), reference_node=node, name="orbits")
    job = TAOActivityLogic(ctx).start(node, segmentation_node=seg, device="cpu")
    try:
        seg.GetSegmentation().GetNthSegment(0).GetRepresentation(BINARY).Modified()      # an edit after the press
        while job.writing:
            job.poll()
        assert job.failure == ("The segmentation 'orbits' was edited while the job's copy of it was written; nothing "
                               "was started: Apply again.")
        assert not job.job.started and not (job.workdir / "orbit_labels.nrrd").exists()
    finally:
        job.cleanup()
