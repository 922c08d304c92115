"""Cohort manifests: a CSV with at least ``case_id,image`` (and ``segmentation`` when the task
needs ground truth); paths are relative to the CSV's folder or absolute. More columns (``label``,
``patient_id``, clinical features) are kept in :attr:`Case.row`."""
from __future__ import annotations

import contextlib
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from orbitai.errors import InputError
from orbitai.io import Volume, read_volume
from orbitai.io.segfile import read_segmentation


class ManifestError(InputError):
    """A manifest, or a value in it, that cannot be used (the message names the file or case and column)."""


#: The most UTF-8 bytes of a case_id: a folder name (255 bytes on common file systems) with room for the
#: hidden stage folder ``.<case_id>-XXXXXXXX`` a result is written into first.
CASE_ID_MAX_BYTES = 200
#: Names Windows reserves for devices, with or without an extension (``con``, ``nul.txt``).
_WINDOWS_DEVICES = frozenset(["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                              *(f"{d}{i}" for d in ("COM", "LPT") for i in "123456789\u00b9\u00b2\u00b3")])
_NOT_IN_NAMES = '/\\:*?"<>|'
#: A scheme such as ``http://`` or ``s3://``: a URL, not a file on this computer.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def folder_name_problem(name: str) -> Optional[str]:
    """Why ``name`` (a case_id, NFC-normalised) cannot be one portable folder name under OUT -- on Linux,
    macOS and Windows alike -- or None when it can."""
    bad = sorted({c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")})
    if bad:
        return f"it holds the control character(s) {', '.join(repr(c) for c in bad)}"
    if not name or not name.strip():
        return "it is empty or only white space"
    if name != name.strip():
        return "it begins or ends with white space"
    if name.startswith("."):
        return "it begins with '.' (a hidden name, or '.'/'..')"
    if name.endswith("."):
        return "it ends with '.', which Windows drops"
    seps = sorted({c for c in name if c in _NOT_IN_NAMES})
    if seps:
        return f"it holds {' '.join(seps)} (folder separators and characters Windows does not allow in a name)"
    if name.split(".")[0].rstrip().upper() in _WINDOWS_DEVICES:
        return "Windows reserves it for a device"
    if len(name.encode("utf-8")) > CASE_ID_MAX_BYTES:
        return f"it is longer than {CASE_ID_MAX_BYTES} bytes"
    return None


def case_folder_name(case_id: str, where: str) -> str:
    """The one rule for a case_id, which names the case's folder under OUT: the id in Unicode NFC (so that
    the NFC and NFD spellings of one name are one case, as macOS's disks make them one folder), or one
    `ManifestError` (``where``: the manifest and line, or the command) saying why it cannot name a portable
    folder (`folder_name_problem`)."""
    name = unicodedata.normalize("NFC", case_id or "")
    why = folder_name_problem(name)
    if why is not None:
        shown = case_id if len(case_id or "") <= 60 else case_id[:57] + "..."
        raise ManifestError(f"{where}: case_id {shown!r} cannot name a folder under --out ({why}); give each case a plain "
                            "name such as 'patient_01'.")
    return name


def folder_key(name: str) -> str:
    """What two folder names share when one disk keeps them apart and another makes them one folder
    (case-insensitive Windows and macOS, normalisation-insensitive macOS)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


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
    missing or repeated column, an empty path, a URL for a path, a case_id that cannot name a folder
    (`case_folder_name`) or that names one folder with another -- FileNotFoundError when there is none).
    Case ids come back NFC-normalised."""
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

    def resolve(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else path.parent / q

    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        try:
            cols = reader.fieldnames or []
        except csv.Error as exc:
            raise _csv_error(path, reader.line_num, exc) from None
        twice = sorted({c for c in cols if cols.count(c) > 1})
        if twice:    # csv.DictReader would keep the last column of a name without a word
            raise ManifestError(f"Manifest {path}: the header names column(s) {', '.join(map(repr, twice))} more "
                                "than once; keep one column of each name.")
        needed = ["case_id", "image"] + (["segmentation"] if need_segmentation else [])
        missing = [c for c in needed if c not in cols]
        if missing:
            sep = next((s for s in (";", "\t", "|") if len(cols) == 1 and s in cols[0]), None)
            hint = (f" (its header is separated by {'a tab' if sep == chr(9) else repr(sep)}: save it as a "
                    "comma-separated CSV)" if sep else "")
            raise ManifestError(f"Manifest {path} lacks column(s) {missing}; it has {cols}{hint}.")
        cases = []
        first: dict[str, tuple[str, int]] = {}     # folder_key -> (case_id as written, line)
        end = reader.line_num
        for row in _rows(reader, path):
            i, end = end + 1, reader.line_num     # the line the row begins on (a quoted value may span lines)
            for column in ("image", "segmentation"):
                value = row.get(column) or ""
                if _URL.match(value.strip()):
                    raise ManifestError(f"Manifest {path} line {i}: the {column} {value.strip()!r} is a URL; a "
                                        "manifest lists files or DICOM folders on this computer (fetch a DICOMweb "
                                        "series with 'orbitai dicom fetch' first).")
            raw_id = row.get("case_id") or ""
            if not raw_id:
                raise ManifestError(f"Manifest {path} line {i}: empty case_id.")
            case_id = case_folder_name(raw_id, f"Manifest {path} line {i}")
            key = folder_key(case_id)
            if key in first:   # a case counted twice would weigh twice in every metric and split
                was, line = first[key]
                if was == raw_id:
                    raise ManifestError(f"Manifest {path}: case_id {raw_id!r} is listed more than once "
                                        f"(lines {line}, {i}); each case must appear once.")
                raise ManifestError(f"Manifest {path}: the case_ids {was!r} (line {line}) and {raw_id!r} (line {i}) "
                                    "name one folder (they differ only in upper/lower case or Unicode "
                                    "normalisation); rename one.")
            first[key] = (raw_id, i)
            if not row.get("image"):
                raise ManifestError(f"Manifest {path} line {i}: empty image path.")
            seg = row.get("segmentation")
            if need_segmentation and not seg:
                raise ManifestError(f"Manifest {path} line {i}: empty segmentation path.")
            cases.append(Case(case_id, resolve(row["image"]), resolve(seg) if seg else None, row))
    if not cases:
        raise ManifestError(f"Manifest {path} lists no cases.")
    return cases


def _csv_error(path: Path, line: int, exc: csv.Error) -> ManifestError:
    """A line the csv module cannot read (a value over its field size limit, ...), as one `ManifestError`."""
    return ManifestError(f"Manifest {path} line {line}: not readable as CSV ({str(exc).strip()}); give a "
                         "comma-separated file with a header line case_id,image,... and one case per line.")


def _rows(reader: csv.DictReader, path: Path) -> Iterator[dict]:
    """The rows of ``reader``; a line it cannot read is a `ManifestError` (`_csv_error`)."""
    try:
        yield from reader
    except csv.Error as exc:
        raise _csv_error(path, reader.line_num, exc) from None


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
