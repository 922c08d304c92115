"""Cohort evaluation of a segmentation bundle: per-case and summary metrics (papers 002/004)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.bundle.models import find_task_bundle
from orbitai.cohort.manifest import Case, ManifestError, read_manifest
from orbitai.device import select_device
from orbitai.io import Volume, grid_difference, read_volume
from orbitai.labels import LABEL_BY_NAME, values_for
from orbitai.metrics.segmentation import Overlap, volume_agreement, volume_cm3
from orbitai.orbit.predict import SegOptions, SegRun
from orbitai.predictor import Case as PredictorCase
from orbitai.progress import ProgressCallback, emit
from orbitai.result import check_outputs
from orbitai.scan import scan_facts
from orbitai.scan.values import model_family
from orbitai.staging import staged_folder, strict_json

#: Files written into the ``--out`` folder.
OUTPUT_FILES = ("per_case.csv", "summary.csv", "summary.json")
#: How far (in voxels, at any corner) a reference's grid may lie from its image's: scored voxel by voxel, a
#: reference is held to float round-off of file formats (:func:`orbitai.io.grid_difference`, the one grid
#: check; a segmentation given as a model's input is allowed half a voxel).
ORIGIN_VOXELS = 0.01


def check_reference(case_id: str, image: Volume, reference: Volume) -> None:
    """Refuse (ManifestError naming the case) a reference that does not lie on the image's grid or
    holds values outside the orbit label scheme: compared voxel by voxel, it would score a
    misplaced or mislabelled reference as if it were right. It is never resampled silently."""
    diff = grid_difference(image, reference, ORIGIN_VOXELS)
    if diff is not None:
        raise ManifestError(f"Case {case_id}: the reference segmentation does not lie on the image's grid: {diff}; "
                            "export it on the image's geometry (e.g. from Slicer with the image as reference).")
    values = np.unique(reference.array)
    allowed = {0, *(lab.value for lab in LABEL_BY_NAME.values())}
    bad = [v for v in values.tolist() if v not in allowed]
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad[:8]) + (", ..." if len(bad) > 8 else "")
        raise ManifestError(f"Case {case_id}: the reference segmentation holds values outside the orbit label "
                            f"scheme (0-{max(allowed)}): {shown}; relabel it with the scheme's values.")


def check_cases(cases: list[Case], progress: ProgressCallback) -> None:
    """Read every case's image and reference and check them (:func:`check_reference`) before any
    model runs, so a bad case late in the manifest fails at once."""
    for n, c in enumerate(cases, 1):
        check_reference(c.case_id, read_volume(c.image), c.labels())
        progress(n, len(cases), f"checked {c.case_id}")


def score_case(pred: np.ndarray, truth: np.ndarray, structures, spacing) -> list[dict[str, Any]]:
    """Rows per structure (both orbits pooled, as the papers report per structure)."""
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
    """Segment every case of ``manifest`` with ``model`` and score it against its reference;
    writes OUTPUT_FILES to ``out`` (all of them or, on a failure or a cancel, none). The manifest, the output
    folder (never over an input), the model and every reference (:func:`check_reference`) are checked
    before the model runs."""
    progress = progress or (lambda d, t, m: emit(d, t, m))
    cases = read_manifest(manifest)
    out = check_outputs(out, [manifest, *(p for c in cases for p in (c.image, c.segmentation))], OUTPUT_FILES)
    dev = select_device(device)
    find_task_bundle(model, "segmentation", "a segmentation model")   # a wrong --model before reading any case
    check_cases(cases, progress)
    from orbitai.orbit.predictor import OrbitPredictor  # torch: score_case is read by the Slicer side without it

    first = read_volume(cases[0].image)
    # without --model the first case's facts choose the bundled model (judged once, not per case)
    family = model_family(scan_facts(first, path=cases[0].image) if model is None else None, first)
    predictor = OrbitPredictor(model or family, dev)    # the task's predictor runs the model on every case
    bundle, _, spec = predictor.models.get(family == "CT")
    options = SegOptions(window=window)
    per_case: list[dict[str, Any]] = []
    for n, c in enumerate(cases, 1):
        vol = read_volume(c.image)
        truth = c.labels()
        made = predictor.run(PredictorCase(vol, given=c.image, scan=c.image), options, dev)
        assert isinstance(made, SegRun)
        res = made.seg
        for row in score_case(res.labels.array, truth.array, spec.structures, vol.spacing):
            per_case.append({"case_id": c.case_id, **row, "seconds": round(res.seconds, 2)})
        progress(n, len(cases), f"evaluated {c.case_id}")
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
    # written beside OUT and moved in when complete (summary.json last): a failure leaves no partial report
    with staged_folder(out, replaces=OUTPUT_FILES, last=["summary.json"]) as work:
        with (work / "per_case.csv").open("w", newline="") as f:
            rows_out = csv.DictWriter(f, fieldnames=list(per_case[0]))
            rows_out.writeheader()
            rows_out.writerows(per_case)
        with (work / "summary.csv").open("w", newline="") as f:
            cols = sorted({k for e in summary["per_structure"].values() for k in e})
            w = csv.writer(f)
            w.writerow(["structure"] + cols)
            for s, e in summary["per_structure"].items():
                w.writerow([s] + [f"{e.get(k, float('nan')):.4f}" for k in cols])
        (work / "summary.json").write_text(strict_json(summary))
    return summary
