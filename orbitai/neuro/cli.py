"""``orbitai neuro <command>``: white-matter lesions on brain FLAIR and NMOSD vs MS (paper 003).

Each sub-command is registered by one ``_add_<name>`` function appended to :data:`SUBCOMMANDS`;
the work is done by the task modules (``predict``, ``train``), this file only parses and prints.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from orbitai.arguments import (
    add_bundle_out_options,
    add_trust_parser,
    add_device_option,
    add_speed_option,
    add_finetune_parser,
    add_modality_option,
    add_nproc_option,
    add_resample_option,
    check_finetune_options,
    check_training_options,
    manifest_inputs,
)
from orbitai.cohort.records import CohortCase
from orbitai.cohort.runner import add_cohort_options, check_cohort_options
from orbitai.dicom.inputs import add_image_source_options
from orbitai.errors import UserError
from orbitai.training.launch import arguments_checked
from orbitai.staging import finetune_work_folder, strict_json, training_work_folder, write_json_atomic


def _flair_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("flair", nargs="?", help="brain FLAIR (NRRD/NIfTI file or DICOM folder): 3D 1 mm or clinical 2D with 3-5 mm "
                                 "slices, whole head or skull-stripped, any orientation")
    p.add_argument("--lesions", metavar="SEG", help="an existing lesion segmentation of this FLAIR (label map or "
                                                     ".seg.nrrd, every non-zero voxel is lesion); default: computed")
    p.add_argument("--lesion-model", metavar="NAME", help="lesion segmentation bundle (default: the bundled one)")
    add_resample_option(p, "FLAIR")
    add_image_source_options(p, "flair")
    add_modality_option(p)
    add_device_option(p)
    p.add_argument("--out", required=True, help="output folder")
    add_cohort_options(p, "case_id,image[,segmentation: its lesion segmentation, else computed]")


def _add_lesions(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("lesions", help="brain mask, intracranial volume, white-matter lesions and the lesion table",
                     description="Writes OUT/result.json (lesion count, total volume in mL and %% of intracranial "
                                 "volume, counts and volumes per location), OUT/lesions.seg.nrrd and OUT/brain.seg.nrrd "
                                 "on the FLAIR's grid and OUT/lesions.csv (one row per lesion: volume, location); "
                                 "nothing is written on an error.")
    _flair_inputs(p)
    p.set_defaults(func=run_lesions)


def _add_predict(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("predict", help="lesions, lesion table and the probability of NMOSD vs MS with a heat map",
                     description="As 'orbitai neuro lesions', plus in OUT/result.json the probability of NMOSD, the "
                                 "call and the model, and OUT/heatmap.nrrd (occlusion map of the call on the FLAIR's "
                                 "grid, [0, 1]). Without any lesion the classifier does not apply: result.json says so "
                                 "(applies: false) and gives no probability. Nothing is written on an error.")
    _flair_inputs(p)
    p.add_argument("--model", help="classifier bundle name or folder (default: the bundled two-view ResNet-18 demo)")
    p.add_argument("--no-heatmap", action="store_true", help="skip the occlusion map")
    p.set_defaults(func=run_predict)


def _manifest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation,label: the FLAIR, its lesion "
                                                     "segmentation (non-zero = lesion) and 1 = NMOSD, 0 = MS")


def _add_train(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("train", help="train an NMOSD-vs-MS classifier (two-view or 3D ResNet); writes a bundle",
                     description="Trains the --config recipe (paper 003: SGD lr 0.01 x 0.9 every ten epochs, shift and "
                                 "flip augmentation, dropout 0.15) on the cases with --holdout of them set aside "
                                 "(stratified) for the metadata's held-out metrics. A checkpoint after every epoch in "
                                 ".<OUT name>-training beside OUT: the same command resumes.")
    _manifest(p)
    p.add_argument("--config", default="twoview18-demo", help="a configuration of 'orbitai neuro configs' "
                                                              "(default twoview18-demo)")
    p.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of the cases held out (stratified; default "
                                                              "0.2; 0: none)")
    p.add_argument("--imagenet", metavar="FILE", help="a local torchvision ResNet-18/34 ImageNet weights file for the "
                                                     "two-view models (nothing is downloaded); needs --imagenet-sha256")
    p.add_argument("--imagenet-sha256", metavar="HEX", help="SHA-256 of the --imagenet file")
    p.add_argument("--seed", type=int, default=0)
    add_device_option(p)
    add_nproc_option(p)
    add_bundle_out_options(p)
    p.set_defaults(func=run_train)


def _add_evaluate(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("evaluate", help="accuracy, sensitivity, specificity, AUC of classifiers on a labelled cohort; "
                                      "lesion-wise figures of lesion models",
                     description="Writes OUT (JSON: per model the metrics and each case's P(NMOSD)). With lesion "
                                 "segmentation bundles (--model neuro_lesion_unet_demo), the manifest gives "
                                 "case_id,image,segmentation (FLAIR, lesion mask) and OUT holds per case voxel Dice, "
                                 "lesion precision, recall and F1, the recall of lesions >= and < 10 mm3, volumes.")
    _manifest(p)
    p.add_argument("--model", nargs="+", required=True, metavar="NAME", help="classifier bundle names or folders")
    add_device_option(p)
    p.add_argument("--out", required=True, help="report to write (JSON)")
    p.set_defaults(func=run_evaluate)


def _add_cv(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("cv", help="repeated stratified k-fold cross-validation (paper 003: 5 folds x 15) with the "
                                "lesion-table logistic-regression baseline",
                     description="Writes OUT/cv.json: per fold and as mean +- SD, accuracy, sensitivity, specificity "
                                 "and AUC of the configuration and of logistic regression on the lesion table's "
                                 "counts and volumes per location, on the same folds.")
    _manifest(p)
    p.add_argument("--config", default="twoview18-demo", help="a configuration of 'orbitai neuro configs'")
    p.add_argument("--folds", type=int, default=5, help="folds (default 5, the paper's)")
    p.add_argument("--repeats", type=int, default=15, help="repeats (default 15, the paper's)")
    p.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder (cv.json)")
    p.set_defaults(func=run_cv)


def _add_train_lesions(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("train-lesions", help="train the white-matter lesion network on brain FLAIR phantoms "
                     "(seeded, resumable); writes a lesion segmentation bundle",
                     description="Train the white-matter lesion network on brain FLAIR phantoms (seeded, resumable; "
                                 "see orbitai.neuro.lesionseg_train).")
    add_bundle_out_options(p)
    p.add_argument("--work", required=True, help="phantom cache, checkpoint and log folder")
    p.add_argument("--ms-seeds", default="16000:16024")
    p.add_argument("--nmosd-seeds", default="16100:16124")
    p.add_argument("--real-seeds", default="",
                   help="seeds of phantoms with real lesion maps on real brains (orbitai.phantoms.lesion_maps, training "
                        "brains and maps only), START:STOP or a list; with it, --ms-seeds/--nmosd-seeds may be empty")
    p.add_argument("--iterations", type=int, default=1300)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--lesion-sampling", choices=("lesion", "voxel", "mixed"), default="voxel",
                   help="centre lesion patches on a uniformly drawn lesion voxel (default), on a uniformly drawn "
                        "lesion, or half and half (mixed: small lesions seen often, large confluent ones too)")
    p.add_argument("--contrast-min", type=float, default=0.5,
                   help="lesion contrast augmentation: blend factor drawn from [this, 1] (1 = off)")
    p.add_argument("--init", default=None,
                   help="lesion bundle (name or folder) whose weights start the training (fine-tuning)")
    p.add_argument("--confluent", type=float, default=0.0,
                   help="share of MS training phantoms with confluent periventricular lesions (0 to 1)")
    p.add_argument("--heavy", type=float, default=0.0,
                   help="share of MS training phantoms with a heavy confluent load, 12-70 mL (0 to 1)")
    p.add_argument("--blob", type=float, default=0.0,
                   help="weight of the lesion-wise blob-loss term (each lesion's own Dice, so small lesions count as "
                        "much as large ones; 0: off)")
    p.add_argument("--thick-max", type=float, default=5.5,
                   help="thickest simulated slice in mm (2.5-8; 8 covers 2D clinical FLAIR at 5-8 mm)")
    p.add_argument("--hard-negative", type=float, default=0.0,
                   help="share of the patches not centred on a lesion that are centred on a bright voxel that is no "
                        "lesion (cortex, vessels, septum: what false specks are made of; 0 to 1)")
    p.add_argument("--regional", action="store_true",
                   help="real-map phantoms with a normal FLAIR's regional brightness (grey matter brighter in places; "
                        "hippocampus, amygdala, hypothalamus brighter than their tissue), none of it lesion")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                   help="stop stepping after this many minutes and write the bundle from the weights reached (its "
                        "metadata says how many steps of those planned ran; a rerun goes on from the checkpoint)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    add_speed_option(p)
    add_device_option(p, "where the network steps (the batches are made on the CPU)")
    p.set_defaults(func=run_train_lesions)


def run_train_lesions(args: argparse.Namespace) -> int:
    from orbitai.neuro.lesionseg_train import run

    return run(args)


def _add_tune_lesions(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("tune-lesions", help="choose a lesion bundle's threshold and smallest lesion on validation "
                                          "phantoms and write them into its metadata",
                     description="Choose the post-processing (probability threshold, smallest lesion) of a lesion "
                                 "segmentation bundle on the held-out validation phantoms (orbitai.neuro.lesionseg_eval; "
                                 "light and heavy loads, never the real case) and record it in the bundle's metadata.")
    p.add_argument("--bundle", required=True, help="lesion bundle folder (or name) to tune; its weights are not changed")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.set_defaults(func=run_tune_lesions)


def run_tune_lesions(args: argparse.Namespace) -> int:

    import torch

    from orbitai.errors import UserError
    from orbitai.neuro.lesionseg_eval import tune_bundle

    if args.threads < 0:
        raise UserError("--threads must be >= 0.")
    if args.threads:
        torch.set_num_threads(args.threads)
    choice = tune_bundle(args.bundle)
    print(strict_json(choice, indent=1), end="")
    return 0


def _add_second_look(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("second-look", help="fit a lesion bundle's learned second look at each candidate on validation "
                                         "phantoms and write it into the bundle",
                     description="Fit the learned second look of a lesion segmentation bundle (issue 79; "
                                 "orbitai.neuro.second_look_fit): candidates at a low threshold, a random forest that "
                                 "keeps or drops each one, both thresholds chosen out of fold on the validation "
                                 "split's phantoms (never the test split or the real case). The weights are kept.")
    p.add_argument("--bundle", required=True, help="lesion bundle folder (or name); its weights are not changed")
    p.add_argument("--regional", action="store_true",
                   help="fit on the validation phantoms with a normal FLAIR's regional brightness (brighter grey "
                        "matter in places; the same lesions)")
    p.set_defaults(func=run_second_look)


def run_second_look(args: argparse.Namespace) -> int:
    from orbitai.neuro.second_look_fit import fit_second_look

    print(strict_json(fit_second_look(args.bundle, args.regional), indent=1), end="")
    return 0


def _add_finetune_lesions(s: argparse._SubParsersAction) -> None:
    add_finetune_parser(s, "finetune-lesions", "the white-matter lesion network",
                        "case_id,image,segmentation: FLAIR and its corrected lesion segmentation",
                        "the bundled lesion model", "200 steps, 3 folds, scored every 50 steps, replay share 0.5",
                        "phantoms with real lesion maps on real training brains").set_defaults(func=run_finetune_lesions)


def run_finetune_lesions(args: argparse.Namespace) -> int:
    """``neuro finetune-lesions``: the recipe of `orbitai.neuro.finetune` over a manifest, installed as a new bundle."""
    from orbitai.bundle.core import refuse_package_folder
    from orbitai.cohort.manifest import read_manifest
    from orbitai.device import select_device
    from orbitai.neuro.finetune import LesionRecipe, check_lesion_labels, finetune_lesions, out_folder, read_case
    from orbitai.neuro.lesionseg import lesion_bundle
    from orbitai.progress import emit
    from orbitai.result import check_outputs
    from orbitai.training.finetune import FINETUNE_SUMMARY, check_distinct_cases, with_settings, work_folder

    settings = check_finetune_options(args)
    rows = read_manifest(args.manifest)
    base = lesion_bundle(args.base)
    out = out_folder(base.name, args.name, args.out)
    refuse_package_folder(out)
    work_folder(out)
    check_distinct_cases(rows, "FLAIR")
    for row in rows:           # every lesion map checked before the first brain extraction
        if row.segmentation is not None:
            check_lesion_labels(row)
    inputs = [args.manifest, *(p for c in rows for p in (c.image, c.segmentation))]
    check_outputs(out, inputs, beside=(finetune_work_folder(out).name,), bundle="lesion_segmentation",
                  overwrite=args.overwrite)
    if args.summary:
        check_outputs(args.summary, inputs, (FINETUNE_SUMMARY,))
    recipe = with_settings(LesionRecipe(), **settings)
    cases = []
    for n, row in enumerate(rows):
        emit(0, len(rows), f"reading {row.case_id} ({n + 1}/{len(rows)}): brain extraction")
        cases.append(read_case(row, recipe.seed))
    return finetune_lesions(cases, out, base, recipe, select_device(args.device),
                            resume=not args.no_resume, overwrite=args.overwrite).tell(args.summary)


def _add_configs(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("configs", help="list the classifier training configurations")
    p.set_defaults(func=run_configs)


#: Sub-command parser functions, in the order ``orbitai neuro --help`` lists them.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_lesions, _add_predict, _add_train,
                                                                    _add_evaluate, _add_cv, _add_train_lesions, _add_tune_lesions,
                                                                    _add_second_look,
                                                                    _add_finetune_lesions, _add_configs]


def _add_trust(s: argparse._SubParsersAction) -> None:
    add_trust_parser(s, "a bundle name/folder of an NMOSD-vs-MS classifier",
                     "case_id,image,segmentation,label (FLAIR, lesion segmentation, 1 = NMOSD)",
                     "the classifier inputs").set_defaults(func=run_trust)


def run_trust(args: argparse.Namespace) -> int:
    """``neuro trust``: fit and store a bundle's out-of-distribution statistics and calibration (issue 51)."""
    from orbitai.classify.trust_command import check_trust_inputs, show_report
    from orbitai.device import select_device
    from orbitai.neuro.models import NEURO_MODELS
    from orbitai.neuro.study import case_label
    from orbitai.neuro.trust import fit_neuro_trust
    from orbitai.progress import emit

    train, validation = _cases(args.manifest), _cases(args.validation)
    test = _cases(args.test) if args.test else None
    # the checks of every trust command (#69.1, #62.5, #62.7), before any file changes
    check_trust_inputs(NEURO_MODELS.find(args.model), [("--manifest", args.manifest, train),
                                                       ("--validation", args.validation, validation),
                                                       ("--test", args.test, test)], case_label, args.report)
    show_report(fit_neuro_trust(args.model, train, validation, test, select_device(args.device),
                                cache=Path(args.cache) if args.cache else None, progress=emit), args.report)
    return 0


SUBCOMMANDS.append(_add_trust)


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("neuro", help=help_text,
                       description="NeuroDifferential (paper 003): white-matter lesions on brain FLAIR and the "
                                   "differential diagnosis NMOSD vs multiple sclerosis.")
    s = p.add_subparsers(dest="neuro_command", metavar="<neuro command>", required=True)
    for add in SUBCOMMANDS:
        add(s)


def _predict(predictor, options: dict, flair: str, lesions: Optional[str], out: str | Path) -> None:
    """One FLAIR by the task's ``predictor``: ``neuro predict`` (lesions and the call) or ``neuro lesions``."""
    from orbitai.progress import emit

    tell(predictor.predict({"flair": flair, "lesions": lesions}, out,
                           {**options, "classify": options.get("neuro_command") != "lesions"}, progress=emit), out)


def tell(result, folder: str | Path) -> None:
    """The lines ``neuro lesions`` or ``neuro predict`` (a result with a classification) prints for one FLAIR (the
    `orbitai.neuro.result.NeuroResult` the predictor returns, with the scan's ``facts``)."""
    from orbitai.result import RESULT_FILE, not_assessed

    data = result.data
    for w in data["warnings"]:
        print(f"warning: {w}")
    for n in data["notes"]:
        print(f"note: {n}")
    if result.facts is not None:
        print(f"scan: {result.facts.summary()}")
    t = data["lesions"]
    print(f"{t['count']} lesion(s), {t['total_ml']:.2f} mL ({t['percent_icv']:.2f} % of the intracranial volume "
          f"{t['icv_ml'] / 1000:.2f} L); " + ", ".join(f"{k} {v}" for k, v in t["counts"].items() if v))
    if result.classified:
        if data.get("probability_nmosd") is None:
            print(f"classifier does not apply: {data['reason']}")
        else:   # a call marked do not use reads "not assessed: <reason>" in place of the call and P (issue 61)
            call = not_assessed(data) or f"P(NMOSD) = {data['probability_nmosd']:.3f} -> {data['call']}"
            print(f"{call} (model {data['model']}, {data['seconds']:.1f} s)")
        print(f"scope: {data['scope']}")
    print(f"wrote {folder}/{RESULT_FILE}")


def predict_case(options: dict, case: CohortCase, folder: Path) -> None:
    """One case of a ``neuro lesions|predict --manifest`` cohort (the cohort runner's per-case step): the task's
    predictor (one per worker) on the case's FLAIR and lesion segmentation, into ``folder``."""
    from orbitai.neuro.predictor import NeuroPredictor

    predictor = NeuroPredictor.shared(options.get("model"), options.get("device"),
                                      lesion_model=options.get("lesion_model"))
    _predict(predictor, options, case.inputs["image"], case.inputs.get("segmentation"), folder)


def _run_cohort(args: argparse.Namespace) -> int:
    """``neuro lesions|predict --manifest``: every case into OUT/<case_id>/ on the cohort runner."""
    import functools

    from orbitai.cohort.runner import CohortTask, image_cases, run_cohort
    from orbitai.device import select_device
    from orbitai.neuro.predictor import CASE_FILES
    from orbitai.neuro.result import NeuroResult

    if args.lesions:
        raise UserError("--lesions is for one FLAIR; a cohort's lesion segmentations are the manifest's "
                        "'segmentation' column.")
    select_device(args.device)
    cases = image_cases(args.manifest)
    options = {k: v for k, v in vars(args).items() if k not in ("flair", "lesions", "out")}
    task = CohortTask(f"neuro {args.neuro_command}", functools.partial(predict_case, options), NeuroResult, CASE_FILES)
    run_cohort(task, cases, args.out, workers=args.workers or 0, scheduler=args.scheduler, inputs=[args.manifest])
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``neuro predict`` and ``neuro lesions``: one FLAIR by the task's predictor, or a cohort."""
    if check_cohort_options(args, "flair"):
        return _run_cohort(args)
    if not args.flair:
        raise UserError("Give a FLAIR, or --manifest CSV with case_id,image[,segmentation].")
    from orbitai.neuro.predictor import NeuroPredictor

    predictor = NeuroPredictor(getattr(args, "model", None), args.device, args.lesion_model)
    _predict(predictor, vars(args), args.flair, args.lesions, args.out)
    return 0


run_lesions = run_predict


def _cases(manifest: str) -> list:
    from orbitai.cohort.manifest import read_labelled_manifest
    from orbitai.neuro.study import case_label

    return read_labelled_manifest(manifest, case_label)


def run_train(args: argparse.Namespace) -> int:
    from orbitai.neuro.configs import get_config
    from orbitai.neuro.study import train_bundle
    from orbitai.result import check_outputs

    check_training_options(args)
    get_config(args.config)
    if bool(args.imagenet) != bool(args.imagenet_sha256):
        raise UserError("--imagenet and --imagenet-sha256 go together: give the local weights file and its SHA-256.")
    if args.imagenet and not Path(args.imagenet).is_file():
        raise UserError(f"--imagenet {args.imagenet} is not a file.")
    cases = _cases(args.manifest)
    check_outputs(args.out, manifest_inputs(args.manifest, cases), beside=(training_work_folder(args.out).name,),
                  bundle="neuro_differential", overwrite=args.overwrite)
    arguments_checked()    # with --nproc: the launcher's check pass ends here, before any rank starts
    imagenet = (args.imagenet, args.imagenet_sha256) if args.imagenet else None
    out = train_bundle(cases, args.config, Path(args.out), args.seed, args.holdout, args.epochs, imagenet,
                       training_data=f"{len(cases)} cases listed in {Path(args.manifest).name}",
                       overwrite=args.overwrite)
    print(f"wrote bundle {out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import json

    from orbitai.device import select_device
    from orbitai.cohort.manifest import read_manifest
    from orbitai.neuro.evaluate import evaluate_lesion_models, evaluate_models, lesion_task

    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name (JSON).")
    lesions = lesion_task(args.model)
    cases = read_manifest(args.manifest) if lesions else _cases(args.manifest)
    if out.exists() and any(Path(p).resolve() == out.resolve() for p in manifest_inputs(args.manifest, cases)):
        raise UserError(f"--out {out} is an input of this command; give another file name.")
    from orbitai.bundle.core import refuse_package_folder

    refuse_package_folder(out, "--out")          # the bundled models are read-only
    if out.exists():                              # only an earlier report of this command is replaced
        try:
            earlier = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and isinstance(earlier.get("models"), dict)):
            raise UserError(f"--out {out} already exists and is not a report of 'neuro evaluate'; give another file "
                            "name (nothing was changed).")
    if lesions:
        report = evaluate_lesion_models(cases, args.model, select_device(args.device))
    else:
        report = evaluate_models(cases, args.model, select_device(args.device))
    write_json_atomic(out, report)
    for name, r in report["models"].items():
        m = r["metrics"]
        if lesions:
            print(f"{name:<28} Dice {m['dice']:.3f} lesion P {m['lesion_precision']:.3f} R {m['lesion_recall']:.3f} "
                  f"F1 {m['lesion_f1']:.3f} R>=10mm3 {m['recall_ge_10mm3']:.3f} R<10mm3 {m['recall_lt_10mm3']:.3f}")
        else:
            print(f"{name:<28} ACC {m['accuracy']:.3f} SEN {m['sensitivity']:.3f} SPE {m['specificity']:.3f} "
                  f"AUC {m['auc']:.3f}")
    print(f"wrote {out}")
    return 0


def run_cv(args: argparse.Namespace) -> int:
    from orbitai.neuro.configs import get_config
    from orbitai.neuro.study import CV_FILE, cross_validate_config
    from orbitai.result import check_outputs

    check_training_options(args)
    get_config(args.config)
    cases = _cases(args.manifest)
    check_outputs(args.out, manifest_inputs(args.manifest, cases), (CV_FILE, "work"))
    r = cross_validate_config(cases, args.config, Path(args.out), args.folds, args.repeats, args.seed, args.epochs)
    for what, cv in (("network", r["network_cv"]), ("lesion-table LR", r["lesion_table_logistic_regression"])):
        print(f"{what:<16} " + "  ".join(f"{k} {cv['mean'][k]:.3f} +- {cv['sd'][k]:.3f}" for k in cv["mean"]))
    print(f"wrote {args.out}/{CV_FILE}")
    return 0


def run_configs(args: argparse.Namespace) -> int:
    from orbitai.neuro.configs import CONFIGS

    for c in CONFIGS.values():
        width = c.kwargs.get("width", 1.0)
        print(f"{c.name:<18} {c.architecture:<10} width {width:<5} {c.epochs:>3} epochs, batch {c.batch_size}, "
              f"input {c.input_mode} {c.size}^3{', ImageNet init' if c.imagenet else ''}")
    return 0
