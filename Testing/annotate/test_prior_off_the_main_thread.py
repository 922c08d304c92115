"""Issue #28: no effect call made on Slicer's main thread does model work. Preview, AutoCorrection and
"Start from the model" asked before the model prior is there return at once (at most 50 ms each), the
network runs in the warm worker / a child process, and the prior arrives through the effect's timer
(`AnnotationLogic.pollPrior`), which then runs the action that waited. Real slicer-core scene, real worker,
the bundled CT model on the phantom orbit."""
from __future__ import annotations

import time

import numpy as np
import pytest

from orbitai.annotate import dice, simulate_strokes
from orbitai.orbit.prior import DEFAULT_PRIORS, ModelPrior, PriorRequest

BLOCK_S = 0.050      # the bar per call
TIMER_S = 0.2        # the effect's timer period (annotation_logic.PRIOR_POLL_MS)


@pytest.fixture()
def no_model_in_process(monkeypatch):
    """The prior must come from the child: computing it in this process fails the test."""
    import orbitai.orbit.prior as prior_module

    def refuse(*args, **kwargs):
        raise AssertionError("the model prior was computed in the calling process")

    monkeypatch.setattr(prior_module, "compute_prior", refuse)
    DEFAULT_PRIORS.clear()
    yield
    DEFAULT_PRIORS.clear()


def _timed(call):
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0


def _poll_like_the_timer(logic, timeout_s: float = 180.0):
    """Call pollPrior every TIMER_S until the waiting action ran; (its result, the longest poll while the
    child was still running)."""
    longest, end = 0.0, time.monotonic() + timeout_s
    while time.monotonic() < end:
        result, dt = _timed(logic.pollPrior)
        if result is not None:
            return result, longest
        longest = max(longest, dt)
        time.sleep(TIMER_S)
    raise AssertionError(f"the model prior did not arrive within {timeout_s} s")


def test_start_from_the_model_returns_at_once_and_runs_when_the_prior_arrives(mrml, no_model_in_process):
    from orbitai.mrml.segment_editor import segment_mask

    L = mrml.logic
    L.selectSegment(mrml.ids[1])                                         # eyeball_right
    r, blocked = _timed(L.startFromModel)
    assert r.ok and r.details.get("pending"), r.message
    assert blocked <= BLOCK_S, f"Start from the model blocked the calling thread {blocked * 1000:.0f} ms"
    assert "computing" in r.message and not L.segmentMask(mrml.ids[1]).any()
    assert isinstance(L._prior_job, PriorRequest) and not L._prior_job.done
    status, blocked = _timed(L.priorStatus)
    assert status.endswith("computing...") and blocked <= BLOCK_S
    again, blocked = _timed(L.startFromModel)                           # pressed twice: still one job
    assert again.details.get("pending") and blocked <= BLOCK_S
    result, longest = _poll_like_the_timer(L)
    assert longest <= BLOCK_S, f"a timer poll blocked {longest * 1000:.0f} ms while the child ran"
    assert result.ok and result.changed_voxels > 0, result.message
    got = segment_mask(mrml.segmentation, mrml.ids[1], mrml.volume)
    assert dice(got, mrml.labels.array == 2) > 0.85
    assert L.priorStatus().startswith("Model prior ready") and not L.pending
    assert isinstance(DEFAULT_PRIORS.request(mrml.image, key=L._prior_job.key), ModelPrior)   # cached
    assert L.undo().ok and not L.segmentMask(mrml.ids[1]).any()          # one undo step, as before


def test_preview_and_autocorrection_wait_for_the_prior_without_blocking(mrml, no_model_in_process):
    from OrbitSegmentationLib.effect_options import AUTOCORRECTION

    L = mrml.logic
    truth = mrml.labels.array == 8                                        # inferior_rectus_muscle_right
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    mrml.paint(mrml.ids[0], fg)
    r, blocked = _timed(L.smartFillPreview)
    assert r.ok and r.details.get("pending") and L.previewNode is None, r.message
    assert blocked <= BLOCK_S, f"Preview blocked the calling thread {blocked * 1000:.0f} ms"
    result, longest = _poll_like_the_timer(L)
    assert longest <= BLOCK_S
    assert result.ok and result.details["prior_used"] and L.previewNode is not None, result.message
    assert dice(result.details["mask"], truth) > 0.8
    L.smartFillCancel()
    L.params(AUTOCORRECTION).set("PriorWeight", 1.0)                      # the prior is there now: no waiting
    r, _ = _timed(L.autocorrect)
    assert r.ok and not r.details.get("pending"), r.message


def test_a_pending_action_is_not_run_on_another_segment(mrml, no_model_in_process):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    assert L.startFromModel().details.get("pending")
    L.selectSegment(mrml.ids[0])
    result = L.waitForPrior(180)
    assert result is not None and not result.ok and "segment changed" in result.message
    assert not L.segmentMask(mrml.ids[0]).any() and not L.segmentMask(mrml.ids[1]).any()


def test_a_failed_prior_is_one_line_and_the_tools_go_on_without_it(mrml, monkeypatch):
    """The child fails (no such bundle): the waiting preview runs from the strokes alone, and the status
    says why in one line."""
    import orbitai.orbit.prior as prior_module

    DEFAULT_PRIORS.clear()
    real = prior_module.PriorRequest.__init__

    def missing_bundle(self, image, key, bundle=None, device="cpu", on_ready=None):
        real(self, image, key, "no_such_bundle_anywhere", device, on_ready)

    monkeypatch.setattr(prior_module.PriorRequest, "__init__", missing_bundle)
    L = mrml.logic
    truth = mrml.labels.array == 8
    mrml.paint(mrml.ids[0], np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0))
    assert L.smartFillPreview().details.get("pending")
    result = L.waitForPrior(180)
    assert result is not None and result.ok and not result.details["prior_used"], result.message
    status = L.priorStatus()
    assert "no_such_bundle_anywhere" in status and "\n" not in status and "Traceback" not in status
    L.smartFillCancel()
    DEFAULT_PRIORS.clear()
