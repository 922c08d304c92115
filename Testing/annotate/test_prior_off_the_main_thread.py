"""No effect call made on Slicer's main thread does model work. Preview, AutoCorrection and "Start from the
model" asked before the model prior is there return at once without waiting, the network runs in the warm
worker / a child process, and the prior arrives through the effect's timer (`AnnotationLogic.pollPrior`), which
then runs the action that waited -- unless the user edited the segment, left the tool or closed the scene
meanwhile: then the action is dropped and the user's edits are kept. Real slicer-core scene, real worker, the
bundled CT model on the phantom orbit.

What must not happen on the calling thread is asserted (model work, waiting for the child, reading the prior
before the child ended); how long the calls take is measured in ``benchmarks/bench_annotation_prior.py``
(``benchmarks/results/annotation_prior.json``), not bounded here: a loaded CI machine is no defect."""
from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from orbitai.annotate import dice, simulate_strokes
from orbitai.app.annotation.priors import DEFAULT_PRIORS, PriorRequest
from orbitai.orbit.prior import ModelPrior

TIMER_S = 0.2        # the effect's timer period (effect_options.PRIOR_POLL_MS)
EFFECTS = Path(__file__).resolve().parents[2] / "OrbitSegmentation" / "OrbitSegmentationEffects"


@pytest.fixture()
def no_model_in_process(monkeypatch):
    """The prior must come from the child: computing it in this process, waiting for the child from a logic
    call, or reading the prior before the child ended fails the test."""
    import orbitai.orbit.prior as orbit_prior

    def refuse(*args, **kwargs):
        raise AssertionError("the model prior was computed in the calling process")

    def no_wait(self, *args, **kwargs):
        raise AssertionError("a logic call waited for the model prior's child")

    real_load = ModelPrior.load.__func__

    def load_after_the_child(cls, path):
        running = [r for r in DEFAULT_PRIORS._running.values() if r._job is None or not r._job.finished]
        assert not running, "the prior was read while its child was still running"
        return real_load(cls, path)

    monkeypatch.setattr(orbit_prior, "compute_prior", refuse)     # the network itself, wherever called from
    monkeypatch.setattr(PriorRequest, "wait", no_wait)
    monkeypatch.setattr(ModelPrior, "load", classmethod(load_after_the_child))
    DEFAULT_PRIORS.clear()
    yield
    DEFAULT_PRIORS.clear()


def _poll_like_the_timer(logic, timeout_s: float = 180.0):
    """Call pollPrior every TIMER_S until the waiting action ran (or was dropped); its result."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        result = logic.pollPrior()
        if result is not None:
            return result
        time.sleep(TIMER_S)
    raise AssertionError(f"the model prior did not arrive within {timeout_s} s")


def _wait_for_the_child(logic, timeout_s: float = 180.0) -> None:
    """Block the test (not the logic) until the prior's child has ended."""
    job, end = logic._prior_job, time.monotonic() + timeout_s
    while not job.poll() and time.monotonic() < end:
        time.sleep(TIMER_S)
    assert job.done, f"the model prior did not arrive within {timeout_s} s"


def test_start_from_the_model_returns_at_once_and_runs_when_the_prior_arrives(mrml, no_model_in_process):
    from orbitai.mrml.segment_editor import segment_mask

    L = mrml.logic
    L.selectSegment(mrml.ids[1])                                         # eyeball_right
    r = L.startFromModel()
    assert r.ok and r.details.get("pending"), r.message
    assert "computing" in r.message and not L.segmentMask(mrml.ids[1]).any()
    assert isinstance(L._prior_job, PriorRequest) and not L._prior_job.done
    assert L.priorStatus().endswith("computing...")
    job = L._prior_job
    again = L.startFromModel()                                           # pressed twice: still one job
    assert again.details.get("pending") and L._prior_job is job
    result = _poll_like_the_timer(L)
    assert result.ok and result.changed_voxels > 0, result.message
    got = segment_mask(mrml.segmentation, mrml.ids[1], mrml.volume)
    assert dice(got, mrml.labels.array == 2) > 0.85
    assert L.priorStatus().startswith("Model prior ready") and not L.pending
    assert isinstance(DEFAULT_PRIORS.request(mrml.image, key=L._prior_job.key), ModelPrior)   # cached
    assert L.undo().ok and not L.segmentMask(mrml.ids[1]).any()          # one undo step, as before


def test_preview_and_autocorrection_wait_for_the_prior_without_blocking(mrml, no_model_in_process):
    from orbitai.app.annotation.options import AUTOCORRECTION

    L = mrml.logic
    truth = mrml.labels.array == 8                                        # inferior_rectus_muscle_right
    fg = np.any(simulate_strokes(truth, mrml.image.spacing, 2), axis=0)
    mrml.paint(mrml.ids[0], fg)
    r = L.smartFillPreview()
    assert r.ok and r.details.get("pending") and L.previewNode is None, r.message
    result = _poll_like_the_timer(L)
    assert result.ok and result.details["prior_used"] and L.previewNode is not None, result.message
    assert dice(result.details["mask"], truth) > 0.8
    L.smartFillCancel()
    L.params(AUTOCORRECTION).set("PriorWeight", 1.0)                      # the prior is there now: no waiting
    r = L.autocorrect()
    assert r.ok and not r.details.get("pending"), r.message


def test_a_pending_action_is_not_run_on_another_segment(mrml, no_model_in_process):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    assert L.startFromModel().details.get("pending")
    L.selectSegment(mrml.ids[0])
    result = _poll_like_the_timer(L)
    assert result is not None and not result.ok and "segment changed" in result.message
    assert not L.segmentMask(mrml.ids[0]).any() and not L.segmentMask(mrml.ids[1]).any()


def test_edits_made_while_the_prior_computes_are_kept(mrml, no_model_in_process):
    """The user presses "Start from the model", then paints 1,800 voxels (e.g. with Paint) before the prior
    arrives: the model's mask must not replace them."""
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    assert L.startFromModel().details.get("pending")
    painted = np.zeros(mrml.image.array.shape, bool)
    painted[10:22, 10:25, 10:20] = True                                  # 12 x 15 x 10 = 1,800 voxels
    mrml.paint(mrml.ids[1], painted)
    result = _poll_like_the_timer(L)
    assert not result.ok and "edited" in result.message and "kept" in result.message, result.message
    np.testing.assert_array_equal(L.segmentMask(mrml.ids[1]), painted)
    assert not L.pending
    assert L.startFromModel().ok                                         # pressed again: runs now, one undo step
    assert L.undo().ok
    np.testing.assert_array_equal(L.segmentMask(mrml.ids[1]), painted)


def _effect(monkeypatch, effect_file: str, logic):
    """The real effect class (OrbitSegmentationEffects/<file>), imported with stand-ins for Slicer's Qt and
    effect base, its logic replaced by the headless one."""
    import slicer

    base = types.ModuleType("SegmentEditorEffects")

    class AbstractScriptedSegmentEditorEffect:
        def __init__(self, scriptedEffect):
            self.scriptedEffect = scriptedEffect
    base.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    for name, module in (("SegmentEditorEffects", base), ("qt", types.ModuleType("qt")),
                         ("ctk", types.ModuleType("ctk"))):
        monkeypatch.setitem(sys.modules, name, module)
    said = []
    monkeypatch.setattr(slicer.util, "showStatusMessage", lambda text, ms=0: said.append(text), raising=False)
    monkeypatch.syspath_prepend(str(EFFECTS))
    for name in ("OrbitEffectBase", effect_file):
        monkeypatch.delitem(sys.modules, name, raising=False)
    module = __import__(effect_file)
    cls = getattr(module, effect_file)
    effect = cls.__new__(cls)
    effect.scriptedEffect, effect.logic = None, logic
    return effect, said


@pytest.mark.parametrize("effect_file", ["SegmentEditorSmartFillEffect", "SegmentEditorSmartPencilEffect",
                                         "SegmentEditorAutoCorrectionEffect"])
def test_leaving_the_tool_drops_the_waiting_action(mrml, no_model_in_process, monkeypatch, effect_file):
    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    assert L.startFromModel().details.get("pending")
    effect, said = _effect(monkeypatch, effect_file, L)
    effect.deactivate()                                                  # the user picks Paint
    assert not L.pending and said and "Dropped" in said[-1], said
    painted = np.zeros(mrml.image.array.shape, bool)
    painted[5:15, 5:15, 5:15] = True
    mrml.paint(mrml.ids[1], painted)
    _wait_for_the_child(L)
    assert L.pollPrior() is None                                         # nothing waited: nothing runs
    np.testing.assert_array_equal(L.segmentMask(mrml.ids[1]), painted)


def test_closing_the_scene_cancels_the_prior_and_drops_the_waiting_action(mrml, no_model_in_process):
    from orbitai.app.annotation.model_prior import cancel_model_work_on_scene_close

    L = mrml.logic
    L.selectSegment(mrml.ids[1])
    assert L.smartFillPreview().details.get("pending")
    tag = cancel_model_work_on_scene_close(mrml.scene)
    request = L._prior_job
    waited_on: list = []
    if request._job is not None:                   # the child runs: the close must not wait for it to stop
        job = request._job
        real_result = job.result

        def result(*args, **kwargs):
            waited_on.append(threading.current_thread())
            return real_result(*args, **kwargs)
        job.result = result
    try:
        mrml.scene.InvokeEvent(mrml.scene.StartCloseEvent)               # what Slicer's File > Close Scene sends
        assert threading.main_thread() not in waited_on, "the scene close waited for the prior's child"
        assert request.cancelled and not DEFAULT_PRIORS._running
        result = L.pollPrior()
        assert result is not None and not result.ok and "cancelled" in result.message, result
        assert not L.pending and L.previewNode is None
    finally:
        mrml.scene.RemoveObserver(tag)


def test_a_failed_prior_is_one_line_and_the_tools_go_on_without_it(mrml, monkeypatch):
    """The child fails (no such bundle): the waiting preview runs from the strokes alone, and the status
    says why in one line."""
    import orbitai.app.annotation.priors as prior_module

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
