"""``orbitai ivgc <command>``: IVGC response (paper 001) from the command line.

Each sub-command is registered by one ``_add_<name>`` function below (``features``, ``select``);
the deep-model commands (``train``, ``predict``, ``evaluate``, ``cv``, ``configs``) are added the
same way: a parser function appended to :data:`SUBCOMMANDS`. The work of ``features`` and ``select`` is in
`orbitai.ivgc.feature_commands`, imported when one of them runs, as every command's is.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional

from orbitai.arguments import (add_bundle_out_options, add_device_option, add_modality_option, add_nproc_option,
                               add_resample_option, add_trust_parser)
from orbitai.cohort.records import CohortCase
from orbitai.cohort.runner import add_cohort_options, check_cohort_options
from orbitai.dicom.inputs import add_image_source_options
from orbitai.errors import UserError
from orbitai.training.launch import arguments_checked
from orbitai.staging import strict_json, training_work_folder


def _strategies_option(p: argparse.ArgumentParser) -> None:
    from orbitai.ivgc.rois import STRATEGY_NAMES

    p.add_argument("--strategies", nargs="+", metavar="NAME",
                   help=f"ROI strategies (default all six: {' '.join(STRATEGY_NAMES)}; bilateral; feature names "
                        "carry the strategy as prefix, e.g. all_original_shape_MajorAxisLength)")


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int,
                   help="Dask worker processes of the local cluster, one thread each (default: the CPU count; "
                        "0: no Dask, one case after another in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (e.g. tcp://10.0.0.5:8786) instead of a "
                        "local cluster; the workers must read the manifest's files")
    p.add_argument("--protocol", default="ivgc",
                   help="radiomics protocol: a shipped name or a pyradiomics parameter file (default ivgc: the "
                        "paper's 660 features per ROI)")


def _add_features(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("features", help="radiomics of every case and ROI strategy (Dask; resumable)",
                     description="Writes OUT (CSV: case_id, then one column per feature <strategy>_<pyradiomics "
                                 "name>, 660 per strategy). Finished cases are kept in OUT.cache/ and not redone "
                                 "by a rerun; a failed case is reported by id, the others are written (exit 1).")
    p.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation[,segmentation_2]")
    p.add_argument("--out", required=True, help="feature table to write (CSV)")
    _strategies_option(p)
    p.add_argument("--reader", type=int, choices=(1, 2), default=1,
                   help="1: the 'segmentation' column; 2: the second segmentation for the reproducibility "
                        "analysis (the manifest's 'segmentation_2' column, else the documented perturbation of "
                        "the first)")
    _cluster_options(p)
    add_resample_option(p)
    p.set_defaults(func=run_features)


def _add_select(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("select", help="feature selection per ROI strategy: ICC, t-test, LASSO (paper 001)",
                     description="Keeps the features reproducible between two segmentations (ICC(2,1) >= --icc), "
                                 "then those differing between responders and non-responders (t-test p < "
                                 "--alpha), then LASSO's non-zero ones; writes OUT (JSON: per strategy the selected "
                                 "features, their coefficients and the standardisation).")
    p.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation,label (1 = responder) "
                                                     "[,segmentation_2]: the training cases")
    p.add_argument("--features", required=True, help="feature table of 'orbitai ivgc features'")
    p.add_argument("--repeat", help="feature table of the second segmentation ('orbitai ivgc features --reader 2'); "
                                    "default: extracted now (cached beside --features)")
    p.add_argument("--out", required=True, help="selection to write (JSON)")
    _strategies_option(p)
    p.add_argument("--icc", type=float, default=0.75, help="ICC(2,1) threshold (default 0.75)")
    p.add_argument("--alpha", type=float, default=0.05, help="t-test significance level (default 0.05)")
    p.add_argument("--lasso", choices=("linear", "logistic"), default="linear",
                   help="LASSO on the 0/1 outcome (linear, default) or L1 logistic regression")
    p.add_argument("--cv", type=int, default=5, help="cross-validation folds choosing LASSO's penalty (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the LASSO folds")
    _cluster_options(p)
    p.set_defaults(func=run_select)


def _model_inputs(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation,label (1 = responder)"
                                                     "[, the 16 clinical features]")
    p.add_argument("--features", required=required, help="feature table of 'orbitai ivgc features' for these cases")
    p.add_argument("--selection", required=required, help="selection of 'orbitai ivgc select' (JSON)")


def _add_train(s: argparse._SubParsersAction) -> None:
    from orbitai.ivgc.kinds import KINDS

    p = s.add_parser("train", help="train a radiomics (SVM, LogReg, RF) or deep (ResNet-50, RDINet) model; writes a "
                                   "bundle",
                     description="Radiomics models: a scikit-learn Pipeline on the selected features of --strategy, "
                                 "fitted on every case (5-fold CV metrics in the metadata), stored with skops. Deep "
                                 "models: the --config recipe (demo or paper) with 20 %% of the cases held out "
                                 "(stratified) for the metadata's held-out metrics; a checkpoint after every epoch "
                                 "in .<OUT name>-training beside OUT: the same command resumes.")
    _model_inputs(p, required=False)
    p.add_argument("--model", required=True, choices=KINDS, help="model kind")
    p.add_argument("--strategy", default="mrlr", help="ROI strategy (default mrlr, the paper's best)")
    p.add_argument("--config", default="demo", help="deep models: demo (width 1/8, <= 30 min on 2 CPU cores) or "
                                                     "paper (full width, 100 epochs), or a name of 'orbitai ivgc "
                                                     "configs' (default demo)")
    p.add_argument("--epochs", type=int, help="deep models: override the configuration's number of epochs")
    p.add_argument("--holdout", type=float, default=0.2, help="deep models: fraction of the cases held out "
                                                              "(stratified; default 0.2, the paper's 4:1; 0: none)")
    p.add_argument("--seed", type=int, default=0)
    add_device_option(p)
    add_nproc_option(p)
    add_bundle_out_options(p)
    p.set_defaults(func=run_train)


def _add_predict(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("predict", help="one patient's probability of responding to IVGC; writes result.json, "
                                     "features.csv, gradcam.nrrd",
                     description="Writes OUT/result.json (probability of response, call, model, ROI strategy), "
                                 "OUT/features.csv (the model's selected radiomics features: feature,value,coefficient)"
                                 " and, for the image models, OUT/gradcam.nrrd on the MRI's grid; nothing is written "
                                 "on an error.")
    p.add_argument("image", nargs="?", help="coronal T2 MRI (NRRD/NIfTI file or DICOM folder)")
    p.add_argument("--segmentation", help="recti of both orbits (orbit label scheme; label map or .seg.nrrd); "
                                          "required with an image")
    p.add_argument("--model", help="a kind (svm, resnet50, rdinet, rdinet_clinical: the bundled demos) or a bundle "
                                   "name/folder (default ivgc_svm_demo)")
    p.add_argument("--strategy", help="ROI strategy (default: the model's own; another one is refused)")
    p.add_argument("--clinical", metavar="FILE.json", help="the 16 clinical features as a JSON object "
                                                           "{feature: value} (RDINet clinical)")
    p.add_argument("--no-gradcam", action="store_true", help="skip the Grad-CAM map (image models)")
    add_resample_option(p, "MRI")
    add_modality_option(p)
    add_device_option(p)
    p.add_argument("--out", required=True, help="output folder")
    add_cohort_options(p, "case_id,image,segmentation[, the clinical features]")
    add_image_source_options(p, "image")
    p.set_defaults(func=run_predict)


def _add_evaluate(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("evaluate", help="paper 001's Table 2 (AUC 95%% CI, ACC, SEN, SPE, PPV, NPV) and Figures 5-6 "
                                      "of one or more models on a labelled cohort",
                     description="Writes OUT/predictions.csv, table2.csv, table2.json and roc.png, calibration.png, "
                                 "decision_curve.png, radar.png; nothing is written on an error.")
    p.add_argument("--manifest", required=True, help="CSV with case_id,image,segmentation,label[, clinical features]")
    p.add_argument("--features", help="feature table of these cases ('orbitai ivgc features'; radiomics and RDINet "
                                      "models)")
    p.add_argument("--model", nargs="+", required=True, metavar="NAME",
                   help="kinds (svm, resnet50, rdinet, rdinet_clinical: the bundled demos) or bundle names/folders")
    p.add_argument("--cohort", default="", help="cohort name in the table and figure titles (e.g. test)")
    add_device_option(p)
    p.add_argument("--out", required=True, help="report folder")
    p.set_defaults(func=run_evaluate)


def _add_cv(s: argparse._SubParsersAction) -> None:
    from orbitai.ivgc.kinds import KINDS

    p = s.add_parser("cv", help="stratified k-fold cross-validation of one model in the training cohort",
                     description="Per fold: the model trained on the other folds, its Table-2 metrics on the fold; "
                                 "OUT/cv.json with the folds and mean +- SD (deep models: a work folder per fold).")
    _model_inputs(p, required=False)
    p.add_argument("--model", required=True, choices=KINDS, help="model kind")
    p.add_argument("--strategy", default="mrlr", help="ROI strategy (default mrlr)")
    p.add_argument("--config", default="demo", help="deep models: demo, paper or a configuration name")
    p.add_argument("--folds", type=int, default=5, help="folds (default 5, the paper's)")
    p.add_argument("--epochs", type=int, help="deep models: override the configuration's number of epochs")
    p.add_argument("--seed", type=int, default=0)
    add_device_option(p)
    p.add_argument("--out", required=True, help="output folder (cv.json)")
    p.set_defaults(func=run_cv)


def _add_configs(s: argparse._SubParsersAction) -> None:
    p = s.add_parser("configs", help="list the deep-model training configurations")
    p.set_defaults(func=run_configs)


def _add_trust(s: argparse._SubParsersAction) -> None:
    add_trust_parser(s, "a kind (svm, resnet50, rdinet, rdinet_clinical) or a bundle name/folder",
                     "case_id,image,segmentation,label[, clinical features]",
                     "the selected radiomics and image crops").set_defaults(func=run_trust)


#: Sub-command parser functions, in the order ``orbitai ivgc --help`` lists them.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_features, _add_select, _add_train,
                                                                    _add_predict, _add_evaluate, _add_cv, _add_trust,
                                                                    _add_configs]


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("ivgc", help=help_text,
                       description="Response to intravenous glucocorticoids (Zhang et al., RDINet, paper 001).")
    s = p.add_subparsers(dest="ivgc_command", metavar="<ivgc command>", required=True)
    for add in SUBCOMMANDS:
        add(s)


# --------------------------------------------------------------------------------------------- features, select
def run_features(args: argparse.Namespace) -> int:
    """``ivgc features`` (`orbitai.ivgc.feature_commands.features_command`)."""
    from orbitai.ivgc.feature_commands import features_command

    return features_command(args)


def run_select(args: argparse.Namespace) -> int:
    """``ivgc select`` (`orbitai.ivgc.feature_commands.select_command`)."""
    from orbitai.ivgc.feature_commands import select_command

    return select_command(args)


# --------------------------------------------------------------------------------------------- train
def config_name(model: str, config: str) -> str:
    """The configuration of a deep ``model``: ``demo``/``paper`` expand to ``demo-<model>``; a full name must
    be one of that model's configurations."""
    from orbitai.ivgc.configs import get_config

    key = config.strip().lower().replace("_", "-")
    name = f"{key}-{model.replace('_', '-')}" if key in ("demo", "paper") else key
    cfg = get_config(name)
    if cfg.model != model:
        raise UserError(f"--config {config} trains {cfg.model}, not --model {model}.")
    return cfg.name


def read_training_inputs(args: argparse.Namespace, need_radiomics: bool) -> tuple[list, object, Optional[dict]]:
    """(cases with labels checked, feature table or None, selection or None), every file checked first."""
    from orbitai.cohort.manifest import read_manifest
    from orbitai.ivgc.features import WideTable, check_table_files, cohort_inputs
    from orbitai.ivgc.select import read_selection
    from orbitai.ivgc.train import case_labels

    if need_radiomics:
        absent = [o for o, v in (("--features", args.features), ("--selection", args.selection)) if not v]
        if absent:
            raise UserError(f"--model {args.model} needs {' and '.join(absent)} (the selected radiomics features).")
    cases = read_manifest(args.manifest)
    case_labels(cases)
    table = WideTable.from_csv(args.features) if args.features else None
    if table is not None:
        check_table_files(table, cohort_inputs(args.manifest)[0], f"--features {args.features}")
    selection = read_selection(args.selection) if args.selection else None
    if (table is None) != (selection is None):
        raise UserError("Give --features and --selection together (or neither, for ResNet-50 alone).")
    return cases, table, selection


def run_train(args: argparse.Namespace) -> int:
    from orbitai.device import select_device
    from orbitai.ivgc.rois import parse_strategies
    from orbitai.ivgc.configs import get_config
    from orbitai.ivgc.train import DEEP_KINDS, TASK, TrainingSet, train_deep, train_radiomics
    from orbitai.result import check_outputs
    from orbitai.training.launch import env_world_size

    strategy = parse_strategies([args.strategy])[0].name
    deep = args.model in DEEP_KINDS
    if not deep and max(args.nproc, env_world_size()) > 1:
        raise UserError(f"--nproc: a {args.model} model is fitted by scikit-learn in one process; give --nproc only "
                        "with a deep model (resnet50, rdinet, rdinet_clinical).")
    cfg = config_name(args.model, args.config) if deep else None
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}.")
    if not 0.0 <= args.holdout < 1.0:
        raise UserError(f"--holdout must be a fraction in [0, 1), got {args.holdout}.")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    cases, table, selection = read_training_inputs(args, need_radiomics=args.model != "resnet50")
    inputs = [args.manifest, args.features, args.selection, *(p for c in cases for p in (c.image, c.segmentation))]
    check_outputs(args.out, inputs, beside=(training_work_folder(args.out).name,) if deep else (), bundle=TASK,
                  overwrite=args.overwrite)
    arguments_checked()    # with --nproc: the launcher's check pass ends here, before any rank starts
    data = f"{len(cases)} cases listed in {Path(args.manifest).name}"
    if deep:
        assert cfg is not None
        out = train_deep(TrainingSet(cases, table, selection),
                         get_config(cfg).for_run(args.seed, args.epochs, args.holdout), strategy, Path(args.out),
                         device=select_device(args.device), training_data=data, overwrite=args.overwrite)
    else:
        assert selection is not None    # read_training_inputs refused a radiomics model without one
        out = train_radiomics(TrainingSet(cases, table, selection), args.model, strategy, Path(args.out),
                              seed=args.seed, training_data=data, overwrite=args.overwrite)
    print(f"wrote bundle {out}")
    return 0


def run_cv(args: argparse.Namespace) -> int:
    from orbitai.device import select_device
    from orbitai.ivgc.rois import parse_strategies
    from orbitai.ivgc.train import CV_FILE, DEEP_KINDS, TrainingSet, cross_validate, cv_entries
    from orbitai.result import check_outputs

    strategy = parse_strategies([args.strategy])[0].name
    cfg = config_name(args.model, args.config) if args.model in DEEP_KINDS else ""
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}.")
    if args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}.")
    cases, table, selection = read_training_inputs(args, need_radiomics=args.model != "resnet50")
    inputs = [args.manifest, args.features, args.selection, *(p for c in cases for p in (c.image, c.segmentation))]
    check_outputs(args.out, inputs, cv_entries(args.folds if args.model in DEEP_KINDS else 0))
    s = cross_validate(TrainingSet(cases, table, selection), args.model, strategy, Path(args.out), args.folds,
                       args.seed, cfg, args.epochs, select_device(args.device))
    print(strict_json(s["mean_sd"]), end="")
    print(f"wrote {args.out}/{CV_FILE}")
    return 0


def run_configs(args: argparse.Namespace) -> int:
    from orbitai.ivgc.configs import CONFIGS

    for c in CONFIGS.values():
        print(f"{c.name:<22} {c.model:<16} width {c.width:<5g} epochs {c.settings.epochs:<4} {c.description}")
    return 0


# --------------------------------------------------------------------------------------------- predict
def predict_case(options: dict, case: CohortCase, folder: Path) -> None:
    """One case of an ``ivgc predict --manifest`` cohort (the cohort runner's per-case step): the task's predictor
    (one per worker) on the case's MRI, segmentation and the manifest's clinical values, into ``folder``."""
    from orbitai.cohort.clinical import IVGC_CLINICAL
    from orbitai.ivgc.predictor import IvgcPredictor
    from orbitai.progress import emit

    clinical = {name: value for name, raw in case.inputs["clinical"].items()
                if (value := IVGC_CLINICAL[name].parse(raw, case.case_id)) is not None}
    predictor = IvgcPredictor.shared(options["model"], options["device"])
    source = f"the manifest {options.get('manifest_path') or ''}".rstrip()
    tell(predictor.predict({"image": case.inputs["image"], "segmentation": case.inputs["segmentation"],
                            "clinical": clinical or None}, folder, {**options, "clinical_source": source},
                           progress=emit), folder)


def tell(result, folder: str | Path) -> None:
    """The lines ``ivgc predict`` prints for one patient (the `orbitai.ivgc.result.IvgcResult` the predictor returns,
    with the scan's ``facts``)."""
    from orbitai.result import RESULT_FILE, not_assessed

    data = result.data
    for w in data["warnings"]:
        print(f"warning: {w}")
    if result.facts is not None:
        print(f"scan: {result.facts.summary()}")
    if data.get("reformatted"):
        print(f"reformatted: {data['reformatted']}")
    # a call marked do not use reads "not assessed: <reason>" in place of the call and P (issue 61)
    call = not_assessed(data) or f"P(responder) = {data['probability']:.3f} -> {data['call']}"
    print(f"{call} (model {data['model']}, {data['kind']}, ROI {data['strategy']}, {data['seconds']:.1f} s)")
    print(f"scope: {data['scope']}")
    print(f"wrote {folder}/{RESULT_FILE}")


def _run_predict_cohort(args: argparse.Namespace) -> int:
    """``ivgc predict --manifest``: every case into OUT/<case_id>/ on the cohort runner."""
    import functools

    from orbitai.cohort.clinical import IVGC_CLINICAL
    from orbitai.cohort.manifest import read_manifest
    from orbitai.cohort.runner import CohortTask, run_cohort
    from orbitai.device import select_device
    from orbitai.ivgc.predictor import CASE_FILES
    from orbitai.ivgc.result import IvgcResult

    if args.segmentation or args.clinical:
        raise UserError("--segmentation and --clinical are for one patient; a cohort's come from the manifest "
                        "(its 'segmentation' column and clinical feature columns).")
    select_device(args.device)
    cases = [CohortCase(c.case_id, {"image": str(c.image), "segmentation": str(c.segmentation),
                                    "clinical": {n: c.row[n] for n in IVGC_CLINICAL.names if c.row.get(n)}},
                        (str(c.image), str(c.segmentation)))
             for c in read_manifest(args.manifest, need_segmentation=True)]
    options = {k: v for k, v in vars(args).items() if k not in ("image", "segmentation", "clinical", "out")}
    options["manifest_path"] = str(args.manifest)      # named where its clinical columns are missing
    task = CohortTask("ivgc predict", functools.partial(predict_case, options), IvgcResult, CASE_FILES)
    run_cohort(task, cases, args.out, workers=args.workers or 0, scheduler=args.scheduler, inputs=[args.manifest])
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``ivgc predict``: one patient by the task's predictor (`orbitai.ivgc.predictor`), or a cohort."""
    from orbitai.ivgc.predictor import IvgcPredictor
    from orbitai.progress import emit

    if check_cohort_options(args, "image"):
        return _run_predict_cohort(args)
    if not args.image or not args.segmentation:
        raise UserError("Give an image and --segmentation, or --manifest CSV with case_id,image,segmentation.")
    tell(IvgcPredictor(args.model, args.device).predict(
        {"image": args.image, "segmentation": args.segmentation, "clinical": args.clinical}, args.out, vars(args),
        progress=emit), args.out)
    return 0


# --------------------------------------------------------------------------------------------- evaluate
def run_evaluate(args: argparse.Namespace) -> int:
    from orbitai.device import select_device
    from orbitai.ivgc.evaluate import evaluate_ivgc
    from orbitai.progress import emit

    report = evaluate_ivgc(args.manifest, args.model, Path(args.out), args.features, select_device(args.device),
                           args.cohort, progress=emit)
    for row in report["table2"]:
        print(f"{row['model']:<28} AUC {row['AUC']:.3f} ({row['AUC_CI95_low']:.3f}-{row['AUC_CI95_high']:.3f}) "
              f"ACC {row['ACC']:.3f} SEN {row['SEN']:.3f} SPE {row['SPE']:.3f} PPV {row['PPV']:.3f} NPV {row['NPV']:.3f}")
    print(f"wrote {args.out}/table2.csv, table2.json, predictions.csv and the figures")
    return 0


def run_trust(args: argparse.Namespace) -> int:
    """``ivgc trust``: fit and store a bundle's out-of-distribution statistics and calibration (issue 51)."""
    from orbitai.classify.trust_command import check_trust_inputs, show_report
    from orbitai.cohort.manifest import read_labelled_manifest
    from orbitai.device import select_device
    from orbitai.ivgc.data import case_label
    from orbitai.ivgc.models import IVGC_MODELS
    from orbitai.ivgc.trust import fit_ivgc_trust

    def read(manifest: Optional[str]) -> Optional[list]:
        return read_labelled_manifest(manifest, case_label) if manifest else None
    train, validation, test = read(args.manifest) or [], read(args.validation) or [], read(args.test)
    # a bundled model, validation cases that are training cases, too few of a class, a report over an input:
    # refused before any file changes
    check_trust_inputs(IVGC_MODELS.find(args.model), [("--manifest", args.manifest, train),
                                                      ("--validation", args.validation, validation),
                                                      ("--test", args.test, test)], case_label, args.report)
    show_report(fit_ivgc_trust(args.model, train, validation, test,
                               select_device(args.device), cache=Path(args.cache) if args.cache else None), args.report)
    return 0
