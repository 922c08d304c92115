"""The work of ``orbitai ivgc features`` and ``orbitai ivgc select`` (the radiomics of a cohort and their selection),
run by `orbitai.ivgc.cli` when one of them is the command: the output checked before any work, the cohort's
extraction on Dask or in this process (resumable from its cache), and its failed cases said in one line.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn, Optional

from orbitai.cohort.manifest import read_manifest
from orbitai.errors import InputError, OrbitAIError, UserError, one_line
from orbitai.ivgc.features import (SECOND_RATER_COLUMN, CohortRun, Compute, WideTable, cache_folder,
                                   check_table_files, cohort_inputs, extract_cohort)
from orbitai.ivgc.rois import PERTURBATION, parse_strategies
from orbitai.ivgc.select import SelectionSettings, check_cohort, select_cohort, write_selection
from orbitai.progress import emit
from orbitai.radiomics.protocol import RadiomicsProtocol


def _workers(args: argparse.Namespace) -> int:
    if args.workers is None:
        return os.cpu_count() or 1
    if args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}.")
    return int(args.workers)


def _check_out_file(out: str, inputs: list[str | Path | None]) -> Path:
    """Refuse, before any work, an output that is a folder or one of the inputs."""
    path = Path(out)
    if path.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name.")
    folder = next(p for p in path.absolute().parents if p.exists())
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--out {out} cannot be written: no permission to write in {folder}; "
                        "choose another --out or change that folder's permissions.")
    for i in inputs:
        if i is not None and Path(i).exists() and path.exists() and path.resolve() == Path(i).resolve():
            raise UserError(f"--out {out} is an input of this command; give another file name.")
    return path


def _refuse_input_as_out(out: Path, manifest: str) -> None:
    """Refuse an --out that is one of the manifest's images or segmentations (before any work)."""
    if not out.exists():
        return
    target = out.resolve()
    for case in read_manifest(manifest, need_segmentation=False):
        second = case.row.get("segmentation_2") or ""
        paths = [case.image, case.segmentation, (Path(manifest).parent / second) if second else None]
        for q in paths:
            if q is not None and q.exists() and q.resolve() == target:
                raise UserError(f"--out {out} is case {case.case_id}'s input; give another file name.")


def _extract(manifest: str, cache: Path, strategies: list[str], protocol: dict, args: argparse.Namespace,
             reader: int, previous: Optional[WideTable] = None) -> CohortRun:
    """Run the cohort extraction (failed cases are in the result)."""
    column = "segmentation"
    perturb = False
    if reader == 2:
        has_second = SECOND_RATER_COLUMN in read_manifest(manifest)[0].row
        column = SECOND_RATER_COLUMN if has_second else "segmentation"
        perturb = not has_second
    files, missing = cohort_inputs(manifest, column)
    run = extract_cohort(files, strategies, protocol, cache, Compute(_workers(args), args.scheduler),
                         perturb=perturb, progress=emit, previous=previous,
                         resample_masks=bool(getattr(args, "resample_masks", False)))
    run.failed.update(missing)
    return run


def _why(exc: BaseException) -> str:
    text = one_line(exc)
    if isinstance(exc, (OrbitAIError, OSError)):
        return text
    return f"{type(exc).__name__}: {text}"


def _failures(run: CohortRun) -> str:
    """The failed cases by id with their reasons, on one line."""
    return "; ".join(f"{cid} ({_why(exc).removeprefix(f'Case {cid}: ')})" for cid, exc in run.failed.items())


def _nothing_succeeded(run: CohortRun) -> NoReturn:
    """No case succeeded: one failure is that case's own error; several are one line naming each."""
    if len(run.failed) == 1:
        exc = next(iter(run.failed.values()))
        raise exc if isinstance(exc, InputError) else OrbitAIError(_why(exc))
    msg = f"every case failed, nothing written: {_failures(run)}"
    if all(isinstance(e, InputError) for e in run.failed.values()):
        raise InputError(msg)
    raise OrbitAIError(msg)


# --------------------------------------------------------------------------------------------- features
def features_command(args: argparse.Namespace) -> int:
    """``ivgc features``: the feature table OUT of every case and ROI strategy (see the parser's description)."""
    strategies = [s.name for s in parse_strategies(args.strategies)]
    out = _check_out_file(args.out, [args.manifest])
    _workers(args)
    protocol = RadiomicsProtocol.load(args.protocol).to_dict()
    if not out.parent.is_dir():
        raise UserError(f"The folder of --out {args.out} does not exist.")
    _refuse_input_as_out(out, args.manifest)
    previous = None
    if out.is_file():     # rows of an earlier run computed from the same inputs are kept
        try:
            previous = WideTable.from_csv(out)
        except InputError:
            previous = None
    cache = cache_folder(out)
    run = _extract(args.manifest, cache, strategies, protocol, args, args.reader, previous)
    table = run.table
    if table is None:
        _nothing_succeeded(run)
    table.to_csv(out)
    n_feat = len(table.names) // max(1, len(strategies))
    print(f"wrote {out}: {len(table.case_ids)} cases x {len(table.names)} features "
          f"({len(strategies)} ROI strateg{'y' if len(strategies) == 1 else 'ies'} x {n_feat}); "
          f"{len(run.computed)} extracted, {len(run.reused)} kept from the earlier run")
    if args.resample_masks:
        print("warning: --resample-masks: a segmentation not on its image's grid was resampled onto it (nearest "
              "neighbour) instead of being refused")
    if run.failed:   # the finished cases stay in the cache too, for the rerun
        raise OrbitAIError(f"{len(run.failed)} of {len(run.failed) + len(table.case_ids)} cases failed: "
                           f"{_failures(run)}; the other {len(table.case_ids)} are in {out}")
    shutil.rmtree(cache, ignore_errors=True)     # everything is in the output now
    return 0


# --------------------------------------------------------------------------------------------- select
def select_command(args: argparse.Namespace) -> int:
    """``ivgc select``: the features each ROI strategy keeps, written to OUT (see the parser's description)."""
    settings = SelectionSettings(icc_threshold=args.icc, alpha=args.alpha, lasso=args.lasso, cv=args.cv,
                                 seed=args.seed)
    settings.check()
    out = _check_out_file(args.out, [args.manifest, args.features, args.repeat])
    strategies = [s.name for s in parse_strategies(args.strategies)]
    table = WideTable.from_csv(args.features)
    cases = read_manifest(args.manifest)
    second = SECOND_RATER_COLUMN in cases[0].row
    # everything that can be checked is checked before the second segmentation's features (the slow step)
    check_cohort(cases, table, strategies, settings)
    check_table_files(table, cohort_inputs(args.manifest)[0], f"--features {args.features}")
    if args.repeat:
        repeat = WideTable.from_csv(args.repeat)
        check_table_files(repeat, cohort_inputs(args.manifest, SECOND_RATER_COLUMN if second else "segmentation")[0],
                          f"--repeat {args.repeat}")
        source = f"features of the second segmentation in {args.repeat}"
    else:
        _workers(args)
        protocol = RadiomicsProtocol.load(args.protocol).to_dict()
        # kept for the next run (each case checked against its files and settings before it is reused)
        cache = cache_folder(args.features).with_name(Path(args.features).name + ".reader2.cache")
        run = _extract(args.manifest, cache, strategies, protocol, args, reader=2)
        if run.table is None:
            _nothing_succeeded(run)
        if run.failed:
            print(f"orbitai ivgc select: warning: the second segmentation's features failed for {_failures(run)}; "
                  "the ICC uses the other cases", file=sys.stderr)
        repeat = run.table
        source = ("the manifest's segmentation_2 column (second rater)" if second
                  else f"the first segmentation perturbed: {PERTURBATION}")
    doc = select_cohort(cases, table, repeat, strategies, settings)
    doc["inputs"] = {"manifest": str(args.manifest), "features": str(args.features), "repeat": source}
    write_selection(doc, out)
    for name, res in doc["strategies"].items():
        print(f"{name:5s} {res['n_features']} features -> ICC {len(res['icc_kept'])} -> t-test "
              f"{len(res['ttest_kept'])} -> LASSO {len(res['selected'])}: {', '.join(res['selected'][:6])}"
              + (" ..." if len(res["selected"]) > 6 else ""))
    print(f"wrote {out}")
    return 0
