"""Issue 78's real-scan check within the project: the real brain MRIs of ``../shared/data`` (7 scans of 3 MS patients,
T1, T2 and FLAIR at 3-4 mm) through ``orbitai seg predict`` as a user runs it, the bundled MRI model and each bundle
folder of ``ORBITAI_ORBIT_MRI_MODEL`` (comma-separated) in one run.

Per model and scan: whether an orbit was found (patient 03's field of view leaves the globes out: "No orbit found" is
the right answer there), and per structure-side the volume the table shows and whether it lies in the normal adult
range (``orbitai.orbit.anatomy.range_of``; these patients have no thyroid eye disease). Summary per model: the
structure-sides in range of those of the scans with an orbit, and the eyeballs within 5.5-9.5 cm3. Without truth these
count plausibility, not accuracy; the globes read small on the 4 mm T2 and FLAIR stop where the front of the globe
darkens. What needs no truth: the same eyes scanned with two or three sequences in one session (patients 01 and 04)
should measure the same. ``agreement`` gives, per model, the median over a patient's structure-sides of the largest
volume over the smallest across its sequences (1 = the same on every sequence), and per sequence the median of each
structure-side's volume over that patient's median across sequences (eyeballs and recti apart).

``python -m benchmarks orbit_real_mri`` -> ``benchmarks/results/orbit_real_mri.json`` (about 4 minutes a model on 2
cores).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_orbit_mri_ted import models
from benchmarks.bench_segmentation import REAL_MRI
from benchmarks.common import write_result


def _predict(image: Path, out: Path, model: str | None) -> dict[str, Any] | None:
    """``seg predict``'s result.json, or None where it found no orbit (exit 2, said in one line)."""
    from orbitai.cli import main as cli

    rc = cli(["seg", "predict", str(image), "--out", str(out), "--device", "cpu"] + (["--model", model] if model else []))
    if rc != 0:
        return None
    return json.loads((out / "result.json").read_text())


def agreement(rows: dict[str, Any]) -> dict[str, float]:
    """Cross-sequence agreement of one model's ``rows`` (scan key -> structure-side -> {"cm3"}; scans named
    ``long_patientNN_studyN_SEQ``): ``max_over_min_<group>`` and ``<SEQ>_over_median_<group>`` for the groups
    ``eyeball`` and ``rectus`` (medians; see the module docstring). Patients with fewer than two scans with an orbit
    are left out."""
    from statistics import median

    by_patient: dict[str, dict[str, dict[str, float]]] = {}
    for key, sides in rows.items():
        if isinstance(sides, dict):
            patient, seq = key.rsplit("_", 1)
            by_patient.setdefault(patient, {})[seq] = {n: v["cm3"] for n, v in sides.items()}
    spread: dict[str, list[float]] = {"eyeball": [], "rectus": []}
    ratio: dict[tuple[str, str], list[float]] = {}
    for scans in by_patient.values():
        if len(scans) < 2:
            continue
        names = set.intersection(*(set(v) for v in scans.values()))
        for name in sorted(names):
            group = "eyeball" if name.startswith("eyeball") else "rectus" if "rectus" in name else None
            vols = {seq: v[name] for seq, v in scans.items()}
            if group is None or min(vols.values()) <= 0:
                continue
            spread[group].append(max(vols.values()) / min(vols.values()))
            mid = median(vols.values())
            for seq, v in vols.items():
                ratio.setdefault((seq, group), []).append(v / mid)
    out = {f"max_over_min_{g}": round(median(v), 3) for g, v in spread.items() if v}
    out.update({f"{seq}_over_median_{g}": round(median(v), 3) for (seq, g), v in sorted(ratio.items())})
    return out


def main() -> None:
    from orbitai.orbit.anatomy import range_of

    scans = sorted(REAL_MRI.glob("long_patient*_study1_*.nii.gz"))
    named = models()
    rows: dict[str, dict[str, Any]] = {m: {} for m in named}
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in named.items():
            in_range = sides = globes = globes_ok = found = 0
            for scan in scans:
                key = scan.name.replace(".nii.gz", "")
                data = _predict(scan, Path(tmp) / f"{name}_{key}", model)
                if data is None:
                    rows[name][key] = "no orbit found"
                    continue
                found += 1
                rows[name][key] = {}
                for s in data["structures"]:
                    lo, hi = range_of(s["structure"])
                    ok = lo <= s["volume_cm3"] <= hi
                    rows[name][key][s["name"]] = {"cm3": round(s["volume_cm3"], 3), "in_range": ok}
                    sides += 1
                    in_range += ok
                    if s["structure"] == "eyeball":
                        globes += 1
                        globes_ok += 5.5 <= s["volume_cm3"] <= 9.5
            metrics[f"{name}_scans_with_an_orbit"] = found
            metrics[f"{name}_sides_in_range"] = in_range
            metrics[f"{name}_sides"] = sides
            metrics[f"{name}_eyeballs_5_5_to_9_5_cm3"] = globes_ok
            metrics[f"{name}_eyeballs"] = globes
            metrics.update({f"{name}_{k}": v for k, v in agreement(rows[name]).items()})
    write_result("orbit_real_mri", metrics, {},
                 notes={"scans": [s.name for s in scans], "source": str(REAL_MRI),
                        "models": {m: (p or "orbit_svnet_mri_demo (bundled)") for m, p in named.items()},
                        "what": "seg predict as a user runs it; volume of the table (voxel count); in range: the "
                                "normal adult range of orbitai.orbit.anatomy",
                        "rows": rows})


if __name__ == "__main__":
    main()
