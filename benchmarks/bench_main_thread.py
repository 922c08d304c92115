"""How long Slicer's main thread is blocked per button press and per poll-timer tick (issue 63's bar: no block over
0.1 s), on a 512x512x300 int16 CT with a finished 8-structure segmentation, the OrbitSegmentation Widget driven as
Slicer 5.8.1 and 5.10.0 drive it (``Testing/mrml/slicer_widget_replay.py``, over a real scene and a real warm worker).

Per replayed version, the presses and the ticks that follow each until its child has started:

* **Apply** (the module's segmentation of the CT: the scan written a slab per tick);
* **Mark finished** (the segment names checked, no voxel read);
* the sections' Apply: **Which scan next** (a second CT written a slab per tick) and **Learn from my corrections**
  (the finished case's CT and its label map);
* **TAOActivity's Apply** with an orbit segmentation, **IVGCResponse's Apply** with the recti segmentation (ROI
  strategy MR+LR) and **NeuroDifferential's Apply** with a lesion segmentation (lesions only), their Logics on the
  same scene (ticks: their input files written).

Each is measured twice: ``new``, the code as it is (the label maps made a slab per tick from the segmentation's
layers, `orbitai.mrml.label_slabs.LabelSlabs`), and ``old``, the paths before (the fine-tuning's label map exported
whole in one tick, `FinetuneLogic.correctedLabels`; TAO's and IVGC's exported whole in the press,
`JobLogic.segmentationLabels`, IVGC's recti checked on the whole map: `_old_recti_labels`; NeuroDifferential's lesion
mask made from the whole export in the press, `lesion_mask`: the .seg.nrrd it then also wrote in the press is not
replayed, so that old figure is a lower bound), replayed on the same machine in the same run. Every child is cancelled once it has started. Figures: the press, and the
max and median tick (seconds), each the median over `REPEATS` runs, the press and max tick also as the worst run
(``_worst_s``); wall-clock times on a shared machine, so a loaded run reads high.

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
#: Runs per version and mode: each figure is the median over them (a shared machine's hiccup is no defect of the code),
#: the press and the max tick also as the worst run (``..._worst_s``).
REPEATS = 3


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
        labels[k:k + 60, j:j + 80, i:i + 60] = n + 5           # the eight recti, one shared layer
    seg = segmentation_node_from_labels(ctx, ct.with_array(labels), reference_node=node, name="corrected")
    return ctx, node, seg, labels


def _old_recti_labels(self: Any, segmentation_node: Any, input_node: Any, strategy: str) -> Any:
    """IVGCResponseLogic.rectiLabels before: the whole export in the press, the recti checked on the whole map."""
    from orbitai.ivgc.rois import STRATEGIES, strategy_masks

    what = f"Segmentation '{segmentation_node.GetName()}'"
    labels = self.segmentationLabels(segmentation_node, input_node, what)
    strategy_masks(labels.array, [STRATEGIES[strategy]], what)
    return labels


def _as_mask(labels: Any) -> Any:
    """`orbitai.app.neuro_differential.lesion_mask`'s last step: the label map as a 0/1 mask."""
    return labels.with_array((np.asarray(labels.array) != 0).astype(np.uint8))


def _logic_apply(out: dict[str, float], key: str, start: Callable[[], Any]) -> None:
    """A Logic's Apply (``start``: the press) and its input files written a tick at a time; nothing started."""
    holder: dict[str, Any] = {}
    press = _timed(lambda: holder.setdefault("job", start()))
    job = holder["job"]
    ticks = []
    try:
        while not job.inputs.done:
            ticks.append(_timed(job.inputs.step))
    finally:
        job.cleanup()
    _figures(out, key, press, ticks)


def _run(version: str, mode: str, ct: Any, home: Path) -> dict[str, float]:
    import pytest

    import orbitai.jobs.warm as warm
    from orbitai.app.corrections import FinetuneLogic
    from orbitai.app.ivgc_response import IVGCResponseLogic
    from orbitai.app import neuro_differential
    from orbitai.app.neuro_differential import LESIONS_ONLY, NeuroDifferentialLogic
    from orbitai.app.tao_activity import TAOActivityLogic
    from orbitai.mrml import segmentation_node_from_labels
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
            mp.setattr(IVGCResponseLogic, "rectiLabels", _old_recti_labels)
            whole_mask = neuro_differential.lesion_labels   # called with whole=True, then made a 0/1 mask: lesion_mask
            mp.setattr(neuro_differential, "lesion_labels", lambda logic, seg, node, whole=False: _as_mask(
                whole_mask(logic, seg, node, whole=True)))
        worker = warm.WarmWorker(preload=False)
        mp.setattr(warm, "_shared", worker)
        ctx, node, seg, labels = _scene(ct)
        lesions = segmentation_node_from_labels(ctx, ct.with_array((labels == 5).astype(np.uint8)), reference_node=node,
                                                name="lesions", table={1: "lesion"})
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
            tao, ivgc, neuro = TAOActivityLogic(ctx), IVGCResponseLogic(ctx), NeuroDifferentialLogic(ctx)
            _logic_apply(out, "tao_segmentation", lambda: tao.start(node, segmentation_node=seg, device="cpu"))
            _logic_apply(out, "ivgc_segmentation", lambda: ivgc.start(node, seg, strategy="mrlr", device="cpu"))
            _logic_apply(out, "neuro_lesions", lambda: neuro.start(node, lesion_segmentation=lesions, model=LESIONS_ONLY,
                                                                   device="cpu"))
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
                runs = []
                for n in range(REPEATS):
                    print(f"[{version}] {mode} {n + 1}/{REPEATS} ...", flush=True)
                    runs.append(_run(version, mode, ct, Path(tmp) / f"home-{version}-{mode}-{n}"))
                for k in runs[0]:
                    values = [r[k] for r in runs]
                    metrics[f"v{version}_{mode}_{k}"] = statistics.median(values)
                    if k.endswith(("_press_s", "_tick_max_s")):
                        metrics[f"v{version}_{mode}_{k[:-2]}_worst_s"] = max(values)
                for k in list(runs[0]):
                    if mode == "new" and k.endswith(("_press_s", "_tick_max_s")):
                        targets[f"v{version}_{mode}_{k}"] = f"<= {BAR_S}"
    notes = {
        "scan": "512x512x300 int16 CT (random voxels), a second one for 'Which scan next'; 'corrected': the 8 recti "
                "(labels 5-12) as boxes of 60x80x60 voxels in one shared layer, marked finished, also TAO's and "
                "IVGC's segmentation; 'lesions': one of those boxes as NeuroDifferential's lesion segmentation",
        "old": "fine-tuning label map exported whole in one poll tick (FinetuneLogic.correctedLabels); TAO's and "
               "IVGC's segmentation exported whole in the press (JobLogic.segmentationLabels; IVGC's recti checked "
               "on the whole map)",
        "neuro_old": "the lesion mask made from the whole export in the press (lesion_mask); the compressed .seg.nrrd "
                     "it also wrote in the press is not replayed: a lower bound of the old press",
        "new": "label maps made a slab per tick from the segmentation's layers (LabelSlabs), at most TICK_BYTES "
               "(32 MiB) and TICK_SECONDS (0.03 s) per tick",
        "replay": "Testing/mrml/slicer_widget_replay.py (Slicer 5.8.1 and 5.10.0 wrapper semantics) over slicer-core",
        "cpu_load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    write_result("main_thread", metrics, targets, notes)


if __name__ == "__main__":
    main()
