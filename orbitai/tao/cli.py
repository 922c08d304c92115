"""``orbitai tao train|predict|evaluate|cv|configs``: TAO activity (paper 000) from the command line."""
from __future__ import annotations

import argparse
from pathlib import Path

from orbitai.arguments import (
    add_bundle_out_options,
    add_trust_parser,
    add_device_option,
    add_modality_option,
    add_nproc_option,
    add_resample_option,
    check_training_options,
    manifest_inputs,
)
from orbitai.cohort.records import CohortCase
from orbitai.cohort.runner import add_cohort_options, check_cohort_options
from orbitai.dicom.inputs import add_image_source_options
from orbitai.errors import UserError
from orbitai.result import not_assessed
from orbitai.training.launch import arguments_checked
from orbitai.staging import strict_json, training_work_folder


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("tao", help=help_text,
                       description="Active vs inactive thyroid-associated ophthalmopathy per eye (Lin et al. 2021).")
    s = p.add_subparsers(dest="tao_command", metavar="<tao command>", required=True)

    pr = s.add_parser("predict", help="classify both eyes of one MRI; writes result.json and heat maps",
                      description="Writes OUT/result.json (per eye: probability of the active phase, call, crop box "
                                  "in RAS) and OUT/occlusion.nrrd, OUT/gradcam.nrrd in the input's geometry.")
    pr.add_argument("image", nargs="?", help="axial orbital T2 MRI (NRRD/NIfTI/MHA file or DICOM folder)")
    pr.add_argument("--segmentation", help="orbit segmentation (.seg.nrrd or label map) placing the crops; "
                                           "default: found by OrbitSegmentation's MRI model")
    pr.add_argument("--model", default="B", help="A, B (the bundled demo networks) or a bundle name/folder (default B)")
    add_resample_option(pr, "MRI")
    add_modality_option(pr)
    add_device_option(pr)
    pr.add_argument("--no-maps", action="store_true", help="skip the occlusion and Grad-CAM maps")
    pr.add_argument("--figure", action="store_true", help="also write OUT/tao_maps.png (inputs with both maps)")
    pr.add_argument("--out", required=True, help="output folder")
    add_cohort_options(pr, "case_id,image[,segmentation]")
    add_image_source_options(pr, "image")
    pr.set_defaults(func=run_predict)

    ev = s.add_parser("evaluate", help="metrics of a model on a labelled manifest (paper's Table 2, AUC 95%% CI)")
    ev.add_argument("--manifest", required=True, help="CSV with case_id,image,label[,segmentation]")
    ev.add_argument("--model", required=True, help="A, B or a bundle name/folder")
    ev.add_argument("--out", required=True, help="report folder (predictions.csv, metrics.json, report.png)")
    ev.add_argument("--auto-orbits", action="store_true", help="ignore the manifest's segmentations; find the orbits")
    ev.add_argument("--no-maps", action="store_true", help="skip the maps (faster; no occlusion-mass figure)")
    add_resample_option(ev, "MRI")
    add_device_option(ev)
    ev.set_defaults(func=run_evaluate)

    tt = add_trust_parser(s, "A, B or a bundle name/folder", "case_id,image,label,segmentation",
                          "the preprocessed eyes (checksummed)")
    tt.set_defaults(func=run_trust)

    tr = s.add_parser("train", help="train Network A or B on a manifest and write a bundle",
                      description="Paper recipe (Adam, batch 64, Table 1 schedules, L2 0.01 conv / 0.001 FC); "
                                  "20 %% of the cases held out as a test split; resumable; per-epoch CSV.")
    tr.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation,label (1 = active)")
    tr.add_argument("--network", default="B", help="A or B (demo configurations) or a configuration name")
    add_bundle_out_options(tr)
    tr.add_argument("--epochs", type=int, help="override the number of epochs (the decay epoch scales along)")
    tr.add_argument("--holdout", type=float, default=0.2, help="fraction of cases held out as test split (default 0.2)")
    tr.add_argument("--seed", type=int, default=0)
    add_device_option(tr)
    add_nproc_option(tr)
    tr.set_defaults(func=run_train)

    cv = s.add_parser("cv", help="k-fold cross-validation, repeated runs, mean +- SD")
    cv.add_argument("--manifest", required=True)
    cv.add_argument("--network", default="B")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--runs", type=int, default=1)
    cv.add_argument("--epochs", type=int)
    cv.add_argument("--seed", type=int, default=0)
    add_device_option(cv)
    cv.add_argument("--out", required=True)
    cv.set_defaults(func=run_cv)

    cf = s.add_parser("configs", help="list the training configurations")
    cf.set_defaults(func=run_configs)


def predict_case(options: dict, case: CohortCase, folder: Path) -> None:
    """One case of a ``tao predict --manifest`` cohort (the cohort runner's per-case step): the worker's one
    `TaoPredictor`, which loads each network once."""
    from orbitai.tao.predictor import TaoPredictor

    tell(TaoPredictor.shared(options["model"], options["device"]).predict(case.inputs, folder, options), folder)


def tell(result, folder: str | Path) -> None:
    """What ``tao predict`` prints of one MRI (the `orbitai.tao.result.TaoResult` the predictor returns, with the
    scan's ``facts``)."""
    data = result.data
    for w in data["warnings"]:
        print(f"warning: {w}")
    print(f"scan: {result.facts.summary()}")
    if data.get("reformatted"):
        print(f"reformatted: {data['reformatted']}")
    for e in data["eyes"]:      # a call marked do not use reads "not assessed: <reason>", no P (issue 61)
        print(f"{e['side']:<6} " + (not_assessed(e) or f"P(active) = {e['probability_active']:.3f} -> {e['call']}"))
    print(f"scope: {data['scope']}")
    print(f"wrote {folder}/result.json ({data['seconds']:.1f} s, model {data['model']})")


def run_predict(args) -> int:
    import functools

    from orbitai.cohort.runner import CohortTask, image_cases, run_cohort
    from orbitai.progress import emit
    from orbitai.tao.predictor import TaoPredictor
    from orbitai.tao.result import CASE_FILES, TaoResult

    options = {"model": args.model, "device": args.device, "maps": not args.no_maps, "figure": args.figure,
               "resample_masks": args.resample_masks, "modality": getattr(args, "modality", None)}
    if not check_cohort_options(args, "image"):
        if not args.image:
            raise UserError("Give an image to classify, or --manifest CSV with case_id,image[,segmentation].")
        tell(TaoPredictor(args.model, args.device).predict({"image": args.image, "segmentation": args.segmentation},
                                                           args.out, options, progress=emit), args.out)
        return 0
    if args.segmentation:
        raise UserError("--segmentation is for one image; a cohort's segmentations are the manifest's "
                        "'segmentation' column.")
    from orbitai.device import select_device

    select_device(args.device)
    cases = image_cases(args.manifest)
    task = CohortTask("tao predict", functools.partial(predict_case, options), TaoResult, CASE_FILES)
    run_cohort(task, cases, args.out, workers=args.workers or 0, scheduler=args.scheduler, inputs=[args.manifest])
    return 0


def run_evaluate(args) -> int:
    from orbitai.device import select_device
    from orbitai.progress import emit
    from orbitai.tao.evaluate import evaluate_tao

    m = evaluate_tao(args.manifest, args.model, Path(args.out), select_device(args.device),
                     use_segmentation=not args.auto_orbits, maps=not args.no_maps, progress=emit,
                     resample_masks=args.resample_masks)
    keys = ("accuracy", "precision", "sensitivity", "specificity", "f1", "auc", "auc_ci95",
            "occlusion_mass_on_eom_active_mean")
    print(strict_json({k: m[k] for k in keys if k in m}, default=float), end="")
    print(f"wrote {args.out}/predictions.csv, metrics.json, report.png")
    return 0


def run_trust(args) -> int:
    from orbitai.classify.trust_command import check_trust_inputs, show_report
    from orbitai.device import select_device
    from orbitai.tao.data import case_label
    from orbitai.tao.models import TAO_MODELS
    from orbitai.tao.trust import fit_tao_trust

    train, validation = read_labelled_manifest(args.manifest), read_labelled_manifest(args.validation)
    test = read_labelled_manifest(args.test) if args.test else None
    # a bundled model, validation cases that are training cases, too few of a class, a report over an input:
    # refused before any file changes
    check_trust_inputs(TAO_MODELS.find(args.model), [("--manifest", args.manifest, train),
                                                     ("--validation", args.validation, validation),
                                                     ("--test", args.test, test)], case_label, args.report)
    report = fit_tao_trust(args.model, train, validation, test, select_device(args.device),
                           cache=Path(args.cache) if args.cache else None)
    show_report(report, args.report)
    return 0


def read_labelled_manifest(manifest: str) -> list:
    """The manifest's cases, every label checked (0 or 1, naming the case) before any image is read."""
    from orbitai.cohort.manifest import read_labelled_manifest as read
    from orbitai.tao.data import case_label

    return read(manifest, case_label)


def run_train(args) -> int:
    from orbitai.device import select_device
    from orbitai.result import check_outputs
    from orbitai.tao.configs import get_config
    from orbitai.tao.train import train_tao

    check_training_options(args)
    cfg = get_config(args.network)
    cases = read_labelled_manifest(args.manifest)
    # the bundle replaces OUT as a whole; its work folder lies beside it
    check_outputs(args.out, manifest_inputs(args.manifest, cases), beside=(training_work_folder(args.out).name,),
                  bundle="tao_activity", overwrite=args.overwrite)
    arguments_checked()    # with --nproc: the launcher's check pass ends here, before any rank starts
    out = train_tao(cases, cfg, Path(args.out), seed=args.seed, holdout=args.holdout, epochs=args.epochs,
                    device=select_device(args.device),
                    training_data=f"{len(cases)} cases listed in {Path(args.manifest).name}", overwrite=args.overwrite)
    print(f"wrote bundle {out}")
    return 0


def run_cv(args) -> int:
    from orbitai.device import select_device
    from orbitai.result import check_outputs
    from orbitai.tao.configs import get_config
    from orbitai.tao.train import cross_validate, cv_entries

    check_training_options(args)
    cases = read_labelled_manifest(args.manifest)
    if args.folds > len(cases):
        raise UserError(f"--folds {args.folds} needs at least {args.folds} cases, the manifest has {len(cases)}; "
                        "give more cases or fewer folds.")
    check_outputs(args.out, manifest_inputs(args.manifest, cases), cv_entries(args.folds, args.runs))
    s = cross_validate(cases, get_config(args.network), Path(args.out), args.folds,
                       args.runs, args.seed, args.epochs, select_device(args.device))
    print(strict_json(s["mean_sd"]), end="")
    return 0


def run_configs(args) -> int:
    from orbitai.tao.configs import CONFIGS

    for c in CONFIGS.values():
        print(f"{c.name:<9} Network {c.network} width {c.base_channels:<3} {c.description}")
    return 0
