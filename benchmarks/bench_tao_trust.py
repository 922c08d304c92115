"""How far to trust a TAO call (issue 51): the bundled networks' out-of-distribution flag and calibration, refitted
on the same phantoms as ``make tao-trust`` (without writing the bundles) and measured on held-out phantoms.

Training cases: 120 phantoms drawn like the training cohort (seed 3000); validation: 100 (seed 3500); test: 100
(seed 3700), never used to fit. Figures per network: the share of test eyes flagged (target <= 5 %), the expected
calibration error (15 bins) before and after temperature scaling, and what noise and a T2 without fat suppression
get. ``python -m benchmarks tao_trust`` -> ``benchmarks/results/tao_trust.json``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

COHORTS = {"train": (120, 3000), "validation": (100, 3500), "test": (100, 3700)}


def main() -> None:
    from orbitai.phantoms.cohort import write_cohort
    from orbitai.tao.cli import read_labelled_manifest
    from orbitai.tao.trust import fit_tao_trust

    metrics: dict[str, Any] = {}
    notes: dict[str, Any] = {"cohorts": {k: f"write_cohort('tao', {n}, seed={s})" for k, (n, s) in COHORTS.items()}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cases = {k: read_labelled_manifest(str(write_cohort("tao", n, s, root / k, montage_cases=0)))
                 for k, (n, s) in COHORTS.items()}
        for network in ("B", "A"):
            r = fit_tao_trust(network, cases["train"], cases["validation"], cases["test"], "cpu", write=False,
                              cache=root / "eyes")
            t = r["test"]
            metrics[f"{network}_test_flagged_share"] = t["flagged_share"]
            metrics[f"{network}_test_ece_uncalibrated"] = t["ece_uncalibrated"]
            metrics[f"{network}_test_ece_calibrated"] = t["ece_calibrated"]
            metrics[f"{network}_temperature"] = r["temperature"]
            notes[network] = r
    targets = {f"{n}_test_flagged_share": "<= 0.05" for n in ("A", "B")}
    targets.update({f"{n}_test_ece_calibrated": "<= 0.05" for n in ("A", "B")})
    write_result("tao_trust", metrics, targets, notes)


if __name__ == "__main__":
    main()
