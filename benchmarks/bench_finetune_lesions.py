"""Fine-tuning the lesion network on the user's corrections (issue 48), one run: the bundled lesion model against
itself fine-tuned on 3 and on 10 corrected FLAIRs of brains it never saw.

The domain: phantoms with real MS lesion maps on real brains that no training draws
(`orbitai.neuro.lesionseg_eval.real_phantom_set`; half of them 2D acquisitions of 3-5 mm slices). The user's cases
(the fine-tuning pool, "corrected" = their exact lesion maps) are 10 of the ``validation`` set (SynthSeg brains 17-18,
validation maps) in a fixed shuffled order; the test cases are the whole ``test`` set (brains 19-20, test maps: 16
cases, 6 light loads), so no test brain or map is ever fine-tuned on. Scored as issue 47 scores the bundled model
(`score_counted`, `summary`): light-load lesion F1 (all lesions, and lesions >= 10 mm3), Dice, per load; each model
with the base's post-processing, which a fine-tuned bundle keeps.

- ``ft3``/``ft10``: the recipe as shipped (`orbitai.neuro.finetune.LesionRecipe`: early stopping on the cases held
  out in turn) on the first 3 / all 10 pool cases; the time is the whole ``finetune_lesions`` call plus preparing the
  cases (brain extraction, model grid) on this machine.

``python -m benchmarks finetune_lesions`` -> ``benchmarks/results/finetune_lesions.json`` (about 40 min on 2 cores).
With ``ORBITAI_LESION_RECIPE='{"lr": 5e-5, ...}'`` (LesionRecipe fields) and ``ORBITAI_LESION_RECIPE_TAG=name`` a
variant of the recipe -> ``finetune_lesions_<name>.json``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from benchmarks.common import write_result

N_POOL = 10
POOL_ORDER_SEED = 0


def main() -> None:
    import torch

    from orbitai.bundle import load_bundle
    from orbitai.neuro.anatomy import extract_brain
    from orbitai.neuro.finetune import LesionRecipe, finetune_lesions, prepare_case, replay_cases
    from orbitai.neuro.lesionseg import bundle_postprocess, lesion_bundle
    from orbitai.neuro.lesionseg_eval import probabilities, real_phantom_set, score_counted, summary

    torch.set_num_threads(2)
    recipe = replace(LesionRecipe(), **json.loads(os.environ.get("ORBITAI_LESION_RECIPE", "{}")))
    tag = os.environ.get("ORBITAI_LESION_RECIPE_TAG", "")
    val = real_phantom_set("validation")
    order = np.random.default_rng(POOL_ORDER_SEED).permutation(len(val))[:N_POOL]
    pool_ph = [val[i] for i in order]
    test = real_phantom_set("test")
    base = lesion_bundle()
    pp = bundle_postprocess(base)

    def scores(model) -> dict[str, float]:
        return summary(test, score_counted(test, probabilities(test, model), pp))

    metrics: dict[str, Any] = {}
    keys = ("light_lesion_f1", "light_lesion_f1_counted", "light_dice", "all_dice", "heavy_dice", "medium_dice")
    base_s = scores(base.load_model())
    metrics.update({f"base_{k}": base_s[k] for k in keys if k in base_s})
    t = time.perf_counter()
    replay_cases(recipe.replay_seed, recipe.replay_cases)     # as finetune_lesions renders them; its time counted
    replay_s = time.perf_counter() - t
    metrics["replay_seconds"] = round(replay_s, 1)
    with TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        for n in (3, 10):
            t0 = time.perf_counter()
            # as a user's FLAIR is read: the intracranial mask extracted, not the phantom's
            cases = [prepare_case(f"user{i}", c.image, c.truth, extract_brain(c.image).mask)
                     for i, c in enumerate(pool_ph[:n])]
            rep = finetune_lesions(cases, tmp / f"ft{n}", recipe=recipe, progress=lambda d, tt, m: None)
            seconds = time.perf_counter() - t0 + replay_s
            s = scores(load_bundle(rep.bundle).load_model())
            o = rep.outcome
            metrics.update({f"ft{n}_{k}": s[k] for k in keys if k in s})
            metrics[f"ft{n}_light_f1_gain"] = s["light_lesion_f1"] - base_s["light_lesion_f1"]
            metrics[f"ft{n}_light_f1_counted_gain"] = s["light_lesion_f1_counted"] - base_s["light_lesion_f1_counted"]
            metrics[f"ft{n}_seconds"] = round(seconds, 1)
            metrics[f"ft{n}_stop_step"] = o.stop_step
            metrics[f"ft{n}_cv_base"] = o.base_score
            metrics[f"ft{n}_cv_tuned"] = o.tuned_score
            print(n, {k: v for k, v in metrics.items() if k.startswith(f"ft{n}")}, flush=True)
    targets = {"ft3_light_f1_gain": ">= 0.10", "ft3_seconds": "<= 600", "ft10_seconds": "<= 1500"}
    notes = {"domain": "real MS lesion maps on held-out real brains (orbitai.neuro.lesionseg_eval.real_phantom_set): pool = "
                       f"{N_POOL} validation cases (brains 17-18) in the order of permutation seed {POOL_ORDER_SEED}: "
                       + "; ".join(c.name for c in pool_ph) + f"; test = the {len(test)} test cases (brains 19-20)",
             "base": f"{base.name} ({base.metadata.get('weights_sha256', '')[:12]})", "recipe": str(recipe),
             "postprocess": str(pp), "measure": "lesionseg_eval.summary of score_counted on the test set; *_gain = "
                                                "fine-tuned minus base, same run",
             "seconds": "case preparation (brain extraction, model grid) + the whole finetune_lesions call + the "
                        "replay phantoms' rendering, 2 CPU threads"}
    write_result(f"finetune_lesions_{tag}" if tag else "finetune_lesions", metrics, targets, notes)


if __name__ == "__main__":
    main()
