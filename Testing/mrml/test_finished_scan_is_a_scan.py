"""Issue 80, item 5: a segmentation marked finished whose finished mark (`OrbitAI.FinishedScan`) points at a heat map
OrbitAI made is never learnt from with the heat map as the training image: "Learn from my corrections" refuses it in
one line before writing any file, and "Mark finished" refuses a heat map as the scan."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("slicer")

from orbitai.app.corrections import FINISHED, FinetuneLogic, finished_pairs
from orbitai.app.neuro_differential import LesionFinetuneLogic
from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import (load_mrb, new_scene, overlay_node_from_volume, save_mrb, segmentation_node_from_labels,
                          volume_node_from_volume)
from orbitai.mrml.results import mark_results


def _scene(ctx):
    """Scan A, a heat map made on it (a result of A), and a segmentation loaded as it is (no scan's result)."""
    rng = np.random.default_rng(0)
    image = Volume(rng.normal(100, 10, (12, 16, 20)).astype(np.float32), (1.0, 1.0, 2.0))
    labels = np.zeros(image.shape, np.uint8)
    labels[3:8, 4:10, 5:12] = 1
    scan = volume_node_from_volume(ctx, image, name="scan A")
    heat = overlay_node_from_volume(ctx, np.zeros(image.shape, np.float32), scan, name="TAO occlusion")
    mark_results([heat], scan)
    seg = segmentation_node_from_labels(ctx, image.with_array(labels), reference_node=scan, name="corrected")
    return scan, heat, seg


def test_a_finished_mark_pointing_at_a_heat_map_in_a_scene_file_is_refused(tmp_path):
    ctx = new_scene()
    try:
        _scan, heat, seg = _scene(ctx)
        seg.SetAttribute(FINISHED, "segmentation")            # as a scene file holds it: the mark and an ID
        seg.SetAttribute("OrbitAI.FinishedScan", heat.GetID())
        path = save_mrb(ctx, tmp_path / "scene.mrb")
    finally:
        ctx.close()
    ctx = load_mrb(path)
    try:
        pairs = finished_pairs(ctx.scene)
        assert [(s.GetName(), v.GetName()) for s, v in pairs] == [("corrected", "TAO occlusion")]
        workdir = tmp_path / "job"
        workdir.mkdir()
        with pytest.raises(InputError) as err:
            FinetuneLogic(ctx).jobArguments(JobFolder(workdir))
        text = str(err.value)
        assert "'corrected' refers to 'TAO occlusion', which is a heat map OrbitAI made, not a scan" in text
        assert "\n" not in text
        assert list(workdir.iterdir()) == []                  # no heat map written as a training image
    finally:
        ctx.close()


@pytest.mark.parametrize("logic", [FinetuneLogic, LesionFinetuneLogic])
def test_mark_finished_refuses_a_heat_map_as_the_scan(logic):
    ctx = new_scene()
    try:
        scan, heat, seg = _scene(ctx)
        with pytest.raises(InputError, match="which is a heat map OrbitAI made, not a scan") as err:
            logic(ctx).markFinished(seg, heat)
        assert "\n" not in str(err.value) and seg.GetAttribute(FINISHED) is None
    finally:
        ctx.close()
