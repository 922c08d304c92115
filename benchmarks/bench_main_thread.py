"""How long Slicer's main thread is blocked per button press and per poll-timer tick (issue 63's bar: no block over
0.1 s), on a 512x512x300 int16 CT with a finished 8-structure segmentation, the OrbitSegmentation Widget driven as
Slicer 5.8.1 and 5.10.0 drive it (``Testing/mrml/slicer_widget_replay.py``, over a real scene and a real warm worker).

Per replayed version, the presses and the ticks that follow each until its child has started:

* **Apply** (the module's segmentation of the CT: the scan written a slab per tick);
* **Mark finished** (the segment names checked, no voxel read);
* the sections' Apply: **Which scan next** (a second CT written a slab per tick) and **Learn from my corrections**
  (the finished case's CT and its label map);
* **TAOActivity's Apply** with an orbit segmentation (its Logic on the same scene; ticks: its input files written).

Each is measured twice: ``new``, the code as it is (the label maps made a slab per tick from the segmentation's
layers, `orbitai.mrml.segmentations.LabelSlabs`), and ``old``, the paths before (the fine-tuning's label map exported
whole in one tick, `FinetuneLogic.correctedLabels`; TAO's exported whole in the press, `JobLogic.segmentationLabels`),
replayed on the same machine in the same run. Every child is cancelled once it has started. Figures: the press, and the
max and median tick (seconds); wall-clock times on a shared machine, so a loaded run reads high.

Run: ``python -m benchmarks main_thread`` (writes benchmarks/results/main_thread.json; a few minutes on 2 cores).
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]
SHAPE = (300, 512, 512)
BAR_S = 0.1


def _timed(call: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _ticks(job: Any, tick: Callable[[], Any]) -> list[float]:
    """Poll ticks until the job's child has started (its input files written): the time each blocked."""
    times = []
    while job.writing:
        times.append(_timed(tick))
    return times


def _figures(out: dict[str, float], key: str, press: float, ticks: list[float]) -> None:
    out[f"{key}_press_s"] = press
    if ticks:
        out[f"{key}_tick_max_s"] = max(ticks)
        out[f"{key}_tick_median_s"] = statistics.median(ticks)
        out[f"{key}_ticks"] = float(len(ticks))


def _scene(ct: Any) -> tuple[Any, Any, Any, Any]:
    from orbitai.mrml import new_scene, segmentation_node_from_labels, volume_node_from_volume

    ctx = new_scene()
    node = volume_node_from_volume(ctx, ct, name="CT")
    volume_node_from_volume(ctx, ct, name="CT 2")
    labels = np.zeros(SHAPE, np.uint8)
    for n, (k, j, i) in enumerate([(100, 150, 120), (100, 150, 330), (110, 230, 150), (110, 230, 300),
                                   (120, 120, 100), (120, 120, 360), (130, 200, 90), (130, 200, 380)]):
        labels[k:k + 60, j:j + 80, i:i + 60] = n + 1           # eight structures, one shared layer
    seg = segmentation_node_from_labels(ctx, ct.with_array(labels), reference_node=node, name="corrected")
    return ctx, node, seg, labels


def _run(version: str, mode: str, ct: Any, home: Path) -> dict[str, float]:
    import pytest

    import orbitai.jobs.warm as warm
    from orbitai.app.corrections import FinetuneLogic
    from orbitai.app.tao_activity import TAOActivityLogic
    from orbitai.mrml.jobs import JobLogic

    sys.path.insert(0, str(REPO / "Testing" / "mrml"))
    from slicer_widget_replay import load_module_widget

    out: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.delenv("ORBITAI_WARM_WORKER", raising=False)
        if mode == "old":      # the paths before: whole exports, in a tick of its own (fine-tuning), in the press (TAO)
            mp.setattr(FinetuneLogic, "correctedLabelMap", lambda self, seg, scan: self.correctedLabels(seg, scan))
            mp.setattr(TAOActivityLogic, "segmentationLabelSlabs", JobLogic.segmentationLabels)
        worker = warm.WarmWorker(preload=False)
        mp.setattr(warm, "_shared", worker)
        ctx, node, seg, _ = _scene(ct)
        p = load_module_widget(mp, "OrbitSegmentation", version)
        try:
            p.show()
            w = p.widget
            w._parameterNode.inputVolume = node
            press = _timed(lambda: p.ui.applyButton.clicked.emit(False))
            job = w.jobController.job
            _figures(out, "apply", press, _ticks(job, w._jobTimer.timeout.emit))
            p.ui.applyButton.clicked.emit(False)                           # Cancel
            finetune, rank = w.sections
            w._parameterNode.finetuneCorrected = seg
            out["mark_finished_press_s"] = _timed(lambda: p.ui.markFinishedButton.clicked.emit(False))
            for key, section, button in (("rank", rank, p.ui.rankApplyButton),
                                         ("finetune", finetune, p.ui.finetuneApplyButton)):
                press = _timed(lambda b=button: b.clicked.emit(False))
                job = section.controller.job
                assert job is not None, section.controller.statusOf
                _figures(out, key, press, _ticks(job, section.timer.timeout.emit))
                button.clicked.emit(False)                                  # Cancel
            tao = TAOActivityLogic(ctx)
            holder: dict[str, Any] = {}
            press = _timed(lambda: holder.setdefault("job", tao.start(node, segmentation_node=seg, device="cpu")))
            job = holder["job"]
            ticks = []
            try:
                while not job.inputs.done:
                    ticks.append(_timed(job.inputs.step))
            finally:
                job.cleanup()
            _figures(out, "tao_segmentation", press, ticks)
        finally:
            p.widget.cleanup()
            ctx.close()
            worker.shutdown()
    return out


def main() -> None:
    from orbitai.io import Volume

    rng = np.random.default_rng(630001)
    ct = Volume(rng.integers(-1024, 2000, size=SHAPE, dtype=np.int16), (0.45, 0.45, 1.0), (10.0, -20.0, 30.0))
    metrics: dict[str, float] = {}
    targets: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="orbitai-bench-main-thread-") as tmp:
        for version in ("5.8.1", "5.10.0"):
            for mode in ("old", "new"):
                print(f"[{version}] {mode} ...", flush=True)
                figures = _run(version, mode, ct, Path(tmp) / f"home-{version}-{mode}")
                for k, v in figures.items():
                    metrics[f"v{version}_{mode}_{k}"] = v
                    if mode == "new" and (k.endswith("_press_s") or k.endswith("_tick_max_s")):
                        targets[f"v{version}_{mode}_{k}"] = f"<= {BAR_S}"
    notes = {
        "scan": "512x512x300 int16 CT (random voxels), a second one for 'Which scan next'; 'corrected': 8 structures "
                "of 60x80x60 voxels in one shared layer, marked finished",
        "old": "fine-tuning label map exported whole in one poll tick (FinetuneLogic.correctedLabels); TAO's "
               "segmentation exported whole in the press (JobLogic.segmentationLabels)",
        "new": "label maps made a slab per tick from the segmentation's layers (LabelSlabs), at most TICK_BYTES "
               "(32 MiB) and TICK_SECONDS (0.03 s) per tick",
        "replay": "Testing/mrml/slicer_widget_replay.py (Slicer 5.8.1 and 5.10.0 wrapper semantics) over slicer-core",
        "cpu_load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    write_result("main_thread", metrics, targets, notes)


if __name__ == "__main__":
    main()
