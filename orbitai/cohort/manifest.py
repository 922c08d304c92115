"""Cohort manifests: a CSV with at least ``case_id,image`` (and ``segmentation`` when the task
needs ground truth); paths are relative to the CSV's folder or absolute. More columns (``label``,
``patient_id``, clinical features) are kept in :attr:`Case.row`."""
from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from orbitai.errors import InputError
from orbitai.io import Volume, read_volume


class ManifestError(InputError):
    """A manifest, or a value in it, that cannot be used (the message names the file or case and column)."""


@dataclass
class Case:
    case_id: str
    image: Path
    segmentation: Path | None
    row: dict[str, str]

    def labels(self) -> Volume:
        """The case's ground-truth label map (:func:`read_labels`); ManifestError when the manifest gives none."""
        if self.segmentation is None:
            raise ManifestError(f"Case {self.case_id}: the manifest gives no segmentation.")
        return read_labels(self.segmentation)


def read_manifest(path: str | Path, need_segmentation: bool = True) -> list[Case]:
    """The manifest's cases in file order (raises :class:`ManifestError` for a bad manifest -- a
    missing column, an empty path or case id, a case id listed twice -- FileNotFoundError when
    there is none)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"Manifest {path} is not a CSV text file (byte {exc.start} is not UTF-8 text); "
                            "give a comma-separated file with a header line case_id,image,...") from None
    if "\x00" in text:
        raise ManifestError(f"Manifest {path} is not a CSV text file (it holds binary data); "
                            "give a comma-separated file with a header line case_id,image,...")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        needed = ["case_id", "image"] + (["segmentation"] if need_segmentation else [])
        missing = [c for c in needed if c not in cols]
        if missing:
            sep = next((s for s in (";", "\t", "|") if len(cols) == 1 and s in cols[0]), None)
            hint = (f" (its header is separated by {'a tab' if sep == chr(9) else repr(sep)}: save it as a "
                    "comma-separated CSV)" if sep else "")
            raise ManifestError(f"Manifest {path} lacks column(s) {missing}; it has {cols}{hint}.")
        cases = []
        lines: dict[str, list[int]] = {}
        for i, row in enumerate(reader, start=2):
            def resolve(p: str) -> Path:
                q = Path(p)
                return q if q.is_absolute() else path.parent / q
            if not row.get("image"):
                raise ManifestError(f"Manifest {path} line {i}: empty image path.")
            seg = row.get("segmentation")
            if need_segmentation and not seg:
                raise ManifestError(f"Manifest {path} line {i}: empty segmentation path.")
            cases.append(Case(row["case_id"], resolve(row["image"]), resolve(seg) if seg else None, row))
            lines.setdefault(row["case_id"], []).append(i)
    if not cases:
        raise ManifestError(f"Manifest {path} lists no cases.")
    for case_id, at in lines.items():
        if not case_id:
            raise ManifestError(f"Manifest {path} line(s) {', '.join(map(str, at))}: empty case_id.")
        if len(at) > 1:   # a case counted twice would weigh twice in every metric and split
            raise ManifestError(f"Manifest {path}: case_id {case_id!r} is listed more than once "
                                f"(lines {', '.join(map(str, at))}); each case must appear once.")
    return cases


@contextlib.contextmanager
def naming_case(case_id: str) -> Iterator[None]:
    """Errors about one case's inputs name the case: an `InputError` raised in the block (an unreadable,
    empty or constant image, a bad segmentation) gets ``Case <id>: `` in front, once."""
    try:
        yield
    except InputError as exc:
        msg = str(exc.args[0]) if exc.args else str(exc)
        if case_id and not msg.startswith(f"Case {case_id}"):
            msg = "the" + msg[3:] if msg.startswith("The ") else msg
            exc.args = (f"Case {case_id}: {msg}", *exc.args[1:])
        raise


def read_labels(path: Path) -> Volume:
    """A case's label map from ``.seg.nrrd`` (Slicer segmentation) or any label volume file."""
    if Path(path).name.endswith(".seg.nrrd"):
        from orbitai.segfile import read_segmentation

        return read_segmentation(path)[0]
    return read_volume(path)


def patient_groups(cases: list[Case], column: str = "patient_id") -> list[str]:
    """One group id per case: the ``column`` value (e.g. one patient's two eyes or visits share
    it), or the case id where the manifest has no such column or leaves it empty."""
    return [c.row.get(column) or c.case_id for c in cases]


def binary_label(case: Case, negative: str, positive: str) -> int:
    """The case's class from the manifest's ``label`` column: 1 (``positive``) or 0 (``negative``); anything
    else is a `ManifestError` naming the case and the two classes."""
    raw = case.row.get("label", "")
    if raw in ("", None):
        raise ManifestError(f"Case {case.case_id} has no label; the manifest needs a 'label' column "
                            f"(1 = {positive}, 0 = {negative}).")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value not in (0.0, 1.0):
        raise ManifestError(f"Case {case.case_id}: label must be 0 ({negative}) or 1 ({positive}), got {raw!r}.")
    return int(value)


def read_labelled_manifest(path: str | Path, label: Callable[[Case], int]) -> list[Case]:
    """The manifest's cases with every label checked by ``label`` (a task's 0/1 reader naming the case)
    and every image present, before any image is read (a missing one named with its case, not reported
    later as a split or class problem)."""
    cases = read_manifest(path)
    for case in cases:
        label(case)
    for case in cases:
        if not case.image.exists():
            raise ManifestError(f"Case {case.case_id}: the image {case.image} does not exist (manifest {path}).")
    return cases
