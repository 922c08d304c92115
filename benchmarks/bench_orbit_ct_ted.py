"""The CT model on thyroid-eye-disease-like recti (issue 66): held-out CT phantoms as they are and with every rectus
enlarged, scored as ``orbitai seg evaluate`` scores them.

Cases: ``orbitai phantom orbit-ct --n 8 --seed 9000`` (the held-out seed of the CT model's accuracy figures, never
drawn by a training cohort) and the same eight with ``--ted 1.0`` (each case's recti enlarged by a factor drawn from
1.5-3.5x, ``orbitai.phantoms.orbit.TED_SCALE``). Models: the bundled CT default (``orbit_svnet_ct_demo``) and every
bundle folder ORBITAI_CT_COMPARE names (comma-separated; e.g. the previous release kept under build/models), each
evaluated on both cohorts in the same run.

Per model and cohort: the recti's mean Dice and the median of predicted / true volume (over cases and sides, each
rectus), the eyeball's and optic nerve's Dice. The bar it serves (issue 66): enlarged recti measured whole (predicted /
true volume >= 0.85), so that an enlarged muscle reads enlarged; and no loss on the healthy cohort against the models
compared in the same run.

``python -m benchmarks orbit_ct_ted`` -> ``benchmarks/results/orbit_ct_ted.json``.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

SEED, N = 9000, 8
RECTI = ("superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle", "lateral_rectus_muscle")
SHORT = {"superior_rectus_muscle": "sr", "inferior_rectus_muscle": "ir", "medial_rectus_muscle": "mr",
         "lateral_rectus_muscle": "lr", "eyeball": "eyeball", "optic_nerve": "on"}


def _evaluate(manifest: Path, model: str, out: Path) -> list[dict[str, str]]:
    from orbitai.orbit.evaluate import evaluate

    evaluate(manifest, model, out, device="cpu", progress=lambda *a: None)     # what 'seg evaluate' runs
    with (out / "per_case.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def main() -> None:
    from orbitai.phantoms import write_cohort

    models = ["orbit_svnet_ct_demo", *[m for m in os.environ.get("ORBITAI_CT_COMPARE", "").split(",") if m]]
    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {"cohorts": f"orbit-ct --n {N} --seed {SEED} (healthy) and the same with --ted 1.0 (ted)",
                             "models": models, "rows": {}}
    with tempfile.TemporaryDirectory() as tmp:
        cohorts = {"healthy": write_cohort("orbit-ct", N, SEED, Path(tmp) / "healthy", montage_cases=0),
                   "ted": write_cohort("orbit-ct", N, SEED, Path(tmp) / "ted", montage_cases=0, ted=1.0)}
        with (Path(tmp) / "ted" / "manifest.csv").open(newline="") as f:
            notes["ted_scales"] = [float(r["muscle_scale"]) for r in csv.DictReader(f)]
        for mi, model in enumerate(models):
            label = "bundled" if mi == 0 else Path(model).name
            for cohort, manifest in cohorts.items():
                rows = _evaluate(manifest, model, Path(tmp) / f"{mi}_{cohort}")
                recti = [r for r in rows if r["structure"] in RECTI]
                key = f"{label}_{cohort}"
                metrics[f"{key}_recti_dice_mean"] = float(np.mean([float(r["dice"]) for r in recti]))
                metrics[f"{key}_recti_pred_over_truth_median"] = float(np.median(
                    [float(r["volume_pred_cm3"]) / float(r["volume_true_cm3"]) for r in recti
                     if float(r["volume_true_cm3"]) > 0]))
                for s in ("eyeball", "optic_nerve", *RECTI):
                    metrics[f"{key}_dice_{SHORT[s]}"] = float(np.mean([float(r["dice"]) for r in rows
                                                                       if r["structure"] == s]))
                notes["rows"][key] = [{k: (round(float(v), 4) if k not in ("case_id", "structure") else v)
                                       for k, v in r.items() if k in ("case_id", "structure", "dice",
                                                                      "volume_pred_cm3", "volume_true_cm3")}
                                      for r in rows]
                print(key, {k: round(v, 3) for k, v in metrics.items() if k.startswith(key)}, flush=True)
    write_result("orbit_ct_ted", metrics,
                 {"bundled_ted_recti_pred_over_truth_median": ">= 0.85"}, notes)


if __name__ == "__main__":
    main()
