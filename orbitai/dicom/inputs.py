"""Where a predict command's image comes from, resolved once for every command (``orbitai.cli.main``):

* a file or a DICOM folder holding one image series: as given;
* a DICOM folder of several series with ``--series UID``: that series alone, as a temporary folder of links to
  its files (so every reader, and the DICOM SEG's references, see one series);
* a DICOMweb series URL, ``http(s)://HOST/ROOT/studies/<StudyUID>[/series/<SeriesUID>]`` (the series UID may
  also come from ``--series``): the series fetched into a temporary folder (:func:`orbitai.dicom.web.fetch_series`);
* a volume file with ``--dicom-attributes``: converted into a derived DICOM series with the user's patient and
  study (:func:`orbitai.dicom.source.write_derived_series`), so that the command writes a DICOM SEG and SR
  referencing it; the series is copied into the result folder (``source_dicom/``) to be stored beside them.

Temporary folders live for the command's run and are removed afterwards, also on an error or a cancel."""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional

from orbitai.dicom.source import ATTRIBUTES_OPTION, parse_attributes, write_derived_series
from orbitai.dicom.web import fetch_series
from orbitai.errors import OrbitAIError, UserError
from orbitai.io import read_volume, require_finite
from orbitai.io.dicom_folder import SERIES_OPTION, survey_folder

#: A hidden file marking a folder as a derived series made here: its files go into the result (orbitai.dicom.export).
DERIVED_MARKER = ".orbitai-derived"

__all__ = ["add_image_source_options", "resolved_images", "resolve_image", "parse_dicomweb_url"]

_URL = re.compile(r"^(?P<root>https?://.+?)/studies/(?P<study>[0-9.]+)(?:/series/(?P<series>[0-9.]+))?/?$")


def add_image_source_options(parser: argparse.ArgumentParser, *dests: str) -> None:
    """``--series UID`` for the image arguments ``dests`` of a predict command, which may also be DICOMweb URLs;
    `resolved_images` resolves them before the command runs."""
    parser.add_argument(SERIES_OPTION, metavar="UID",
                        help="the SeriesInstanceUID to read from a DICOM folder (or DICOMweb study URL) holding several "
                             "series; without it such a folder is refused, listing its series. The image may also "
                             "be a DICOMweb series URL: http(s)://HOST/ROOT/studies/<StudyUID>/series/<SeriesUID>")
    parser.add_argument(ATTRIBUTES_OPTION, metavar="JSON",
                        help="for a volume file (NRRD, NIfTI): also write DICOM SEG/SR, with the image as a derived "
                             "DICOM series (OUT/source_dicom/) of this patient and study: a JSON object or file, e.g. "
                             "'{\"PatientID\": \"123\", \"PatientName\": \"Doe^Jane\", \"StudyInstanceUID\": \"...\"}' "
                             "(PatientID required; a new study unless given)")
    parser.set_defaults(image_dests=dests)


def parse_dicomweb_url(url: str) -> tuple[str, str, str | None]:
    """``(root, study UID, series UID or None)`` of a DICOMweb study or series URL; a one-line error otherwise."""
    m = _URL.match(url.strip())
    if not m:
        raise UserError(f"{url} is not a DICOMweb study or series URL; give "
                        "http(s)://HOST/ROOT/studies/<StudyUID>/series/<SeriesUID>.")
    return m["root"], m["study"], m["series"]


def _links(files: list[Path], folder: Path) -> Path:
    """``folder`` holding a link to (or, where links are not allowed, a copy of) each of ``files``."""
    folder.mkdir(parents=True)
    for f in files:
        target = folder / f.name
        try:
            os.symlink(f.resolve(), target)
        except OSError:            # e.g. Windows without the right to make links
            shutil.copy2(f, target)
    return folder


def _derived(value: str, attributes: dict[str, str], tmp: Path, stated: Optional[str] = None) -> str:
    """``value`` (a volume file) as a derived DICOM series in ``tmp`` with ``attributes``; its Modality as the scan's
    facts say (``stated``: the ``--modality`` value, which wins)."""
    path = Path(value)
    vol = read_volume(path)
    require_finite(vol, f"image {path.name}")     # refused as without the option, before anything is written
    name = path.name.split(".")[0] or "image"
    # the scan judge (and scipy) only here: `resolve_image` is also the browser's loader, whose launch needs neither
    from orbitai.scan import scan_facts, values as scan_values

    # without the image classifier: the command judges the scan itself, once, from the user's own file
    # (`model_input`); here only the derived series' Modality is named, from the statement, file name and values
    facts = scan_facts(vol, path=path, stated=stated, image=False)
    folder = write_derived_series(vol, tmp / f"derived-{len(list(tmp.iterdir()))}" / name, attributes,
                                  scan_values.model_family(facts), path.name)
    (folder / DERIVED_MARKER).write_text(value + "\n")
    return str(folder)


def model_input(path: str) -> str:
    """What a model reads and the scan's facts come from for an image argument: the user's own volume file when
    ``--dicom-attributes`` made it into a derived series (`_derived`), else ``path``. The attributes go only into the
    DICOM outputs: they never change a call (issue 62.11)."""
    marker = Path(path) / DERIVED_MARKER
    if marker.is_file():
        original = marker.read_text(encoding="utf-8").strip()
        if original and Path(original).is_file():
            return original
    return path


def resolve_image(value: str, series: str | None, tmp: Path, attributes: dict[str, str] | None = None,
                  stated: Optional[str] = None, redirects: Optional[Callable[[str], None]] = None) -> str:
    """The local path to read for one image argument (see the module's docstring); ``tmp`` holds what is made;
    ``stated``: the command's ``--modality`` value; ``redirects``: checks where a DICOMweb server's redirect leads
    before it is followed (`orbitai.dicom.web.fetch_series`)."""
    if attributes is not None:
        if re.match(r"^https?://", value, re.I) or Path(value).is_dir():
            raise UserError(f"{ATTRIBUTES_OPTION} is for a volume file; {value} is DICOM, which carries its own "
                            "patient and study.")
        if Path(value).is_file():
            return _derived(value, attributes, tmp, stated)
        return value                                     # the command says it does not exist
    if re.match(r"^https?://", value, re.I):
        root, study, in_url = parse_dicomweb_url(value)
        if in_url and series and in_url != series:
            raise UserError(f"{SERIES_OPTION} {series} differs from the series in the URL {value}; give one.")
        chosen = in_url or series
        return str(fetch_series(root, study, chosen, tmp / f"dicomweb-{len(list(tmp.iterdir()))}" / (chosen or study),
                                redirects))
    if series is None:
        return value
    path = Path(value)
    if not path.is_dir():
        if path.exists():
            raise UserError(f"{SERIES_OPTION} chooses a series in a DICOM folder; {value} is a file.")
        return value                                     # the command says it does not exist

    survey = survey_folder(path)
    chosen_series = survey.choose(series)
    if chosen_series is None:
        raise UserError(f"{value} holds no DICOM image series to choose {series} from.")
    if len(survey.series) == 1 and not survey.others:
        return value
    return str(_links(chosen_series.files, tmp / f"series-{len(list(tmp.iterdir()))}" / path.name))


@contextlib.contextmanager
def resolved_images(args: argparse.Namespace) -> Iterator[None]:
    """While active, the image arguments that `add_image_source_options` declared name local files or folders
    of one series; temporary folders are removed on leaving."""
    dests = getattr(args, "image_dests", ())
    series = getattr(args, "series", None)
    given = getattr(args, "dicom_attributes", None)
    values = {d: getattr(args, d, None) for d in dests}
    needed = series is not None or given is not None or any(
        isinstance(v, str) and v.startswith(("http://", "https://"))
        or isinstance(v, list) and any(str(x).startswith(("http://", "https://")) for x in v) for v in values.values())
    if not needed:
        yield
        return
    attributes = None
    if given is not None:
        attributes = parse_attributes(given)
    with tempfile.TemporaryDirectory(prefix="orbitai-input-") as d:
        tmp = Path(d)
        as_given: dict[str, str] = {}           # local path made here -> what the user gave

        def resolve(v: object) -> str:
            local = resolve_image(str(v), series, tmp, attributes, getattr(args, "modality", None))
            if local != str(v):
                as_given[local] = str(v)
            return local

        for dest, value in values.items():
            if isinstance(value, list):
                setattr(args, dest, [resolve(v) for v in value])
            elif value is not None:
                setattr(args, dest, resolve(value))
        try:
            yield
        except (OrbitAIError, OSError) as exc:
            _name_what_was_given(exc, as_given, d)
            raise
        finally:
            for dest, value in values.items():
                setattr(args, dest, value)


def _name_what_was_given(exc: BaseException, given: dict[str, str], tmp: str) -> None:
    """Rewrite ``exc``'s message (and an OSError's file name) in place so that it names the URL, folder or file the
    user gave, never the temporary folder made for it."""
    def clean(text: str) -> str:
        for local in sorted(given, key=len, reverse=True):
            text = text.replace(local, given[local])
        return text.replace(tmp, "a temporary folder")

    if isinstance(exc, OSError):
        for attr in ("filename", "filename2"):
            if isinstance(getattr(exc, attr, None), str):
                setattr(exc, attr, clean(getattr(exc, attr)))
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (clean(exc.args[0]), *exc.args[1:])
