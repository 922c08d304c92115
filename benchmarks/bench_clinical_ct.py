"""Clinical CT as it comes from the scanner (issue #19): a DICOM series with gantry tilt and uneven
slice spacing, against the same phantom acquired untilted.

One CT orbit phantom (seed 9190) is "acquired" by :mod:`orbitai.phantoms.clinical_ct` as 28 axial
slices with mixed spacing (5 mm at both ends, 2.5 mm through the orbits) three times: untilted
(the reference), with a 20 degree gantry tilt, and with a tilt varying from 10 to 25 degrees.
Each series goes through ``orbitai seg predict`` (a child process: the command line's own code
path, default bundled CT model). Measured:

* eyeball and each rectus volume of the tilted run against the untilted reference (% difference);
* Dice of every structure against the phantom's truth resampled (nearest) onto each run's output
  grid, tilted minus reference;
* the naive reading (ITK's series reader as if the slices were untilted and evenly spaced, as
  orbitai did before issue #19), segmented in-process with the same model: its volume error against
  the reference, and its ratio to the corrected run's error;
* reading + resampling a 28-slice 512 x 512 tilted series (best of 3), and the tilted run's end-to-end
  command time. Run under ``taskset -c 0,1`` for the 2-core figures.

Run: ``python -m benchmarks clinical_ct`` (writes benchmarks/results/clinical_ct.json).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import best_of, write_result

SEED = 9190
#: 27 gaps (28 slices): 5 mm at both ends, 2.5 mm through the orbits (median 2.5 mm, largest 2x median)
GAPS = [5.0] * 3 + [2.5] * 20 + [5.0] * 4
BELOW_MM = 40.0            # first slice this far below the phantom's centre along the table
TILT = 20.0
STRUCTURES = ("eyeball", "optic_nerve", "superior_rectus_muscle", "inferior_rectus_muscle",
              "medial_rectus_muscle", "lateral_rectus_muscle")
SHORT = {"eyeball": "eyeball", "optic_nerve": "on", "superior_rectus_muscle": "sr",
         "inferior_rectus_muscle": "ir", "medial_rectus_muscle": "mr", "lateral_rectus_muscle": "lr"}


def seg_predict(series: Path, out: Path) -> tuple[float, dict]:
    """``python -m orbitai seg predict SERIES --out OUT``: wall seconds and result.json."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orbitai", "seg", "predict", str(series), "--out", str(out)],
                          capture_output=True, text=True, encoding="utf-8")
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"seg predict {series.name} failed: {proc.stderr.strip()[-500:]}")
    return wall, json.loads((out / "result.json").read_text())


def volumes(result: dict) -> dict[str, float]:
    return {r["name"]: float(r["volume_cm3"]) for r in result["structures"]}


def dice_vs_truth(labels, truth) -> dict[str, float]:
    """Dice per structure and side of ``labels`` against ``truth`` resampled onto its grid."""
    from orbitai.io import resample_like
    from orbitai.labels import ORBIT_LABELS
    from orbitai.metrics.segmentation import dice

    ref = resample_like(truth, labels, label=True).array
    return {lab.name: dice(labels.array == v, ref == v) for v, lab in ORBIT_LABELS.items()
            if lab.structure in STRUCTURES}


def naive_volumes(series: Path) -> dict[str, float]:
    """The series read by ITK's series reader as one regular grid (first slice's orientation, spacing from
    the slice positions) and segmented in-process with the same model: what orbitai did before #19."""
    import SimpleITK as sitk

    from orbitai.bundle.models import load_seg_model
    from orbitai.io import Volume, itk_warnings_off
    from orbitai.orbit.rules import structure_volumes
    from orbitai.orbit.segment import segment

    reader = sitk.ImageSeriesReader()
    with itk_warnings_off():
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series)))
        vol = Volume.from_sitk(reader.Execute())
    _, model, spec = load_seg_model(None, True, "cpu")
    res = segment(vol, model, spec, "overlap", "cpu")
    return {r["name"]: float(r["volume_cm3"]) for r in structure_volumes(res.labels, spec.structures)}


def pct(a: float, b: float) -> float:
    return 100.0 * abs(a - b) / b if b else float("inf")


def main() -> None:
    from orbitai.io import read_dicom_scan
    from orbitai.phantoms.clinical_ct import source_phantom, write_clinical_series
    from orbitai.segfile import read_segmentation

    metrics: dict[str, float] = {}
    notes: dict[str, str] = {"threads": str(os.environ.get("OMP_NUM_THREADS", "default")),
                             "cpu_affinity": str(len(os.sched_getaffinity(0))) + " cores",
                             "series": f"28 slices, gaps {sorted(set(GAPS))} mm (5 mm at both ends, 2.5 mm through "
                                       f"the orbits), 256x256 at 0.5 mm, phantom seed {SEED}"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        case = source_phantom(SEED, height_mm=150.0)
        runs = {"reference": 0.0, "tilted": TILT, "varying": list(np.linspace(10.0, 25.0, len(GAPS) + 1))}
        results, dices = {}, {}
        for name, tilt in runs.items():
            series = write_clinical_series(case, tmp / name, GAPS, tilt, below_mm=BELOW_MM).folder
            wall, results[name] = seg_predict(series, tmp / f"out_{name}")
            labels = read_segmentation(tmp / f"out_{name}" / "segmentation.seg.nrrd")[0]
            dices[name] = dice_vs_truth(labels, case.labels)
            metrics[f"{name}_seg_predict_s"] = wall
        notes["tilted_acquisition"] = "; ".join(results["tilted"]["acquisition"]["notes"])
        notes["varying_acquisition"] = "; ".join(results["varying"]["acquisition"]["notes"])
        ref_v = volumes(results["reference"])
        for name in ("tilted", "varying"):
            v = volumes(results[name])
            errs = {}
            for s in ("eyeball", *[s for s in STRUCTURES if s.endswith("rectus_muscle")]):
                for side in ("left", "right"):
                    errs[f"{SHORT[s]}_{side}"] = pct(v[f"{s}_{side}"], ref_v[f"{s}_{side}"])
            for k, e in errs.items():
                metrics[f"{name}_vs_reference_volume_pct_{k}"] = e
            metrics[f"{name}_vs_reference_volume_pct_max"] = max(errs.values())
            diffs = {k: abs(dices[name][k] - dices["reference"][k]) for k in dices["reference"]}
            metrics[f"{name}_vs_reference_dice_diff_max"] = max(diffs.values())
            metrics[f"{name}_dice_min"] = min(dices[name].values())
        metrics["reference_dice_min"] = min(dices["reference"].values())
        metrics["reference_dice_eyeball_mean"] = float(np.mean([dices["reference"][f"eyeball_{s}"]
                                                                for s in ("left", "right")]))
        metrics["tilted_dice_eyeball_mean"] = float(np.mean([dices["tilted"][f"eyeball_{s}"]
                                                             for s in ("left", "right")]))
        # the naive reading of the tilted series, for comparison
        naive = naive_volumes(tmp / "tilted")
        naive_err = {s: pct(naive[s], ref_v[s]) for s in ref_v if s.split("_")[0] in ("eyeball",) or "rectus" in s}
        metrics["naive_vs_reference_eyeball_pct_max"] = max(naive_err[f"eyeball_{s}"] for s in ("left", "right"))
        metrics["naive_vs_reference_volume_pct_max"] = max(naive_err.values())
        metrics["naive_over_corrected_volume_error_ratio"] = (metrics["naive_vs_reference_volume_pct_max"]
                                                              / max(metrics["tilted_vs_reference_volume_pct_max"], 1e-6))
        # reading + resampling a clinical-size series: 28 slices of 512 x 512, tilted 20 degrees
        big = write_clinical_series(case, tmp / "big", GAPS, TILT, matrix=512, pixel_mm=0.25, below_mm=BELOW_MM).folder
        metrics["read_resample_512x512x28_tilted_s"] = best_of(lambda: read_dicom_scan(big), 3)
        metrics["read_resample_256x256x28_tilted_s"] = best_of(lambda: read_dicom_scan(tmp / "tilted"), 3)
    targets = {
        "tilted_vs_reference_volume_pct_max": "<= 10",
        "tilted_vs_reference_dice_diff_max": "<= 0.05",
        "read_resample_512x512x28_tilted_s": "<= 5",
        "tilted_seg_predict_s": "<= 60",
    }
    write_result("clinical_ct", metrics, targets, notes)


if __name__ == "__main__":
    main()
