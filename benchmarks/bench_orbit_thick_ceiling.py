"""The ceiling of issue 78's thick-slice Dice bar: what a perfect network scores through the product's route.

``bench_orbit_thick`` scores the bundled MRI model on 3 and 4 mm slices averaged from 1 mm phantoms of the held-out
heads, each rectus's Dice on the thick grid against each thick voxel's most frequent 1 mm label. A network runs on the
0.8 mm model grid; its class probabilities are mapped onto the scan's grid by linear interpolation at each voxel's
centre (``orbitai.engine.mapping.map_classes``), so a thick voxel takes the class at its centre plane, not the slab's
majority. Here the network is replaced by an oracle that is exactly right on its own grid, mapped through
``map_classes`` like the model's probabilities, in two kinds (`oracle_labels`): *sharp*, the 1 mm truth at the model
grid's voxel centres, one-hot; *smooth*, each class's 1 mm indicator linearly interpolated onto the model grid (about
the share of a model voxel each class fills). Their Dice per rectus (both sides, mean over cases, as
``bench_orbit_thick``) is what the route gives a perfect network of either kind; the bundled model's figures are read
from ``orbit_thick_orbit_svnet_mri_gpu.json`` (the same weights, before half precision) beside them.

``python -m benchmarks orbit_thick_ceiling`` -> ``benchmarks/results/orbit_thick_ceiling.json`` (a few minutes; no
network). ORBITAI_THICK_CONTRASTS as ``bench_orbit_thick`` (the oracle reads the labels only: the contrast changes
the in-plane spacing drawn per case, through the seed).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from benchmarks.bench_orbit_thick import SEED, SHORT, _fine_case
from benchmarks.common import RESULTS, write_result

MODEL_SPACING = (0.8, 0.8, 0.8)          # the orbit MRI model's grid (its bundle's input spacing)


def oracle_labels(scan_labels, fine_labels, smooth: bool) -> np.ndarray:
    """Labels on the grid of ``scan_labels`` (a thick scan's) as a network exactly right on the model grid would give
    them through ``map_classes``. ``smooth=False``: the 1 mm truth at the model grid's voxel centres, one-hot (sharp);
    ``True``: each class's 1 mm indicator linearly interpolated onto the model grid (about the share of each
    model voxel the class fills: a network that gives partial volume as probability)."""
    import SimpleITK as sitk

    from orbitai.engine.mapping import map_classes
    from orbitai.preprocess.grid import model_grid, resample_onto

    grid = model_grid(scan_labels, MODEL_SPACING)
    values = np.arange(int(fine_labels.array.max()) + 1)
    if smooth:
        probs = np.stack([sitk.GetArrayFromImage(sitk.Resample(
            fine_labels.with_array((fine_labels.array == v).astype(np.float32)).to_sitk(), grid, sitk.Transform(),
            sitk.sitkLinear, 1.0 if v == 0 else 0.0, sitk.sitkFloat32)) for v in values])
    else:
        on_grid = resample_onto(fine_labels, grid, label=True)
        probs = (on_grid[None] == values[:, None, None, None]).astype(np.float32)
    cls, _ = map_classes(probs, grid, scan_labels, [(0, n) for n in scan_labels.shape])
    return values[cls]


def main() -> None:
    from orbitai.labels import ORBIT_LABELS, values_for
    from orbitai.metrics.segmentation import dice
    from orbitai.phantoms.heads import HELD_OUT
    from orbitai.phantoms.thick import thick_slices

    contrasts = [c for c in os.environ.get("ORBITAI_THICK_CONTRASTS", "t2,flair").split(",") if c]
    rows: list[dict[str, Any]] = []
    for ci, contrast in enumerate(contrasts):
        for hi, head in enumerate(HELD_OUT):
            fine = _fine_case(SEED + 10 * ci + hi, head, contrast)
            for factor in (1, 3, 4):
                case = fine if factor == 1 else thick_slices(fine, factor)
                sharp = oracle_labels(case.labels, fine.labels, smooth=False)
                smooth = oracle_labels(case.labels, fine.labels, smooth=True)
                for structure, short in SHORT.items():
                    for v in values_for(structure):
                        truth = case.labels.array == v
                        rows.append({"contrast": contrast, "head": head, "mm": factor, "structure": short,
                                     "side": ORBIT_LABELS[v].side, "sharp": round(dice(sharp == v, truth), 4),
                                     "smooth": round(dice(smooth == v, truth), 4)})
            print(f"{contrast} head {head}", flush=True)
    model_file = RESULTS / "orbit_thick_orbit_svnet_mri_gpu.json"
    model = json.loads(model_file.read_text())["metrics"] if model_file.is_file() else {}
    metrics: dict[str, float] = {}
    for factor in (1, 3, 4):
        for short in SHORT.values():
            sel = [r for r in rows if r["mm"] == factor and r["structure"] == short]
            for kind in ("sharp", "smooth"):
                metrics[f"{factor}mm_{short}_{kind}_oracle_dice"] = float(np.mean([r[kind] for r in sel]))
            if f"{factor}mm_{short}_dice" in model:
                metrics[f"{factor}mm_{short}_model_dice"] = float(model[f"{factor}mm_{short}_dice"])
    notes = {"cases": f"bench_orbit_thick's: held-out heads {list(HELD_OUT)}, contrasts {contrasts}, seeds "
                      f"{SEED}+10*contrast+head index",
             "oracle": "sharp: the 1 mm truth on the 0.8 mm model grid (nearest neighbour), one-hot; smooth: each "
                       "class's 1 mm indicator linearly interpolated onto it; both mapped by "
                       "orbitai.engine.mapping.map_classes; Dice against each thick voxel's most frequent 1 mm label "
                       "(orbitai.phantoms.thick: ties to the lower value, background before a structure)",
             "model": f"{model_file.name} (bundled weights in float32), read, not run",
             "rows": rows}
    write_result("orbit_thick_ceiling", metrics, {}, notes)


if __name__ == "__main__":
    main()
