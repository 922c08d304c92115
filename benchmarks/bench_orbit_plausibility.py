"""Orbit results checked for plausibility (issue 31), one run, bundled default models.

* Held-out phantoms (the sets of ``bench_segmentation``: CT seeds 9000+, MRI T2/T1/domain-randomised 3 and 5 mm
  seeds 9100+): each structure-side's Dice against the truth, its mean confidence (the winning class probability
  over its voxels) and its check (``orbitai.orbit.anatomy``). How low the confidence of well-segmented
  structures (Dice >= 0.75) goes is what ``UNCERTAIN_BELOW`` is set from; how often badly segmented ones
  (Dice < 0.5) are flagged says what the flag catches.
* The real clinical MRIs (``../shared/data/ms_flair_raw_lesjak``): each structure-side found, in its normal
  range, flagged, and the one-line verdict.
* Scans without eyes: a dry-skull CT (the CT phantom with every soft tissue gone), a CT whose globes are orbital
  fat, a brain-only FLAIR: refused with "No orbit found" (1) or not (0).

``python -m benchmarks orbit_plausibility`` -> ``benchmarks/results/orbit_plausibility.json``.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.common import write_result

GOOD_DICE, BAD_DICE = 0.75, 0.5


def _structure_rows(case_labels, pred_labels, confidence, structures) -> list[dict[str, Any]]:
    from orbitai.orbit.anatomy import check_structures

    rows = []
    for c in check_structures(pred_labels, structures, confidence):
        p, t = pred_labels.array == c.label, case_labels.array == c.label
        denom = int(p.sum()) + int(t.sum())
        rows.append({"label": c.label, "status": c.status, "confidence": c.confidence,
                     "dice": 2 * int(np.count_nonzero(p & t)) / denom if denom else 1.0})
    return rows


def main() -> None:
    import torch

    from benchmarks.bench_segmentation import MRI_N, MRI_SEED, REAL_MRI, TEST_N, TEST_SEED
    from orbitai.io import read_volume
    from orbitai.labels import values_for
    from orbitai.orbit.anatomy import UNCERTAIN, UNCERTAIN_BELOW, check_structures, verdict
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.rules import OrbitNotFoundError
    from orbitai.orbit.segment import segment
    from orbitai.phantoms import brain_flair_case, orbit_case
    from orbitai.phantoms.orbit import Rendering

    torch.set_num_threads(2)
    models = {ct: load_seg_model(None, ct, "cpu") for ct in (True, False)}
    sets = {"ct": (True, lambda s: orbit_case(s, "ct"), TEST_SEED, TEST_N),
            "t2": (False, lambda s: orbit_case(s, "t2"), MRI_SEED, MRI_N),
            "t1": (False, lambda s: orbit_case(s, "t1"), MRI_SEED + 100, MRI_N),
            "dr3mm": (False, lambda s: orbit_case(s, "t2", spacing=(0.7, 0.7, 3.0),
                                                  rendering=Rendering(domain_random=True)), MRI_SEED + 200, MRI_N),
            "dr5mm": (False, lambda s: orbit_case(s, "t2", spacing=(0.7, 0.7, 5.0),
                                                  rendering=Rendering(domain_random=True)), MRI_SEED + 300, MRI_N)}
    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {"models": {("ct" if ct else "mri"): b.name for ct, (b, _, _) in models.items()}}
    everything = []
    for name, (ct, make, seed, n) in sets.items():
        _, net, spec = models[ct]
        rows = []
        for i in range(n):
            case = make(seed + i)
            res = segment(case.image, net, spec, "overlap", "cpu")
            rows += _structure_rows(case.labels, res.labels, res.confidence, spec.structures)
        good = [r for r in rows if r["dice"] >= GOOD_DICE]
        bad = [r for r in rows if r["dice"] < BAD_DICE]
        metrics[f"{name}_structures"] = len(rows)
        metrics[f"{name}_normal_share"] = float(np.mean([r["status"] == "normal" for r in rows]))
        metrics[f"{name}_good_confidence_min"] = float(min(r["confidence"] or 0 for r in good)) if good else float("nan")
        metrics[f"{name}_good_flagged_uncertain_share"] = float(np.mean([r["status"] == UNCERTAIN for r in good])) if good else 0.0
        metrics[f"{name}_bad_structures"] = len(bad)
        metrics[f"{name}_bad_flagged_share"] = float(np.mean([r["status"] != "normal" for r in bad])) if bad else float("nan")
        everything += rows
    good = [r for r in everything if r["dice"] >= GOOD_DICE]
    metrics["phantom_good_confidence_min"] = float(min(r["confidence"] or 0 for r in good))
    metrics["phantom_good_confidence_p01"] = float(np.percentile([r["confidence"] or 0 for r in good], 1))
    notes["phantoms"] = (f"CT seeds {TEST_SEED}+ (n={TEST_N}), MRI sets seeds {MRI_SEED}+100k (n={MRI_N} each), as "
                         f"bench_segmentation; good = Dice >= {GOOD_DICE}, bad = Dice < {BAD_DICE}; confidence = mean "
                         f"winning class probability over the structure; UNCERTAIN_BELOW = {UNCERTAIN_BELOW}")

    # the real clinical MRIs: found, in range, flagged
    _, net, spec = models[False]
    real: dict[str, Any] = {}
    for path in sorted(REAL_MRI.glob("long_patient*_study1_*.nii.gz")):
        name = path.name.replace("long_", "").replace("_study1", "").replace(".nii.gz", "")
        vol = read_volume(path)
        t0 = time.perf_counter()
        try:
            res = segment(vol, net, spec, "overlap", "cpu")
        except OrbitNotFoundError as exc:
            real[name] = {"refused": str(exc)}
            continue
        checks = check_structures(res.labels, spec.structures, res.confidence)
        real[name] = {"seconds": round(time.perf_counter() - t0, 2), "verdict": verdict(checks),
                      "structures": {c.name: {"volume_cm3": round(c.volume_cm3, 3), "status": c.status,
                                              "in_range": bool(c.volume_cm3 > 0 and c.normal_cm3[0] <= c.volume_cm3
                                                               <= c.normal_cm3[1]),
                                              "confidence": None if c.confidence is None else round(c.confidence, 3)}
                                     for c in checks}}
    sides = [s for r in real.values() for s in r.get("structures", {}).values()]
    n_sides = 12 * len(real)
    metrics["real_scans"] = len(real)
    metrics["real_scans_refused"] = sum("refused" in r for r in real.values())
    metrics["real_found_share"] = sum(s["status"] != "not found" for s in sides) / n_sides if n_sides else 0.0
    metrics["real_in_range_share"] = sum(s["in_range"] for s in sides) / n_sides if n_sides else 0.0
    metrics["real_flagged_uncertain_share"] = sum(s["status"] == UNCERTAIN for s in sides) / n_sides if n_sides else 0.0
    metrics["real_scans_with_verdict"] = sum(bool(r.get("verdict")) for r in real.values())
    notes["real"] = real

    # scans without eyes
    ct_case = orbit_case(TEST_SEED + 777, "ct", oblique=False)
    rng = np.random.default_rng(0)
    skull = ct_case.image.array.astype(np.float32)
    skull[skull < 300] = -1000 + rng.normal(0, 10, int((skull < 300).sum()))
    no_globes = ct_case.image.array.copy()
    eye = np.isin(ct_case.labels.array, values_for("eyeball"))
    no_globes[eye] = np.rint(-100 + rng.normal(0, 10, int(eye.sum()))).astype(no_globes.dtype)
    without = {"ct_dry_skull": (True, ct_case.image.with_array(np.rint(skull).astype(np.int16))),
               "ct_no_globes": (True, ct_case.image.with_array(no_globes)),
               "mri_brain_only": (False, brain_flair_case(TEST_SEED + 777).image)}
    for name, (ct, image) in without.items():
        _, net, spec = models[ct]
        try:
            segment(image, net, spec, "overlap", "cpu")
            metrics[f"no_orbit_{name}_refused"] = 0
        except OrbitNotFoundError:
            metrics[f"no_orbit_{name}_refused"] = 1
    targets = {"real_in_range_share": ">= 0.85", "real_found_share": ">= 1",
               **{f"no_orbit_{k}_refused": ">= 1" for k in without}}
    write_result("orbit_plausibility", metrics, targets, notes)


if __name__ == "__main__":
    main()
