"""Issue #61 (items 2 and 4, the Slicer replay bar): every result and finished mark refers to its scan by an MRML node
reference, kept through save, load and Add Data of an .mrb into a scene that already holds another scan of the same
geometry; every module Logic refuses a segmentation of another scan in one line.

The merge is the one Slicer 5.8.1 and 5.10.0 run: `slicer.util.loadScene(path)` (Add Data of an .mrb, clear off) goes
through ``qSlicerSceneBundleReader::load`` (Base/QTCore/qSlicerSceneBundleReader.cxx, tags v5.8.1 and v5.10.0, the
same code in both) to ``vtkMRMLScene::ReadFromMRB(file, clear)`` (Libs/MRML/Core/vtkMRMLScene.cxx), which unpacks the
bundle and calls ``Import``: an imported node whose ID the scene already uses gets a new one, and only node references
are updated to it (``UpdateNodeReferences``); `orbitai.mrml.mrb.load_mrb` calls the same ``ReadFromMRB`` of
slicer-core. Before the fix the finished mark was the scan's ID in an attribute: after the merge it named the scan
that was there first, and "Learn from my corrections" wrote that other patient's voxels as the case's image (this
test, run at commit ac3c7fe, fails on `test_an_mrb_added_to_a_scene_with_another_scan_learns_from_its_own_scan`)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer")

from orbitai.app.corrections import FINISHED, FinetuneLogic, finished_pairs, finished_text, unlabelled_scans
from orbitai.errors import InputError
from orbitai.io import read_volume
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import (load_mrb, new_scene, overlay_node_from_volume, save_mrb, segmentation_node_from_labels,
                          table_node_from_rows, volume_from_volume_node, volume_node_from_volume)
from orbitai.phantoms import orbit_case

SEED = 778301     # never used for training cohorts


def _nodes(scene, cls):
    return [scene.GetNthNodeByClass(i, cls) for i in range(scene.GetNumberOfNodesByClass(cls))]


def _by_name(scene, cls, name):
    found = [n for n in _nodes(scene, cls) if n.GetName() == name]
    assert len(found) == 1, [n.GetName() for n in _nodes(scene, cls)]
    return found[0]


@pytest.fixture(scope="module")
def case():
    return orbit_case(SEED, "t2", oblique=False)


def other_patient(case):
    """Another patient's scan on the same grid (the image mirrored left-right: other voxels, same geometry)."""
    return case.image.with_array(np.ascontiguousarray(case.image.array[:, :, ::-1]))


def scene_a(ctx, case):
    """Scan A with a module's result (a segmentation and a table) corrected and marked finished."""
    from orbitai.mrml.results import mark_results

    scan = volume_node_from_volume(ctx, case.image, name="scan A")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=scan, name="scan A orbit segmentation")
    table = table_node_from_rows(ctx, [{"structure": "eyeball_left", "volume (cm3)": 7.0}], name="scan A volumes")
    mark_results([seg, table], scan)
    FinetuneLogic(ctx).markFinished(seg, scan)
    return scan, seg, table


def test_an_mrb_added_to_a_scene_with_another_scan_learns_from_its_own_scan(case, tmp_path):
    """The replay bar: A's .mrb added (Add Data, `loadScene`) to a scene holding B of the same geometry; "Learn from
    my corrections" writes A's voxels, not B's, and names A."""
    first = new_scene()
    scene_a(first, case)
    path = save_mrb(first, tmp_path / "patient A.mrb")
    first.close()

    ctx = new_scene()
    try:
        b = volume_node_from_volume(ctx, other_patient(case), name="scan B")
        b_id = b.GetID()
        load_mrb(path, ctx, clear=False)
        a = _by_name(ctx.scene, "vtkMRMLScalarVolumeNode", "scan A")
        assert a.GetID() != b_id, "the import did not renumber A: the test does not exercise the merge"
        pairs = finished_pairs(ctx.scene)
        assert [(s.GetName(), v.GetName()) for s, v in pairs] == [("scan A orbit segmentation", "scan A")]
        assert pairs[0][1].GetID() == a.GetID()
        assert "(scan A)" in finished_text(ctx.scene)
        workdir = tmp_path / "job"
        workdir.mkdir()
        FinetuneLogic(ctx).jobArguments(JobFolder(workdir))
        written = read_volume(workdir / "case000.nrrd").array
        assert np.array_equal(written, case.image.array)
        assert not np.array_equal(written, volume_from_volume_node(b).array)
        # Which scan next: A has its finished segmentation, B has none
        assert [s.GetName() for s in unlabelled_scans(ctx.scene)] == ["scan B"]
    finally:
        ctx.close()


def test_save_load_round_trip_keeps_results_and_finished_marks(case, tmp_path):
    """Save -> load (clear) -> add into another scene -> save -> load: results and finished marks refer to A."""
    from orbitai.mrml.results import FINISHED_SCAN, scan_of

    first = new_scene()
    scene_a(first, case)
    path = save_mrb(first, tmp_path / "one.mrb")
    first.close()

    ctx = load_mrb(path)
    try:
        volume_node_from_volume(ctx, other_patient(case), name="scan B")   # B after A: A keeps its ID
        again = save_mrb(ctx, tmp_path / "two.mrb")
    finally:
        ctx.close()
    merged = new_scene()
    try:
        volume_node_from_volume(merged, case.image, name="scan C")          # takes the first volume ID
        load_mrb(again, merged, clear=False)
        twice = save_mrb(merged, tmp_path / "three.mrb")
    finally:
        merged.close()

    ctx = load_mrb(twice)
    try:
        a = _by_name(ctx.scene, "vtkMRMLScalarVolumeNode", "scan A")
        seg = _by_name(ctx.scene, "vtkMRMLSegmentationNode", "scan A orbit segmentation")
        table = _by_name(ctx.scene, "vtkMRMLTableNode", "scan A volumes")
        assert scan_of(seg) is a and scan_of(table) is a
        assert seg.GetNodeReference(FINISHED_SCAN) is a and seg.GetAttribute(FINISHED) == "segmentation"
        assert [(s.GetName(), v.GetName()) for s, v in finished_pairs(ctx.scene)] == [
            ("scan A orbit segmentation", "scan A")]
        assert np.array_equal(volume_from_volume_node(a).array, case.image.array)
    finally:
        ctx.close()


def _old_style_bundle(case, tmp_path):
    """A scene as OrbitAI saved it before the references: the scan's ID in attributes (result, module input, finished
    mark), plus a segmentation whose attribute names a scan that was not saved with it."""
    ctx = new_scene()
    try:
        a = volume_node_from_volume(ctx, case.image, name="scan A")
        seg = segmentation_node_from_labels(ctx, case.labels, reference_node=a, name="scan A orbit segmentation")
        seg.SetAttribute("OrbitAI.ResultOf", a.GetID())
        seg.SetAttribute(FINISHED, "segmentation")
        seg.SetAttribute("OrbitAI.FinishedScan", a.GetID())
        table = table_node_from_rows(ctx, [{"side": "right", "P(active)": 0.8}], name="TAO activity")
        table.SetAttribute("OrbitAI.ResultOf", a.GetID())
        table.SetAttribute("OrbitAI.TAO.InputVolume", a.GetID())
        orphan = segmentation_node_from_labels(ctx, case.labels, reference_node=a, name="orphan")
        # the ID the next volume added to the scene would get: A is renumbered onto it by the merge below
        onto = a.GetID()[:-1] + str(int(a.GetID()[-1]) + 1)
        orphan.SetAttribute("OrbitAI.ResultOf", onto)
        return save_mrb(ctx, tmp_path / "old.mrb"), a.GetID(), onto
    finally:
        ctx.close()


def test_old_id_links_become_references_of_the_right_scan_when_added_to_a_scene(case, tmp_path):
    """An .mrb saved with ID attributes, added to a scene holding B: each link becomes a reference to A (mapped through
    the IDs the import changed); a link naming no node of the bundle is dropped, not pointed at whatever holds the ID
    now (it belongs to no scan in the scene); no old attribute is left for anything to read."""
    from orbitai.mrml.results import LEGACY_LINKS, belongs_to, refuse_other_scan, scan_of

    path, old_a_id, onto = _old_style_bundle(case, tmp_path)
    ctx = new_scene()
    try:
        b = volume_node_from_volume(ctx, other_patient(case), name="scan B")
        assert b.GetID() == old_a_id       # B holds the ID A had: the old attributes would name B
        load_mrb(path, ctx, clear=False)
        a = _by_name(ctx.scene, "vtkMRMLScalarVolumeNode", "scan A")
        seg = _by_name(ctx.scene, "vtkMRMLSegmentationNode", "scan A orbit segmentation")
        table = _by_name(ctx.scene, "vtkMRMLTableNode", "TAO activity")
        orphan = _by_name(ctx.scene, "vtkMRMLSegmentationNode", "orphan")
        assert scan_of(seg) is a and scan_of(table) is a
        assert [(s.GetName(), v.GetName()) for s, v in finished_pairs(ctx.scene)] == [
            ("scan A orbit segmentation", "scan A")]
        assert a.GetID() == onto            # A was renumbered onto the ID the orphan's attribute names
        assert scan_of(orphan) is None and not belongs_to(orphan, a) and not belongs_to(orphan, b)
        with pytest.raises(InputError, match="belongs to a scan that is not in the scene, not to 'scan A'"):
            refuse_other_scan(orphan, a)
        for node in (seg, table, orphan):
            assert not [attr for attr in LEGACY_LINKS if node.GetAttribute(attr)], node.GetName()
    finally:
        ctx.close()


def test_an_old_link_never_converted_is_refused_not_trusted(case):
    """A node with an old ID attribute that no import converted (its scene was loaded before OrbitAI watched it) is
    nobody's to use: even when the ID names the scan selected, its owner cannot be checked."""
    from orbitai.mrml.results import belongs_to

    ctx = new_scene()
    try:
        a = volume_node_from_volume(ctx, case.image, name="scan A")
        seg = segmentation_node_from_labels(ctx, case.labels, reference_node=a, name="old segmentation")
        seg.SetAttribute("OrbitAI.IVGC.InputVolume", a.GetID())
        assert not belongs_to(seg, a)
        with pytest.raises(InputError, match="older OrbitAI.*load it again") as err:
            FinetuneLogic(ctx).markFinished(seg, a)
        assert "\n" not in str(err.value)
    finally:
        ctx.close()


@pytest.fixture()
def two_scans(case):
    """Scans A and B of the same geometry; A has an orbit segmentation (its result); plus one loaded as it is."""
    from orbitai.mrml.results import mark_results

    ctx = new_scene()
    a = volume_node_from_volume(ctx, case.image, name="scan A")
    b = volume_node_from_volume(ctx, other_patient(case), name="scan B")
    seg = segmentation_node_from_labels(ctx, case.labels, reference_node=a, name="A segmentation")
    mark_results([seg], a)
    loose = segmentation_node_from_labels(ctx, case.labels, reference_node=a, name="loaded segmentation")
    yield ctx, a, b, seg, loose
    ctx.close()


def _refused(call, what="segmentation"):
    with pytest.raises(InputError) as err:
        call()
    text = str(err.value)
    assert f"The {what} 'A segmentation' belongs to 'scan A', not to 'scan B'" in text, text
    assert "\n" not in text


def test_every_logic_refuses_a_segmentation_of_another_scan_in_one_line(two_scans, tmp_path):
    from orbitai.app.ivgc_response import IVGCResponseLogic
    from orbitai.app.neuro_differential import LESIONS_ONLY, LesionFinetuneLogic, NeuroDifferentialLogic
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
    from orbitai.app.tao_activity import TAOActivityLogic

    ctx, a, b, seg, loose = two_scans
    _refused(lambda: TAOActivityLogic(ctx).jobArguments(JobFolder(tmp_path), b, segmentation_node=seg, device="cpu"))
    _refused(lambda: IVGCResponseLogic(ctx).jobArguments(JobFolder(tmp_path), b, segmentation_node=seg, device="cpu"))
    _refused(lambda: OrbitSegmentationLogic(ctx).jobArguments(JobFolder(tmp_path), b, reference_node=seg, device="cpu"),
             "reference segmentation")
    _refused(lambda: NeuroDifferentialLogic(ctx).jobArguments(JobFolder(tmp_path), b, lesion_segmentation=seg,
                                                              model=LESIONS_ONLY, device="cpu"),
             "lesion segmentation")
    _refused(lambda: FinetuneLogic(ctx).markFinished(seg, b))
    _refused(lambda: LesionFinetuneLogic(ctx).markFinished(seg, b), "lesion segmentation")
    assert finished_pairs(ctx.scene) == [] and seg.GetAttribute(FINISHED) is None
    # its own scan, and a segmentation of no scan, are taken
    FinetuneLogic(ctx).markFinished(seg, a)
    FinetuneLogic(ctx).markFinished(loose, b)
    assert [(s.GetName(), v.GetName()) for s, v in finished_pairs(ctx.scene)] == [
        ("A segmentation", "scan A"), ("loaded segmentation", "scan B")]


def test_a_segmentation_whose_scan_was_removed_belongs_to_no_other_scan(two_scans):
    """Removing a scan removes the references to it (MRML); its results do not become anyone's."""
    from orbitai.mrml.results import belongs_to, refuse_other_scan

    ctx, a, b, seg, _loose = two_scans
    ctx.scene.RemoveNode(a)
    assert not belongs_to(seg, b)
    with pytest.raises(InputError, match="belongs to 'scan A', which is no longer in the scene, not to 'scan B'"):
        refuse_other_scan(seg, b)


def test_option_lists_offer_the_scans_own_and_unowned_segmentations(two_scans):
    from orbitai.app.tao_activity import TAOActivityLogic
    from orbitai.mrml.results import segmentations_of

    ctx, a, b, seg, loose = two_scans
    names = lambda nodes: [n.GetName() for n in nodes]   # noqa: E731
    assert names(segmentations_of(ctx.scene, a)) == ["A segmentation", "loaded segmentation"]
    assert names(segmentations_of(ctx.scene, b)) == ["loaded segmentation"]
    assert names(segmentations_of(ctx.scene, None)) == ["loaded segmentation"]
    assert names(TAOActivityLogic(ctx).segmentationChoices(b)) == ["loaded segmentation"]


def test_which_scan_next_ranks_scans_not_heat_maps(two_scans):
    """A module's heat map is a scalar volume too: it is a result of its scan, not a scan to correct."""
    from orbitai.mrml.results import mark_results

    ctx, a, b, _seg, _loose = two_scans
    heat = overlay_node_from_volume(ctx, np.zeros(a.GetImageData().GetDimensions()[::-1], np.float32), a,
                                    name="TAO occlusion")
    mark_results([heat], a)
    assert [s.GetName() for s in unlabelled_scans(ctx.scene)] == ["scan A", "scan B"]


def test_a_heat_map_comes_back_with_its_scan_at_the_opacity_the_user_gave_it(two_scans):
    """Showing scan B takes A's heat map out of the slice views; showing A again brings it back at the user's opacity
    (it came back at 0.5 whatever the user had chosen)."""
    from orbitai.mrml.results import mark_results, show_results_of

    ctx, a, b, _seg, _loose = two_scans
    heat = overlay_node_from_volume(ctx, np.zeros(a.GetImageData().GetDimensions()[::-1], np.float32), a,
                                    name="TAO occlusion")
    mark_results([heat], a)
    comps = [ctx.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode") for _ in range(3)]
    for comp in comps:
        comp.SetForegroundVolumeID(heat.GetID())
        comp.SetForegroundOpacity(0.8)
    remembered: dict[str, str] = {}
    show_results_of(ctx.scene, b, remembered)
    assert all(not c.GetForegroundVolumeID() for c in comps)
    show_results_of(ctx.scene, a, remembered)
    assert all(c.GetForegroundVolumeID() == heat.GetID() for c in comps)
    assert [round(c.GetForegroundOpacity(), 3) for c in comps] == [0.8] * 3
