"""Issue 66 item 2, the cause: the MRI model takes the first layer around the vitreous that differs from it as the
globe's wall (sclera), and adds it to the globe.

Held-out SynthSeg head 17 at 1 mm with the T1 means of :mod:`orbitai.phantoms.heads`, cut to an orbit protocol's
field of view (:func:`benchmarks.bench_whole_head.crop_box`); the outer 1 mm of each true globe (label 506) drawn as a
sclera of three kinds: none (vitreous to the edge, as SynthSeg's heads), intermediate (0.28, twice the vitreous: what
the training phantoms draw on T1, ``orbitai.phantoms.orbit``: sclera 330 against vitreous 160), and darker than the
vitreous (0.06: the fibrous sclera is dark on real T1). Both globes' volume, true (with the rim) and predicted by the
bundled MRI model.

``python -m benchmarks globe_sclera`` -> ``benchmarks/results/globe_sclera.json``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from benchmarks.common import write_result

HEAD = 17
SCLERA = {"none": None, "intermediate_0.28": 0.28, "dark_0.06": 0.06}


def main() -> None:
    import torch
    from scipy import ndimage as ndi

    from benchmarks.bench_whole_head import crop_box, whole_head
    from orbitai.io import Volume
    from orbitai.labels import values_for
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.segment import segment
    from orbitai.phantoms.heads import MEANS, TISSUES, tissue_map

    torch.set_num_threads(2)
    _, net, spec = load_seg_model(None, False, "cpu")
    vol, labels = whole_head(HEAD, "T1")
    box = crop_box(vol, labels)
    lab = labels.array[box]
    origin = tuple(float(x) for x in vol.index_to_physical([box[2].start, box[1].start, box[0].start]))
    globe = lab == 506
    rim = globe & (ndi.distance_transform_edt(globe) <= 1.0)
    base = np.array([MEANS["T1"].get(t, 0.0) for t in TISSUES])[tissue_map(lab)]
    rng = np.random.default_rng(HEAD)
    metrics: dict[str, float] = {"truth_both_cm3": float(globe.sum()) / 1000.0,
                                 "vitreous_both_cm3": float((globe & ~rim).sum()) / 1000.0}
    notes: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()]}
    for name, value in SCLERA.items():
        img = base.copy()
        if value is not None:
            img[rim] = value
        img = ndi.gaussian_filter(img, 0.6)
        img = np.abs(img + 0.02 * rng.standard_normal(img.shape)).astype(np.float32)
        res = segment(Volume(img, vol.spacing, origin, vol.direction), net, spec, "overlap", "cpu")
        pred = sum(int((res.labels.array == v).sum()) for v in values_for("eyeball")) * vol.voxel_volume_mm3() / 1000
        metrics[f"sclera_{name}_predicted_both_cm3"] = pred
        metrics[f"sclera_{name}_predicted_over_truth"] = pred / metrics["truth_both_cm3"]
        print(f"{name}: predicted {pred:.2f} cm3 (truth {metrics['truth_both_cm3']:.2f})", flush=True)
    notes["how"] = (f"SynthSeg head {HEAD} (held out) at 1 mm, T1 means, 48 x 150 x 150 mm around the eyes; outer 1 mm "
                    "of each globe drawn as sclera; bundled MRI model, overlap window, mirrored, CPU")
    write_result("globe_sclera", metrics, {}, notes)


if __name__ == "__main__":
    main()
