"""Clinical CT as it comes from the scanner (issue #19): DICOM series with gantry tilt and uneven
slice spacing, against the same phantom acquired untilted.

CT orbit phantoms are "acquired" by :mod:`orbitai.phantoms.clinical_ct` with the same uneven gaps
untilted (the reference) and with a 20 degree gantry tilt, and each series goes through
``orbitai seg predict`` (a child process: the command line's own code path, default bundled CT
model). Two configurations:

* ``fine`` (the accuracy bars): 41 slices, 1.25 mm through the orbits and 2.5 mm at both ends,
  three phantoms (seeds 9190-9192); the first also with a tilt varying from 10 to 25 degrees.
* ``thick``: a thick-slice head CT, 28 slices, 2.5 mm through the orbits and 5 mm at both ends, the
  same three phantoms: the end-to-end time bar, the naive reading, and how far the model itself moves between
  two acquisitions of thin muscles at 2.5 mm.

Measured: eyeball and each rectus volume of each tilted run against its untilted reference (% , the
largest over phantoms, structures and sides) and both against the phantom's truth; Dice of every
structure against the truth resampled (nearest) onto each run's output grid, per structure and side
the mean over the phantoms, tilted minus reference (the bar: eyeball and recti, as for the volumes;
the optic nerve apart), and the largest single-case difference; the naive reading (ITK's series
reader as if untilted and evenly spaced, as orbitai did before #14/#19) segmented in-process with the
same model, its volume error and its ratio to the corrected run's; reading + resampling a 28-slice
512 x 512 tilted series (best of 3); the tilted runs' end-to-end command time (wall, and the child's
CPU seconds with the load average: on a shared machine the wall time includes waiting for the cores).

Run: ``python -m benchmarks clinical_ct`` (writes benchmarks/results/clinical_ct.json).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.common import best_of, write_result

SEEDS = (9190, 9191, 9192)
#: The bars' series, 41 slices: 1.25 mm through the orbits, 2.5 mm at both ends (median 1.25, largest 2x median)
FINE_GAPS, FINE_BELOW = [2.5] * 4 + [1.25] * 32 + [2.5] * 4, 28.0
#: A thick-slice head CT, 28 slices: 2.5 mm through the orbits, 5 mm at both ends (median 2.5, largest 2x median)
GAPS, BELOW_MM = [5.0] * 3 + [2.5] * 20 + [5.0] * 4, 40.0
TILT = 20.0
STRUCTURES = ("eyeball", "optic_nerve", "superior_rectus_muscle", "inferior_rectus_muscle",
              "medial_rectus_muscle", "lateral_rectus_muscle")
BAR = ("eyeball", "superior_rectus_muscle", "inferior_rectus_muscle", "medial_rectus_muscle", "lateral_rectus_muscle")
SHORT = {"eyeball": "eyeball", "optic_nerve": "on", "superior_rectus_muscle": "sr",
         "inferior_rectus_muscle": "ir", "medial_rectus_muscle": "mr", "lateral_rectus_muscle": "lr"}


def seg_predict(series: Path, out: Path) -> tuple[float, float, float, dict]:
    """``python -m orbitai seg predict SERIES --out OUT``: wall seconds, CPU seconds (user + system) of the
    child, the load average over the last minute when it ended, and its result.json."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "orbitai", "seg", "predict", str(series), "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"seg predict {series.name} failed: {err.read().strip()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, os.getloadavg()[0], json.loads((out / "result.json").read_text())


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

    from orbitai.io import Volume, itk_warnings_off
    from orbitai.orbit.models import load_seg_model
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


def truth_volumes(truth) -> dict[str, float]:
    from orbitai.labels import ORBIT_LABELS

    vv = truth.voxel_volume_mm3() / 1000.0
    return {lab.name: float(np.count_nonzero(truth.array == v)) * vv for v, lab in ORBIT_LABELS.items()}


def run_config(tag: str, gaps: list[float], below: float, seeds: tuple[int, ...], tmp: Path, metrics: dict,
               notes: dict, varying: bool = False) -> None:
    """Untilted reference and 20-degree tilt (and a 10-25 degree varying tilt for the first phantom) of
    ``gaps``, each through ``orbitai seg predict``; metrics prefixed ``tag``."""
    from orbitai.io.segfile import read_segmentation
    from orbitai.phantoms.clinical_ct import source_phantom, write_clinical_series

    bar_keys = [f"{s}_{side}" for s in BAR for side in ("left", "right")]
    dices: dict[str, list[dict[str, float]]] = {"reference": [], "tilted": [], "varying": []}
    vol_err: dict[str, list[float]] = {"tilted": [], "varying": [], "reference_vs_truth": [], "tilted_vs_truth": []}
    walls, cpus = [], []
    for n, seed in enumerate(seeds):
        case = source_phantom(seed, height_mm=150.0)
        truth_v = truth_volumes(case.labels)
        runs: dict[str, float | list[float]] = {"reference": 0.0, "tilted": TILT}
        if varying and n == 0:
            runs["varying"] = list(np.linspace(10.0, 25.0, len(gaps) + 1))
        results = {}
        for name, tilt in runs.items():
            folder = tmp / f"{tag}_{name}{n}"
            write_clinical_series(case, folder, gaps, tilt, below_mm=below)
            wall, cpu, load, results[name] = seg_predict(folder, tmp / f"{tag}_out_{name}{n}")
            labels = read_segmentation(tmp / f"{tag}_out_{name}{n}" / "segmentation.seg.nrrd")[0]
            dices[name].append(dice_vs_truth(labels, case.labels))
            notes[f"{tag}_seed{seed}_{name}_load_average_1min"] = f"{load:.1f}"
            if name == "tilted":
                walls.append(wall)
                cpus.append(cpu)
            for k, v in dices[name][-1].items():
                metrics[f"{tag}_seed{seed}_{name}_dice_{SHORT[k.rsplit('_', 1)[0]]}_{k.rsplit('_', 1)[1]}"] = v
        if n == 0:
            notes[f"{tag}_tilted_acquisition"] = "; ".join(results["tilted"]["acquisition"]["notes"])
            notes[f"{tag}_series"] = (f"{len(gaps) + 1} slices, gaps {sorted(set(gaps))} mm, 256x256 at 0.5 mm, "
                                      f"phantom seeds {list(seeds)}")
        ref_v = volumes(results["reference"])
        for name in runs:
            if name == "reference":
                continue
            v = volumes(results[name])
            for k in bar_keys:
                e = pct(v[k], ref_v[k])
                metrics[f"{tag}_seed{seed}_{name}_vs_reference_volume_pct_{SHORT[k.rsplit('_', 1)[0]]}_"
                        f"{k.rsplit('_', 1)[1]}"] = e
                vol_err[name].append(e)
        vol_err["reference_vs_truth"] += [pct(ref_v[k], truth_v[k]) for k in bar_keys]
        vol_err["tilted_vs_truth"] += [pct(volumes(results["tilted"])[k], truth_v[k]) for k in bar_keys]
    for name, errs in vol_err.items():
        if errs:
            metrics[f"{tag}_{name}_volume_pct_max" if "truth" in name else f"{tag}_{name}_vs_reference_volume_pct_max"
                    ] = max(errs)
    # Dice per structure and side: the mean over the phantoms, tilted against reference
    mean = {name: {k: float(np.mean([c[k] for c in dices[name]])) for k in dices[name][0]}
            for name in ("reference", "tilted")}
    metrics[f"{tag}_tilted_vs_reference_mean_dice_diff_max"] = max(abs(mean["tilted"][k] - mean["reference"][k])
                                                                   for k in bar_keys)
    metrics[f"{tag}_tilted_vs_reference_mean_dice_diff_on_max"] = max(
        abs(mean["tilted"][k] - mean["reference"][k]) for k in mean["reference"] if "optic" in k)
    metrics[f"{tag}_tilted_vs_reference_single_case_dice_diff_max"] = max(
        abs(t[k] - r[k]) for t, r in zip(dices["tilted"], dices["reference"]) for k in bar_keys)
    metrics[f"{tag}_reference_dice_min"] = min(min(c[k] for k in bar_keys) for c in dices["reference"])
    metrics[f"{tag}_tilted_dice_min"] = min(min(c[k] for k in bar_keys) for c in dices["tilted"])
    metrics[f"{tag}_tilted_seg_predict_s_max"] = max(walls)
    metrics[f"{tag}_tilted_seg_predict_cpu_s_max"] = max(cpus)


def main() -> None:
    from orbitai.io import read_dicom_scan
    from orbitai.phantoms.clinical_ct import source_phantom, write_clinical_series

    metrics: dict[str, float] = {}
    notes: dict[str, str] = {"threads": str(os.environ.get("OMP_NUM_THREADS", "default")),
                             "cpu_affinity": str(len(os.sched_getaffinity(0))) + " cores"}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        run_config("fine", FINE_GAPS, FINE_BELOW, SEEDS, tmp, metrics, notes, varying=True)
        run_config("thick", GAPS, BELOW_MM, SEEDS, tmp, metrics, notes)
        # the naive reading of the thick tilted series (ITK, as if untilted and evenly spaced), for comparison
        ref = volumes(json.loads((tmp / "thick_out_reference0" / "result.json").read_text()))
        naive = naive_volumes(tmp / "thick_tilted0")
        keys = [f"{s}_{side}" for s in BAR for side in ("left", "right")]
        metrics["thick_naive_vs_reference_eyeball_pct_max"] = max(pct(naive[f"eyeball_{s}"], ref[f"eyeball_{s}"])
                                                                  for s in ("left", "right"))
        metrics["thick_naive_vs_reference_volume_pct_max"] = max(pct(naive[k], ref[k]) for k in keys)
        corrected = max(v for k, v in metrics.items() if k.startswith(f"thick_seed{SEEDS[0]}_tilted_vs_reference_volume"))
        metrics["thick_naive_over_corrected_volume_error_ratio"] = (   # the same phantom (seed SEEDS[0])
            metrics["thick_naive_vs_reference_volume_pct_max"] / max(corrected, 1e-6))
        # reading + resampling a clinical-size series: 28 slices of 512 x 512, tilted 20 degrees
        big = tmp / "big"
        write_clinical_series(source_phantom(SEEDS[0], height_mm=150.0), big, GAPS, TILT, matrix=512, pixel_mm=0.25,
                              below_mm=BELOW_MM)
        metrics["read_resample_512x512x28_tilted_s"] = best_of(partial(read_dicom_scan, big), 3)
        metrics["read_resample_256x256x28_tilted_s"] = best_of(partial(read_dicom_scan, tmp / "thick_tilted0"), 3)
    targets = {
        "fine_tilted_vs_reference_volume_pct_max": "<= 10",
        "fine_tilted_vs_reference_mean_dice_diff_max": "<= 0.05",
        "read_resample_512x512x28_tilted_s": "<= 5",
        "thick_tilted_seg_predict_s_max": "<= 60",
    }
    write_result("clinical_ct", metrics, targets, notes)


if __name__ == "__main__":
    main()
