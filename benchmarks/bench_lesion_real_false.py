"""Where the lesion networks' false lesions lie on the one real labelled FLAIR (issue 77; Lesjak et al. cs_patient26,
MNI space, three-rater consensus mask), the network alone and as a user gets it.

The project's only real MS FLAIR with a mask is the final check of every lesion model; the phantom sets say little of
what a real brain adds. Per bundle (the bundled model and candidate folders named in ``ORBITAI_LESION_CANDIDATES``,
comma-separated, e.g. ``build/models/neuro_lesion_hour,build/models/neuro_lesion_hour_regional``):

* ``raw_*``: the mirrored probability at 0.5, components of >= 3 mm3 (the network alone, the same rule for all);
* ``user_*``: the mask a user gets (`orbitai.neuro.lesionseg.lesion_mask`: the bundle's post-processing or second look);

each with Dice, lesion F1 and recall, and the false components (touching no true lesion): their number, volume, how
many lie within 3 mm of the brain's outer surface, and how many at each MNI height band: below z -12 mm (temporal
lobes, brain stem, cerebellum), -12 to +8 mm (insula, basal ganglia, hypothalamus and third ventricle), above +8 mm
(the centrum semiovale and the cortex above).

``python -m benchmarks lesion_real_false`` -> ``benchmarks/results/lesion_real_false.json`` (~2 min a bundle).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from benchmarks.common import write_result

#: MNI z (mm) band edges
BANDS = (-12.0, 8.0)


def false_components(mask: np.ndarray, truth: np.ndarray, depth_mm: np.ndarray, grid: Any) -> dict[str, float]:
    """The components (`orbitai.metrics.segmentation.lesion_components`) of ``mask`` that touch no ``truth`` voxel:
    how many, mL, how many near the surface (``depth_mm`` < 3 somewhere), how many per MNI height band (the LPS z
    of their centre on ``grid``, the case's `orbitai.io.Volume`)."""
    from orbitai.metrics.segmentation import lesion_components

    lab, n = lesion_components(mask)
    if n == 0:
        return {"false": 0.0, "false_ml": 0.0, "false_near_surface": 0.0, "false_low": 0.0, "false_middle": 0.0,
                "false_high": 0.0}
    idx = np.arange(1, n + 1)
    hit = ndi.maximum(truth, lab, idx) > 0
    size = np.asarray(ndi.sum(mask, lab, idx))
    shallow = np.asarray(ndi.minimum(depth_mm, lab, idx)) < 3.0
    centres = np.asarray(ndi.center_of_mass(mask, lab, idx), float).reshape(n, 3)
    zc = grid.index_to_physical(centres[:, ::-1])[:, 2]        # [z, y, x] array index -> (i, j, k) -> LPS z
    f = ~hit
    return {"false": float(f.sum()), "false_ml": float(size[f].sum()) / 1000.0,
            "false_near_surface": float((f & shallow).sum()), "false_low": float((f & (zc < BANDS[0])).sum()),
            "false_middle": float((f & (zc >= BANDS[0]) & (zc < BANDS[1])).sum()),
            "false_high": float((f & (zc >= BANDS[1])).sum())}


def main() -> None:
    import torch

    from benchmarks.bench_lesion_detection import _patient26
    from orbitai.metrics.segmentation import lesion_metrics
    from orbitai.neuro.lesionseg import DEFAULT_BUNDLE, Postprocess, lesion_bundle, lesion_mask, lesion_probability

    torch.set_num_threads(int(os.environ.get("ORBITAI_BENCH_THREADS", "2")))
    flair, brain, truth = _patient26()
    t = np.asarray(truth.array) > 0
    depth = ndi.distance_transform_edt(np.asarray(brain.array) > 0, sampling=flair.spacing[::-1])
    names = [DEFAULT_BUNDLE] + [s for s in os.environ.get("ORBITAI_LESION_CANDIDATES", "").split(",") if s]
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"case": "Lesjak et al. cs_patient26 (real MS FLAIR, MNI, 1 mm; consensus mask)",
                             "true_lesions": int(ndi.label(t, np.ones((3, 3, 3), bool))[1]), "bundles": {}}
    for n, name in enumerate(names):
        b = lesion_bundle(name)
        tag = "bundled" if n == 0 else os.path.basename(os.path.normpath(name))
        prob = lesion_probability(flair, brain, b.load_model("cpu"), "cpu")
        notes["bundles"][tag] = {"bundle": f"{b.name} ({b.metadata['weights_sha256'][:12]})", "path": name,
                                 "second_look": bool(b.metadata.get("second_look"))}
        for how, mask in (("raw", Postprocess(0.5, 3.0).apply(prob).array > 0),
                          ("user", lesion_mask(b, prob, flair, brain).array > 0)):
            m = lesion_metrics(mask, t, flair.spacing)
            row = {"dice": m["dice"], "lesion_f1": m["lesion_f1"], "lesion_recall": m["lesion_recall"],
                   "volume_ml": m["volume_pred_ml"], **false_components(mask, t, depth, flair)}
            metrics.update({f"{tag}_{how}_{k}": float(v) for k, v in row.items()})
    write_result("lesion_real_false", metrics, {}, notes)


if __name__ == "__main__":
    main()
