"""Issue 77's bar "same or better model for less time", lesions: the one-hour recipe (``make neuro-lesion-hour``: one
run from a random start, 16,500 bfloat16 compiled steps, 58 training minutes on 2 cores) against the bundled lesion
model (nine stages, 26,500 steps over several sessions), each judged by ``orbitai neuro tune-lesions``: post-processing
chosen on the same 36 held-out validation phantoms (real lesion maps of patients never trained on, on brains never
trained on) and the validation figures at that choice, as each bundle's metadata records them; and, where a bundle has
one, its learned second look's out-of-fold figures on the 52 validation phantoms (``orbitai neuro second-look``).

``python -m benchmarks lesion_hour`` -> ``benchmarks/results/lesion_hour.json`` (seconds: it reads the two bundles;
``ORBITAI_LESION_HOUR`` names the candidate folder, default ``build/models/neuro_lesion_hour``; run ``make
neuro-lesion-hour`` and ``orbitai neuro tune-lesions --bundle build/models/neuro_lesion_hour`` first). The bundled
model's figures were chosen on its float16 weights (``make neuro-lesion-model``), the candidate's on float32. Where
``make neuro-lesion-hour-regional`` has trained the same hour with a normal FLAIR's regional brightness
(``ORBITAI_LESION_HOUR_REGIONAL``, default ``build/models/neuro_lesion_hour_regional``) and it is tuned, its figures
come too (``regional_*``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parent.parent
FIGURES = ("all_dice", "all_lesion_f1", "light_dice", "light_lesion_f1", "light_small_recall", "light_avd_percent",
           "medium_dice", "medium_lesion_f1", "heavy_dice", "heavy_lesion_f1")


def _metadata(folder: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((folder / "metadata.json").read_text())
    if "postprocess" not in meta:
        raise SystemExit(f"{folder} has no validation figures: run orbitai neuro tune-lesions --bundle {folder}")
    return meta


def _shown(p: Path) -> str:
    """``p`` relative to the repository where it lies inside it."""
    return str(p.relative_to(REPO) if p.is_relative_to(REPO) else p)


def main() -> None:
    hour = Path(os.environ.get("ORBITAI_LESION_HOUR", REPO / "build" / "models" / "neuro_lesion_hour"))
    if not (hour / "metadata.json").exists():
        print(f"lesion_hour: no candidate at {hour}: run make neuro-lesion-hour and tune-lesions first (skipped)")
        return
    bundled = REPO / "orbitai" / "resources" / "models" / "neuro_lesion_unet_demo"
    meta = {"hour": _metadata(hour), "bundled": _metadata(bundled)}
    # the same hour with the regional FLAIR brightness (make neuro-lesion-hour-regional), where it has been trained
    regional = Path(os.environ.get("ORBITAI_LESION_HOUR_REGIONAL",
                                   REPO / "build" / "models" / "neuro_lesion_hour_regional"))
    if (regional / "metadata.json").exists():
        meta["regional"] = _metadata(regional)
    pp_h, pp_b, tr_h = meta["hour"]["postprocess"], meta["bundled"]["postprocess"], meta["hour"]["training"]
    metrics: dict[str, float] = {}
    for name, m in meta.items():
        pp = m["postprocess"]
        metrics.update({f"{name}_{k}": float(pp["validation"][k]) for k in FIGURES})
        metrics[f"{name}_objective"] = float(pp["objective"])
    # each bundle's learned second look (`orbitai neuro second-look`), out of fold on the 52 validation phantoms
    for name, m in meta.items():
        look = m.get("second_look")
        if look:
            oof = look["validation_out_of_fold"]
            metrics.update({f"{name}_second_look_{k}": float(oof[k]) for k in FIGURES if k in oof})
            metrics[f"{name}_second_look_objective"] = float(look["objective"])
    targets = {"hour_dice_minus_bundled": ">= -0.01", "hour_training_minutes": "<= 60"}
    for name in [n for n in meta if n != "bundled"]:
        tr = meta[name]["training"]
        metrics[f"{name}_dice_minus_bundled"] = round(metrics[f"{name}_all_dice"] - metrics["bundled_all_dice"], 4)
        metrics[f"{name}_training_minutes"] = float(tr["minutes"])
        metrics[f"{name}_steps_run"] = float(tr.get("steps_run", tr["iterations"]))
        targets.update({f"{name}_dice_minus_bundled": ">= -0.01", f"{name}_training_minutes": "<= 60"})
    write_result("lesion_hour", metrics, targets,
                 notes={"candidate": _shown(hour),
                        "regional": {"path": _shown(regional),
                                     "regional_brightness": meta["regional"]["training"].get("regional_brightness"),
                                     "chosen": {k: meta["regional"]["postprocess"][k]
                                                for k in ("threshold", "min_size_mm3", "seed")}}
                        if "regional" in meta else None,
                        "candidate_training": {k: tr_h.get(k) for k in ("iterations", "steps_run", "lr", "seed",
                                                                         "minutes", "loss", "steps", "initial_weights")},
                        "bundled_training": f"neuro_lesion_unet_demo {meta['bundled']['version']}: make "
                            "neuro-lesion-model's nine stages (1300 + 1500 + 1500 + 2000 + 1200 + 3000 + 6000 + 6000 + 4000 steps)",
                        "chosen": {"hour": {k: pp_h[k] for k in ("threshold", "min_size_mm3", "seed")},
                                   "bundled": {k: pp_b[k] for k in ("threshold", "min_size_mm3", "seed")}},
                        "chosen_on": pp_h.get("chosen_on")})


if __name__ == "__main__":
    main()
