"""Lesion segmentation ideas compared on the validation phantoms (issue #30), one run, same cases.

The validation set (`orbitai.neuro.lesionseg_eval`: light < 5 mL and heavy > 30 mL loads) is where
choices are made; the test set and the real case are never used here. Variants:

* ``stage3``: the bundle before issue #30 (``build/neuro_lesion_stage3``, `make neuro-lesion-model`),
  at the bundled network's post-processing and at its own old default (0.5, 3 mm^3);
* ``stage4``: heavy confluent loads in training (``build/neuro_lesion_stage4``), its own tuned
  post-processing;
* ``bundled``: the bundled network (stage 5: stage 4 fine-tuned with half the MS phantoms heavy),
  left-right mirror (in use);
* ``bundled_flip4``: the same with the anterior-posterior flip added to the test-time augmentation
  (four passes: twice the time).

``python -m benchmarks neuro_lesion_variants`` -> ``benchmarks/results/neuro_lesion_variants.json``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

BUILD = Path(__file__).resolve().parent.parent / "build"
STAGE3, STAGE4 = BUILD / "neuro_lesion_stage3", BUILD / "neuro_lesion_stage4"


def main() -> None:
    import torch

    import orbitai.engine.inference as engine
    from orbitai.neuro.lesionseg import bundle_postprocess, lesion_bundle
    from orbitai.neuro.lesionseg_eval import phantom_set, probabilities, score, summary

    torch.set_num_threads(2)
    cases = phantom_set("validation")
    bundle = lesion_bundle(None)
    thr, min_mm3 = bundle_postprocess(bundle)
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"cases": [c.name for c in cases], "postprocess": {"threshold": thr, "min_size_mm3": min_mm3}}

    def run(name: str, model: Any, post: tuple[float, float] = (thr, min_mm3)) -> None:
        t0 = time.perf_counter()
        probs = probabilities(cases, model)
        metrics[f"{name}_seconds_per_case"] = (time.perf_counter() - t0) / len(cases)
        for k, v in summary(cases, score(cases, probs, *post)).items():
            if not k.endswith("_n"):
                metrics[f"{name}_{k}"] = v

    model = bundle.load_model("cpu")
    run("bundled", model)
    blend = engine.blend_windows

    def flip4(x, roi, predictor, overlap, mode, *args, **kwargs):
        """The engine's windows on the slices and on their anterior-posterior flip, averaged."""
        a = blend(x, roi, predictor, overlap, mode, *args, **kwargs)
        b = blend(torch.flip(x, dims=[2]), roi, predictor, overlap, mode, *args, **kwargs)
        return 0.5 * (a + torch.flip(b, dims=[2]))

    engine.blend_windows = flip4
    try:
        run("bundled_flip4", model)
    finally:
        engine.blend_windows = blend
    if (STAGE4 / "metadata.json").is_file():
        s4 = lesion_bundle(str(STAGE4))
        run("stage4", s4.load_model("cpu"), bundle_postprocess(s4))
    if (STAGE3 / "metadata.json").is_file():
        old = lesion_bundle(str(STAGE3)).load_model("cpu")
        run("stage3", old)
        run("stage3_old_default", old, (0.5, 3.0))
        notes["stage3"] = "the bundle before issue #30 (make neuro-lesion-model, stage 3)"
    write_result("neuro_lesion_variants", metrics, {}, notes)


if __name__ == "__main__":
    main()
