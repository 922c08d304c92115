"""Issue 78's first bar: TED-like MRI phantoms of the held-out heads, the bundled MRI model and a candidate in one run.

Cases: ``orbitai.phantoms.orbit.ted_case`` on the four SynthSeg heads no training draws (``HELD_OUT``), T2 (the
phantoms' T2 is fat-suppressed, T2-SPIR-like) and T1, two cases (seeds) per contrast, each on its own head: every rectus enlarged as ``TED_MUSCLE_SCALE`` (3x
superior, inferior, medial; 2x lateral). Each scan goes through ``orbitai seg predict`` as a user runs it, once with
the bundled MRI model and once with each bundle folder of ``ORBITAI_ORBIT_MRI_MODEL`` (comma-separated). Per model: the
recti's predicted / true volume (median), their Dice (median), and how many read above the normal adult range (an
enlarged muscle, the finding) of those whose truth lies above it.

``python -m benchmarks orbit_mri_ted`` -> ``benchmarks/results/orbit_mri_ted.json`` (about 5 minutes on 2 cores).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from benchmarks.bench_ted_phantom import recti_rows
from benchmarks.common import write_result

#: (seed, head, contrast): each held-out head once per contrast, two seeds.
CASES = ((780101, 17, "t2"), (780102, 18, "t2"), (780103, 19, "t1"), (780104, 20, "t1"))


def _predict(image: Path, out: Path, model: Optional[str]) -> tuple[dict[str, Any], np.ndarray]:
    from orbitai.cli import main as cli
    from orbitai.io import read_volume

    assert cli(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--labelmap"]
               + (["--model", model] if model else [])) == 0
    return json.loads((out / "result.json").read_text()), read_volume(out / "labels.nrrd").array


def models() -> dict[str, Optional[str]]:
    """The bundled MRI model (None) and each bundle folder of ``ORBITAI_ORBIT_MRI_MODEL`` (comma-separated), by name."""
    found: dict[str, Optional[str]] = {"bundled": None}
    for path in filter(None, os.environ.get("ORBITAI_ORBIT_MRI_MODEL", "").split(",")):
        found[Path(path).name] = path
    return found


def predictions(named: dict[str, Optional[str]]) -> Iterator[tuple[str, Any, dict[str, tuple[dict[str, Any], np.ndarray]]]]:
    """Per case of :data:`CASES`: its label (``"t2 head 17 seed 780101"``), the phantom, and each model's
    ``seg predict`` result and label map (the scan written once, predicted as a user runs it)."""
    from orbitai.io import write_volume
    from orbitai.phantoms.orbit import ted_case

    with tempfile.TemporaryDirectory() as tmp:
        for seed, head, contrast in CASES:
            case = ted_case(seed, contrast, template=head)
            image = write_volume(case.image, Path(tmp) / f"{contrast}_{head}_{seed}.nrrd")
            yield (f"{contrast} head {head} seed {seed}", case,
                   {name: _predict(image, Path(tmp) / f"out_{name}_{seed}", model) for name, model in named.items()})


def main() -> None:
    named = models()
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in named}
    for label, case, results in predictions(named):
        for name, (data, pred) in results.items():
            rows[name] += [{"case": label, "name": n, **r} for n, r in recti_rows(data, pred, case.labels).items()]
        print(f"{label}: " + ", ".join(
            f"{m} {np.median([x['pred_over_truth'] for x in rows[m][-8:] if x['pred_over_truth']]):.2f}"
            for m in named))
    metrics: dict[str, float] = {}
    targets: dict[str, str] = {}
    for name, rs in rows.items():
        ratios = [r["pred_over_truth"] for r in rs if r["pred_over_truth"] is not None]
        above = [r for r in rs if r["truth_cm3"] > r["healthy_upper_cm3"]]
        metrics[f"{name}_recti_pred_over_truth_median"] = float(np.median(ratios))
        metrics[f"{name}_recti_dice_median"] = float(np.median([r["dice"] for r in rs]))
        metrics[f"{name}_enlarged_read_share"] = (sum(r["pred_cm3"] > r["healthy_upper_cm3"] for r in above)
                                                  / max(len(above), 1))
        metrics[f"{name}_recti_n"] = float(len(rs))
        targets[f"{name}_recti_pred_over_truth_median"] = ">= 0.85"
        targets[f"{name}_recti_dice_median"] = ">= 0.75"
        targets[f"{name}_enlarged_read_share"] = ">= 0.8"
    write_result("orbit_mri_ted", metrics, targets,
                 notes={"cases": [f"{c} head {h} seed {s}" for s, h, c in CASES],
                        "what": "ted_case (TED_MUSCLE_SCALE) on the held-out SynthSeg heads; T2 is the phantoms' "
                                "fat-suppressed T2; 'enlarged_read_share': recti read above the normal adult upper "
                                "limit of those whose truth lies above it",
                        "models": {m: (p or "orbit_svnet_mri_demo (bundled)") for m, p in named.items()},
                        "rows": rows})


if __name__ == "__main__":
    main()
