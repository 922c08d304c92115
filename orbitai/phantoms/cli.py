"""``orbitai phantom KIND --n N --seed S --out DIR``: write a synthetic cohort."""
from __future__ import annotations

import argparse
from pathlib import Path

from orbitai.phantoms.cohort import KINDS

#: The largest cohort one command writes (--n); also bounds the time and disk a typo can take.
MAX_CASES = 10000
#: What `write_cohort` puts in its folder: a previous cohort's entries are removed before the new one moves in.
COHORT_ENTRIES = ("manifest.csv", "montage.png", "images", "segmentations")


def earlier_cohort(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier phantom cohort (replaced by a new one): a ``manifest.csv`` listing only
    phantom case files (``images/<kind>_NNNN.nrrd``: a user's own manifest is never replaced) and only phantom case
    files (``<kind>_NNNN.nrrd``, ``.seg.nrrd``) in ``images/`` and ``segmentations/``."""
    import csv
    import re

    names = re.compile("(" + "|".join(k.replace("-", "_") for k in KINDS) + r")_\d{4}(\.seg)?\.nrrd")
    try:
        with (folder / "manifest.csv").open(newline="", encoding="utf-8") as f:
            images = [row.get("image") or "" for row in csv.DictReader(f)]
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    if not images or not all(names.fullmatch(Path(i).name) and Path(i).parent == Path("images") for i in images):
        return False
    return (folder / "manifest.csv").is_file() and all(
        (folder / sub).is_dir() or not (folder / sub).exists() for sub in ("images", "segmentations")) and all(
        p.is_file() and names.fullmatch(p.name) for sub in ("images", "segmentations") if (folder / sub).is_dir()
        for p in (folder / sub).iterdir())


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser(
        "phantom", help=help_text,
        description=("Write N synthetic cases with exact ground truth: images (.nrrd), segmentations "
                     "(.seg.nrrd; orbit label scheme, or lesion masks for brain-flair), manifest.csv "
                     "(case_id,image,segmentation[,label][,clinical features]) and montage.png. "
                     "The same seed gives the same files."),
        epilog="Example: orbitai phantom tao --n 40 --seed 1 --out cohorts/tao")
    p.add_argument("kind", choices=KINDS, help="cohort kind")
    p.add_argument("--n", type=int, default=8, help=f"number of cases, 1 to {MAX_CASES} (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--montage-cases", type=int, default=4, help="cases shown in montage.png (0: no montage)")
    p.add_argument("--atypical", type=float, default=0.0,
                   help="brain-flair: share of atypical cases that look like the other disease (0 to 1, default 0)")
    p.add_argument("--ted", type=float, default=0.0,
                   help="orbit-ct, orbit-mri: share of thyroid-eye-disease-like cases, every rectus enlarged 1.5-3.5x "
                        "in volume (0 to 1, default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from orbitai.errors import UserError
    from orbitai.phantoms.cohort import write_cohort
    from orbitai.progress import emit
    from orbitai.result import check_foreign
    from orbitai.staging import staged_folder

    if args.n < 1:
        raise UserError("--n must be at least 1")
    if args.n > MAX_CASES:
        raise UserError(f"--n must be at most {MAX_CASES}, got {args.n}; write larger cohorts in several folders.")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    if not 0.0 <= args.atypical <= 1.0:
        raise UserError(f"--atypical must lie between 0 and 1, got {args.atypical}.")
    if args.atypical and args.kind != "brain-flair":
        raise UserError(f"--atypical applies to brain-flair phantoms only, not {args.kind}.")
    if not 0.0 <= args.ted <= 1.0:
        raise UserError(f"--ted must lie between 0 and 1, got {args.ted}.")
    if args.ted and args.kind not in ("orbit-ct", "orbit-mri"):
        raise UserError(f"--ted applies to orbit-ct and orbit-mri phantoms only, not {args.kind}.")
    if args.montage_cases < 0:
        raise UserError(f"--montage-cases must be 0 or more, got {args.montage_cases}.")
    from orbitai.bundle.core import refuse_package_folder

    refuse_package_folder(args.out, "--out")                          # the bundled models are read-only
    check_foreign(args.out, COHORT_ENTRIES, earlier=earlier_cohort)   # a real cohort's images are never replaced
    emit(0, args.n, f"generating {args.kind} phantoms")
    # The cohort is written beside --out and moved in when complete (manifest last): an interrupt or a
    # full disk leaves no cases without a manifest, and a previous cohort in --out is replaced, not mixed.
    with staged_folder(Path(args.out).absolute(), replaces=COHORT_ENTRIES, last=["manifest.csv"]) as work:
        write_cohort(args.kind, args.n, args.seed, work, progress=emit, montage_cases=args.montage_cases,
                     atypical=args.atypical, ted=args.ted)
    path = Path(args.out) / "manifest.csv"
    print(f"wrote {args.n} {args.kind} cases; manifest {path}")
    return 0
