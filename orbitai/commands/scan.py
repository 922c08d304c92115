"""``orbitai scan describe|train``: what a scan is (CT or MRI, weighting, fat suppression, what is in view)."""
from __future__ import annotations

import argparse
from pathlib import Path

from orbitai.arguments import add_modality_option
from orbitai.errors import UserError
from orbitai.io import read_scan, require_values
from orbitai.scan import scan_facts
from orbitai.staging import strict_json


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("scan", help=help_text,
                       description="What a scan is, from its DICOM tags, file name and image (the answer every predict "
                                   "command writes into result.json as 'scan').")
    s = p.add_subparsers(dest="scan_command", metavar="<scan command>", required=True)
    d = s.add_parser("describe", help="say what a scan is, with each answer's confidence and source",
                     description="Prints CT or MR, the MR weighting and fat suppression, the slice thickness and "
                                 "whether the orbits and the brain are in view (--json: as result.json holds it).")
    d.add_argument("image", help="image file (NRRD/NIfTI/MHA) or DICOM series folder")
    add_modality_option(d)
    d.add_argument("--json", action="store_true", help="print the answer as JSON")
    d.set_defaults(func=run_describe)
    t = s.add_parser("train", help="train the scan classifier on renderings of the 16 training heads",
                     description="Renders CT and MRI (T1, T2, FLAIR, PD, with and without fat suppression) of the 16 "
                                 "training heads of orbitai/data/synthseg_label_maps, fits the classifier and tests it "
                                 "on renderings of the 4 held-out heads (about 15 minutes on 2 CPU cores).")
    t.add_argument("--out", required=True, help="folder for classifier.npz and classifier.json")
    t.add_argument("--per-template", type=int, default=75, help="renderings per training head (default 75)")
    t.add_argument("--test-per-template", type=int, default=50, help="renderings per held-out head (default 50)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=2, help="processes rendering in parallel (default 2)")
    t.add_argument("--results", help="also write the held-out test's figures to this JSON file")
    t.set_defaults(func=run_train)


def run_describe(args: argparse.Namespace) -> int:
    vol, acq = read_scan(args.image)
    require_values(vol, "image")
    facts = scan_facts(vol, acq.tags, args.image, args.modality)
    if args.json:
        print(strict_json(facts.to_json(), indent=1), end="")
        return 0
    print(f"scan: {facts.summary()}")
    for q in facts.QUESTIONS:
        f = getattr(facts, q)
        value = "not known" if f.value is None else f.value
        print(f"  {q:<15} {str(value):<8} confidence {f.confidence:.2f}  ({f.source})")
    for note in facts.notes:
        print(f"note: {note}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from orbitai.commands.scan_train import train     # scikit-learn and the phantoms: for training only

    if args.per_template < 2 or args.test_per_template < 1 or args.workers < 1:
        raise UserError("--per-template must be at least 2, --test-per-template and --workers at least 1.")
    report = train(Path(args.out), args.per_template, args.test_per_template, args.seed, args.workers,
                   Path(args.results) if args.results else None)
    for q, r in report["test"]["questions"].items():
        print(f"{q:<15} held-out accuracy {r['accuracy']:.3f} ({r['n']} scans), wrong and sure: {r['wrong_confident']}")
    print(f"wrote {args.out}/classifier.npz and classifier.json ({report['seconds']['total']:.0f} s)")
    return 0
