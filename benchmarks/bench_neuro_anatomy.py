"""Brain extraction, ICV and lesion-location classes of orbitai.neuro.anatomy (issue #16, sections A-B).

* The real raw FLAIRs of ``../shared/data/ms_flair_raw_lesjak`` (whole head, oblique, 3-4 mm slices):
  intracranial volume (bar: 1.1-1.9 L), seconds per scan on one thread (template build timed apart, it
  is paid once per process), a montage each in ``docs/neuro/montage_<patient>.png``, and check_flair's
  verdict on the T1 and T2 series of the same patients (they must be refused as FLAIR).
* Brain phantoms (``orbitai.phantoms.brain``; seeds 7100+, MS and NMOSD): the location classes of
  `lesion_table` on the phantom's exact lesion mask against the kinds the generator placed
  (``info["lesion_counts"]``). The generator gives counts per kind, not a kind per lesion, so agreement
  is the overlap of the two class histograms, sum_c min(true_c, found_c) / max(n_true, n_found), pooled over
  the phantoms, overall and per class. Kinds are mapped: callosal_long -> callosal (its 7 overlapping
  ellipsoids are one lesion), fourth_ventricle / area_postrema / periaqueductal -> infratentorial,
  third_ventricle_hypothalamus -> deep_white_matter. Two inputs: the phantom on its MNI grid (regions used
  as they are) and the same phantom resampled onto a rotated, shifted 1 mm grid (the registration path).
  A montage of the first MS and NMOSD phantom with its lesions: ``docs/neuro/montage_phantom_<disease>.png``.

``python -m benchmarks neuro_anatomy`` -> ``benchmarks/results/neuro_anatomy.json``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT.parent / "shared" / "data" / "ms_flair_raw_lesjak"
DOCS = ROOT / "docs" / "neuro"
PATIENTS = ("patient01", "patient03", "patient04")
PHANTOM_SEED, PHANTOMS_PER_DISEASE = 7100, 6
KIND_MAP = {"callosal_long": "callosal", "fourth_ventricle": "infratentorial", "area_postrema": "infratentorial",
            "periaqueductal": "infratentorial", "third_ventricle_hypothalamus": "deep_white_matter"}


def _true_counts(lesion_counts: dict[str, int], locations) -> dict[str, int]:
    out = dict.fromkeys(locations, 0)
    for kind, n in lesion_counts.items():
        out[KIND_MAP.get(kind, kind)] += 1 if kind == "callosal_long" else int(n)
    return out


def _moved(vol, label: bool, rng):
    """``vol`` resampled onto a rotated (+-8 deg), shifted 1 mm grid (1 mm: small lesions survive)."""
    from orbitai.io import Volume, rotation

    R = rotation(*np.radians(rng.uniform(-8, 8, 3)))
    size = np.array([186, 222, 184])
    ref = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    ref.SetSpacing((1.0, 1.0, 1.0))
    ref.SetDirection(tuple(R.ravel()))
    centre = np.array([0.0, -18.0, 10.0]) + rng.uniform(-10, 10, 3)
    ref.SetOrigin(tuple(centre - R @ (size * 1.0 / 2)))
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    return Volume.from_sitk(sitk.Resample(vol.to_sitk(), ref, sitk.Transform(), interp, 0.0))


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    from orbitai.errors import InputError
    from orbitai.io import read_volume
    from orbitai.neuro import anatomy as A
    from orbitai.scan.flair import check_flair
    from orbitai.neuro.figures import montage
    from orbitai.neuro.lesion_table import LOCATIONS, lesion_table
    from orbitai.phantoms.brain import brain_flair_case

    metrics: dict[str, float] = {}
    targets: dict[str, str] = {}
    notes: dict = {}
    t0 = time.perf_counter()
    A.template_anatomy()
    metrics["template_build_s"] = time.perf_counter() - t0
    # ---- real raw FLAIRs
    if RAW.is_dir():
        DOCS.mkdir(parents=True, exist_ok=True)
        icvs, secs = [], []
        for p in PATIENTS:
            flair = read_volume(RAW / f"long_{p}_study1_FLAIR.nii.gz")
            t0 = time.perf_counter()
            check_flair(flair)
            ext = A.extract_brain(flair)
            dt = time.perf_counter() - t0
            check_flair(flair, icv_ml=ext.icv_ml)
            icvs.append(ext.icv_ml)
            secs.append(dt)
            metrics[f"raw_{p}_icv_ml"] = ext.icv_ml
            metrics[f"raw_{p}_seconds"] = dt
            montage(flair, ext, DOCS / f"montage_{p}.png",
                    title=f"{p} study 1 FLAIR ({' x '.join(f'{s:.2f}' for s in flair.spacing)} mm)")
        metrics["raw_icv_min_ml"], metrics["raw_icv_max_ml"] = min(icvs), max(icvs)
        metrics["raw_seconds_max"] = max(secs)
        targets.update({"raw_icv_min_ml": ">= 1100", "raw_icv_max_ml": "<= 1900", "raw_seconds_max": "<= 20"})
        refused = 0
        wrong = sorted(RAW.glob("long_*_T1W.nii.gz")) + sorted(RAW.glob("long_*_T2W.nii.gz"))
        verdicts = {}
        for f in wrong:
            try:
                check_flair(read_volume(f))
                verdicts[f.name] = "accepted"
            except InputError as exc:
                refused += 1
                verdicts[f.name] = str(exc)
        metrics["real_t1_t2_refused_fraction"] = refused / max(len(wrong), 1)
        targets["real_t1_t2_refused_fraction"] = "== 1"
        notes["t1_t2_verdicts"] = verdicts
    else:
        notes["raw"] = f"{RAW} absent: real raw FLAIRs not measured"
    # ---- phantoms: location classes against the generator's kinds
    rng = np.random.default_rng(PHANTOM_SEED)
    pooled = {mode: {"true": dict.fromkeys(LOCATIONS, 0), "found": dict.fromkeys(LOCATIONS, 0),
                     "overlap": dict.fromkeys(LOCATIONS, 0)} for mode in ("mni_grid", "moved_grid")}
    per_case = []
    reg_secs = []
    for disease in ("ms", "nmosd"):
        for i in range(PHANTOMS_PER_DISEASE):
            case = brain_flair_case(PHANTOM_SEED + i, disease)
            if i == 0:
                DOCS.mkdir(parents=True, exist_ok=True)
                montage(case.image, A.extract_brain(case.image), DOCS / f"montage_phantom_{disease}.png",
                        title=f"brain phantom {disease} seed {PHANTOM_SEED}", lesions=case.labels)
            true = _true_counts(case.info["lesion_counts"], LOCATIONS)
            row = {"seed": PHANTOM_SEED + i, "disease": disease, "true": true}
            for mode in ("mni_grid", "moved_grid"):
                img, lab = case.image, case.labels
                if mode == "moved_grid":
                    state = rng.bit_generator.state
                    img = _moved(img, False, rng)
                    rng.bit_generator.state = state
                    lab = _moved(lab, True, rng)
                t0 = time.perf_counter()
                ext = A.extract_brain(img)
                if mode == "moved_grid":
                    reg_secs.append(time.perf_counter() - t0)
                found = lesion_table(lab, ext).location_counts()
                row[mode] = found
                for c in LOCATIONS:
                    pooled[mode]["true"][c] += true[c]
                    pooled[mode]["found"][c] += found[c]
                    pooled[mode]["overlap"][c] += min(true[c], found[c])
            per_case.append(row)
    for mode, d in pooled.items():
        n = max(sum(d["true"].values()), sum(d["found"].values()))
        metrics[f"phantom_{mode}_location_agreement"] = sum(d["overlap"].values()) / max(n, 1)
        for c in LOCATIONS:
            metrics[f"phantom_{mode}_{c}_true"] = d["true"][c]
            metrics[f"phantom_{mode}_{c}_found"] = d["found"][c]
    # the phantoms without generator "periventricular" lesions (see below): classes not blurred by them
    for mode in ("mni_grid", "moved_grid"):
        rows = [r for r in per_case if r["true"]["periventricular"] == 0]
        ov = sum(min(r["true"][c], r[mode][c]) for r in rows for c in LOCATIONS)
        n = sum(max(sum(r["true"].values()), sum(r[mode].values())) for r in rows)
        metrics[f"phantom_{mode}_agreement_cases_without_pv"] = ov / max(n, 1)
    metrics["phantom_cases_without_pv"] = sum(r["true"]["periventricular"] == 0 for r in per_case)
    metrics["phantom_moved_grid_extract_seconds_median"] = float(np.median(reg_secs))
    # where the generator puts its "periventricular" lesions: its ventricle-surface seed points, measured
    # against this module's lateral ventricles (mm on the 1 mm template grid)
    from scipy import ndimage as ndi

    from orbitai.phantoms.brain import _template

    vent = sitk.GetArrayFromImage(A.template_anatomy()["ventricles"]) > 0
    seeds = _template()["vent_surface"]
    dist = ndi.distance_transform_edt(~vent)[tuple(seeds.T)]
    metrics["phantom_pv_seed_points"] = int(len(seeds))
    metrics["phantom_pv_seed_distance_to_lateral_ventricles_median_mm"] = float(np.median(dist))
    metrics["phantom_pv_seed_abs_x_median_mm"] = float(np.median(np.abs(90 - seeds[:, 2])))
    notes["phantom_cases"] = per_case
    notes["agreement"] = ("overlap of class histograms (counts per location class) pooled over "
                          f"{2 * PHANTOMS_PER_DISEASE} phantoms; see the module docstring for the kind mapping")
    write_result("neuro_anatomy", metrics, targets, notes)


if __name__ == "__main__":
    main()
