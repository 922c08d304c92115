"""Issue 79's bars: the lesion network's single threshold against its learned second look, in one run.

``python -m benchmarks lesion_second_look`` -> ``benchmarks/results/lesion_second_look.json``. The bundle is the
bundled lesion model or ``ORBITAI_LESION_BUNDLE`` (a folder whose second look was fitted by ``orbitai neuro
second-look``); both readings use the same mirrored probability of each case (`orbitai.neuro.lesionseg.lesion_mask`
with and without the second look: exactly what ``orbitai neuro lesions`` writes), computed once and cached
(`orbitai.neuro.lesionseg_eval.cached_probability`).

Sets, none fitted or chosen on (the second look is fitted on the validation split only):

* ``test_1mm``, ``test_thick``: the real-map test phantoms (real lesion maps never drawn in training, on SynthSeg
  brains 19-20; 1 mm 3D and 3-5 mm slices); ``test_2d``: the same acquired as 2D FLAIR at 5-8 mm;
* ``patient26``: Lesjak et al. cs_patient26 (real MS FLAIR, consensus mask); its brain was a training brain of the
  network (with other lesion maps), its lesions never.

Per set and reading: mean Dice, lesion precision, recall, F1 (every lesion, 26-connected), the recall of lesions >= and
< 10 mm3 (pooled), and on light loads (< 5 mL) the share with found/true volume within 0.7-1.5 and the median false
components per case; for the second look, what it dropped by kind and size, and how many of those touched a lesion.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any, Sequence

import numpy as np

from benchmarks.bench_lesion_detection import _patient26
from benchmarks.common import write_result


def _summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out = {k: float(np.mean([r[k] for r in rows])) for k in ("dice", "lesion_precision", "lesion_recall",
                                                              "lesion_f1")}
    for size in ("ge", "lt"):
        n = sum(r[f"n_true_{size}_10mm3"] for r in rows)
        hit = sum(r[f"recall_{size}_10mm3"] * r[f"n_true_{size}_10mm3"] for r in rows if r[f"n_true_{size}_10mm3"])
        out[f"recall_{size}_10mm3"] = float(hit / n) if n else float("nan")
    light = [r for r in rows if r["load"] == "light"]
    if light:
        ratios = [r["volume_pred_ml"] / r["volume_true_ml"] for r in light if r["volume_true_ml"] > 0]
        out["light_n"] = float(len(light))
        out["light_volume_within_0.7_1.5_share"] = float(np.mean([0.7 <= x <= 1.5 for x in ratios]))
        out["light_false_components_median"] = float(np.median([r["false_positive"] for r in light]))
    out["n"] = float(len(rows))
    return out


def main() -> None:
    import torch

    from orbitai.metrics.segmentation import lesion_metrics
    from orbitai.neuro.lesionseg import lesion_bundle, lesion_mask
    from orbitai.neuro.lesionseg_eval import PhantomCase, real_phantom_set, thick_2d_set
    from orbitai.neuro.second_look import DROPPED_KEY, SecondLook, find_candidates
    from orbitai.neuro.lesionseg_eval import cached_probability

    torch.set_num_threads(int(os.environ.get("ORBITAI_BENCH_THREADS", "2")))
    b = lesion_bundle(os.environ.get("ORBITAI_LESION_BUNDLE") or None)
    look = SecondLook.of_bundle(b)
    if look is None:
        raise SystemExit(f"{b.name} ({b.path}) has no second look; fit one with 'orbitai neuro second-look'.")
    model = b.load_model("cpu")
    test = real_phantom_set("test")
    flair, brain, truth = _patient26()
    sets = {"test_1mm": [c for c in test if not c.slice_mm], "test_thick": [c for c in test if c.slice_mm],
            "test_2d": list(thick_2d_set("test")),
            "patient26": [PhantomCase("patient26 (real MS FLAIR, MNI)", "heavy", flair, brain, truth)]}
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"bundle": f"{b.name} ({b.path.name}, weights {b.metadata['weights_sha256'][:12]})",
                             "second_look": {k: v for k, v in b.metadata["second_look"].items() if k != "features"},
                             "sets": {k: [c.name for c in v] for k, v in sets.items()}, "rows": {}, "dropped": {}}
    seconds = []
    for name, cases in sets.items():
        rows = {"single": [], "second_look": []}
        dropped_kinds: Counter = Counter()
        dropped_small = dropped_true = dropped_n = 0
        for c in cases:
            prob = cached_probability(c, b, model)
            t0 = time.perf_counter()
            after = lesion_mask(b, prob, c.image, c.brain)
            seconds.append(time.perf_counter() - t0)
            before = lesion_mask(b, prob, c.image, c.brain, second_look=False)
            t = np.asarray(c.truth.array) > 0
            for key, mask in (("single", before), ("second_look", after)):
                m = lesion_metrics(mask.array, t, c.image.spacing)
                rows[key].append({"case": c.name, "load": c.load, **{k: round(float(v), 4) for k, v in m.items()}})
            # what the second look dropped: the candidates not kept, by kind and size, and those on a true lesion
            cands = find_candidates(prob, c.image, np.asarray(c.brain.array) > 0, look.candidate_threshold)
            keep = look.scores(cands) >= look.keep_at
            for comp, k in zip(cands.comps, keep):
                if not k:
                    dropped_n += 1
                    dropped_kinds[comp.kind] += 1
                    dropped_small += comp.mm3 < 10.0
                    dropped_true += bool(t[cands.labels == comp.label].any())
            assert DROPPED_KEY in after.metadata
        for key, rs in rows.items():
            tag = "" if key == "second_look" else "single_"
            metrics.update({f"{tag}{name}_{k}": v for k, v in _summary(rs).items()})
        notes["rows"][name] = rows
        notes["dropped"][name] = {"candidates_dropped": dropped_n, "by_kind": dict(dropped_kinds),
                                  "under_10_mm3": dropped_small, "touching_a_true_lesion": dropped_true}
    metrics["second_look_seconds_median"] = float(np.median(seconds))
    targets = {"test_1mm_lesion_f1": ">= 0.65", "test_1mm_lesion_precision": ">= 0.60",
               "test_1mm_lesion_recall": ">= 0.60", "test_2d_lesion_f1": ">= 0.55", "test_thick_lesion_f1": ">= 0.55",
               "test_1mm_light_volume_within_0.7_1.5_share": ">= 0.8",
               "test_1mm_light_false_components_median": "<= 5", "patient26_lesion_f1": ">= 0.60",
               "patient26_dice": ">= 0.70"}
    notes["what"] = ("'single_*': the bundle's threshold, smallest lesion and false-positive rules (the path before "
                     "issue 79); unprefixed: the learned second look. Same probabilities, same cases.")
    write_result(os.environ.get("ORBITAI_LESION_AREA", "lesion_second_look"), metrics, targets, notes)


if __name__ == "__main__":
    main()
