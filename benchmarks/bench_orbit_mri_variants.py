"""MRI model variants (issues 31 and 46) against the bundled default, one run, same cases.

Selection sets: validation phantoms of the atlas (seeds 9600+, n=4 per set; never the held-out 9100+ test sets of
``bench_segmentation``): T2, T1, domain-randomised 3 and 5 mm; and, for issue 46, phantoms of the four SynthSeg heads
that no training draws (``orbitai.phantoms.heads.HELD_OUT``, one case per head and set, seeds 4690+): T1, T2
(fat-suppressed), FLAIR-like (``CONTRASTS['flair']``) and domain-randomised 5 mm. Dice per structure, both sides.
Real scans (``../shared/data/ms_flair_raw_lesjak``): structure-sides found and in the normal adult volume ranges
(``orbitai.orbit.anatomy.RANGES``), of 12 per scan, and eyeballs within 5.5-9.5 cm3.

Variants: ``bundled`` (``orbit_svnet_mri_demo``) and each bundle folder named in ORBITAI_MRI_VARIANTS
(name=path, comma-separated; default: ``atlas=build/models/orbit_svnet_mri_atlas``, the atlas-only model that was
bundled before issue 46, and ``heads_edge=build/models/orbit_svnet_mri_heads_edge``, ``make orbit-heads-edge``).
The stored result predates the choice: there ``bundled`` is the atlas-only model and ``heads`` today's default.

``python -m benchmarks orbit_mri_variants`` -> ``benchmarks/results/orbit_mri_variants.json`` (``ORBITAI_MRI_VARIANTS_AREA``: another name).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_result

SEED, N = 9600, 4
HEAD_SEED = 4690
ROOT = Path(__file__).resolve().parents[1]


def variants() -> dict[str, str]:
    built = ROOT / "build" / "models"
    spec = os.environ.get("ORBITAI_MRI_VARIANTS", f"atlas={built / 'orbit_svnet_mri_atlas'},"
                                                  f"heads_edge={built / 'orbit_svnet_mri_heads_edge'}")
    # ORBITAI_MRI_VARIANTS_BUNDLED=0 leaves the bundled model out (its figures already stored from a run on the same
    # cases and scans)
    out = {"bundled": "orbit_svnet_mri_demo"} if os.environ.get("ORBITAI_MRI_VARIANTS_BUNDLED", "1") != "0" else {}
    for item in filter(None, spec.split(",")):
        name, path = item.split("=", 1)
        if Path(path).exists():
            out[name] = path
    return out


def main() -> None:
    import torch

    from benchmarks.bench_segmentation import REAL_MRI, SHORT, _score_cases
    from orbitai.io import read_volume
    from orbitai.orbit.anatomy import structure_measures
    from orbitai.orbit.models import load_seg_model
    from orbitai.orbit.rules import OrbitNotFoundError
    from orbitai.orbit.segment import segment
    from orbitai.phantoms import orbit_case
    from orbitai.phantoms.heads import HELD_OUT
    from orbitai.phantoms.orbit import CONTRASTS, Rendering

    torch.set_num_threads(2)
    sets = {"t2": lambda s: orbit_case(s, "t2"), "t1": lambda s: orbit_case(s, "t1"),
            "dr3mm": lambda s: orbit_case(s, "t2", spacing=(0.7, 0.7, 3.0), rendering=Rendering(domain_random=True)),
            "dr5mm": lambda s: orbit_case(s, "t2", spacing=(0.7, 0.7, 5.0), rendering=Rendering(domain_random=True))}
    cases = {name: [make(SEED + 100 * n + i) for i in range(N)] for n, (name, make) in enumerate(sets.items())}
    heads = {"heads_t1": lambda s, h: orbit_case(s, "t1", template=h),
             "heads_t2": lambda s, h: orbit_case(s, "t2", template=h),
             "heads_flair": lambda s, h: orbit_case(s, "t2", template=h,
                                                    rendering=Rendering(contrast=CONTRASTS["flair"])),
             "heads_dr5mm": lambda s, h: orbit_case(s, "t2", spacing=(0.7, 0.7, 5.0), template=h,
                                                    rendering=Rendering(domain_random=True))}
    cases.update({name: [make(HEAD_SEED + 10 * n + i, h) for i, h in enumerate(HELD_OUT)]
                  for n, (name, make) in enumerate(heads.items())})
    scans = sorted(REAL_MRI.glob("long_patient*_study1_*.nii.gz"))
    metrics: dict[str, Any] = {}
    for variant, model in variants().items():
        for name, cs in cases.items():
            for s, v in _score_cases(cs, model).items():
                metrics[f"{variant}_{name}_dice_{SHORT[s]}"] = float(np.mean(v))
        _, net, spec = load_seg_model(model, False, "cpu")
        found = in_range = globes = globes_ok = 0
        for path in scans:
            try:
                labels = segment(read_volume(path), net, spec, "overlap", "cpu").labels
            except OrbitNotFoundError:
                continue
            m = structure_measures(labels)
            found += sum(r["voxels"] > 0 for r in m.values())
            in_range += sum(r["in_range"] for r in m.values())
            eyes = [r for r in m.values() if r["structure"] == "eyeball"]
            globes += len(eyes)
            globes_ok += sum(5.5 <= r["volume_cm3"] <= 9.5 for r in eyes)
        metrics[f"{variant}_real_found_of_{12 * len(scans)}"] = found
        metrics[f"{variant}_real_in_range_of_{12 * len(scans)}"] = in_range
        metrics[f"{variant}_real_eyeballs_5_5_to_9_5_cm3_of_{globes}"] = globes_ok
    notes = {"variants": variants(), "sets": f"validation seeds {SEED}+100n+i, n={N} per set; held-out heads "
                                             f"{list(HELD_OUT)}, seeds {HEAD_SEED}+10n+i; Dice both sides, mean"}
    write_result(os.environ.get("ORBITAI_MRI_VARIANTS_AREA", "orbit_mri_variants"), metrics, {}, notes)


if __name__ == "__main__":
    main()
