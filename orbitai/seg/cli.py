"""``orbitai seg train|predict|evaluate``: orbit segmentation from the command line."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from orbitai.cli import add_device_option
from orbitai.errors import UserError

#: File names that ``--out`` must not have (it takes a folder).
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".csv", ".json")
#: The plain label map that ``predict --labelmap`` adds to OUT.
LABELMAP_FILE = "labels.nrrd"

log = logging.getLogger("orbitai.seg")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seg", help="orbit segmentation: train, predict, evaluate",
                       description="Segment eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.")
    s = p.add_subparsers(dest="seg_command", metavar="<seg command>", required=True)

    pr = s.add_parser("predict", help="segment one image (NRRD/NIfTI/MHA file or DICOM folder)",
                      description="Segment one orbital CT or MRI. Writes OUT/segmentation.seg.nrrd (Slicer segmentation "
                                  "in the input's geometry; for a DICOM series with gantry tilt or uneven slice "
                                  "spacing, on the regular grid it was resampled onto, which covers the series), "
                                  "OUT/volumes.csv (cm3 per structure and side) and OUT/result.json (model, warnings, "
                                  "acquisition: what reading corrected, structures and volumes, files).")
    pr.add_argument("image", help="input image file or DICOM series folder")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument("--model", help="bundle name or folder (default: the bundled model for the image's modality)")
    _add_window_options(pr)
    pr.add_argument("--no-mirror", action="store_true",
                    help="skip test-time left-right mirroring (about twice as fast, slightly less accurate)")
    pr.add_argument("--uncertainty", action="store_true",
                    help="also write OUT/uncertainty.nrrd: the model's uncertainty (1 - max class probability)")
    pr.add_argument("--labelmap", action="store_true",
                    help="also write OUT/labels.nrrd, a plain label map (values as in result.json)")
    pr.set_defaults(func=run_predict)

    ev = s.add_parser("evaluate", help="evaluate a model on a manifest with ground truth",
                      description="Per-case and summary metrics (IoU, Dice, SP, SN, VS, volumes; Pearson R, MAE, RMSE, RE).")
    ev.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation")
    ev.add_argument("--model", required=True, help="bundle name or folder")
    ev.add_argument("--out", required=True, help="output folder for per_case.csv and summary.csv/json")
    _add_window_options(ev)
    ev.set_defaults(func=run_evaluate)

    tr = s.add_parser("train", help="train a model on a manifest and write a bundle",
                      description="Train a segmentation configuration; resumable; writes BUNDLE_DIR with metadata.json and model.pt.")
    tr.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation")
    tr.add_argument("--config", required=True, help="configuration name (see 'orbitai seg configs')")
    tr.add_argument("--out", required=True, help="bundle folder to write")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    tr.add_argument("--folds", type=int, default=1, help="k for k-fold cross-validation (1: no validation)")
    tr.add_argument("--fold", type=int, default=0, help="which fold is held out for validation (0-based)")
    add_device_option(tr)
    tr.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    tr.add_argument("--time-limit", type=float, help="stop after this many minutes (a bundle is still written)")
    tr.set_defaults(func=run_train)

    cf = s.add_parser("configs", help="list the training configurations")
    cf.set_defaults(func=run_configs)


def _add_window_options(p: argparse.ArgumentParser) -> None:
    add_device_option(p)
    p.add_argument("--window", default="overlap", choices=("overlap", "step1"),
                   help="overlap: Gaussian-weighted overlapped windows (default, fast); "
                        "step1: the paper's 32-slice window moved one slice at a time")


def run_predict(args) -> int:
    from orbitai.bundle.models import load_seg_model
    from orbitai.device import run_with_fallback, select_device
    from orbitai.io import read_scan, require_finite, write_volume
    from orbitai.progress import emit
    from orbitai.orbit.rules import structure_volumes
    from orbitai.orbit.segment import segment
    from orbitai.preprocess.checks import check_spacing, image_is_ct, looks_like_ct
    from orbitai.preprocess.slices import structure_gap_warnings
    from orbitai.result import RESULT_FILE, check_outputs
    from orbitai.seg.result import SEGMENTATION_FILE, UNCERTAINTY_FILE, VOLUMES_FILE, SegmentationResult

    out = check_outputs(args.out, [args.image],
                        (RESULT_FILE, SEGMENTATION_FILE, VOLUMES_FILE, UNCERTAINTY_FILE, LABELMAP_FILE))
    if out.name.lower().endswith(VOLUME_SUFFIXES):
        raise UserError(f"--out takes a folder (OUT/segmentation.seg.nrrd, volumes.csv and result.json are "
                        f"written there); got the file name {out}.")
    vol, acquisition = read_scan(args.image)     # tilted / unevenly spaced DICOM resampled, values in HU
    require_finite(vol, "image")
    check_spacing(vol, args.image)
    is_ct = looks_like_ct(vol) if args.model else image_is_ct(vol, args.image)   # refuses 8-bit CT
    for note in acquisition.notes:
        print(f"note: {note}")
    device = select_device(args.device)
    emit(0, 1, "loading model")
    bundle, model, spec = load_seg_model(args.model, is_ct, device)
    log.info("model %s on %s, window %s", bundle.name, device, args.window)
    res = run_with_fallback(lambda d: segment(vol, model, spec, args.window, d, progress=emit,
                                              mirror=not args.no_mirror), device)
    rows = structure_volumes(res.labels, spec.structures)
    # structures lying where the acquired slices are too far apart for them: said, not guessed silently
    gap_warnings = structure_gap_warnings(res.labels.array, res.labels.ijk_to_lps(),
                                          {r["label"]: r["structure"] for r in rows}, acquisition.positions,
                                          acquisition.normal)
    warnings = list(res.warnings) + gap_warnings
    uncertainty = None
    if args.uncertainty and res.confidence is not None:
        uncertainty = res.confidence.with_array((1.0 - res.confidence.array).astype("float32"))
    result = SegmentationResult(res.labels, rows, bundle.name, warnings, uncertainty,
                                {"device": str(device), "window": args.window, "seconds": round(res.seconds, 3),
                                 "window_seconds": round(res.window_seconds, 3),
                                 "acquisition": acquisition.to_json()})

    def write_labelmap(tmp: Path) -> dict[str, str]:
        return {"labelmap": write_volume(res.labels, tmp / LABELMAP_FILE).name}

    # written into a temporary folder beside OUT and moved into place only when complete
    result.write(out, extra=write_labelmap if args.labelmap else None)
    for w in warnings:
        print(f"warning: {w}")
    print(f"wrote {out}/result.json ({len(rows)} structures, {res.seconds:.1f} s, model {bundle.name})")
    print(f"timing: window {res.window_seconds:.2f} s, total {res.seconds:.2f} s")
    for r in rows:
        print(f"  {r['name']:<36} {r['volume_cm3']:.3f} cm3")
    return 0


def run_evaluate(args) -> int:
    from orbitai.seg.evaluate import evaluate

    summary = evaluate(args.manifest, args.model, Path(args.out), device=args.device, window=args.window)
    print(json.dumps(summary["mean"], indent=2))
    print(f"wrote {args.out}/per_case.csv, summary.csv, summary.json")
    return 0


def check_train_options(args: argparse.Namespace) -> None:
    """Refuse impossible training options before any work starts (one line each)."""
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}.")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    if args.folds < 1:
        raise UserError(f"--folds must be at least 1, got {args.folds}.")
    if not 0 <= args.fold < args.folds:
        raise UserError(f"--fold must be between 0 and {args.folds - 1} with --folds {args.folds}, got {args.fold}.")
    if args.time_limit is not None and args.time_limit <= 0:
        raise UserError(f"--time-limit must be a positive number of minutes, got {args.time_limit}.")


def run_train(args) -> int:
    from orbitai.device import select_device
    from orbitai.seg.configs import get_config
    from orbitai.cohort.manifest import read_manifest
    from orbitai.result import check_outputs
    from orbitai.seg.train import train

    check_train_options(args)
    cfg = get_config(args.config)
    device = select_device(args.device)
    cases = read_manifest(args.manifest)
    name = Path(args.out).name   # the bundle replaces OUT as a whole; work files lie beside it
    check_outputs(args.out, [args.manifest, *(p for c in cases for p in (c.image, c.segmentation))],
                  beside=(f".{name}-training", f"{name}-metrics.csv"), replaces_folder=True)
    out = train(cases, cfg, Path(args.out), seed=args.seed, folds=args.folds, fold=args.fold,
                epochs=args.epochs, device=device, resume=not args.no_resume,
                time_limit_s=args.time_limit * 60 if args.time_limit else None,
                training_data=f"{len(cases)} cases listed in {Path(args.manifest).name}")
    print(f"wrote bundle {out}")
    return 0


def run_configs(args) -> int:
    from orbitai.seg.configs import CONFIGS

    for c in CONFIGS.values():
        print(f"{c.name:<18} {c.arch:<8} window {c.spec.patch_dhw} spacing {c.spec.spacing}  {c.description}")
    return 0
