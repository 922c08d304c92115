"""TED-like phantoms (issue 66 item 3): recti enlarged 2-3x in volume (`orbitai.phantoms.orbit.ted_case`), run
through ``orbitai seg predict`` with the bundled default models (CT and T2 MRI; ORBITAI_ORBIT_CT_MODEL and
ORBITAI_ORBIT_MRI_MODEL name another CT or MRI bundle folder) and the default population (ted).

Per rectus-side: the truth and predicted volumes, Dice, the check; per case: the verdict (an "unlikely" warning or
none), how many recti read "enlarged", and the TED upper bound each was checked against. Also each truth volume's
check (what a perfect segmentation would read). The bar (issue 66): no "unlikely" verdict, an "enlarged" finding per
enlarged muscle; a model that under-segments the enlarged muscles shows it in the Dice and volume ratio. Beside it:
how many recti read above the normal adult range (``recti_above_healthy``: an enlarged muscle, reported as a finding
whether within TED's range or above it) and how many of the phantom's muscles lie above TED's 97.5th percentile
(``truth_above_ted``: sized outside TED's range, they cannot read "enlarged, within the TED range").

``python -m benchmarks ted_phantom`` -> ``benchmarks/results/ted_phantom.json``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

SEEDS = (660401, 660402)
MODALITIES = ("ct", "t2")
SCALE = None        # orbitai.phantoms.orbit.TED_MUSCLE_SCALE: inferior, medial, superior 3x, lateral 2x


def recti_rows(data: dict[str, Any], pred: np.ndarray, truth: Any) -> dict[str, dict[str, Any]]:
    """Per rectus of a ``seg predict`` result (``data``, its label map ``pred``) against the phantom's ``truth``
    labels: the volumes, their ratio, Dice and the checks of the prediction and of the truth."""
    from orbitai.labels import ORBIT_LABELS
    from orbitai.orbit.anatomy import RECTI, check_structure, range_of

    vv = truth.voxel_volume_mm3() / 1000.0
    rows = {}
    for r in data["structures"]:
        v = r["label"]
        if ORBIT_LABELS[v].structure not in RECTI:
            continue
        p, t = pred == v, truth.array == v
        true_cm3 = float(t.sum()) * vv
        rows[r["name"]] = {"truth_cm3": round(true_cm3, 3), "pred_cm3": round(r["volume_cm3"], 3),
                           "pred_over_truth": round(r["volume_cm3"] / true_cm3, 3) if true_cm3 else None,
                           "dice": round(2 * float(np.count_nonzero(p & t)) / max(int(p.sum() + t.sum()), 1), 3),
                           "check": r["check"], "range_cm3": r["range_cm3"],
                           "healthy_upper_cm3": range_of(ORBIT_LABELS[v].structure)[1],
                           "truth_check": check_structure(v, true_cm3, None).status}
    return rows


def _case(seed: int, modality: str, folder: Path) -> dict[str, Any]:
    from orbitai.cli import main as cli
    from orbitai.io import read_volume, write_volume
    from orbitai.phantoms.orbit import ted_case

    case = ted_case(seed, modality, SCALE)
    image = write_volume(case.image, folder / f"{modality}_{seed}.nrrd")
    out = folder / f"out_{modality}_{seed}"
    t0 = time.perf_counter()
    model = os.environ.get("ORBITAI_ORBIT_MRI_MODEL" if modality != "ct" else "ORBITAI_ORBIT_CT_MODEL", "")
    assert cli(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--labelmap"]
               + (["--model", model] if model else [])) == 0
    seconds = time.perf_counter() - t0
    data = json.loads((out / "result.json").read_text())
    rows = recti_rows(data, read_volume(out / "labels.nrrd").array, case.labels)
    return {"seed": seed, "modality": modality, "model": data["model"], "population": data["population"],
            "seconds": round(seconds, 1), "unlikely": any("unlikely" in w for w in data["warnings"]),
            "recti": rows}


def main() -> None:
    from orbitai.orbit.anatomy import ENLARGED

    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for modality in MODALITIES:
            for seed in SEEDS:
                cases.append(_case(seed, modality, Path(tmp)))
                print(json.dumps(cases[-1])[:400])
    metrics: dict[str, Any] = {}
    for modality in MODALITIES:
        mine = [c for c in cases if c["modality"] == modality]
        recti = [r for c in mine for r in c["recti"].values()]
        metrics[f"{modality}_cases_unlikely"] = sum(c["unlikely"] for c in mine)
        metrics[f"{modality}_recti_enlarged_of_{len(recti)}"] = sum(r["check"] == ENLARGED for r in recti)
        metrics[f"{modality}_truth_enlarged_of_{len(recti)}"] = sum(r["truth_check"] == ENLARGED for r in recti)
        # beside them: every rectus read above the normal adult range (an enlarged muscle, a finding, whether within
        # TED's range or above it), and the phantom's muscles whose truth lies above TED's 97.5th percentile
        metrics[f"{modality}_recti_above_healthy_of_{len(recti)}"] = sum(
            r["pred_cm3"] > r["healthy_upper_cm3"] for r in recti)
        metrics[f"{modality}_truth_above_ted_of_{len(recti)}"] = sum(
            r["truth_cm3"] > r["range_cm3"][1] for r in recti)
        metrics[f"{modality}_recti_dice_median"] = float(np.median([r["dice"] for r in recti]))
        metrics[f"{modality}_recti_pred_over_truth_median"] = float(np.median([r["pred_over_truth"] for r in recti]))
    suffix = "".join(f"_{Path(os.environ[k]).name}" for k in ("ORBITAI_ORBIT_CT_MODEL", "ORBITAI_ORBIT_MRI_MODEL")
                     if os.environ.get(k))
    write_result("ted_phantom" + suffix, metrics,
                 {"cases_unlikely": "0 (issue 66: no 'unlikely' flag on a TED-like phantom)",
                  "recti_enlarged": "every rectus above the normal adult range and within TED's"},
                 notes={"scale": "TED_MUSCLE_SCALE (3x SR, IR, MR; 2x LR)", "seeds": list(SEEDS), "cases": cases})


if __name__ == "__main__":
    main()
