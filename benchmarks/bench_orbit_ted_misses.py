"""Issue 78: where the MRI model misses an enlarged rectus, and whether the scan shows what it misses.

The cases of :mod:`benchmarks.bench_orbit_mri_ted` (TED-like phantoms of the four held-out heads, T2 and T1), each
through ``orbitai seg predict`` as a user runs it (the bundled MRI model, or each bundle folder of
``ORBITAI_ORBIT_MRI_MODEL``). For every rectus whose truth lies above the normal adult upper limit, its true voxels
are split into those the model labels as that rectus (hit) and the others (missed), and:

* what the model calls the missed voxels (background, a neighbouring structure);
* where they lie: on the muscle's surface (one voxel of the truth's erosion within the fine axes: a thick slice's
  neighbours above and below are not counted) or inside it; and in the front,
  middle or back third of the muscle by distance from its own globe's centre (the back third is the apex);
* how they look: their median intensity on a scale where the fat and background within 2 voxels of the muscle is 0
  and the hit voxels are 1. A miss near 1 is muscle the scan shows plainly (the network's error); near 0, tissue
  the scan cannot tell from fat (the truth's or the slice's limit).

``python -m benchmarks orbit_ted_misses`` -> ``benchmarks/results/orbit_ted_misses.json`` (about 3 minutes on 2 cores
per model).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.bench_orbit_mri_ted import CASES, models, predictions
from benchmarks.common import write_result


def miss_rows(image: np.ndarray, pred: np.ndarray, truth: np.ndarray, spacing: Any) -> list[dict[str, Any]]:
    """One row per enlarged rectus (truth above its normal upper limit) of one case: see the module's text."""
    from scipy import ndimage as ndi

    from orbitai.labels import ORBIT_LABELS
    from orbitai.orbit.anatomy import RECTI, range_of

    sp = np.asarray(spacing, float)[::-1]          # (z, y, x) mm, as the arrays
    vv = float(np.prod(sp)) / 1000.0
    # the surface within the fine axes: a thick slice's whole depth would otherwise be "surface"
    cross = ndi.generate_binary_structure(3, 1)
    for ax in np.flatnonzero(sp > 1.5 * sp.min()):
        cross = np.moveaxis(cross, ax, 0)
        cross[[0, 2]] = False
        cross = np.moveaxis(cross, 0, ax)
    rows = []
    for v, lab in sorted(ORBIT_LABELS.items()):
        if lab.structure not in RECTI:
            continue
        m = truth == v
        if not m.any() or m.sum() * vv <= range_of(lab.structure)[1]:
            continue
        hit, miss = m & (pred == v), m & (pred != v)
        near = ndi.binary_dilation(m, iterations=2) & ~m & (truth == 0)
        fat, mus = float(np.median(image[near])), float(np.median(image[hit])) if hit.any() else np.nan
        globe = [k for k, g in ORBIT_LABELS.items() if g.structure == "eyeball" and g.side == lab.side]
        centre = np.argwhere(np.isin(truth, globe)).mean(0) * sp
        dist = np.linalg.norm(np.argwhere(m) * sp - centre, axis=1)
        third = np.digitize(dist, np.percentile(dist, [100 / 3, 200 / 3]))     # 0 front, 1 middle, 2 back
        missed_flat = miss[m]
        surface = (m & ~ndi.binary_erosion(m, cross))[m]
        called = {ORBIT_LABELS[int(c)].name if c else "background": int(n)
                  for c, n in zip(*np.unique(pred[miss], return_counts=True))}
        rows.append({
            "name": lab.name, "truth_cm3": round(float(m.sum()) * vv, 3), "missed_share": round(float(miss.sum() / m.sum()), 3),
            "missed_called": called,
            "missed_on_surface_share": round(float((missed_flat & surface).sum() / max(missed_flat.sum(), 1)), 3),
            "truth_on_surface_share": round(float(surface.mean()), 3),
            "missed_share_front_middle_back": [round(float(missed_flat[third == t].mean()), 3) for t in range(3)],
            "missed_intensity_fat0_muscle1": (round((float(np.median(image[miss])) - fat) / (mus - fat), 3)
                                              if miss.any() and mus != fat else None),
            "extra_cm3": round(float(((pred == v) & ~m).sum()) * vv, 3)})
    return rows


def main() -> None:
    named = models()
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in named}
    for label, case, results in predictions(named):
        image = case.image.array.astype(np.float64)
        for name, (_, pred) in results.items():
            rows[name] += [{"case": label, **r}
                           for r in miss_rows(image, pred, case.labels.array, case.labels.spacing)]
    metrics: dict[str, float] = {}
    for name, rs in rows.items():
        share = [r["missed_share"] for r in rs]
        look = [r["missed_intensity_fat0_muscle1"] for r in rs if r["missed_intensity_fat0_muscle1"] is not None]
        fmb = np.array([r["missed_share_front_middle_back"] for r in rs])
        metrics[f"{name}_enlarged_recti_n"] = float(len(rs))
        metrics[f"{name}_missed_share_median"] = float(np.median(share))
        metrics[f"{name}_missed_on_surface_share_median"] = float(np.median([r["missed_on_surface_share"] for r in rs]))
        metrics[f"{name}_truth_on_surface_share_median"] = float(np.median([r["truth_on_surface_share"] for r in rs]))
        metrics[f"{name}_missed_intensity_fat0_muscle1_median"] = float(np.median(look))
        for t, where in enumerate(("front", "middle", "back")):
            metrics[f"{name}_missed_share_{where}_third_median"] = float(np.median(fmb[:, t]))
        metrics[f"{name}_missed_called_background_share"] = float(
            sum(r["missed_called"].get("background", 0) for r in rs)
            / max(sum(sum(r["missed_called"].values()) for r in rs), 1))
    write_result("orbit_ted_misses", metrics, {},
                 notes={"cases": [f"{c} head {h} seed {s}" for s, h, c in CASES],
                        "what": "enlarged recti (truth above the normal adult upper limit) of bench_orbit_mri_ted's "
                                "cases: the share of their voxels the model misses, what it calls them, where they "
                                "lie, and their median intensity with the fat beside the muscle 0 and the hit muscle 1",
                        "models": {m: (p or "orbit_svnet_mri_demo (bundled)") for m, p in named.items()},
                        "rows": rows})


if __name__ == "__main__":
    main()
