"""Issue 66's whole-head speed: how coarse may the locating pass (`orbitai.orbit.locate`) be and still find both
orbits? Its cost is most of what a 1 mm whole head takes beyond its orbit crop (`bench_whole_head`).

The cases: the 20 SynthSeg heads at 1 mm rendered with the T1 and the T2 means (`bench_whole_head.whole_head`), and the
7 real clinical whole-head scans of ``../shared/data/ms_flair_raw_lesjak`` (3-4 mm slices; no labels). For each case
and each coarse factor (model voxels per coarse voxel), the pass runs on the search box as `orbit.segment.segment`
gives it: whether it found a pair of globes (else the whole search box is kept: correct, at the old cost), its
seconds, how many coarse passes it took (1: the first look around the head's most anterior point sufficed), and on the
heads the share of the true eyeballs and the tissue behind them (SynthSeg 506, 508) inside the box.

``python -m benchmarks locate_coarse`` -> ``benchmarks/results/locate_coarse.json`` (``ORBITAI_LOCATE_FACTORS``,
default ``1.5,1.75,2.0``).
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ms_flair_raw_lesjak"
FACTORS = tuple(float(f) for f in os.environ.get("ORBITAI_LOCATE_FACTORS", "1.5,1.75,2.0").split(","))


def cases():
    """(name, volume, label map or None) of every case, made one at a time."""
    from benchmarks.bench_whole_head import whole_head
    from orbitai.io import read_volume

    for head in range(1, 21):
        for weighting in ("T1", "T2"):
            vol, labels = whole_head(head, weighting)
            yield f"head{head:02d}_{weighting}", vol, labels
    for f in sorted(REAL.glob("*.nii.gz")):
        yield f.name.split(".")[0], read_volume(f), None


def main() -> Path:
    import time

    import torch

    import orbitai.orbit.locate as locate
    from orbitai.engine.inference import model_grid, normalise, resample_onto
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.rules import eyeball_class, orbit_search_box

    torch.set_num_threads(2)
    _, net, spec = load_seg_model(None, False, "cpu")
    eye = eyeball_class(spec.structures)
    rows: list[dict[str, Any]] = []
    passes = [0]
    pair = locate._coarse_pair

    def counted(*args, **kwargs):
        passes[0] += 1
        return pair(*args, **kwargs)

    locate._coarse_pair = counted
    try:
        for name, vol, labels in cases():
            row: dict[str, Any] = {"case": name}
            for factor in FACTORS:          # as the engine hands the focus its coarse grid (`focused_part`)
                coarse = [float(v) * factor for v in spec.spacing]
                ref = model_grid(vol, coarse)
                norm = normalise(resample_onto(vol, ref), spec.intensity, reuse=True)
                search = orbit_search_box(norm, coarse)
                passes[0] = 0
                t0 = time.perf_counter()
                box = locate.locate_orbits(norm, coarse, search, net, eye, coarse=1.0)
                seconds = time.perf_counter() - t0
                cover = None
                if labels is not None and box is not None:
                    truth = np.isin(resample_onto(labels, ref, label=True), [506, 508])
                    inside = np.zeros(truth.shape, bool)
                    inside[box] = True
                    cover = float((truth & inside).sum() / max(int(truth.sum()), 1))
                row[str(factor)] = {"found": box != search, "seconds": round(seconds, 2), "cover": cover,
                                    "passes": passes[0]}
            rows.append(row)
            print(name, {k: v for k, v in row.items() if k != "case"}, flush=True)
    finally:
        locate._coarse_pair = pair
    metrics: dict[str, float] = {}
    for factor in FACTORS:
        key = str(factor)
        for group, members in (("heads", [r for r in rows if r["case"].startswith("head")]),
                               ("real", [r for r in rows if not r["case"].startswith("head")])):
            found = [r for r in members if r[key]["found"]]
            metrics[f"{group}_found_x{key}"] = len(found)
            metrics[f"{group}_cases"] = len(members)
            metrics[f"{group}_median_seconds_x{key}"] = statistics.median(r[key]["seconds"] for r in members)
            covers = [r[key]["cover"] for r in found if r[key]["cover"] is not None]
            if covers:
                metrics[f"{group}_min_cover_x{key}"] = min(covers)
            metrics[f"{group}_one_pass_x{key}"] = sum(r[key]["passes"] == 1 for r in members)
    notes = {"rows": rows, "default_factor": locate.COARSE, "load_average_end": list(os.getloadavg()),
             "how": "bundled MRI model, torch threads 2; per case and factor the scan resampled onto the coarse grid "
                    "and the focus's locating run on it as the engine does; passes: 1 when the first look around the head's "
                    "most anterior point held the pair, 2 when every slice was looked at after it"}
    return write_result("locate_coarse", metrics, {}, notes)


if __name__ == "__main__":
    main()
