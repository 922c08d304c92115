"""``orbitai seg train|predict|evaluate``: orbit segmentation from the command line."""
from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

from orbitai.arguments import (
    add_bundle_out_options,
    add_device_option,
    add_speed_option,
    add_finetune_parser,
    add_modality_option,
    add_nproc_option,
    check_finetune_options,
)
from orbitai.cohort.records import CohortCase
from orbitai.cohort.runner import add_cohort_options, check_cohort_options
from orbitai.dicom.inputs import add_image_source_options
from orbitai.errors import UserError
from orbitai.orbit.anatomy import DEFAULT_POPULATION, POPULATIONS
from orbitai.training.launch import arguments_checked
from orbitai.staging import finetune_work_folder, strict_json, training_work_folder

#: File names that ``--out`` must not have (it takes a folder).
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd", ".csv", ".json")

log = logging.getLogger("orbitai.seg")


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("seg", help=help_text,
                       description="Segment eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.")
    s = p.add_subparsers(dest="seg_command", metavar="<seg command>", required=True)

    pr = s.add_parser("predict", help="segment one image, or several loading the model once",
                      description="Segment one orbital CT or MRI. Writes OUT/segmentation.seg.nrrd (Slicer segmentation "
                                  "in the input's geometry; for a DICOM series with gantry tilt or uneven slice "
                                  "spacing, on the regular grid it was resampled onto, which covers the series), "
                                  "OUT/volumes.csv (cm3 per structure and side) and OUT/result.json (model, warnings, "
                                  "acquisition: what reading corrected, structures and volumes, files). With several "
                                  "images or --manifest, the model is loaded once and each case's files go to "
                                  "OUT/<case>/ (the image's file name without its suffix, or the manifest's case_id); "
                                  "a case is moved into place only when complete.")
    pr.add_argument("image", nargs="*", metavar="IMAGE", help="input image file(s) or DICOM series folder(s)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument("--model", help="bundle name or folder (default: the bundled model for the image's modality)")
    add_modality_option(pr)
    _add_window_options(pr)
    pr.add_argument("--no-mirror", action="store_true",
                    help="skip test-time left-right mirroring (about twice as fast, slightly less accurate)")
    pr.add_argument("--uncertainty", action="store_true",
                    help="also write OUT/uncertainty.nrrd: the model's uncertainty (1 - max class probability)")
    pr.add_argument("--labelmap", action="store_true",
                    help="also write OUT/labels.nrrd, a plain label map (values as in result.json)")
    pr.add_argument("--population", choices=POPULATIONS, default=DEFAULT_POPULATION,
                    help="whose volume ranges the checks use (default %(default)s): ted, thyroid eye disease patients "
                         "(a rectus above the normal adult range but within TED's is 'enlarged', a finding), or "
                         "healthy adults only; result.json says which")
    add_cohort_options(pr)
    add_image_source_options(pr, "image")
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
    tr.add_argument("--manifest", help="CSV with case_id,image,segmentation (optional for a configuration "
                    "that renders synthetic heads, e.g. svnet-demo-mri)")
    tr.add_argument("--config", required=True, help="configuration name (see 'orbitai seg configs')")
    tr.add_argument("--init", metavar="BUNDLE", help="start from this bundle's weights (same architecture)")
    add_bundle_out_options(tr)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    tr.add_argument("--folds", type=int, default=1, help="k for k-fold cross-validation (1: no validation)")
    tr.add_argument("--fold", type=int, default=0, help="which fold is held out for validation (0-based)")
    add_device_option(tr)
    add_nproc_option(tr)
    tr.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    tr.add_argument("--time-limit", type=float, help="stop after this many minutes (a bundle is still written)")
    add_speed_option(tr)
    tr.set_defaults(func=run_train)

    ft = add_finetune_parser(s, "finetune", "a segmentation model", "case_id,image,segmentation",
                             "the bundled MRI model", "200 steps, 3 folds, scored every 50 steps, replay share 0.25",
                             "deformed atlas heads of random contrast")
    ft.set_defaults(func=run_finetune)

    rk = s.add_parser("rank", help="rank unlabelled scans by how much correcting them would teach the model",
                      description="Segment each scan once and rank them by the model's doubt (missing or implausible "
                                  "structures, low confidence), most doubtful first: the scans to correct next. Writes "
                                  "OUT/ranking.csv and prints the ranking.")
    rk.add_argument("image", nargs="*", metavar="IMAGE", help="scan file(s)")
    rk.add_argument("--manifest", help="CSV with case_id,image (instead of IMAGEs)")
    rk.add_argument("--model", help="bundle name or folder (default: the bundled MRI model)")
    rk.add_argument("--out", required=True, help="output folder for ranking.csv")
    rk.add_argument("--no-cache", dest="cache", action="store_false",
                    help="segment every scan again (by default a scan ranked before by the same model is not: "
                         "~/.orbitai/cache/rank)")
    add_device_option(rk)
    rk.set_defaults(func=run_rank)

    cf = s.add_parser("configs", help="list the training configurations")
    cf.set_defaults(func=run_configs)

    pp = s.add_parser("prior", help="the network's class probabilities of one image, for the annotation tools",
                      description="Run the segmentation network once on IMAGE and write OUT/prior.npz: its class "
                                  "probabilities on the model grid, the grid and the eyeball midline (what SmartFill, "
                                  "AutoCorrection and 'Start from the model' read; see orbitai.orbit.prior). The "
                                  "Segment Editor effects run this in a child process so that Slicer stays responsive.")
    pp.add_argument("image", metavar="IMAGE", help="input image file or DICOM series folder")
    pp.add_argument("--out", required=True, help="output folder")
    pp.add_argument("--model", help="bundle name or folder (default: the bundled model for the image's modality)")
    pp.add_argument("--key", help="the image key the caller computed (orbitai.orbit.prior.image_key); "
                                  "default: computed here")
    add_device_option(pp)
    add_image_source_options(pp, "image")
    pp.set_defaults(func=run_prior)


def _add_window_options(p: argparse.ArgumentParser) -> None:
    add_device_option(p)
    p.add_argument("--window", default="overlap", choices=("overlap", "step1"),
                   help="overlap: Gaussian-weighted overlapped windows (default, fast); "
                        "step1: the paper's 32-slice window moved one slice at a time")


def case_name(image: str) -> str:
    """A case's folder name in a batch: the image's file name without its volume suffix (a DICOM
    folder's own name)."""
    name = Path(image).name
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _check_case_name(name: str, where: str) -> str:
    """``name`` as its case folder's name (the one rule of `orbitai.cohort.manifest.case_folder_name`)."""
    from orbitai.cohort.manifest import case_folder_name

    return case_folder_name(name, where)


def predict_cases(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(case name, image) of each image to segment; a single image without --manifest is named ''
    (its files go to OUT itself). Raises one line for a bad manifest, a missing image or two cases
    that would share a folder (also names differing only in case, one folder on case-insensitive disks)."""
    if args.manifest and args.image:
        raise UserError("Give images or --manifest, not both.")
    if not args.manifest and not args.image:
        raise UserError("Give an image to segment (or several), or --manifest CSV with case_id,image.")
    if args.manifest:
        from orbitai.cohort.manifest import read_manifest

        cases = [(c.case_id, str(c.image)) for c in read_manifest(args.manifest, need_segmentation=False)]
    elif len(args.image) == 1:
        cases = [("", args.image[0])]
    else:
        cases = [(_check_case_name(case_name(image), f"Image {image}"), image) for image in args.image]
    from orbitai.cohort.manifest import folder_key

    seen: dict[str, str] = {}
    for name, image in cases:
        if not Path(image).exists():
            raise FileNotFoundError(2, "No such file or directory", image)
        if folder_key(name) in seen:
            raise UserError(f"{seen[folder_key(name)]} and {image} would both be written to {Path(args.out) / name}; "
                            "rename one, or list them in a --manifest with distinct case_ids.")
        seen[folder_key(name)] = image
    return cases


def run_prior(args) -> int:
    """``seg prior``: the model prior of one image into OUT/prior.npz (staged: all or nothing)."""
    from orbitai.device import select_device
    from orbitai.io import read_volume
    from orbitai.orbit.prior import PRIOR_FILE, PriorUnavailable, compute_prior
    from orbitai.progress import emit
    from orbitai.result import check_outputs
    from orbitai.staging import staged_folder

    out = check_outputs(args.out, [args.image], (PRIOR_FILE,))
    image = read_volume(args.image)
    try:
        prior = compute_prior(image, args.model, str(select_device(args.device)), progress=emit, key=args.key)
    except PriorUnavailable as exc:
        raise UserError(str(exc)) from None
    with staged_folder(out, replaces=[PRIOR_FILE]) as work:
        prior.save(work / PRIOR_FILE)
    print(f"prior: {prior.bundle}, {len(prior.structures)} structures, {prior.seconds:.1f} s -> {out / PRIOR_FILE}")
    return 0


def predict_case(options: dict, case: CohortCase, folder: Path) -> None:
    """One case of a ``seg predict`` batch into ``folder`` (the cohort runner's per-case step, the same in this
    process and on a Dask worker): the worker's one `OrbitPredictor`, which loads each model once."""
    from orbitai.orbit.predictor import OrbitPredictor

    tell(OrbitPredictor.shared(options["model"], options["device"]).predict(case.inputs, folder, options), folder)


def tell(result, folder: Path) -> None:
    """What ``seg predict`` prints of one segmentation (`orbitai.orbit.result.SegmentationResult` as the predictor
    returns it: with the scan's ``facts`` and the seconds of its ``stages``)."""
    from orbitai.orbit.result import SOFT_VOLUME_KEY

    data, stages = result.to_json(), result.stages
    for note in data["acquisition"]["notes"]:
        print(f"note: {note}")
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"scan: {result.facts.summary()}")
    print(f"wrote {folder}/result.json ({len(result.volumes)} structures, {data['seconds']:.1f} s, model {result.model})")
    print(f"timing: window {data['window_seconds']:.2f} s, total {data['seconds']:.2f} s")
    shown = {"read": stages["read"], "model": stages["model"], "preprocess": stages["preprocess"],
             "window": stages["window"], "postprocess": stages["run"] - stages["model"] - stages["preprocess"]
             - stages["window"], "volumes": stages["result"], "write": stages["write"]}
    print("timing stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in shown.items()))
    for r in result.volumes:
        print(f"  {r['name']:<36} {r['volume_cm3']:.3f} cm3 (soft {r[SOFT_VOLUME_KEY]:.3f})"
              + (f"  [{r['check']}: {r['note']}]" if r["note"] else ""))


def predict_options(args: argparse.Namespace) -> dict:
    """The options of ``seg predict`` that decide a case's result (what `OrbitPredictor` reads)."""
    return {"model": args.model, "device": args.device, "window": args.window, "mirror": not args.no_mirror,
            "uncertainty": args.uncertainty, "labelmap": args.labelmap, "modality": getattr(args, "modality", None),
            "population": getattr(args, "population", DEFAULT_POPULATION)}


def cohort_task(args: argparse.Namespace):
    """The cohort runner's task of ``seg predict`` with these options."""
    import functools

    from orbitai.cohort.runner import CohortTask
    from orbitai.orbit.result import CASE_FILES, SegmentationResult

    return CohortTask("seg predict", functools.partial(predict_case, predict_options(args)), SegmentationResult,
                      CASE_FILES)


def run_predict(args) -> int:
    import time

    from orbitai.cohort.manifest import folder_key

    t_start = time.perf_counter()
    check_cohort_options(args, "image")
    cases = predict_cases(args)
    # every output checked against every input before any work: a case's own image and manifest, and
    # the other cases' images lying in its folder (an earlier case must not overwrite a later one's input)
    root, inside = Path(args.out).resolve(), defaultdict(list)
    for _, image in cases:
        parts = Path(image).resolve().parts
        if len(parts) > len(root.parts) + 1 and parts[:len(root.parts)] == root.parts:
            inside[folder_key(parts[len(root.parts)])].append(image)
    single = len(cases) == 1 and not args.manifest
    # --out = the input: named by the predictor's output check
    if Path(args.out).name.lower().endswith(VOLUME_SUFFIXES) and not (single and Path(args.out).resolve() ==
                                                                      Path(cases[0][1]).resolve()):
        raise UserError(f"--out takes a folder (OUT/segmentation.seg.nrrd, volumes.csv and result.json are "
                        f"written there); got the file name {args.out}.")
    if single:
        from orbitai.orbit.predictor import OrbitPredictor
        from orbitai.progress import emit

        tell(OrbitPredictor(args.model, args.device).predict({"image": cases[0][1]}, args.out, predict_options(args),
                                                             progress=emit), args.out)
        print(f"timing: command {time.perf_counter() - t_start:.2f} s")
        return 0
    from orbitai.cohort.runner import run_cohort

    if not args.workers and args.scheduler is None:
        from orbitai.device import select_device

        select_device(args.device)     # an unusable --device: one line before any case (on Dask: its first case)
    cohort = [CohortCase(name, {"image": image}, (image, *inside[folder_key(name)])) for name, image in cases]
    report = run_cohort(cohort_task(args), cohort, args.out, workers=args.workers or 0, scheduler=args.scheduler,
                        inputs=[args.manifest] if args.manifest else [])
    print(f"timing: batch {len(report.done)} of {len(cases)} cases, command {time.perf_counter() - t_start:.2f} s")
    return 0


def run_evaluate(args) -> int:
    from orbitai.orbit.evaluate import evaluate

    summary = evaluate(args.manifest, args.model, Path(args.out), device=args.device, window=args.window)
    print(strict_json(summary["mean"]), end="")
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
    from orbitai.cohort.manifest import read_manifest
    from orbitai.device import select_device
    from orbitai.orbit.configs import get_config
    from orbitai.orbit.train import TrainRun, train
    from orbitai.result import check_outputs

    check_train_options(args)
    cfg = get_config(args.config)
    device = select_device(args.device)
    if args.manifest is None and "synth" not in cfg.extra:
        raise UserError(f"--manifest is needed: configuration {cfg.name} trains on a manifest's cases.")
    cases = read_manifest(args.manifest) if args.manifest else []
    name = Path(args.out).name   # the bundle replaces OUT as a whole; work files lie beside it
    check_outputs(args.out, [*([args.manifest] if args.manifest else []),
                             *(p for c in cases for p in (c.image, c.segmentation))],
                  beside=(training_work_folder(args.out).name, f"{name}-metrics.csv"), bundle="segmentation",
                  overwrite=args.overwrite)
    arguments_checked()    # with --nproc: the launcher's check pass ends here, before any rank starts
    out = train(cases, get_config(cfg.name, seed=args.seed, epochs=args.epochs or cfg.epochs, speed=args.speed),
                Path(args.out),
                TrainRun(folds=args.folds, fold=args.fold, resume=not args.no_resume,
                         time_limit_s=args.time_limit * 60 if args.time_limit else None), device=device,
                init=args.init, training_data=_training_data(cfg, args.manifest, len(cases)), overwrite=args.overwrite)
    print(f"wrote bundle {out}")
    return 0


def _training_data(cfg, manifest: str | None, n: int) -> str:
    parts = [f"{n} cases listed in {Path(manifest).name}"] if manifest else []
    if "synth" in cfg.extra:
        s = cfg.extra["synth"]
        templates = list(s.get("templates", (0,)))
        what = ("deformed atlas heads" if templates == [0] else
                f"deformed heads of {len(templates)} anatomies (the atlas and SynthSeg heads {templates[1:]})"
                if 0 in templates else f"deformed SynthSeg heads {templates}")
        parts.append(f"patches rendered on the fly from {s.get('anatomies')} {what} (seed "
                     f"{s.get('seed')}; random contrast per tissue, slice thickness, bias, noise)")
    return "; ".join(parts)


def run_configs(args) -> int:
    from orbitai.orbit.configs import CONFIGS

    for c in CONFIGS.values():
        print(f"{c.name:<18} {c.arch:<8} window {c.spec.patch_dhw} spacing {c.spec.spacing}  {c.description}")
    return 0


def run_finetune(args) -> int:
    """``seg finetune``: the recipe of `orbitai.orbit.finetune` over a manifest, installed as a new bundle."""
    from orbitai.bundle.core import refuse_package_folder
    from orbitai.cohort.manifest import read_manifest
    from orbitai.device import select_device
    from orbitai.orbit.finetune import FINETUNE_SUMMARY, Recipe, finetune, out_folder, with_settings
    from orbitai.orbit.models import SEG_MODELS
    from orbitai.result import check_outputs
    from orbitai.training.finetune import work_folder

    settings = check_finetune_options(args)
    cases = read_manifest(args.manifest)
    base = SEG_MODELS.find(args.base or "MR")
    out = out_folder(base.name, args.name, args.out)
    refuse_package_folder(out)
    work_folder(out)
    inputs = [args.manifest, *(p for c in cases for p in (c.image, c.segmentation))]
    check_outputs(out, inputs, beside=(finetune_work_folder(out).name,), bundle="segmentation",
                  overwrite=args.overwrite)
    if args.summary:
        check_outputs(args.summary, inputs, (FINETUNE_SUMMARY,))
    recipe = with_settings(Recipe(), **settings)
    return finetune(cases, out, base, recipe, select_device(args.device), resume=not args.no_resume,
                    overwrite=args.overwrite).tell(args.summary)


def run_rank(args) -> int:
    """``seg rank``: the scans most worth correcting first, into OUT/ranking.csv."""
    import csv
    import dataclasses
    import io

    from orbitai.device import select_device
    from orbitai.orbit.rank import Ranked, rank_scans
    from orbitai.orbit.result import RANKING_FILE
    from orbitai.progress import emit
    from orbitai.result import check_outputs
    from orbitai.staging import write_text_atomic

    if args.manifest and args.image:
        raise UserError("Give images or --manifest, not both.")
    if args.manifest:
        from orbitai.cohort.manifest import read_manifest

        scans = [(c.case_id, str(c.image)) for c in read_manifest(args.manifest, need_segmentation=False)]
    else:
        scans = [(case_name(i), i) for i in args.image]
    if not scans:
        raise UserError("Give the scans to rank: image files, or --manifest CSV with case_id,image.")
    for _, image in scans:
        if not Path(image).exists():
            raise FileNotFoundError(2, "No such file or directory", image)
    columns = [f.name for f in dataclasses.fields(Ranked)]

    def earlier_ranking(folder: Path) -> bool:     # a ranking.csv is replaced only when it is an earlier ranking
        try:
            with (folder / RANKING_FILE).open(newline="", encoding="utf-8") as f:
                return next(csv.reader(f), None) == columns
        except (OSError, UnicodeDecodeError, csv.Error):
            return False
    out = check_outputs(args.out, [i for _, i in scans] + ([args.manifest] if args.manifest else []),
                        (RANKING_FILE,), earlier=earlier_ranking)
    ranked = rank_scans(scans, args.model, str(select_device(args.device)), progress=emit, cache=args.cache)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(ranked[0].to_row()))
    w.writeheader()
    w.writerows(r.to_row() for r in ranked)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / RANKING_FILE, buf.getvalue())
    for n, r in enumerate(ranked, 1):
        if not r.ranked:        # left out (no orbits in view, another modality) or unreadable: the note says why
            print(f"{n:3d}. {r.case_id:<30} {r.note}")
            continue
        print(f"{n:3d}. {r.case_id:<30} doubt {r.score:.3f}  implausible {r.implausible}/{r.structures}"
              + (f"  ({r.note})" if r.note else ""))
    print(f"wrote {out / RANKING_FILE}")
    return 0
