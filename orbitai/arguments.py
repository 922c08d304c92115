"""The options the commands share (``--device``, ``--nproc``, ``--resample-masks``, a bundle's ``--out``) and the
checks of training options: one definition each, added by the commands' ``add_parser`` (the ``cli.py`` files)."""
from __future__ import annotations

import argparse
from typing import Any

from orbitai.device import DEVICE_CHOICES
from orbitai.errors import UserError
from orbitai.io import RESAMPLE_OPTION
from orbitai.modality import MODALITY_CHOICES, Stated, stated

__all__ = ["add_device_option", "add_modality_option", "add_nproc_option", "add_resample_option", "add_bundle_out_options",
           "check_training_options", "manifest_inputs", "add_finetune_parser", "check_finetune_options"]


def add_device_option(parser: argparse.ArgumentParser, what: str = "compute device") -> None:
    """The one ``--device`` option of every command (choices from `orbitai.device.DEVICE_CHOICES`)."""
    parser.add_argument("--device", default="auto",
                        help=f"{what}: {'|'.join(DEVICE_CHOICES)} or cuda:N (default auto: CUDA, then MPS, then CPU)")


#: How training steps may use the CPU (`orbitai.training.speed`; here, without torch, for the command line).
SPEED_CHOICES = ("auto", "bf16", "compiled", "plain")


def add_speed_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--speed`` option of every training command (`orbitai.training.speed`)."""
    parser.add_argument("--speed", choices=SPEED_CHOICES, default=None,
                        help="how training steps use the CPU: auto (channels-last float32, bit-reproducible), bf16 "
                             "(adds bfloat16 autocast where the CPU has it natively: faster, reproducible within a "
                             "tolerance), compiled (bf16 with the step compiled by torch.compile: faster again after "
                             "a minute's compiling; needs a C++ compiler) or plain (float32, channels-first, as the "
                             "bundled models were trained); default $ORBITAI_TRAIN_SPEED, else auto")


def add_modality_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--modality`` option of every predict command (`orbitai.modality.MODALITY_CHOICES`): what the scan is
    when the user knows better than the scan's tags and image (`orbitai.scan.scan_facts`)."""
    parser.add_argument("--modality", default="auto", type=_modality, metavar="|".join(MODALITY_CHOICES),
                        help="what the scan is: CT, MR, or an MR weighting (T1, T2, FLAIR, PD; -FS: fat suppressed). "
                             "Default auto: from the DICOM tags, else the image (asked for when the image is unsure)")


def _modality(text: str) -> Stated:
    """The value parsed once (`orbitai.modality.stated`): `orbitai.scan.scan_facts` reads its facts as they are."""
    try:
        return stated(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(MODALITY_CHOICES)}") from None


def add_nproc_option(parser: argparse.ArgumentParser) -> None:
    """The one ``--nproc`` option of every training (`orbitai.training.launch`, `orbitai.training.distributed`)."""
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train on N processes of this machine with torch DDP (gloo on CPU, nccl on CUDA), the "
                             "same global batch, schedule and seeds as one process; under torchrun (several nodes) "
                             "leave it out (default 1; at most the cores this process may use)")


def add_resample_option(parser: argparse.ArgumentParser, image: str = "image") -> None:
    """The one ``--resample-masks`` option (`orbitai.io.RESAMPLE_OPTION`) of every command given a segmentation
    with an image: without it a segmentation off the image's grid is refused (`orbitai.io.segmentation_on_image`)."""
    parser.add_argument(RESAMPLE_OPTION, action="store_true",
                        help=f"resample a segmentation that is not on the {image}'s grid (origin, spacing, direction "
                             f"or size off by more than half a voxel) onto it by nearest neighbour, and say so in the "
                             f"warnings; without it such a segmentation is refused")


def add_bundle_out_options(parser: argparse.ArgumentParser) -> None:
    """``--out`` and ``--overwrite`` of every training that writes a bundle (the rule:
    `orbitai.bundle.core.check_bundle_folder`)."""
    parser.add_argument("--out", required=True,
                        help="bundle folder to write: a new or empty folder, or an earlier bundle of this kind "
                             "(replaced as a whole); any other folder is refused, never emptied")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier bundle of this kind that also holds other files: the old folder is "
                             "moved aside to OUT.old-<date>-<time> (nothing is deleted)")


def check_training_options(args: argparse.Namespace) -> None:
    """Refuse impossible training options (``--epochs``, ``--holdout``, ``--runs``/``--repeats``, ``--seed``,
    ``--folds``, where the command has them) before any work starts, one line each."""
    if getattr(args, "epochs", None) is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}.")
    if getattr(args, "holdout", None) is not None and not 0.0 <= args.holdout < 1.0:
        raise UserError(f"--holdout must be a fraction in [0, 1), got {args.holdout}.")
    for opt in ("runs", "repeats"):
        if getattr(args, opt, None) is not None and getattr(args, opt) < 1:
            raise UserError(f"--{opt} must be at least 1, got {getattr(args, opt)}.")
    if getattr(args, "seed", 0) < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    if getattr(args, "folds", None) is not None and args.folds < 2:
        raise UserError(f"--folds must be at least 2 (each fold is evaluated on cases left out), got {args.folds}.")


def manifest_inputs(manifest: str, cases: list) -> list:
    """Every file a manifest command reads: the manifest, each case's image and segmentation."""
    return [manifest, *(p for c in cases for p in (c.image, c.segmentation) if p is not None)]


def add_trust_parser(sub: argparse._SubParsersAction, models: str, columns: str, cache: str) -> argparse.ArgumentParser:
    """The ``<task> trust`` command (issue 51, `orbitai.classify.trust`): ``models`` says what --model takes,
    ``columns`` a manifest's columns, ``cache`` what --cache keeps. The caller sets its ``func``."""
    p = sub.add_parser("trust", help="fit a bundle's out-of-distribution statistics and calibration",
                       description="Writes into the bundle's metadata.json the class means and covariance of the "
                                   "network's features (from --manifest, its training cases), the distance above "
                                   "which a call is flagged (5 %% of --validation flagged) and the temperature (and "
                                   "bias) that calibrate its probabilities (on --validation); --test adds held-out "
                                   "figures.")
    p.add_argument("--model", required=True, help=f"{models} (its metadata.json is rewritten; a bundled model is "
                                                   "never: copy its folder first)")
    p.add_argument("--manifest", required=True, help=f"training cases: CSV with {columns}")
    p.add_argument("--validation", required=True,
                   help="validation cases, same columns: none of --manifest's (by case_id or image), at least 10 of "
                        "each label (as in --manifest)")
    p.add_argument("--test", help="test cases for the report's figures (never used to fit)")
    p.add_argument("--report", help="also write the report to this JSON file")
    p.add_argument("--cache", help=f"folder keeping {cache} of each manifest (reused by a second bundle)")
    add_device_option(p)
    return p


def add_finetune_parser(sub: argparse._SubParsersAction, name: str, what: str, columns: str, base: str,
                        defaults: str, replay: str) -> argparse.ArgumentParser:
    """The options of a fine-tuning command (``seg finetune``, ``neuro finetune-lesions``): the same plan
    (`orbitai.training.finetune`) for every task; ``defaults``: the recipe's steps, folds, interval and replay share
    in words."""
    ft = sub.add_parser(name, help=f"fine-tune {what} on your own corrected scans and install it as a new model",
                        description=f"Fine-tune {what} on the corrected scans of a manifest ({columns}; .seg.nrrd files "
                                    "from Slicer are read as they are), with the cases held out in turn to choose when "
                                    "to stop and to compare with the base model, and install the result as a new bundle "
                                    "in ~/.orbitai/models (never over a bundled model). Resumable: after a cancel, the "
                                    f"same command goes on where it stopped. Defaults: {defaults}.")
    ft.add_argument("--manifest", required=True, help=f"CSV with {columns}")
    ft.add_argument("--base", metavar="MODEL", help=f"the model to start from (default: {base})")
    ft.add_argument("--name", help="the new model's name (default: <base>_ft); it is installed in ~/.orbitai/models")
    ft.add_argument("--out", help="write the bundle to this folder instead of the user model folder")
    ft.add_argument("--overwrite", action="store_true", help="replace an earlier bundle of that name")
    ft.add_argument("--steps", type=int, help="the most training steps of one run")
    ft.add_argument("--folds", type=int, help="cases held out in turn for early stopping (1: none)")
    ft.add_argument("--eval-every", type=int, metavar="N",
                    help="score the held-out cases and keep a checkpoint every N steps")
    ft.add_argument("--replay-share", type=float, metavar="F",
                    help=f"share of the training draws from {replay}, so that the model keeps what it knew "
                         "(0: only your cases)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--summary", metavar="DIR", help="also write DIR/result.json: the bundle and its figures")
    add_device_option(ft)
    ft.add_argument("--no-resume", action="store_true", help="start over even if a stopped run can go on")
    return ft


def check_finetune_options(args: argparse.Namespace) -> dict[str, Any]:
    """The recipe settings a fine-tuning command was given (None: the recipe's), each checked in one line."""
    for opt in ("steps", "folds", "eval_every"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise UserError(f"--{opt.replace('_', '-')} must be at least 1, got {getattr(args, opt)}.")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    if args.replay_share is not None and not 0.0 <= args.replay_share < 1.0:
        raise UserError(f"--replay-share must be a fraction in [0, 1), got {args.replay_share}.")
    return {"steps": args.steps, "folds": args.folds, "eval_every": args.eval_every, "seed": args.seed,
            "replay_share": args.replay_share}

