"""Issue #65's bars, lesion-wise: the bundled lesion network against candidates, in one run.

``python -m benchmarks lesion_detection`` -> ``benchmarks/results/lesion_detection.json``; candidates (bundle folders,
their post-processing chosen by ``orbitai neuro tune-lesions`` on the validation phantoms) are named in
``ORBITAI_LESION_CANDIDATES`` (comma-separated) and scored on the same cases as the bundled model
(``ORBITAI_LESION_AREA``: another results file, e.g. for a candidate not adopted).

Every mask is what a user gets (`orbitai.neuro.lesionseg.segment_with`: mirrored test-time augmentation, the bundle's
post-processing, the false-positive rules). Sets, none trained on or chosen on:

* ``test_1mm``, ``test_thick``: the held-out real-map test phantoms (`orbitai.neuro.lesionseg_eval.real_phantom_set`:
  real lesion maps of patients never drawn, on SynthSeg brains 19-20 never trained on; 1 mm 3D and 3-5 mm slices);
* ``test_2d``: the same brains and maps acquired as 2D clinical FLAIR (5-8 mm slices, 0.45-0.9 mm in-plane,
  `orbitai.neuro.lesionseg_eval.thick_2d_set`), scored on the acquired grid;
* ``patient26``: Lesjak et al. cs_patient26 (real MS FLAIR in MNI space and its consensus mask; final check only).

Per set: mean voxel Dice, mean lesion-wise F1 (every lesion, 26-connected; a true lesion is found when a predicted
voxel touches it), F1 of lesions >= 10 mm3, and on light loads (< 5 mL) the share of cases whose found/true volume lies
within 0.7-1.5 and the false components per case (each listed).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks.common import write_result

DATA = Path("/work/shared/data")


def _patient26() -> tuple[Any, Any, Any]:
    from benchmarks.bench_neuro_lesions import _real_files
    from orbitai.io import read_volume

    fp, lp = _real_files()
    flair = read_volume(fp)
    truth = flair.with_array((read_volume(lp).array > 0).astype(np.uint8))
    return flair, flair.with_array((flair.array > 0).astype(np.uint8)), truth


def score_set(bundle: Any, model: Any, cases: Sequence[Any]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """What a user gets on each case, scored; the set's summary and its rows."""
    from orbitai.metrics.segmentation import lesion_metrics
    from orbitai.neuro.lesionseg import segment_with
    from orbitai.neuro.lesionseg_eval import counted_f1

    rows = []
    for c in cases:
        mask = segment_with(bundle, model, c.image, c.brain, "cpu").array
        m = lesion_metrics(mask, c.truth.array, c.image.spacing)
        rows.append({"case": c.name, "load": c.load, **{k: round(float(v), 4) for k, v in m.items()},
                     **{k: round(float(v), 4) for k, v in counted_f1(mask, c.truth.array, c.image.spacing).items()}})
    light = [r for r in rows if r["load"] == "light"]
    out = {"dice": float(np.mean([r["dice"] for r in rows])), "lesion_f1": float(np.mean([r["lesion_f1"] for r in rows])),
           "lesion_f1_counted": float(np.mean([r["lesion_f1_counted"] for r in rows])), "n": float(len(rows))}
    if light:
        ratios = [r["volume_pred_ml"] / r["volume_true_ml"] for r in light if r["volume_true_ml"] > 0]
        out.update({"light_n": float(len(light)),
                    "light_volume_within_0.7_1.5_share": float(np.mean([0.7 <= x <= 1.5 for x in ratios])),
                    "light_false_components_median": float(np.median([r["false_positive"] for r in light])),
                    "light_lesion_f1": float(np.mean([r["lesion_f1"] for r in light]))})
    return out, rows


def main() -> None:
    import torch

    from orbitai.neuro.lesionseg import DEFAULT_BUNDLE, bundle_postprocess, lesion_bundle
    from orbitai.neuro.lesionseg_eval import real_phantom_set, thick_2d_set

    torch.set_num_threads(int(os.environ.get("ORBITAI_BENCH_THREADS", "2")))
    names = [DEFAULT_BUNDLE] + [s for s in os.environ.get("ORBITAI_LESION_CANDIDATES", "").split(",") if s]
    test = real_phantom_set("test")
    sets = {"test_1mm": [c for c in test if not c.slice_mm], "test_thick": [c for c in test if c.slice_mm],
            "test_2d": list(thick_2d_set("test"))}
    flair, brain, truth = _patient26()
    p26 = [type(test[0])("patient26 (real MS FLAIR, MNI)", "heavy", flair, brain, truth)]
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"sets": {k: [c.name for c in v] for k, v in sets.items()}, "bundles": {}, "rows": {}}
    for n, name in enumerate(names):
        b = lesion_bundle(name)
        model = b.load_model("cpu")
        tag = "" if n == 0 else f"candidate{n}_"
        notes["bundles"][tag or "bundled"] = {"bundle": f"{b.name} ({b.metadata['weights_sha256'][:12]})",
                                              "path": name if n else DEFAULT_BUNDLE,
                                              "postprocess": bundle_postprocess(b).__dict__,
                                              "training": b.metadata.get("training", {}).get("loss")}
        t0 = time.perf_counter()
        for set_name, cases in {**sets, "patient26": p26}.items():
            s, rows = score_set(b, model, cases)
            metrics.update({f"{tag}{set_name}_{k}": v for k, v in s.items()})
            notes["rows"][f"{tag}{set_name}"] = rows
        notes["bundles"][tag or "bundled"]["seconds"] = round(time.perf_counter() - t0, 1)
    targets = {"test_1mm_lesion_f1": ">= 0.60", "test_1mm_dice": ">= 0.60", "test_2d_lesion_f1": ">= 0.50",
               "test_1mm_light_volume_within_0.7_1.5_share": ">= 0.8", "test_thick_light_volume_within_0.7_1.5_share":
               ">= 0.8", "test_1mm_light_false_components_median": "<= 5", "patient26_lesion_f1": ">= 0.50",
               "patient26_dice": ">= 0.70"}
    write_result(os.environ.get("ORBITAI_LESION_AREA", "lesion_detection"), metrics, targets, notes)


if __name__ == "__main__":
    main()
