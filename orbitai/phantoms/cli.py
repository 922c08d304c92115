"""``orbitai phantom KIND --n N --seed S --out DIR``: write a synthetic cohort."""
from __future__ import annotations

import argparse

from orbitai.phantoms.cohort import KINDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "phantom", help="write a synthetic cohort (orbital CT/MRI, domain-randomised, TAO, IVGC, brain FLAIR) with ground truth",
        description=("Write N synthetic cases with exact ground truth: images (.nrrd), segmentations "
                     "(.seg.nrrd; orbit label scheme, or lesion masks for brain-flair), manifest.csv "
                     "(case_id,image,segmentation[,label][,clinical features]) and montage.png. "
                     "The same seed gives the same files."),
        epilog="Example: orbitai phantom tao --n 40 --seed 1 --out cohorts/tao")
    p.add_argument("kind", choices=KINDS, help="cohort kind")
    p.add_argument("--n", type=int, default=8, help="number of cases (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--montage-cases", type=int, default=4, help="cases shown in montage.png (0: no montage)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from orbitai.errors import UserError
    from orbitai.phantoms.cohort import write_cohort
    from orbitai.progress import emit

    if args.n < 1:
        raise UserError("--n must be at least 1")
    emit(0, args.n, f"generating {args.kind} phantoms")
    path = write_cohort(args.kind, args.n, args.seed, args.out, progress=emit, montage_cases=args.montage_cases)
    print(f"wrote {args.n} {args.kind} cases; manifest {path}")
    return 0
