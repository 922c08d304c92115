"""Issue 67.6: "Which scan next" (``orbitai seg rank``, `orbitai.orbit.rank.rank_scans`) took 159 s for 6 volumes and put a
brain-only FLAIR first. Measured here on 6 real scans of ``../shared/data``: five clinical whole-head MRIs with the
orbits in view (``ms_flair_raw_lesjak``: FLAIR, T2 and T1, 3-4 mm slices) and the brain-extracted FLAIR in MNI space
(``ms_flair_lesjak``: no orbits), in one run, each way on the same scans and the same model:

* before: every scan segmented over the whole front of the head (``judge=False, locate=False``: the ranking as it
  was, without the scan's facts or the orbit crop);
* facts: the scan's facts asked first (`orbitai.scan.scan_facts`, once per scan, handed to the segmentation), the
  scans that surely do not show the orbits left out with the reason, and a scan in whose front of the head the network
  finds no orbit scored 1 without a second whole-scan run (``judge=True, locate=False``);
* after: the facts, and the network run on a box around the orbits found by a coarse pass in a whole head
  (`orbitai.orbit.locate`; ``judge=True, locate=True``, the defaults).

Per scan: seconds (from the progress callback's "scan n of N" times) and where the time of the "after" run goes (the
facts alone, timed separately); the order of the ranked scans in both runs; whether the brain-only FLAIR is first. The
load average (``os.getloadavg``) before and after each run is kept: the machine's 2 cores are shared.

Run: ``python -m benchmarks rank`` (writes benchmarks/results/rank.json; ~5 minutes on 2 busy cores).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_result

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SCANS = [("p01_FLAIR", DATA / "ms_flair_raw_lesjak" / "long_patient01_study1_FLAIR.nii.gz"),
         ("p01_T2W", DATA / "ms_flair_raw_lesjak" / "long_patient01_study1_T2W.nii.gz"),
         ("p03_FLAIR", DATA / "ms_flair_raw_lesjak" / "long_patient03_study1_FLAIR.nii.gz"),
         ("p04_T1W", DATA / "ms_flair_raw_lesjak" / "long_patient04_study1_T1W.nii.gz"),
         ("p04_T2W", DATA / "ms_flair_raw_lesjak" / "long_patient04_study1_T2W.nii.gz"),
         ("mni_brain_FLAIR", DATA / "ms_flair_lesjak" / "cs_patient26_FLAIR_MNI.nii.gz")]
BRAIN_ONLY = "mni_brain_FLAIR"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _timed_rank(judge: bool, locate: bool) -> dict[str, Any]:
    from orbitai.orbit.rank import rank_scans

    marks: list[float] = []
    load_before = _load()
    t0 = time.perf_counter()
    ranked = rank_scans([(c, str(p)) for c, p in SCANS], judge=judge, locate=locate,
                        progress=lambda done, total, message: marks.append(time.perf_counter()))
    total = time.perf_counter() - t0
    per = {c: round(marks[i + 1] - marks[i], 2) for i, (c, _) in enumerate(SCANS)}   # marks: n-1 of N .. N of N
    return {"total_s": round(total, 1), "per_scan_s": per, "load_before": load_before, "load_after": _load(),
            "order": [r.case_id for r in ranked], "ranked": [r.case_id for r in ranked if r.ranked],
            "notes": {r.case_id: r.note for r in ranked if r.note}}


def _facts_seconds() -> dict[str, float]:
    from orbitai.io import read_volume
    from orbitai.scan import scan_facts

    out = {}
    for case, path in SCANS:
        vol = read_volume(path)
        t0 = time.perf_counter()
        scan_facts(vol, path=path)
        out[case] = round(time.perf_counter() - t0, 2)
    return out


def main() -> None:
    missing = [str(p) for _, p in SCANS if not p.is_file()]
    if missing:
        raise SystemExit(f"bench_rank needs the real scans of ../shared/data: missing {', '.join(missing)}")
    before = _timed_rank(judge=False, locate=False)
    judged = _timed_rank(judge=True, locate=False)
    after = _timed_rank(judge=True, locate=True)
    facts = _facts_seconds()
    same_order = [c for c in before["order"] if c in after["ranked"]] == after["ranked"]
    metrics = {
        "before_total_s": before["total_s"], "facts_only_total_s": judged["total_s"], "after_total_s": after["total_s"],
        "speedup_x": round(before["total_s"] / max(after["total_s"], 1e-6), 2),
        "speedup_facts_only_x": round(before["total_s"] / max(judged["total_s"], 1e-6), 2),
        "before_brain_only_rank": before["order"].index(BRAIN_ONLY) + 1,
        "after_brain_only_ranked": int(BRAIN_ONLY in after["ranked"]),
        "after_scans_left_out": len(SCANS) - len(after["ranked"]),
        "ranked_scans_same_order": int(same_order),
        "facts_total_s": round(sum(facts.values()), 2),
    }
    targets = {"after_brain_only_ranked": "== 0", "ranked_scans_same_order": "== 1", "speedup_x": ">= 1.0"}
    notes = {"scans": {c: str(p.relative_to(DATA)) for c, p in SCANS}, "before": before, "facts_only": judged,
             "after": after,
             "facts_s": facts,
             "what": "one run: before = every scan segmented over the front of the head (judge=False, locate=False: "
                     "the ranking as it was); facts_only = the scan's facts first, scans surely without the orbits "
                     "left out, no second whole-scan search where the front holds no orbit (judge=True, locate=False); after = facts and the orbit crop (judge=True, locate=True); "
                     "same model (bundled MRI), CPU, no mirroring, in this process (model loaded by each run)",
             "load": "load averages (1 min) before/after each run are in before/after; the machine's 2 cores are "
                     "shared with other work"}
    write_result("rank", metrics, targets, notes)


if __name__ == "__main__":
    main()
