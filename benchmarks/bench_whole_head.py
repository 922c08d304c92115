"""Issue 66's speed bar: a 1 mm whole-head MRI segmented in at most 1.5x the time of the same scan cropped to the
orbits, and in at most 8 s on 2 quiet cores.

The scans: held-out SynthSeg head 17's label map at 1 mm (never drawn by a training cohort), rendered with the
T1 and the T2 means of :mod:`orbitai.phantoms.heads` (blur 0.6 voxel, 2 % noise); the crop is the same voxels
cut to what an orbit protocol covers (``CROP_MM``: 48 mm of slices through the eyes, 150 x 150 mm in-plane from
20 mm in front of the eyes, centred left to right on them). Each is segmented by the bundled MRI model
(``orbitai.orbit.segment.segment``: overlap window, mirrored, on the CPU with 2 threads), best of ``REPEATS``; the
stages (preprocess, network windows, the rest), the network's box and the eyeball volumes of both are recorded,
with the load average before and after (the machine is shared: the seconds are only as quiet as it was).

``python -m benchmarks whole_head`` -> ``benchmarks/results/whole_head.json``.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from benchmarks.common import write_result

HEAD = 17
#: The orbit protocol's field of view around the eyes (mm): slices, front to back, left to right.
CROP_MM = {"si": 48.0, "ap": 150.0, "lr": 150.0}
REPEATS = int(os.environ.get("ORBITAI_BENCH_REPEATS", "2"))


def whole_head(head: int, weighting: str):
    """A 1 mm whole-head MRI of SynthSeg head ``head`` with ``weighting``'s means, and its label map (axial LPS)."""
    from scipy import ndimage as ndi

    from orbitai.io.orient import reorient
    from orbitai.phantoms.heads import MEANS, TISSUES, head_labels, tissue_map

    labels = reorient(head_labels(head, step=1), "LPS")          # stored coronally: axial LPS order
    rng = np.random.default_rng(head)
    means = np.array([MEANS[weighting].get(t, 0.0) for t in TISSUES])
    img = ndi.gaussian_filter(means[tissue_map(labels.array)], 0.6)
    img = np.abs(img + 0.02 * float(img.max()) * rng.standard_normal(img.shape)).astype(np.float32)
    return labels.with_array(img), labels


def orbit_crop(vol, labels):
    """``vol`` cut to :data:`CROP_MM` around the eyes (SynthSeg label 506) of ``labels``."""
    from orbitai.io import Volume

    box = crop_box(vol, labels)
    origin = vol.index_to_physical([box[2].start, box[1].start, box[0].start])
    return Volume(np.ascontiguousarray(vol.array[box]), vol.spacing, tuple(float(v) for v in origin), vol.direction)


def crop_box(vol, labels) -> tuple[slice, slice, slice]:
    """The [k, j, i] slices of :data:`CROP_MM` around the eyes of an axial LPS volume with 1 mm voxels."""
    assert np.allclose(np.abs(vol.direction), np.eye(3)) and np.allclose(vol.spacing, 1.0), "an axial 1 mm head"
    k, j, i = np.nonzero(labels.array == 506)
    kc, ic = 0.5 * (k.min() + k.max()), 0.5 * (i.min() + i.max())
    # the front of the eyes: low j in LPS (anterior) when the direction's y is +1, high j when it is -1
    front = j.min() - 20 if vol.direction[1][1] > 0 else j.max() + 20
    half = CROP_MM["si"] / 2, CROP_MM["lr"] / 2
    if vol.direction[1][1] > 0:
        jr = (int(front), int(front + CROP_MM["ap"]))
    else:
        jr = (int(front - CROP_MM["ap"]), int(front))
    n = vol.shape
    return (slice(max(0, int(kc - half[0])), min(n[0], int(kc + half[0]))), slice(max(0, jr[0]), min(n[1], jr[1])),
            slice(max(0, int(ic - half[1])), min(n[2], int(ic + half[1]))))


def eyeball_cm3(res) -> float:
    from orbitai.labels import values_for
    from orbitai.orbit.anatomy import label_counts

    counts = label_counts(res.labels)
    return sum(int(counts[v]) for v in values_for("eyeball")) * res.labels.voxel_volume_mm3() / 1000.0


def run(vol, net, spec, repeats: int, locate: bool = True) -> dict[str, Any]:
    """Best-of-``repeats`` seconds of one segmentation and its stages (``locate``: the coarse pass that finds the
    orbits first, :mod:`orbitai.orbit.locate`; without it, as before issue 66)."""
    from orbitai.orbit.segment import OrbitSearch, segment

    best: dict[str, Any] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = segment(vol, net, spec, "overlap", "cpu", search=OrbitSearch(locate=locate))
        total = time.perf_counter() - t0
        if not best or total < best["seconds"]:
            box = res.engine.box if res.engine is not None else None
            best = {"seconds": total, "window_seconds": res.window_seconds, "prep_seconds": res.prep_seconds,
                    "rest_seconds": total - res.window_seconds - res.prep_seconds,
                    "eyeballs_cm3": eyeball_cm3(res), "found_box": [list(b) for b in box] if box else None,
                    "labels": res.labels}
    return best


def agreement(a, b, box) -> float:
    """Dice of the orbit labels of two segmentations of the same voxels (``b`` of the crop ``box`` of ``a``)."""
    x, y = a.array[box], b.array
    both = (x > 0) & (y > 0)
    return 2.0 * float((both & (x == y)).sum()) / max(1, int((x > 0).sum() + (y > 0).sum()))


def main() -> None:
    import torch

    from orbitai.orbit.models import load_seg_model

    torch.set_num_threads(2)
    _, net, spec = load_seg_model(None, False, "cpu")
    load_before = os.getloadavg()
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {"scans": {}}
    for weighting in ("T1", "T2"):
        vol, labels = whole_head(HEAD, weighting)
        crop = orbit_crop(vol, labels)
        w = weighting.lower()
        box = crop_box(vol, labels)
        runs = {}
        for name, locate in (("before", False), ("after", True)):        # before: no coarse pass (as until issue 66)
            whole, cropped = run(vol, net, spec, REPEATS, locate), run(crop, net, spec, REPEATS, locate)
            runs[name] = whole, cropped
            metrics[f"{w}_{name}_whole_head_seconds"] = whole["seconds"]
            metrics[f"{w}_{name}_orbit_crop_seconds"] = cropped["seconds"]
            metrics[f"{w}_{name}_whole_over_crop"] = whole["seconds"] / cropped["seconds"]
            metrics[f"{w}_{name}_whole_vs_crop_label_dice"] = agreement(whole["labels"], cropped["labels"], box)
            notes["scans"][f"{weighting}_{name}"] = {
                "whole_shape": list(vol.shape), "crop_shape": list(crop.shape),
                "whole": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in whole.items() if k != "labels"},
                "crop": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in cropped.items() if k != "labels"}}
        metrics[f"{w}_whole_after_vs_before_label_dice"] = agreement(runs["after"][0]["labels"],
                                                                     runs["before"][0]["labels"],
                                                                     tuple(slice(None) for _ in range(3)))
    load_after = os.getloadavg()
    notes["load_average_before"] = [round(x, 2) for x in load_before]
    notes["load_average_after"] = [round(x, 2) for x in load_after]
    notes["how"] = (f"SynthSeg head {HEAD} (held out) at 1 mm, T1 and T2 means; crop {CROP_MM} mm around the eyes; "
                    f"bundled MRI model, overlap window, mirrored, CPU, torch threads 2, best of {REPEATS}")
    targets = {f"{w}_after_whole_over_crop": "<= 1.5" for w in ("t1", "t2")}
    targets.update({f"{w}_after_whole_head_seconds": "<= 8" for w in ("t1", "t2")})
    write_result("whole_head", metrics, targets, notes)


if __name__ == "__main__":
    main()
