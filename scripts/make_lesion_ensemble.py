"""Make one lesion bundle of several (issue 79's "small ensemble averaged before thresholding").

    python scripts/make_lesion_ensemble.py --out build/models/neuro_lesion_ensemble BUNDLE BUNDLE [...]

Each member bundle is found and checksum-verified as `orbitai neuro lesions` finds one; all must be 2.5D lesion
U-Nets of the same arguments and input. The result is an ordinary lesion bundle of the same architecture with
``members`` = their number (`orbitai.neuro.lesion_net.MeanProbability`: the mean of their probabilities), its
metadata the first member's input and labels, each member's name, checksum and training recorded under
``ensemble``. Its post-processing and second look are not the members': choose them again on the validation split
(``orbitai neuro tune-lesions`` then ``orbitai neuro second-look``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from orbitai.bundle import save_bundle
from orbitai.errors import UserError
from orbitai.models import build_model
from orbitai.neuro.lesionseg import lesion_bundle
from orbitai.neuro.seg_configs import ARCHITECTURE

#: What a member's metadata gives the ensemble unchanged (each must be the same in every member).
SHARED = ("task", "input", "labels", "intended_use")


def ensemble_metadata(metas: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The ensemble's metadata from its members' (the first's input and labels; each member's provenance)."""
    first = metas[0]
    for m in metas[1:]:
        for key in SHARED + ("architecture",):
            if m.get(key) != first.get(key):
                raise UserError(f"{m['name']} differs from {first['name']} in its {key}: members must be the same "
                                "network on the same input.")
    args = {**first["architecture"]["args"], "members": len(metas)}
    return {"name": name, "version": "0.1.0",
            "description": f"{len(metas)} 2.5D MONAI U-Nets for white-matter lesions on brain FLAIR, their "
                           "probabilities averaged (demo, not for clinical use).",
            **{k: first[k] for k in SHARED if k in first},
            "architecture": {"name": ARCHITECTURE, "args": args},
            "training_data": " | ".join(f"{m['name']} ({m['weights_sha256'][:12]}): {m.get('training_data', '')}"
                                        for m in metas),
            "ensemble": [{"name": m["name"], "version": m.get("version"), "weights_sha256": m["weights_sha256"],
                          "training": m.get("training", {})} for m in metas]}


def make(members: Sequence[str], out: Path, overwrite: bool = False) -> Path:
    """Write the ensemble of the bundles ``members`` to ``out``; returns its folder."""
    if len(members) < 2:
        raise UserError("Give at least two lesion bundles to average.")
    bundles = [lesion_bundle(m) for m in members]
    # each member by its folder's name (a trained bundle keeps the name of the bundle it started from)
    meta = ensemble_metadata([{**b.metadata, "name": b.path.name} for b in bundles], out.name)
    model = build_model(ARCHITECTURE, **meta["architecture"]["args"])
    for net, b in zip(model.members, bundles):           # type: ignore[union-attr]
        net.load_state_dict(b.load_state_dict(), strict=True)
    return save_bundle(model, out, meta, overwrite).path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("members", nargs="+", help="lesion bundle folders or names")
    p.add_argument("--out", required=True, type=Path, help="the ensemble bundle's folder")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    try:
        print(make(a.members, a.out, a.overwrite))
    except UserError as exc:
        print(f"make_lesion_ensemble: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
