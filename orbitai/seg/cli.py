"""``orbitai seg train|predict|evaluate``: orbit segmentation from the command line."""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path

log = logging.getLogger("orbitai.seg")

#: Bundled model chosen when --model is not given, by the image's modality.
DEFAULT_MODELS = {"CT": "orbit_svnet_ct_demo", "MR": "orbit_svnet_dr_demo"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seg", help="orbit segmentation: train, predict, evaluate",
                       description="Segment eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.")
    s = p.add_subparsers(dest="seg_command", metavar="<seg command>", required=True)

    pr = s.add_parser("predict", help="segment one image (NRRD/NIfTI/MHA file or DICOM folder)",
                      description="Segment one orbital CT or MRI; writes a Slicer .seg.nrrd in the input's geometry.")
    pr.add_argument("image", help="input image file or DICOM series folder")
    pr.add_argument("--out", required=True, help="output segmentation (.seg.nrrd; .nrrd/.nii.gz for a plain label map)")
    pr.add_argument("--model", help="bundle name or folder (default: the bundled model for the image's modality)")
    _add_window_options(pr)
    pr.add_argument("--volumes", help="also write a CSV of structure volumes (cm3) here")
    pr.add_argument("--no-mirror", action="store_true",
                    help="skip test-time left-right mirroring (about twice as fast, slightly less accurate)")
    pr.add_argument("--uncertainty", help="also write the model's uncertainty map (1 - max class probability) as a volume here")
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
    tr.add_argument("--device", default="auto")
    tr.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    tr.add_argument("--time-limit", type=float, help="stop after this many minutes (a bundle is still written)")
    tr.set_defaults(func=run_train)

    cf = s.add_parser("configs", help="list the training configurations")
    cf.set_defaults(func=run_configs)


def _add_window_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto|cpu|cuda|mps (default auto)")
    p.add_argument("--window", default="overlap", choices=("overlap", "step1"),
                   help="overlap: Gaussian-weighted overlapped windows (default, fast); "
                        "step1: the paper's 32-slice window moved one slice at a time")


def load_seg_model(name: str | None, image_is_ct: bool, device):
    from orbitai.bundle import find_bundle
    from orbitai.seg.inference import SegSpec

    b = find_bundle(name or DEFAULT_MODELS["CT" if image_is_ct else "MR"])
    if b.metadata.get("task") != "segmentation":
        from orbitai.bundle import BundleError
        raise BundleError(f"Bundle '{b.name}' is a {b.metadata.get('task')} model, not a segmentation model.")
    return b, b.load_model(device), SegSpec.from_metadata(b.metadata)


def run_predict(args) -> int:
    from orbitai.device import run_with_fallback, select_device
    from orbitai.io import read_volume, require_finite, write_volume
    from orbitai.progress import emit
    from orbitai.seg.inference import looks_like_ct, segment, structure_volumes
    from orbitai.segfile import write_segmentation

    vol = read_volume(args.image)
    require_finite(vol, "image")
    device = select_device(args.device)
    emit(0, 1, "loading model")
    bundle, model, spec = load_seg_model(args.model, looks_like_ct(vol), device)
    log.info("model %s on %s, window %s", bundle.name, device, args.window)
    res = run_with_fallback(lambda d: segment(vol, model, spec, args.window, d, progress=emit,
                                              mirror=not args.no_mirror), device)
    out = Path(args.out)
    if out.name.endswith(".seg.nrrd"):
        write_segmentation(res.labels, out)
    else:
        write_volume(res.labels, out)
    rows = structure_volumes(res.labels, spec.structures)
    if args.volumes:
        _write_csv(Path(args.volumes), rows)
    if args.uncertainty and res.confidence is not None:
        write_volume(res.confidence.with_array((1.0 - res.confidence.array).astype("float32")), args.uncertainty)
    for w in res.warnings:
        print(f"warning: {w}")
    print(f"wrote {out} ({len(rows)} structures, {res.seconds:.1f} s, model {bundle.name})")
    print(f"timing: window {res.window_seconds:.2f} s, total {res.seconds:.2f} s")
    for r in rows:
        print(f"  {r['name']:<36} {r['volume_cm3']:.3f} cm3")
    return 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def run_evaluate(args) -> int:
    from orbitai.seg.evaluate import evaluate

    summary = evaluate(args.manifest, args.model, Path(args.out), device=args.device, window=args.window)
    print(json.dumps(summary["mean"], indent=2))
    print(f"wrote {args.out}/per_case.csv, summary.csv, summary.json")
    return 0


def run_train(args) -> int:
    from orbitai.device import select_device
    from orbitai.seg.configs import get_config
    from orbitai.seg.data import read_manifest
    from orbitai.seg.train import train

    cfg = get_config(args.config)
    cases = read_manifest(args.manifest)
    out = train(cases, cfg, Path(args.out), seed=args.seed, folds=args.folds, fold=args.fold,
                epochs=args.epochs, device=select_device(args.device), resume=not args.no_resume,
                time_limit_s=args.time_limit * 60 if args.time_limit else None,
                training_data=f"{len(cases)} cases listed in {Path(args.manifest).name}")
    print(f"wrote bundle {out}")
    return 0


def run_configs(args) -> int:
    from orbitai.seg.configs import CONFIGS

    for c in CONFIGS.values():
        print(f"{c.name:<18} {c.arch:<8} window {c.spec.patch_dhw} spacing {c.spec.spacing}  {c.description}")
    return 0
