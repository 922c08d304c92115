"""Orbit structures on thick clinical slices (issue 66 items 1-2): soft (partial-volume-aware) volumes beside the
voxel counts, and the recti's Dice, on MRI phantoms of the four held-out heads.

Cases: each head of ``orbitai.phantoms.heads.HELD_OUT`` rendered as an axial orbit MRI at 1 mm slices with a drawn
in-plane spacing of 0.4-0.7 mm (``orbit_case(template=head)``: T2 with fat suppression and the FLAIR-like contrast,
``CONTRASTS['flair']``), then "acquired" at 3 and 4 mm by averaging every 3 or 4 of those slices
(``orbitai.phantoms.thick.thick_slices``: partial volume through the slice). The bundled MRI model
(``orbit_svnet_mri_demo``, the default window, mirrored) segments each of the three scans.

Per rectus (sr, ir, mr, lr) and optic nerve (on), both sides, per slice thickness:

* ``truth``: the structure's volume in the 1 mm labels (over the slices the thick scan covers);
* ``binary`` and ``soft``: the voxel count's volume and the soft volume (``SegResult.soft_volumes``), as
  ``*_median_error_pct`` (median over cases and sides of 100 x (volume / truth - 1));
* ``dice``: Dice on the scan's own grid against the thick truth (each thick voxel's most frequent 1 mm label),
  mean over cases and sides.

Bars (issue 66): at 3 and 4 mm the soft volume of every rectus within 15 % of truth (median), recti Dice >= 0.65.
``*_within_10pct``: of the recti's structure-sides, how many volumes lie within 10 % of the truth (binary, soft), and
how many soft volumes lie nearer the truth than the binary ones.

Speed: the seconds the soft volumes add to a segmentation of a 1 mm whole-head T2 (held-out head 17's label map
at 1 mm, the T2 tissue means, noise and a little blur), best of 3, beside the segmentation's own seconds (on
whatever cores the run had: not a quiet-core timing), and the size of the class probability images they read (the
confidence keeps these images anyway: the soft volumes add no copy).

``python -m benchmarks orbit_thick`` -> ``benchmarks/results/orbit_thick.json``. ORBITAI_THICK_CONTRASTS (default
``t2,flair``) and ORBITAI_THICK_HEADS (default the four held-out heads) narrow the run; ORBITAI_ORBIT_MRI_MODEL names
another MRI bundle folder to measure (default the bundled one).
"""
from __future__ import annotations

import os
from pathlib import Path
import time
from typing import Any

import numpy as np

from benchmarks.common import best_of, write_result

SEED = 6600                      # never drawn by a training cohort
THICKNESSES = (1, 3, 4)          # slices of 1 mm averaged
FOV_MM, COVER_MM = 150.0, 48.0
SHORT = {"superior_rectus_muscle": "sr", "inferior_rectus_muscle": "ir", "medial_rectus_muscle": "mr",
         "lateral_rectus_muscle": "lr", "optic_nerve": "on"}


def _fine_case(seed: int, head: int, contrast: str):
    from orbitai.phantoms import orbit_case
    from orbitai.phantoms.orbit import CONTRASTS, Rendering

    sp = float(np.round(np.random.default_rng(seed).uniform(0.4, 0.7), 3))
    n = int(round(FOV_MM / sp / 16) * 16)
    return orbit_case(seed, "t2", template=head, orientation="axial", oblique=False, spacing=(sp, sp, 1.0),
                      size=(n, n, int(COVER_MM)),
                      rendering=Rendering(contrast=CONTRASTS["flair"] if contrast == "flair" else None))


def _whole_head_t2(head: int):
    """A 1 mm T2-like whole head from SynthSeg head ``head``'s label map."""
    from scipy import ndimage as ndi

    from orbitai.phantoms.heads import MEANS, TISSUES, head_labels, tissue_map

    labels = head_labels(head, step=1)
    rng = np.random.default_rng(head)
    means = np.array([MEANS["T2"].get(t, 0.0) for t in TISSUES])
    img = ndi.gaussian_filter(means[tissue_map(labels.array)], 0.6)
    img = np.abs(img + 0.02 * float(img.max()) * rng.standard_normal(img.shape)).astype(np.float32)
    return labels.with_array(img)


def within_10_pct(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per slice thickness, of the recti's structure-sides (truth > 0): how many have a binary and how many a soft
    volume within 10 % of the truth, and how many have a soft volume nearer the truth than the binary one."""
    out: dict[str, int] = {}
    for factor in THICKNESSES:
        sel = [r for r in rows if r["mm"] == factor and r["structure"] != "on" and r["truth"] > 0]
        out[f"{factor}mm_recti_sides"] = len(sel)
        for kind in ("binary", "soft"):
            out[f"{factor}mm_recti_{kind}_within_10pct"] = sum(abs(r[kind] / r["truth"] - 1) <= 0.1 for r in sel)
        out[f"{factor}mm_recti_soft_nearer_truth"] = sum(abs(r["soft"] - r["truth"]) < abs(r["binary"] - r["truth"])
                                                         for r in sel)
    return out


def main() -> None:
    import torch

    from orbitai.labels import ORBIT_LABELS, values_for
    from orbitai.metrics.segmentation import dice
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.rules import OrbitNotFoundError
    from orbitai.orbit.segment import segment
    from orbitai.phantoms.heads import HELD_OUT
    from orbitai.phantoms.thick import thick_slices, truth_cm3

    torch.set_num_threads(2)
    contrasts = [c for c in os.environ.get("ORBITAI_THICK_CONTRASTS", "t2,flair").split(",") if c]
    heads = [int(h) for h in os.environ.get("ORBITAI_THICK_HEADS", ",".join(map(str, HELD_OUT))).split(",") if h]
    _, net, spec = load_seg_model(os.environ.get("ORBITAI_ORBIT_MRI_MODEL") or None, False, "cpu")
    rows: list[dict[str, Any]] = []
    misses: list[str] = []
    t_soft: list[float] = []
    for ci, contrast in enumerate(contrasts):
        for hi, head in enumerate(heads):
            seed = SEED + 10 * ci + hi
            fine = _fine_case(seed, head, contrast)
            for factor in THICKNESSES:
                case = fine if factor == 1 else thick_slices(fine, factor)
                truth = truth_cm3(fine, factor)
                try:
                    res = segment(case.image, net, spec, "overlap", "cpu")
                except OrbitNotFoundError:
                    misses.append(f"{contrast} head {head} {factor} mm")
                    continue
                t0 = time.perf_counter()
                soft = res.soft_volumes(spec.structures)
                t_soft.append(time.perf_counter() - t0)
                vv = res.labels.voxel_volume_mm3() / 1000.0
                for structure, short in SHORT.items():
                    for v in values_for(structure):
                        pred, ref = res.labels.array == v, case.labels.array == v
                        rows.append({"contrast": contrast, "head": head, "mm": factor, "structure": short,
                                     "side": ORBIT_LABELS[v].side, "truth": truth.get(v, 0.0),
                                     "binary": float(pred.sum()) * vv, "soft": soft.get(v, 0.0),
                                     "dice": dice(pred, ref), "in_plane_mm": case.image.spacing[0]})
                print(f"{contrast} head {head} {factor} mm: "
                      + ", ".join(f"{r['structure']}_{r['side'][0]} {r['truth']:.2f}/{r['binary']:.2f}/{r['soft']:.2f}"
                                  for r in rows[-10:]), flush=True)
    metrics: dict[str, Any] = {}
    targets: dict[str, str] = {}
    for factor in THICKNESSES:
        for short in SHORT.values():
            sel = [r for r in rows if r["mm"] == factor and r["structure"] == short and r["truth"] > 0]
            if not sel:
                continue
            key = f"{factor}mm_{short}"
            for kind in ("binary", "soft"):
                err = [100.0 * (r[kind] / r["truth"] - 1.0) for r in sel]
                metrics[f"{key}_{kind}_median_error_pct"] = float(np.median(err))
            metrics[f"{key}_soft_median_abs_error_pct"] = abs(metrics[f"{key}_soft_median_error_pct"])
            metrics[f"{key}_dice"] = float(np.mean([r["dice"] for r in sel]))
            if factor > 1 and short != "on":
                targets[f"{key}_soft_median_abs_error_pct"] = "<= 15"
                targets[f"{key}_dice"] = ">= 0.65"
        recti = [r for r in rows if r["mm"] == factor and r["structure"] != "on"]
        if recti:
            metrics[f"{factor}mm_recti_dice"] = float(np.mean([r["dice"] for r in recti]))
            for kind in ("binary", "soft"):
                metrics[f"{factor}mm_recti_{kind}_median_error_pct"] = float(
                    np.median([100.0 * (r[kind] / r["truth"] - 1.0) for r in recti if r["truth"] > 0]))
            if factor > 1:
                targets[f"{factor}mm_recti_dice"] = ">= 0.65"
    metrics.update(within_10_pct(rows))
    metrics["cases_without_orbit"] = len(misses)
    metrics["soft_volumes_phantom_seconds_median"] = float(np.median(t_soft)) if t_soft else 0.0
    # ---- speed: what the soft volumes add on a 1 mm whole head
    head = _whole_head_t2(HELD_OUT[0])
    t0 = time.perf_counter()
    res = segment(head, net, spec, "overlap", "cpu")
    metrics["whole_head_1mm_segment_seconds"] = time.perf_counter() - t0
    metrics["whole_head_1mm_soft_volumes_seconds"] = best_of(lambda: res.soft_volumes(spec.structures), 3)
    images = (res.engine.class_probabilities or {}) if res.engine is not None else {}
    metrics["whole_head_1mm_probability_images_mb"] = sum(4 * img.GetNumberOfPixels() for img in images.values()) / 2 ** 20
    notes = {"cases": f"held-out heads {heads}, contrasts {contrasts}, seeds {SEED}+10*contrast+head index; axial, "
                      f"{FOV_MM:g} mm field of view, {COVER_MM:g} slices of 1 mm, in-plane drawn from 0.4-0.7 mm",
             "model": f"{os.environ.get('ORBITAI_ORBIT_MRI_MODEL') or 'orbit_svnet_mri_demo (bundled)'}, overlap window, "
                      "mirrored, 2 threads",
             "misses": misses, "whole_head": f"SynthSeg head {HELD_OUT[0]} at 1 mm, {head.shape} voxels, T2 means",
             "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}
    write_result("orbit_thick" + (f"_{Path(os.environ['ORBITAI_ORBIT_MRI_MODEL']).name}" if os.environ.get("ORBITAI_ORBIT_MRI_MODEL") else ""), metrics, targets, notes)


if __name__ == "__main__":
    main()
