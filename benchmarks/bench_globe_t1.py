"""Issue 66 item 2: why the eyeball comes out large (9.6-10.4 cm3) on 1 mm T1 heads. The hypotheses measured.

* Real-sized globes: the held-out SynthSeg heads' own eyeball label (506, 4.8-8.1 cm3 an eye, drawn on real heads)
  rendered as a 1 mm T1 and a 1 mm T2 whole head (the means of :mod:`orbitai.phantoms.heads`, no globe scaling),
  cut to an orbit protocol's field of view (:func:`benchmarks.bench_whole_head.orbit_crop`) and segmented by the
  bundled MRI model: predicted / true eyeball volume per side (binary and soft), and where the extra voxels lie:
  the tissue the truth has there (skin, fat, muscle, ...), in front of or behind the globe's centre, how far
  outside the true globe (mm), and the volume {P(eyeball) >= t} for thresholds t on the model grid.
* The same heads with a real orbit's contents (issue 78: "find the cause on the head phantoms"): the SynthSeg map
  leaves each orbit one soft-tissue label rendered with muscle's value right up to the vitreous, where a real orbit
  holds fat and the globe its own sclera and lens. :func:`orbitai.phantoms.orbit.whole_head_case` renders each head
  whole at 1 mm with the atlas's recti, nerves, orbital fat, sclera and lens carried into its orbits, T1 and T2, the
  same crop and model: with the head's own globes (``anatomical_own``: label 506, the sclera and lens drawn inside it,
  the truth the first rows use) and with globes scaled as the training phantoms' are (``anatomical``).
* The training phantoms' globes: every orbit phantom's globe is scaled to the TCIA radiotherapy contours' volume
  (``orbitai.phantoms.head_orbits.target_globe_cm3``: median 8.6 cm3, which includes a margin); the same held-out
  heads as 1 mm T1 orbit phantoms (scaled globes) give the model's predicted / true ratio on what it learnt from.
* The real T1 of ``../shared/data`` (patient 04, 3.3 mm slices: no 1 mm T1 is in the project) as it is.

``python -m benchmarks globe_t1`` -> ``benchmarks/results/globe_t1.json`` (ORBITAI_ORBIT_MRI_MODEL: another MRI bundle
folder, written to ``globe_t1_<folder name>.json``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

HEADS = tuple(int(h) for h in os.environ.get("ORBITAI_GLOBE_HEADS", "17,18,19,20").split(","))
SEED = 6606                      # never drawn by a training cohort
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _sides(mask: np.ndarray, vol, mid_x: float) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) halves of ``mask`` on ``vol``'s grid: LPS x above / below ``mid_x``."""
    from orbitai.orbit.rules import left_of

    left = np.asarray(left_of(vol, mid_x))
    return mask & left, mask & ~left


def _truth_mid_x(truth: np.ndarray, vol) -> float:
    k, j, i = np.nonzero(truth)
    return float(np.mean([vol.index_to_physical([a, b, c])[0] for a, b, c in zip(i[::50], j[::50], k[::50])]))


def _where_extra(pred: np.ndarray, truth: np.ndarray, tissue: np.ndarray | None, vol) -> dict[str, Any]:
    """The predicted-not-true voxels of one globe: by true tissue, in front of or behind its centre, distance."""
    from scipy import ndimage as ndi

    from orbitai.phantoms.heads import TISSUES

    extra, missed = pred & ~truth, truth & ~pred
    out: dict[str, Any] = {"extra_cm3": round(float(extra.sum()) * vol.voxel_volume_mm3() / 1000, 3),
                           "missed_cm3": round(float(missed.sum()) * vol.voxel_volume_mm3() / 1000, 3)}
    if not extra.any():
        return out
    dist = ndi.distance_transform_edt(~truth, sampling=vol.spacing[::-1])[extra]
    out["extra_distance_mm_median"] = round(float(np.median(dist)), 2)
    out["extra_distance_mm_p90"] = round(float(np.percentile(dist, 90)), 2)
    if tissue is not None:
        names, counts = np.unique(tissue[extra], return_counts=True)
        out["extra_by_true_tissue"] = {TISSUES[int(n)]: round(float(c) / extra.sum(), 3) for n, c in zip(names, counts)}
    jc = np.nonzero(truth)[1].mean()
    j = np.nonzero(extra)[1]
    front = (j < jc) if vol.direction[1][1] > 0 else (j > jc)
    out["extra_in_front_share"] = round(float(front.mean()), 3)
    return out


def _segment_case(vol, truth: np.ndarray, tissue: np.ndarray | None, net, spec) -> dict[str, Any]:
    from orbitai.labels import values_for
    from orbitai.orbit.segment import segment

    res = segment(vol, net, spec, "overlap", "cpu")
    soft = res.soft_volumes(spec.structures)
    mid = _truth_mid_x(truth, vol)
    tl, tr = _sides(truth, vol, mid)
    vv = vol.voxel_volume_mm3() / 1000
    row: dict[str, Any] = {}
    for side, value, t in zip(("left", "right"), values_for("eyeball"), (tl, tr)):
        pred = res.labels.array == value
        row[side] = {"truth_cm3": round(float(t.sum()) * vv, 3), "binary_cm3": round(float(pred.sum()) * vv, 3),
                     "soft_cm3": round(float(soft.get(value, 0.0)), 3), **_where_extra(pred, t, tissue, vol)}
    images = (res.engine.class_probabilities or {}) if res.engine is not None else {}
    if 1 in images:          # the eyeball class's probability on the model grid: both globes
        import SimpleITK as sitk

        p = sitk.GetArrayViewFromImage(images[1])
        mm3 = float(np.prod(images[1].GetSpacing())) / 1000
        row["both_at_threshold_cm3"] = {f"{t:g}": round(float((p >= t).sum()) * mm3, 3) for t in THRESHOLDS}
    row["truth_both_cm3"] = round(float(truth.sum()) * vv, 3)
    return row


def main() -> None:
    import torch

    from benchmarks.bench_segmentation import REAL_MRI
    from benchmarks.bench_whole_head import orbit_crop, whole_head
    from orbitai.io import read_scan
    from orbitai.orbit.models import load_seg_model
    from orbitai.phantoms import orbit_case
    from orbitai.phantoms.orbit import whole_head_case
    from orbitai.phantoms.heads import tissue_map

    torch.set_num_threads(2)
    model = os.environ.get("ORBITAI_ORBIT_MRI_MODEL") or None        # another MRI bundle folder (a candidate)
    _, net, spec = load_seg_model(model, False, "cpu")
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"heads": {}, "anatomical_own_heads": {}, "anatomical_heads": {}, "phantoms": {},
                             "real": {}}
    ratios: dict[str, list[float]] = {}
    for head in HEADS:
        for weighting in ("T1", "T2"):
            vol, labels = whole_head(head, weighting)
            crop = orbit_crop(vol, labels)
            lab = orbit_crop(labels, labels)
            row = _segment_case(crop, lab.array == 506, tissue_map(lab.array), net, spec)
            notes["heads"][f"{head}_{weighting}"] = row
            print(f"head {head} {weighting}: {json.dumps(row)}", flush=True)
            for side in ("left", "right"):
                r = row[side]
                ratios.setdefault(f"head_{weighting.lower()}_binary", []).append(r["binary_cm3"] / r["truth_cm3"])
                ratios.setdefault(f"head_{weighting.lower()}_soft", []).append(r["soft_cm3"] / r["truth_cm3"])
        # the same head with a real orbit's contents (fat, sclera, lens, recti), its own globes and scaled ones
        for (weighting, own) in (("T1", True), ("T2", True), ("T1", False), ("T2", False)):
            case = whole_head_case(head, weighting.lower(), seed=SEED + head, own_globes=own)
            kind = "anatomical_own" if own else "anatomical"
            globes = np.isin(case.labels.array, (1, 2))
            marks = case.labels.with_array(np.where(globes, 506, 0).astype(np.int16))   # orbit_crop's eyeball label
            crop, lab = orbit_crop(case.image, marks), orbit_crop(case.labels, marks)
            row = _segment_case(crop, np.isin(lab.array, (1, 2)), None, net, spec)
            notes[f"{kind}_heads"][f"{head}_{weighting}"] = row
            print(f"{kind} head {head} {weighting}: {json.dumps(row)}", flush=True)
            for side in ("left", "right"):
                r = row[side]
                ratios.setdefault(f"{kind}_head_{weighting.lower()}_binary", []).append(r["binary_cm3"] / r["truth_cm3"])
                ratios.setdefault(f"{kind}_head_{weighting.lower()}_soft", []).append(r["soft_cm3"] / r["truth_cm3"])
        case = orbit_case(SEED + head, "t1", template=head, orientation="axial", oblique=False, spacing=(1.0, 1.0, 1.0),
                          size=(160, 160, 56))
        truth = np.isin(case.labels.array, (1, 2))
        row = _segment_case(case.image, truth, None, net, spec)
        notes["phantoms"][f"{head}_T1"] = row
        print(f"phantom {head} T1: {json.dumps(row)}", flush=True)
        for side in ("left", "right"):
            ratios.setdefault("phantom_t1_binary", []).append(row[side]["binary_cm3"] / row[side]["truth_cm3"])
            ratios.setdefault("phantom_t1_soft", []).append(row[side]["soft_cm3"] / row[side]["truth_cm3"])
    for key, vals in ratios.items():
        metrics[f"{key}_eyeball_ratio_median"] = float(np.median(vals))
    for path in sorted(REAL_MRI.glob("*T1W*.nii.gz")):
        from orbitai.labels import values_for
        from orbitai.orbit.segment import segment

        vol, _ = read_scan(path)
        res = segment(vol, net, spec, "overlap", "cpu")
        soft = res.soft_volumes(spec.structures)
        vv = vol.voxel_volume_mm3() / 1000
        notes["real"][path.name] = {side: {"binary_cm3": round(float((res.labels.array == v).sum()) * vv, 3),
                                           "soft_cm3": round(float(soft.get(v, 0.0)), 3)}
                                    for side, v in zip(("left", "right"), values_for("eyeball"))}
        notes["real"][path.name]["spacing_mm"] = [round(s, 3) for s in vol.spacing]
        print(f"real {path.name}: {json.dumps(notes['real'][path.name])}", flush=True)
    notes["heads_measured"] = list(HEADS)
    notes["how"] = (f"{model or 'bundled MRI model (orbit_svnet_mri_demo)'}, overlap window, mirrored, CPU; heads: SynthSeg label "
                    "maps 17-20 at 1 mm with the T1/T2 means, own globes (label 506, not scaled), cut to 48 x 150 x "
                    "150 mm around the eyes; anatomical heads: the same heads whole at 1 mm as orbitai.phantoms.orbit.whole_head_case renders them (its orbits hold the atlas's recti, nerves, orbital fat, sclera and lens carried in; anatomical_own: the head's own globes, label 506, sclera and lens inside; anatomical: globes scaled to target_globe_cm3), the same crop; phantoms: orbit_case(t1, template=head, 1 mm, axial), globes scaled to "
                    "target_globe_cm3")
    write_result("globe_t1" + (f"_{Path(model).name}" if model else ""), metrics, {}, notes)


if __name__ == "__main__":
    main()
