"""Lesion segmentation recipes compared on the real-map validation phantoms (issue #47), one run, same cases.

The validation set (`orbitai.neuro.lesionseg_eval.real_phantom_set`: real lesion maps held out of training on
SynthSeg brains 17-18, never drawn in training; light, medium and heavy loads, 1 mm and 3-5 mm slices) is where
choices are made; the test set and the real case are never used here. Every variant is scored at its own
post-processing chosen on these cases (`choose_postprocess`'s sweep and objective), so recipes are compared at their
best. Variants, each present as a bundle folder under ``build/`` (`make neuro-lesion-model` writes them):

* ``stage5``: the bundle before issue #47 (drawn lesions on patient 26's brain only);
* ``real_mixed``: stage 5 fine-tuned on 72 real-map phantoms plus 18 drawn ones (``build/neuro_lesion_real``);
* ``real_only``: stage 5 fine-tuned on 144 real-map phantoms only, 3000 steps (``build/neuro_lesion_real_only``);
* ``real_long``: ``real_only`` trained on for 6000 more steps over 288 real-map phantoms, half the learning rate
  (``build/neuro_lesion_real_long``);
* ``real_scratch``: trained from a random initialisation on real-map phantoms only (``build/neuro_lesion_scratch``);
* ``real8``: ``real_long`` trained on for 6000 more steps over 432 real-map phantoms at 3e-4 (stage 8, the bundle
  since the second round of issue #47; ``build/neuro_lesion_real8``);
* ``<best>_noflip``: the best variant without the left-right mirror at test time (half the time);
* ``ensemble``: the mean probability of the real-map variants (an ensemble of recipes, each pass's time added).

``python -m benchmarks neuro_lesion_variants`` -> ``benchmarks/results/neuro_lesion_variants.json``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

BUILD = Path(__file__).resolve().parent.parent / "build"
VARIANTS = {"stage5": BUILD / "neuro_lesion_stage5", "real_mixed": BUILD / "neuro_lesion_real",
            "real_only": BUILD / "neuro_lesion_real_only", "real_long": BUILD / "neuro_lesion_real_long",
            "real_scratch": BUILD / "neuro_lesion_scratch", "real8": BUILD / "neuro_lesion_real8"}


def main() -> None:
    import torch

    from orbitai.neuro import lesionseg_eval as ev
    from orbitai.neuro.lesionseg import lesion_bundle, lesion_probability

    torch.set_num_threads(2)
    cases = ev.real_phantom_set("validation")
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"cases": [c.name for c in cases], "chosen": {}}

    def best_of(probs) -> dict[str, Any]:
        return ev.sweep(cases, probs)

    def record(name: str, best: dict[str, Any], seconds: float) -> None:
        metrics[f"{name}_objective"] = best["objective"]
        metrics[f"{name}_seconds_per_case"] = seconds
        for k, v in best["summary"].items():
            if not k.endswith("_n") and not k.startswith("medium"):
                metrics[f"{name}_{k}"] = v
        notes["chosen"][name] = best["postprocess"]

    results: dict[str, tuple[Any, dict[str, Any]]] = {}
    kept: dict[str, tuple[list[Any], float]] = {}
    for name, path in VARIANTS.items():
        if not (path / "metadata.json").is_file():
            notes[f"{name}_missing"] = str(path)
            continue
        model = lesion_bundle(str(path)).load_model("cpu")
        t0 = time.perf_counter()
        probs = ev.probabilities(cases, model)
        best = best_of(probs)
        record(name, best, (time.perf_counter() - t0) / len(cases))
        results[name] = (model, best)
        kept[name] = (probs, (time.perf_counter() - t0) / len(cases))
    top = max(results, key=lambda n: results[n][1]["objective"])
    notes["best"] = top
    t0 = time.perf_counter()
    probs = [lesion_probability(c.image, c.brain, results[top][0], "cpu", mirror=False) for c in cases]
    record(f"{top}_noflip", best_of(probs), (time.perf_counter() - t0) / len(cases))
    members = [n for n in kept if n != "stage5"]
    if len(members) > 1:
        mean = [c.image.with_array(sum(kept[n][0][i].array for n in members) / len(members))
                for i, c in enumerate(cases)]
        record("ensemble", best_of(mean), sum(kept[n][1] for n in members))
        notes["ensemble"] = members
    write_result("neuro_lesion_variants", metrics, {}, notes)


if __name__ == "__main__":
    main()
