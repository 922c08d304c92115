"""The model prior in the effects' logic, on a real MRML scene: computed in the background once per
image, used by SmartFill when the segment names a structure, "Start from the model" with undo, and
exactly today's behaviour at weight zero."""
from __future__ import annotations

import time

import numpy as np

from orbitai.annotate import dice, simulate_strokes
from orbitai.app.annotation.options import AUTOCORRECTION, SMARTFILL


def wait_ready(logic, timeout_s: float = 60.0) -> str:
    logic.startPrior()
    t0 = time.monotonic()
    while logic.priorStatus().endswith("computing...") and time.monotonic() - t0 < timeout_s:
        time.sleep(0.1)
    return logic.priorStatus()


def test_start_from_the_model_then_undo(mrml):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])                            # eyeball_right
    assert wait_ready(L).startswith("Model prior ready")
    r = L.startFromModel()
    assert r.ok and r.changed_voxels > 0, r.message
    got = L.segmentMask(mrml.ids[1])
    assert dice(got, mrml.labels.array == 2) > 0.85
    assert L.undo().ok and not L.segmentMask(mrml.ids[1]).any()


def test_smartfill_uses_the_prior_and_weight_zero_is_todays_fill(mrml):
    L = mrml.logic
    truth = mrml.labels.array == 8                           # inferior_rectus_muscle_right (segment 0)
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    mrml.paint(mrml.ids[0], fg)
    with_prior = L.smartFillPreview()
    if with_prior.details.get("pending"):                   # the prior's child is still running
        with_prior = L.waitForPrior(120)
    assert with_prior.ok and with_prior.details["prior_used"], with_prior.message
    assert "Model prior orbit_svnet_ct_demo" in with_prior.message
    L.smartFillCancel()
    L.params(SMARTFILL).set("PriorWeight", 0.0)
    off = L.smartFillPreview()
    assert off.ok and not off.details["prior_used"]
    from orbitai.annotate import smartfill

    today = smartfill(mrml.image.array, mrml.image.spacing, fg)
    np.testing.assert_array_equal(off.details["mask"], today.mask)
    L.smartFillCancel()
    assert dice(with_prior.details["mask"], truth) >= dice(off.details["mask"], truth) - 0.01


def test_a_segment_not_named_after_a_structure_works_without_the_prior(mrml):
    L = mrml.logic
    sid = mrml.segmentation.GetSegmentation().AddEmptySegment("my_muscle", "my_muscle")
    L.selectSegment(sid)
    assert L.startPrior().ok and L._prior_job is None          # no network for a segment it cannot help
    assert "name the segment after an orbit structure" in L.priorStatus()
    truth = mrml.labels.array == 8
    mrml.paint(sid, np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0))
    r = L.smartFillPreview()
    assert r.ok and not r.details["prior_used"] and "name the segment after an orbit structure" in r.message
    L.smartFillCancel()
    assert not L.startFromModel().ok
    L.params(AUTOCORRECTION).set("PriorWeight", 0.0)
    assert L.autocorrect().ok


def test_the_effects_default_weight_is_smartfills():
    from orbitai.app.annotation import options as alogic

    from orbitai.annotate.smartfill import DEFAULT_PRIOR_WEIGHT

    assert alogic.DEFAULT_PRIOR_WEIGHT == DEFAULT_PRIOR_WEIGHT
    weights = {e: {o.name: o.default for o in opts}.get("PriorWeight") for e, opts in alogic.EFFECT_OPTIONS.items()}
    assert weights == {alogic.SMARTPENCIL: None, alogic.SMARTFILL: DEFAULT_PRIOR_WEIGHT,
                       alogic.AUTOCORRECTION: alogic.AUTOCORRECTION_PRIOR_WEIGHT}


def test_a_prior_that_sees_nothing_where_the_strokes_are_is_not_used(mrml):
    """Strokes of the inferior rectus in a segment named eyeball_right: the network sees no eyeball under them, so its
    prior would pull the fill towards nothing (a 1 mm CT head whose eyeballs the CT model missed got a preview of Dice
    0.09); the preview is the strokes' own and says why."""
    from orbitai.annotate import smartfill

    L = mrml.logic
    L.selectSegment(mrml.ids[1])                            # eyeball_right
    assert wait_ready(L).startswith("Model prior ready")
    truth = mrml.labels.array == 8                          # inferior_rectus_muscle_right's voxels
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    mrml.paint(mrml.ids[1], fg)
    r = L.smartFillPreview()
    assert r.ok and not r.details["prior_used"], r.message
    assert "does not see 'eyeball_right' where you marked it" in r.message and "\n" not in r.message
    np.testing.assert_array_equal(r.details["mask"], smartfill(mrml.image.array, mrml.image.spacing, fg).mask)
    L.smartFillCancel()
