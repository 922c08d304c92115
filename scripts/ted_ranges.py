"""Write ``orbitai/resources/orbit_ranges.json``: per-side volume ranges of the orbit structures in thyroid eye
disease (TED), from the TOM500 tables (CC0; ``../shared/data/tom500_ted_tables``, 400 patients' T2 MRI features).

    python scripts/ted_ranges.py [--table ../shared/data/tom500_ted_tables/mri_features.csv] [--out FILE] [--check]

The package reads only the JSON written here (`orbitai.orbit.anatomy.TED_RANGES`), never the shared folder.

* **Scrambled names.** ``mri_features.csv`` names its column prefixes wrongly: its pipeline called label values
  1-9 eyeball, fat, optic_nerve, ... but the dataset's labels are those of its ``categories.json`` (1 SR, 2 LR,
  3 MR, 4 IR, 5 ON, 6 FAT, 7 LG, 8 SO, 9 EB). :data:`COLUMNS` reads each prefix by its label value (the table's
  README). The dataset's SR label holds the superior rectus together with the levator palpebrae superioris.
* **Per side.** The volumes (``<prefix>_shape_volume_mm3``) are of both orbits together, but the table also
  counts each half's voxels (``<prefix>_asym_left_voxels`` and ``_right_voxels``, which add up to
  ``_shape_volume_voxels`` in every row): each side's volume is its voxel share of the both-orbit volume. Which
  half is the patient's left is not documented, so the two sides are pooled (800 structure-sides per structure).
* **Range.** The 2.5th-97.5th percentiles of the pooled per-side volumes (cm3).

``--check`` writes nothing and fails when the checked-in JSON differs from what the table gives.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = ROOT.parent / "shared" / "data" / "tom500_ted_tables" / "mri_features.csv"
OUT = ROOT / "orbitai" / "resources" / "orbit_ranges.json"
PERCENTILES = (2.5, 97.5)

#: Orbit-scheme structure -> (the table's scrambled column prefix, the dataset's label value and name).
COLUMNS = {
    "eyeball": ("lateral_rectus", 9, "EB"),
    "optic_nerve": ("lacrimal_gland", 5, "ON"),
    "superior_rectus_muscle": ("eyeball", 1, "SR (with the levator palpebrae superioris)"),
    "inferior_rectus_muscle": ("muscle", 4, "IR"),
    "medial_rectus_muscle": ("optic_nerve", 3, "MR"),
    "lateral_rectus_muscle": ("fat", 2, "LR"),
}


def per_side_cm3(rows: list[dict[str, str]], prefix: str) -> np.ndarray:
    """Each patient's two per-side volumes (cm3) of the structure under ``prefix``: the both-orbit volume split
    by each half's voxel count."""
    out = []
    for r in rows:
        total, mm3 = float(r[f"{prefix}_shape_volume_voxels"]), float(r[f"{prefix}_shape_volume_mm3"])
        left, right = float(r[f"{prefix}_asym_left_voxels"]), float(r[f"{prefix}_asym_right_voxels"])
        if total <= 0 or left + right != total:
            raise ValueError(f"case {r.get('case_id')}: {prefix} voxels {left:g} + {right:g} != {total:g}")
        out += [mm3 * left / total / 1000.0, mm3 * right / total / 1000.0]
    return np.asarray(out)


def ranges(table: Path) -> dict:
    """The JSON content from ``table`` (TOM500's mri_features.csv)."""
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    structures = {}
    for structure, (prefix, value, name) in COLUMNS.items():
        v = per_side_cm3(rows, prefix)
        lo, hi = np.percentile(v, PERCENTILES)
        structures[structure] = {"range_cm3": [round(float(lo), 2), round(float(hi), 2)],
                                 "median_cm3": round(float(np.median(v)), 2), "sides": int(v.size),
                                 "column_prefix": prefix, "label": value, "label_name": name}
    return {
        "ted": {
            "what": "per-side volumes (cm3) of orbit structures in thyroid eye disease (TED) patients, T2 MRI",
            "source": {"dataset": "TOM500 (thyroid-associated ophthalmopathy orbital MRI), CC0 1.0 tables",
                       "file": table.name, "sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
                       "patients": len(rows), "script": "scripts/ted_ranges.py"},
            "percentiles": list(PERCENTILES),
            "per_side": "each side's voxel share (<prefix>_asym_left_voxels / _right_voxels) of the both-orbit "
                        "<prefix>_shape_volume_mm3; the two sides pooled (which half is the patient's left is "
                        "not documented)",
            "column_mapping": "the file's column prefixes are scrambled: each prefix is read by its label value "
                              "(categories.json), as column_prefix -> label -> label_name per structure",
            "structures": structures,
        }
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="TOM500's mri_features.csv")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args(argv)
    if not args.table.is_file():
        print(f"error: {args.table} not found; pass --table PATH/mri_features.csv", file=sys.stderr)
        return 2
    text = json.dumps(ranges(args.table), indent=1) + "\n"
    if args.check:
        same = args.out.is_file() and args.out.read_text() == text
        print(f"{args.out}: {'up to date' if same else 'differs from the table: rerun scripts/ted_ranges.py'}")
        return 0 if same else 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
