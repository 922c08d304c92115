"""Fine-tuning on the user's corrections (issue 48), one run: the base model against itself fine-tuned on 3 and on
10 corrected cases of a domain it was not trained on, and the uncertainty ranking against random picks.

The domain: FLAIR-like orbit MRI (``CONTRASTS['flair']``) with 5 mm axial slices, rendered from the SynthSeg heads
that no training draws (``orbitai.phantoms.heads.HELD_OUT``). The user's cases (the fine-tuning pool, "corrected" =
their exact phantom labels) come from heads 17 and 18; the test cases from heads 19 and 20, so no test anatomy is
ever fine-tuned on. Dice per structure on the whole scan through ``segment`` (the orbit rules as ``seg predict``),
both sides, mean over structures then cases.

- ``ft3``/``ft10``: the recipe as shipped (``orbitai.orbit.finetune.Recipe``: early stopping on the cases held out
  in turn) on the first 3 / all 10 pool cases; the time is the whole ``finetune`` call on this machine.
- ranking: ``seg rank`` (the base model's doubt) picks 3 of the 10 pool cases; against it, 3 random picks (three
  seeds). Both arms use the recipe without cross-validation (``folds=1``, the full 200 steps), so that only the
  choice of cases differs.

``python -m benchmarks finetune`` -> ``benchmarks/results/finetune.json`` (about 25 min on 2 cores). With
``ORBITAI_FINETUNE_BASE=<bundle folder>`` the same run from another base -> ``finetune_<folder name>.json`` (the
atlas-only model that was bundled before issue 46: ``build/models/orbit_svnet_mri_atlas``).
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

from benchmarks.common import write_result

POOL_SEED, TEST_SEED = 9100, 9200
POOL_HEADS, TEST_HEADS = (17, 18), (19, 20)
N_POOL, N_TEST = 10, 10
RANDOM_SEEDS = (1, 2, 3)


def make_case(seed: int, head: int):
    from orbitai.phantoms import orbit_case
    from orbitai.phantoms.orbit import CONTRASTS, Rendering

    return orbit_case(seed, "t2", template=head, spacing=(0.7, 0.7, 5.0),
                      rendering=Rendering(contrast=CONTRASTS["flair"]))


def mean_dice(cases, model: str) -> tuple[float, dict[str, float]]:
    from benchmarks.bench_segmentation import _score_cases

    per = _score_cases(cases, model)
    means = {s: float(np.mean(v)) for s, v in per.items()}
    return float(np.mean(list(means.values()))), means


def main() -> None:
    import torch

    from orbitai.cohort.manifest import Case
    from orbitai.io import write_volume
    from orbitai.orbit.finetune import Recipe, finetune
    from orbitai.orbit.rank import rank_scans
    from orbitai.orbit.synth import PoolRecipe, SynthPool
    from orbitai.orbit.models import SEG_MODELS
    from orbitai.engine.inference import SegSpec

    torch.set_num_threads(2)
    base_choice = os.environ.get("ORBITAI_FINETUNE_BASE")   # another base (a bundle folder): its own result file
    base_name = f"{base_choice} (ORBITAI_FINETUNE_BASE)" if base_choice else "the bundled default MRI model " \
        "(orbit_svnet_mri_demo)"
    metrics: dict[str, Any] = {}
    with TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        pool_ph = [make_case(POOL_SEED + i, POOL_HEADS[i % 2]) for i in range(N_POOL)]
        test = [make_case(TEST_SEED + i, TEST_HEADS[i % 2]) for i in range(N_TEST)]
        pool = []
        for i, c in enumerate(pool_ph):
            image, seg = tmp / f"user{i}.nii.gz", tmp / f"user{i}_seg.nii.gz"
            write_volume(c.image, image)
            write_volume(c.labels, seg)
            pool.append(Case(f"user{i}", image, seg, {}))
        base = SEG_MODELS.find(base_choice or "MR")
        base_ref = str(base.path)
        metrics["base_dice"], per = mean_dice(test, base_ref)
        metrics.update({f"base_dice_{s}": v for s, v in per.items()})
        recipe = Recipe()
        # the phantom replay pool as finetune builds it, once for every run (its build time is in each timing below)
        t = time.perf_counter()
        replay = SynthPool.build(SegSpec.from_metadata(base.metadata),
                                 PoolRecipe(anatomies=recipe.replay_anatomies, seed=recipe.seed + 7700, templates=(0,),
                                            fov_edge=0.2))
        replay_s = time.perf_counter() - t
        metrics["replay_pool_seconds"] = round(replay_s, 1)

        def run(name: str, cases, rec: Recipe) -> dict[str, Any]:
            t0 = time.perf_counter()
            rep = finetune(cases, tmp / name, base=base_ref, recipe=rec, replay=replay, progress=lambda d, t, m: None)
            seconds = time.perf_counter() - t0 + replay_s
            dice, per = mean_dice(test, str(rep.bundle))
            return {"dice": dice, "per": per, "seconds": seconds, "report": rep}

        for n in (3, 10):
            r = run(f"ft{n}", pool[:n], recipe)
            o = r["report"].outcome
            metrics[f"ft{n}_dice"] = r["dice"]
            metrics[f"ft{n}_gain"] = r["dice"] - metrics["base_dice"]
            metrics[f"ft{n}_seconds"] = round(r["seconds"], 1)
            metrics[f"ft{n}_stop_step"] = o.stop_step
            metrics[f"ft{n}_cv_base"] = o.base_score
            metrics[f"ft{n}_cv_tuned"] = o.tuned_score
            metrics.update({f"ft{n}_dice_{s}": v for s, v in r["per"].items()})
        fixed = replace(recipe, folds=1)
        t = time.perf_counter()
        ranked = rank_scans([(c.case_id, c.image) for c in pool], base_ref)
        metrics["rank_seconds"] = round(time.perf_counter() - t, 1)
        top = [next(c for c in pool if c.case_id == r.case_id) for r in ranked[:3]]
        ranked_order = ", ".join(r.case_id for r in ranked)
        metrics["top3_dice"] = run("top3", top, fixed)["dice"]
        randoms = []
        for s in RANDOM_SEEDS:
            pick = [pool[i] for i in np.random.default_rng(s).choice(N_POOL, 3, replace=False)]
            randoms.append(run(f"random3_{s}", pick, fixed)["dice"])
            metrics[f"random3_seed{s}_dice"] = randoms[-1]
        metrics["random3_dice_mean"] = float(np.mean(randoms))
        metrics["top3_minus_random3"] = metrics["top3_dice"] - metrics["random3_dice_mean"]
    targets = {"ft3_gain": ">= 0.10", "ft10_gain": ">= 0.15", "ft3_seconds": "<= 600", "ft10_seconds": "<= 1500",
               "top3_minus_random3": "> 0"}
    notes = {"ranked_order": ranked_order, "domain": "FLAIR-like orbit MRI, 5 mm axial slices, held-out SynthSeg heads: pool from heads "
                       f"{list(POOL_HEADS)} (seeds {POOL_SEED}+i), test from heads {list(TEST_HEADS)} (seeds {TEST_SEED}+i)",
             "base": base_name, "recipe": str(Recipe()),
             "ranking_arms": "recipe with folds=1 (no early stopping, 200 steps) for top-3 and random-3 alike",
             "seconds": "whole finetune call incl. the phantom replay pool build, 2 CPU threads"}
    write_result("finetune" if base_choice is None else f"finetune_{Path(base_choice).name}", metrics, targets, notes)


if __name__ == "__main__":
    main()
