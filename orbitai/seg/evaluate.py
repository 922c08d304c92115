"""Cohort evaluation of a segmentation bundle: per-case and summary metrics (papers 002/004)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.metrics.segmentation import Overlap, volume_agreement, volume_cm3
from orbitai.progress import ProgressCallback, emit


def score_case(pred: np.ndarray, truth: np.ndarray, structures, spacing) -> list[dict[str, Any]]:
    """Rows per structure (both orbits pooled, as the papers report per structure)."""
    from orbitai.labels import values_for

    rows = []
    for s in structures:
        vals = values_for(s)
        p, t = np.isin(pred, vals), np.isin(truth, vals)
        o = Overlap.of(p, t)
        rows.append({"structure": s, "iou": o.iou, "dice": o.dice, "sp": o.paper_sp, "sn": o.paper_sn,
                     "vs": o.volume_similarity, "volume_pred_cm3": volume_cm3(p, spacing),
                     "volume_true_cm3": volume_cm3(t, spacing)})
    return rows


def evaluate(manifest: str | Path, model: str, out: Path, device: str = "auto", window: str = "overlap",
             progress: Optional[ProgressCallback] = None) -> dict[str, Any]:
    from orbitai.bundle.models import load_seg_model
    from orbitai.cohort.manifest import read_manifest
    from orbitai.device import select_device
    from orbitai.io import read_volume
    from orbitai.orbit.segment import segment
    from orbitai.preprocess.checks import looks_like_ct

    progress = progress or (lambda d, t, m: emit(d, t, m))
    cases = read_manifest(manifest)
    dev = select_device(device)
    first = read_volume(cases[0].image)
    bundle, net, spec = load_seg_model(model, looks_like_ct(first), dev)
    per_case: list[dict[str, Any]] = []
    for n, c in enumerate(cases, 1):
        vol = read_volume(c.image)
        truth = c.labels()
        res = segment(vol, net, spec, window, dev)
        for row in score_case(res.labels.array, truth.array, spec.structures, vol.spacing):
            per_case.append({"case_id": c.case_id, **row, "seconds": round(res.seconds, 2)})
        progress(n, len(cases), f"evaluated {c.case_id}")
    out.mkdir(parents=True, exist_ok=True)
    keys = ["iou", "dice", "sp", "sn", "vs"]
    summary: dict[str, Any] = {"model": bundle.name, "window": window, "cases": len(cases), "per_structure": {}}
    for s in spec.structures:
        rows = [r for r in per_case if r["structure"] == s]
        entry = {k: float(np.mean([r[k] for r in rows])) for k in keys}
        entry.update({f"{k}_sd": float(np.std([r[k] for r in rows])) for k in keys})
        if len(rows) >= 2:
            entry.update(volume_agreement([r["volume_pred_cm3"] for r in rows], [r["volume_true_cm3"] for r in rows]))
        summary["per_structure"][s] = entry
    summary["mean"] = {k: float(np.mean([summary["per_structure"][s][k] for s in spec.structures])) for k in keys}
    with (out / "per_case.csv").open("w", newline="") as f:
        rows_out = csv.DictWriter(f, fieldnames=list(per_case[0]))
        rows_out.writeheader()
        rows_out.writerows(per_case)
    with (out / "summary.csv").open("w", newline="") as f:
        cols = sorted({k for e in summary["per_structure"].values() for k in e})
        w = csv.writer(f)
        w.writerow(["structure"] + cols)
        for s, e in summary["per_structure"].items():
            w.writerow([s] + [f"{e.get(k, float('nan')):.4f}" for k in cols])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
