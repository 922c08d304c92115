"""Brain masks for the lesion pipeline (issue 65): the project's atlas mask against MindGrab (brainchop).

Cases, every real head image in ``../shared/data`` that a brain mask can be judged on:

* the three raw clinical FLAIRs of ``ms_flair_raw_lesjak`` (whole head, oblique, 3.3-4 mm slices). No brain
  mask and no lesion mask comes with them: the figures are each mask's volume, the Dice between the two masks
  and the seconds each takes;
* patient 26 of ``ms_flair_lesjak`` (brain-extracted FLAIR in MNI space with its consensus lesion mask): the
  reference brain is the image's non-zero voxels (its own skull stripping); Dice against it and the lesion
  voxels each mask leaves outside (a lesion outside the mask is a lost lesion).

The project's mask is `orbitai.neuro.anatomy.extract_brain` (template registration: an intracranial mask, with
the CSF around the brain); MindGrab's is `orbitai.neuro.mindgrab.mindgrab_brain_mask` (the brain itself). Both
run on this machine with ``torch`` limited to 2 threads; MindGrab also with its convolutions in bfloat16 (its time and
its Dice against the float32 mask) (the issue's bar: whole pipeline <= 60 s on 2 cores).

``python -m benchmarks brain_mask`` -> ``benchmarks/results/brain_mask.json``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RAW = DATA / "ms_flair_raw_lesjak"
MNI = DATA / "ms_flair_lesjak"
PATIENTS = ("patient01", "patient03", "patient04")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * float(np.logical_and(a, b).sum()) / s if s else 1.0


def _components(a: np.ndarray) -> int:
    from scipy import ndimage as ndi

    return int(ndi.label(a, np.ones((3, 3, 3), bool))[1])


def _case(name: str, flair, reference, lesions, model) -> dict:
    from orbitai.neuro.anatomy import extract_brain
    from orbitai.neuro.mindgrab import mindgrab_brain_mask

    ml = flair.voxel_volume_mm3() * 1e-3
    t0 = time.perf_counter()
    project = np.asarray(extract_brain(flair).mask.array) > 0
    t_project = time.perf_counter() - t0
    t0 = time.perf_counter()
    mind = np.asarray(mindgrab_brain_mask(flair, model).array) > 0
    t_mind = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast = np.asarray(mindgrab_brain_mask(flair, model, bfloat16=True).array) > 0
    t_fast = time.perf_counter() - t0
    row = {"case": name, "mindgrab_bf16_s": t_fast, "dice_mindgrab_bf16_vs_fp32": _dice(fast, mind), "project_ml": float(project.sum()) * ml, "mindgrab_ml": float(mind.sum()) * ml,
           "dice_project_vs_mindgrab": _dice(project, mind), "project_s": t_project, "mindgrab_s": t_mind,
           "project_components": _components(project), "mindgrab_components": _components(mind),
           "mindgrab_outside_project_ml": float((mind & ~project).sum()) * ml}
    if reference is not None:
        row["reference_ml"] = float(reference.sum()) * ml
        row["dice_project_vs_reference"] = _dice(project, reference)
        row["dice_mindgrab_vs_reference"] = _dice(mind, reference)
    if lesions is not None:
        n = int(lesions.sum())
        row["lesion_voxels"] = n
        row["lesion_voxels_outside_project"] = int((lesions & ~project).sum())
        row["lesion_voxels_outside_mindgrab"] = int((lesions & ~mind).sum())
    print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return row


def main() -> None:
    from orbitai.io import read_volume
    from orbitai.neuro.mindgrab import load_mindgrab

    torch.set_num_threads(2)
    model = load_mindgrab()
    rows = []
    for p in PATIENTS:
        path = RAW / f"long_{p}_study1_FLAIR.nii.gz"
        if path.is_file():
            rows.append(_case(f"raw_{p}", read_volume(path), None, None, model))
    flair_path, les_path = MNI / "cs_patient26_FLAIR_MNI.nii.gz", MNI / "cs_patient26_lesionmask_MNI.nii.gz"
    if flair_path.is_file() and les_path.is_file():
        flair = read_volume(flair_path)
        rows.append(_case("mni_patient26", flair, np.asarray(flair.array) > 0,
                          np.asarray(read_volume(les_path).array) > 0, model))
    raw = [r for r in rows if r["case"].startswith("raw_")]
    mni = [r for r in rows if r["case"] == "mni_patient26"]
    metrics: dict[str, float] = {"cases": float(len(rows))}
    if raw:
        metrics.update({
            "raw_mindgrab_ml_min": min(r["mindgrab_ml"] for r in raw),
            "raw_mindgrab_ml_max": max(r["mindgrab_ml"] for r in raw),
            "raw_project_ml_min": min(r["project_ml"] for r in raw),
            "raw_project_ml_max": max(r["project_ml"] for r in raw),
            "raw_dice_project_vs_mindgrab_min": min(r["dice_project_vs_mindgrab"] for r in raw),
            "raw_mindgrab_components_max": float(max(r["mindgrab_components"] for r in raw)),
            "raw_mindgrab_s_max": max(r["mindgrab_s"] for r in raw),
            "raw_project_s_max": max(r["project_s"] for r in raw),
            "raw_mindgrab_bf16_s_max": max(r["mindgrab_bf16_s"] for r in raw),
            "raw_dice_mindgrab_bf16_vs_fp32_min": min(r["dice_mindgrab_bf16_vs_fp32"] for r in raw),
        })
    if mni:
        m = mni[0]
        metrics.update({k: float(m[k]) for k in ("dice_project_vs_reference", "dice_mindgrab_vs_reference",
                                                 "lesion_voxels_outside_project", "lesion_voxels_outside_mindgrab")})
    targets = {"raw_mindgrab_ml_min": ">= 1000", "raw_mindgrab_ml_max": "<= 1800",
               "raw_mindgrab_components_max": "<= 1", "raw_mindgrab_s_max": "<= 60",
               "raw_mindgrab_bf16_s_max": "<= 60",
               "lesion_voxels_outside_mindgrab": "<= 0"}
    notes = {"rows": rows, "threads": 2,
             "what": ("project = atlas-registered intracranial mask (brain + CSF around it); mindgrab = MindGrab "
                      "(brainchop 4c87885) brain mask; reference only for patient 26 (its skull-stripped "
                      "foreground); the raw heads have no brain or lesion mask")}
    write_result("brain_mask", metrics, targets, notes)


if __name__ == "__main__":
    main()
