"""The shared parts of each task's ``trust`` command (issue 51, `orbitai.arguments.add_trust_parser`): what is
refused before any file changes (issue 69) and the report it prints and writes. The fit itself:
`orbitai.classify.trust`; each task's: ``orbitai/{tao,ivgc,neuro}/trust.py``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from orbitai.bundle.core import refuse_package_folder
from orbitai.errors import UserError
from orbitai.io.checksums import sha256_input
from orbitai.staging import strict_json, write_json_atomic

#: The fewest cases of each class that a ``trust`` command fits on, in its training and its validation manifest:
#: fewer give no class mean, covariance, threshold or calibration that can be trusted (issue 69).
MIN_CASES_PER_CLASS = 10
#: The keys every report of a ``trust`` command holds (an existing --report file is replaced only when it has them).
REPORT_KEYS = ("calibration", "temperature", "threshold", "fitted_on", "validation")


def check_trust_inputs(bundle: Any, sets: Sequence[tuple[str, Optional[str], Optional[Sequence[Any]]]],
                       label: Any, report: Optional[str] = None,
                       min_per_class: int = MIN_CASES_PER_CLASS) -> None:
    """Refuse, before any file changes, what a ``trust`` command cannot fit on or must not write (one `UserError`
    line saying what to do):

    * a bundle inside the installed package (a bundled model: read-only for every command);
    * ``sets``: (option, manifest, cases) of ``--manifest`` (training), ``--validation`` and ``--test``:
      the validation (or test) manifest the training one, a case of one in another (by case_id or by the image's
      checksum), fewer than ``min_per_class`` cases of each class (``label(case)``: 0 or 1) in the training or the
      validation cases;
    * ``report``: a file that is an input, lies in the bundle, is a folder, or exists and is no earlier report."""
    try:
        refuse_package_folder(bundle.path, "--model")
    except UserError:
        raise UserError(f"--model {bundle.name} is a bundled model ({bundle.path}), which no command rewrites; copy "
                        f"its folder to one of your own and give that folder as --model (nothing was changed).") from None
    given = [(opt, path, list(cases)) for opt, path, cases in sets if cases is not None]
    paths = {opt: Path(path).resolve() for opt, path, _ in given if path}
    for opt, path in paths.items():
        for other, before in paths.items():
            if other == opt:
                break
            if path == before:
                raise UserError(f"{opt} is the same manifest as {other} ({path.name}): validation and test cases must "
                                f"be cases the statistics are not fitted on; give {opt} another manifest.")
    for opt, manifest, cases in given[:2]:      # training and validation: both classes, enough of each
        counts = [sum(1 for c in cases if int(label(c)) == k) for k in (0, 1)]
        if min(counts) < min_per_class:
            raise UserError(f"{opt} {manifest or ''} has {counts[0]} case(s) of label 0 and {counts[1]} of label 1; fitting "
                            f"the trust statistics needs at least {min_per_class} cases of each label in --manifest and "
                            "--validation (nothing was changed).")
    seen_ids: dict[str, str] = {}
    seen_images: dict[str, tuple[str, str]] = {}
    for opt, _, cases in given:
        ids, images = {}, {}
        for c in cases:
            if c.case_id in seen_ids:
                raise UserError(f"Case {c.case_id} is in both {seen_ids[c.case_id]} and {opt}: validation and test "
                                "cases must not be training cases (nor each other's); remove it from one of them.")
            ids[c.case_id] = opt
            digest = sha256_input(c.image)
            if digest in seen_images:
                other_opt, other_id = seen_images[digest]
                raise UserError(f"Case {c.case_id} of {opt} has the same image as case {other_id} of {other_opt} "
                                f"({Path(c.image).name}): validation and test cases must not be training cases; "
                                "remove it from one of them.")
            images[digest] = (opt, c.case_id)
        seen_ids.update(ids)
        seen_images.update(images)
    if report:
        inputs = [Path(p) for _, p, _ in given if p] + [Path(x) for _, _, cases in given for c in cases
                                                        for x in (c.image, c.segmentation) if x is not None]
        check_report_path(report, inputs, Path(bundle.path))


def check_report_path(report: str, inputs: Sequence[Path], bundle_dir: Path) -> None:
    """Refuse, before any work, a ``--report`` file that would overwrite an input, a file of the bundle or a file
    that is no earlier report (one `UserError` line)."""
    target = Path(report).resolve()
    if target.is_dir():
        raise UserError(f"--report {report} is a folder; give a file name such as report.json.")
    if not target.parent.is_dir():
        raise UserError(f"--report {report}: the folder {target.parent} does not exist; create it or choose another.")
    for p in inputs:
        if p.resolve() == target:
            raise UserError(f"--report {report} is the input {p}; choose another file name (nothing was changed).")
    bundle = bundle_dir.resolve()
    if target.parent == bundle or bundle in target.parents:
        raise UserError(f"--report {report} lies in the bundle {bundle_dir}, whose files only the command itself "
                        "writes; choose a file outside it (nothing was changed).")
    if target.exists():
        try:
            earlier = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and all(k in earlier for k in REPORT_KEYS)):
            raise UserError(f"--report {report} already exists and is not the report of a trust command; choose "
                            "another file name (nothing was changed).")


def show_report(report: dict[str, Any], path: Optional[str] = None) -> None:
    """Print a ``trust`` command's report (the reliability bins left out) and write it whole to ``path`` (strict
    JSON, atomically)."""
    if path:
        write_json_atomic(path, report, indent=1)
    short = {k: ({kk: vv for kk, vv in v.items() if not kk.startswith("reliability")} if isinstance(v, dict) else v)
             for k, v in report.items()}
    print(strict_json(short, indent=1), end="")
