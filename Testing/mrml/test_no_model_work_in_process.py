"""Issue #28: no Logic call made on Slicer's main thread does model work. A module's Apply (`JobLogic.start`)
writes the inputs and starts the child, then returns; the network runs in the warm worker / a child process.
Real slicer-core scene, the modules' real Logics on phantoms; loading a model in this process, or waiting for the
child inside Apply, fails the test. How long Apply takes is a benchmark figure (``python -m benchmarks worker``),
not a bound here: a loaded CI machine is no defect."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("slicer")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def no_model_in_process(monkeypatch):
    from orbitai.bundle.core import Bundle

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"{self.name} was loaded in the calling process")

    monkeypatch.setattr(Bundle, "load_model", refuse)


def _orbit_segmentation(ctx):
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic

    from orbitai.testing.orbit_segmentation import _phantom_node

    _, node = _phantom_node(ctx)
    return OrbitSegmentationLogic(ctx), node, {"device": "cpu"}


def _tao_activity(ctx):
    from orbitai.app.tao_activity import TAOActivityLogic

    from orbitai.testing.tao_activity import _mri_node

    _, node, seg = _mri_node(ctx)
    return TAOActivityLogic(ctx), node, {"segmentation_node": seg, "device": "cpu", "maps": False}


@pytest.mark.parametrize("module, setup", [("OrbitSegmentation", _orbit_segmentation), ("TAOActivity", _tao_activity)])
def test_apply_returns_at_once_and_the_model_runs_in_the_child(module, setup, no_model_in_process, monkeypatch):
    from orbitai.mrml import new_scene
    from orbitai.testing import node_ids

    monkeypatch.syspath_prepend(str(REPO / module))
    ctx = new_scene()
    try:
        logic, node, options = setup(ctx)
        before = node_ids(ctx)
        def no_waiting(self, *args, **kwargs):
            raise AssertionError(f"{module}: Apply waited for the child")

        with monkeypatch.context() as m:
            m.setattr(subprocess.Popen, "wait", no_waiting)
            m.setattr(subprocess.Popen, "communicate", no_waiting)
            job = logic.start(node, **options)
        try:
            assert not job.job.finished, f"{module}: the child had ended when Apply returned"
            assert node_ids(ctx) == before                  # nothing in the scene until the job has ended
            job.wait()
            outputs = logic.finish(job)                     # the model ran in the child
        finally:
            job.cancel()
            job.cleanup()
        assert outputs is not None and node_ids(ctx) != before
    finally:
        ctx.close()
