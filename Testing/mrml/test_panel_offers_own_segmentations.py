"""Issue #61 item 2 in the Slicer panels (replayed as Slicer 5.8.1 and 5.10.0 run them, `slicer_widget_replay`): a
segmentation selector offers only the input scan's own segmentations and those of no scan, through the selector's
``qMRMLSortFilterProxyModel.hiddenNodeIDs``; a chosen segmentation of another scan is unchosen when the input changes,
and a new result of another scan is not offered once its module marks it."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("slicer.util")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slicer_widget_replay import VERSIONS, load_module_widget

from orbitai.mrml import new_scene, segmentation_node_from_labels, volume_node_from_volume
from orbitai.mrml.results import mark_results


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("module", ["TAOActivity", "IVGCResponse"])
def test_a_segmentation_selector_offers_the_input_scans_own_segmentations(monkeypatch, tmp_path, version, module):
    from orbitai.phantoms.orbit import orbit_case

    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ctx = new_scene()
    case = orbit_case(778311, "t2", oblique=False)
    scan_a = volume_node_from_volume(ctx, case.image, name="patientA_T2")
    scan_b = volume_node_from_volume(ctx, case.image, name="patientB_T2")
    seg_a = segmentation_node_from_labels(ctx, case.labels, reference_node=scan_a, name="recti_of_A")
    seg_b = segmentation_node_from_labels(ctx, case.labels, reference_node=scan_b, name="recti_of_B")
    mark_results([seg_a], scan_a)
    mark_results([seg_b], scan_b)
    loose = segmentation_node_from_labels(ctx, case.labels, reference_node=scan_a, name="loaded_from_file")
    p = load_module_widget(monkeypatch, module, version)
    p.show()
    try:
        w = p.widget
        seg_options = [o for o in w.panel.all_options() if o.kind == "segmentation"]
        assert seg_options, f"{module} has no segmentation option"
        parameter = seg_options[0].parameter
        combo = next(wd for wd in p.ui.__dict__.values()
                     if getattr(wd, "property", None) and wd.property("SlicerParameterName") == parameter)
        w._parameterNode.inputVolume = scan_a
        offered = {n.GetName() for n in combo.nodes()}
        assert offered == {"recti_of_A", "loaded_from_file"}, offered
        setattr(w._parameterNode, parameter, seg_b)           # chosen while A is the input: not kept
        assert getattr(w._parameterNode, parameter) is None
        w._parameterNode.inputVolume = scan_b
        assert {n.GetName() for n in combo.nodes()} == {"recti_of_B", "loaded_from_file"}
        setattr(w._parameterNode, parameter, seg_b)
        assert getattr(w._parameterNode, parameter) is seg_b
        w._parameterNode.inputVolume = scan_a                 # the other patient again: B's choice is dropped
        assert getattr(w._parameterNode, parameter) is None
        # a new result of B appears while A is shown: not offered once its module marks it
        new_b = segmentation_node_from_labels(ctx, case.labels, reference_node=scan_b, name="new_result_of_B")
        mark_results([new_b], scan_b)
        w.offerOwnSegmentations()
        assert "new_result_of_B" not in {n.GetName() for n in combo.nodes()}
        assert loose.GetID() not in combo.sortFilterProxyModel().hiddenNodeIDs
    finally:
        p.leave()
        p.widget.cleanup()
        ctx.close()
