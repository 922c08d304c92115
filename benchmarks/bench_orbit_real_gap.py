"""Why the recti and eyeballs come out small on real clinical MRIs (issue 31): the hypotheses measured.

* Contrast: phantoms rendered with the clinical contrasts of the brain protocols (T2 and FLAIR without fat
  suppression, globes as bright as the fat around them: ``orbitai.phantoms.orbit.CONTRASTS``) at 3.5 mm axial
  slices, segmented by the default MRI model: predicted / true volume per structure (1 = right size). If
  contrast or the slice thickness were the cause, these would fall as the real scans do (0.3-0.6).
* Sharpness and intensity curve: two real scans that come out small (patient 01 T2W, patient 04 FLAIR)
  segmented as they are, blurred in-plane (1 mm Gaussian) and with a gamma of 0.7.
* Where: the eyeball's largest cross-section per real scan (cm2; a 24 mm globe is 4.5) and its slices.

``python -m benchmarks orbit_real_gap`` -> ``benchmarks/results/orbit_real_gap.json``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import write_result

SEED, N = 9700, 4
PAIRS = {"eyeball": (1, 2), "optic_nerve": (3, 4), "sr": (5, 6), "ir": (7, 8), "mr": (9, 10), "lr": (11, 12)}


def main() -> None:
    import torch
    from scipy import ndimage as ndi

    from benchmarks.bench_segmentation import REAL_MRI
    from orbitai.io import read_volume
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.rules import OrbitNotFoundError, label_counts
    from orbitai.orbit.segment import segment
    from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case

    torch.set_num_threads(2)
    bundle, net, spec = load_seg_model(None, False, "cpu")
    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {"model": bundle.name}
    variants: dict[str, tuple[str, Any]] = {"t2_fat_suppressed": ("t2", None), "t1": ("t1", None),
                                            **{k: ("t2", v) for k, v in CONTRASTS.items()}}
    for name, (modality, table) in variants.items():
        ratios: dict[str, list[float]] = {k: [] for k in PAIRS}
        for i in range(N):
            case = orbit_case(SEED + i, modality, spacing=(0.6, 0.6, 3.5), orientation="axial",
                              rendering=Rendering(contrast=table))
            pred = segment(case.image, net, spec, "overlap", "cpu").labels
            pc, tc = label_counts(pred), label_counts(case.labels)
            for k, vals in PAIRS.items():
                ratios[k].append(sum(int(pc[v]) for v in vals) / max(1, sum(int(tc[v]) for v in vals)))
        for k, v in ratios.items():
            metrics[f"phantom_{name}_volume_ratio_{k}"] = float(np.mean(v))
    notes["phantoms"] = (f"seeds {SEED}+ (n={N}) per contrast, 0.6 x 0.6 x 3.5 mm axial; predicted / true volume, "
                         "both sides, mean over cases")

    def volumes(vol) -> dict[str, float]:
        try:
            lab = segment(vol, net, spec, "overlap", "cpu").labels
        except OrbitNotFoundError:
            return {k: 0.0 for k in PAIRS}
        c, vv = label_counts(lab), lab.voxel_volume_mm3() / 1000
        return {k: round(sum(int(c[v]) for v in vals) * vv / 2, 3) for k, vals in PAIRS.items()}   # mean per side

    real: dict[str, Any] = {}
    for scan in ("patient01_study1_T2W", "patient04_study1_FLAIR"):
        path = REAL_MRI / f"long_{scan}.nii.gz"
        if not path.exists():
            continue
        vol = read_volume(path)
        arr = vol.array.astype(np.float32)
        blurred = ndi.gaussian_filter(arr, (0, 1.0 / vol.spacing[1], 1.0 / vol.spacing[0]))
        gamma = (arr / max(float(arr.max()), 1e-6)) ** 0.7 * 1000
        real[scan] = {"as_is": volumes(vol), "blur_1mm": volumes(vol.with_array(blurred)),
                      "gamma_0.7": volumes(vol.with_array(gamma))}
    for path in sorted(REAL_MRI.glob("long_patient*_study1_*.nii.gz")):
        name = path.name.replace("long_", "").replace(".nii.gz", "")
        vol = read_volume(path)
        try:
            lab = segment(vol, net, spec, "overlap", "cpu").labels.array
        except OrbitNotFoundError:
            real.setdefault(name, {})["eyeball_cross_section_cm2"] = None
            continue
        px = vol.spacing[0] * vol.spacing[1] / 100
        real.setdefault(name, {})["eyeball_cross_section_cm2"] = {
            side: round(float((lab == v).sum((1, 2)).max() * px), 2) for side, v in (("left", 1), ("right", 2))}
        real[name]["eyeball_slices"] = {side: int((lab == v).any((1, 2)).sum()) for side, v in (("left", 1), ("right", 2))}
        real[name]["slice_mm"] = round(float(vol.spacing[2]), 2)
    notes["real"] = real
    notes["real_what"] = ("cm3 per side (mean of left and right); cross-section: largest eyeball area on one slice "
                          "(a 24 mm globe: 4.5 cm2)")
    write_result("orbit_real_gap", metrics, {}, notes)


if __name__ == "__main__":
    main()
