"""Issue 77's resume bar: a recipe stopped after N epochs and resumed reaches the validation figures of one
uninterrupted run (within 0.005 Dice).

The recipe: the orbit MRI stage ``svnet-demo-mri-ted-sclera`` (ORBITAI_RESUME_CONFIG) from the bundled MRI weights, on
the stage's phantom manifest (``build/cohorts/mri_ted_train``, written as ``make mri-ted-stage`` writes it when
missing), shortened to ``EPOCHS`` epochs, fold 0 of 6 held out for validation, bf16 steps, through ``orbitai seg
train`` as a user runs it. Run A goes through uninterrupted; run B is given a time limit that stops it after its first
epoch (its checkpoint kept), then the same command without the limit goes on from that checkpoint. Compared: the
validation Dice per structure after the last epoch (the metrics CSV) and the largest difference between the two
bundles' weights.

``python -m benchmarks training_resume`` -> ``benchmarks/results/training_resume.json`` (about 10 minutes on 2 cores
once the stage's synthetic heads are cached).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
CONFIG = os.environ.get("ORBITAI_RESUME_CONFIG", "svnet-demo-mri-ted-sclera")
EPOCHS = int(os.environ.get("ORBITAI_RESUME_EPOCHS", "4"))
COHORT = ROOT / "build" / "cohorts" / "mri_ted_train"


def _orbitai(*args: str) -> float:
    """Run ``orbitai`` with ``args`` as a process; its seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "orbitai", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _train(out: Path, *extra: str) -> float:
    return _orbitai("seg", "train", "--manifest", str(COHORT / "manifest.csv"), "--config", CONFIG,
                    "--init", str(ROOT / "orbitai" / "resources" / "models" / "orbit_svnet_mri_demo"), "--seed", "5",
                    "--speed", "bf16", "--epochs", str(EPOCHS), "--folds", "6", "--fold", "0", "--out", str(out),
                    *extra)


def _last_dice(metrics_csv: Path) -> dict[str, float]:
    rows = list(csv.DictReader(metrics_csv.open()))
    return {k[len("val_dice_"):]: float(v) for k, v in rows[-1].items() if k.startswith("val_dice_")}


def _epochs(metrics_csv: Path) -> int:
    return len(list(csv.DictReader(metrics_csv.open())))


def _weight_differences(a: Path, b: Path) -> tuple[float, str, float]:
    """The largest difference between the two bundles' floating-point tensors (and its tensor's name), and between
    their integer buffers (batch-norm step counters)."""
    from orbitai.bundle.core import load_bundle

    sa, sb = load_bundle(a).load_state_dict(), load_bundle(b).load_state_dict()      # checksummed, weights only
    diffs = {k: float((sa[k].float() - sb[k].float()).abs().max()) for k in sa}
    floats = {k: d for k, d in diffs.items() if sa[k].is_floating_point()}
    worst = max(floats, key=lambda k: floats[k])
    return floats[worst], worst, max((d for k, d in diffs.items() if k not in floats), default=0.0)


def main() -> None:
    if not (COHORT / "manifest.csv").exists():
        _orbitai("phantom", "orbit-mri", "--n", "36", "--seed", "2100", "--ted", "0.5", "--out", str(COHORT),
                 "--montage-cases", "0")
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp:
        a, b = Path(tmp) / "uninterrupted", Path(tmp) / "resumed"
        seconds_a = _train(a)
        seconds_b1 = _train(b, "--time-limit", "0.001")       # stops after the first epoch
        first_part = _epochs(Path(f"{b}-metrics.csv"))
        seconds_b2 = _train(b)                                # the same command goes on from the checkpoint
        dice_a, dice_b = _last_dice(Path(f"{a}-metrics.csv")), _last_dice(Path(f"{b}-metrics.csv"))
        diffs = {s: abs(dice_a[s] - dice_b[s]) for s in dice_a}
        weights, worst, counters = _weight_differences(a, b)
        epochs_b = _epochs(Path(f"{b}-metrics.csv"))
    metrics = {"epochs": EPOCHS, "stopped_after_epochs": first_part, "resumed_epochs_total": epochs_b,
               "max_val_dice_difference": max(diffs.values()), "max_weight_difference": weights,
               "max_counter_difference": counters,
               "uninterrupted_seconds": seconds_a, "stopped_seconds": seconds_b1, "resumed_seconds": seconds_b2}
    notes = {"config": CONFIG, "largest_weight_difference_in": worst, "val_dice_uninterrupted": dice_a, "val_dice_resumed": dice_b,
             "what": "orbitai seg train, fold 0 of 6 of the stage's 36 phantoms validating, bf16 steps, seed 5; "
                     "run B stopped by --time-limit after its first epoch, then the same command without it"}
    notes["target"] = "issue 77: a resumed run reaches the uninterrupted run's validation Dice within 0.005"
    write_result("training_resume", metrics, {"max_val_dice_difference": "<= 0.005"}, notes)


if __name__ == "__main__":
    main()
