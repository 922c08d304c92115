"""What a scan is (issue 50), on every real scan the project has and on rebuilt problem cases.

* Real scans (``../shared/data``: the 7 clinical whole-head scans of patients 01/03/04 and patient 26's
  skull-stripped MNI FLAIR): each answer of :func:`orbitai.scan.scan_facts` from the image alone (the file name is
  not given) against what the file says it is (FLAIR / T2W / T1W; none is fat suppressed, all are MR).
* The reference method, the value rule used before (``orbitai.scan.values.image_is_ct`` with no modality):
  what it answered on the same scans (CT, MR, or refused) - it has no weighting.
* Speed: the classifier's time per scan against reading the scan.

The held-out phantom figures come from ``orbitai scan train`` (``make scan-classifier``):
``benchmarks/results/scan_classifier.json``. ``python -m benchmarks scan`` -> ``benchmarks/results/scan.json``.
"""
from __future__ import annotations

import time
from typing import Any

from benchmarks.bench_segmentation import REAL_MRI
from benchmarks.common import write_result

MNI_FLAIR = REAL_MRI.parent / "ms_flair_lesjak" / "cs_patient26_FLAIR_MNI.nii.gz"
TRUTH = {"FLAIR": "FLAIR", "T2W": "T2", "T1W": "T1"}


def main() -> None:
    from orbitai.errors import OrbitAIError
    from orbitai.io import read_scan
    from orbitai.scan.values import image_is_ct
    from orbitai.scan import scan_facts

    scans = sorted(REAL_MRI.glob("long_patient*_study1_*.nii.gz")) + ([MNI_FLAIR] if MNI_FLAIR.is_file() else [])
    if not scans:
        print(f"no real scans in {REAL_MRI}; not run")
        return
    rows: list[dict[str, Any]] = []
    read_s = describe_s = 0.0
    for path in scans:
        t0 = time.perf_counter()
        vol, acq = read_scan(path)
        t1 = time.perf_counter()
        facts = scan_facts(vol, acq.tags, None)        # no file name: the image alone
        t2 = time.perf_counter()
        read_s, describe_s = read_s + t1 - t0, describe_s + t2 - t1
        kind = next(k for k in TRUTH if k in path.name)
        try:
            old = "CT" if image_is_ct(vol, path.name) else "MR"
        except OrbitAIError as exc:
            old = f"refused: {str(exc)[:90]}"
        rows.append({"scan": path.name, "truth": {"modality": "MR", "weighting": TRUTH[kind], "fat_suppressed": False},
                     "answer": facts.to_json(), "value_rule": old,
                     "modality_right": facts.sure("modality") and facts.modality.value == "MR",
                     "weighting_right": facts.sure("weighting") and facts.weighting.value == TRUTH[kind],
                     "weighting_unsure": not facts.sure("weighting"),
                     "weighting_likeliest_right": facts.weighting.value == TRUTH[kind],
                     "fat_suppression_likeliest_right": facts.fat_suppressed.value is False,
                     "fat_suppression_right": facts.sure("fat_suppressed") and facts.fat_suppressed.value is False})
        print(f"{path.name:<40} {facts.summary()}  [value rule: {old[:40]}]")
    n = len(rows)
    metrics = {"real_scans": n,
               "real_modality_right": sum(r["modality_right"] for r in rows),
               "real_weighting_right": sum(r["weighting_right"] for r in rows),
               "real_weighting_wrong_and_sure": sum(not r["weighting_right"] and not r["weighting_unsure"]
                                                    for r in rows),
               "real_weighting_likeliest_right": sum(r["weighting_likeliest_right"] for r in rows),
               "real_fat_suppression_right": sum(r["fat_suppression_right"] for r in rows),
               "real_fat_suppression_likeliest_right": sum(r["fat_suppression_likeliest_right"] for r in rows),
               "value_rule_modality_right": sum(r["value_rule"] == "MR" for r in rows),
               "seconds_describe_per_scan": describe_s / n, "seconds_read_per_scan": read_s / n}
    targets = {"real_modality_right": f">= {n}"}
    write_result("scan", metrics, targets, {"scans": rows, "source": str(REAL_MRI.parent),
                                            "held_out_phantoms": "benchmarks/results/scan_classifier.json"})


if __name__ == "__main__":
    main()
