"""DICOMweb with a PACS: store results (STOW-RS), find a study's series (QIDO-RS) and fetch one as the input
of any predict command (WADO-RS), on the ``dicomweb-client`` package (``pip install 'orbitai[dicom]'``).

Every request has a timeout; a server that cannot be reached, answers with an HTTP error, or has no such
study or series ends in one line (:class:`DicomWebError`, exit 2). A fetched series is written into a
temporary folder beside its destination and renamed into place only when complete."""
from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import pydicom
import requests

from orbitai.errors import InputError
from orbitai.io.dicom_folder import SERIES_OPTION, looks_like_dicom, non_image_kind, shown

__all__ = ["DicomWebError", "RemoteSeries", "dicom_files", "check_uid", "fetch_series", "incomplete", "push", "search_series",
           "TIMEOUT_S"]

#: Seconds to wait for a connection and for each answer.
TIMEOUT_S = 30.0


class DicomWebError(InputError):
    """A DICOMweb exchange failed: server unreachable, an HTTP error, no such study or series."""


@dataclass(frozen=True)
class RemoteSeries:
    """One series of a study as QIDO-RS describes it."""

    uid: str
    modality: str
    description: str
    instances: int

    def describe(self) -> str:
        what = ", ".join(x for x in (self.modality, repr(self.description) if self.description else "") if x)
        return f"{self.uid} ({what}{', ' if what else ''}{self.instances} instances)"


#: Checks a URL a DICOMweb server redirects to (`orbitai.web.names.DicomWebAllowList.check`): raises `InputError` in one
#: line when it may not be fetched from.
RedirectCheck = Callable[[str], None]


class _CheckedSession(requests.Session):
    """A session that follows a redirect only to where ``check`` lets it, hop by hop (issue 80 item 1): an allowed
    server's redirect to another host or port is refused before any request goes there."""

    def __init__(self, url: str, check: RedirectCheck) -> None:
        super().__init__()
        self._url, self._check = url, check

    def rebuild_method(self, prepared_request: Any, response: Any) -> None:
        """requests' step of each redirect, once the next hop's absolute URL is known (before it is requested)."""
        target = str(prepared_request.url)
        try:
            self._check(target)
        except InputError as exc:
            response.close()
            raise DicomWebError(f"The DICOMweb server at {self._url} redirected its answer elsewhere, which was not "
                                f"followed: {str(exc).rstrip('.')}.") from None
        super().rebuild_method(prepared_request, response)


def _client(url: str, timeout: float | None = None, redirects: Optional[RedirectCheck] = None) -> Any:
    """A DICOMweb client of ``url`` whose every request gives up after `TIMEOUT_S` (``timeout``) without an answer, and
    is not tried again: the package's retries (every exception, 3 attempts) made a silent server's "did not answer
    within 30 s" come after 93 s. ``redirects``: each URL a redirect leads to is checked by it before it is requested
    (a refused one ends the request in one line); None follows redirects (the command line's own URL)."""
    try:
        from dicomweb_client.api import DICOMwebClient
    except ImportError:
        raise DicomWebError("DICOMweb needs the dicomweb-client package: pip install 'orbitai[dicom]'.") from None
    if not url.startswith(("http://", "https://")):
        raise DicomWebError(f"{url} is not a DICOMweb URL; give the service root, e.g. http://HOST:8042/dicom-web.")
    session = _CheckedSession(url, redirects) if redirects is not None else None
    client = DICOMwebClient(url.rstrip("/"), session=session, timeout=TIMEOUT_S if timeout is None else timeout)
    # the package retries 5 times with waits up to 16 s (30 s for a refused connection), and retries a timeout too:
    # one attempt, so that the time said is the time waited
    client.set_http_retry_params(retry=False)
    return client


def _failure(exc: BaseException, url: str, what: str) -> DicomWebError:
    """One line for a requests failure while ``what`` on ``url``."""
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = "connection refused" if "refused" in str(exc).lower() else "no connection"
        return DicomWebError(f"Cannot reach the DICOMweb server at {url} ({reason}) while {what}: check the address "
                             "and that the server is running.")
    if isinstance(exc, requests.exceptions.Timeout):
        return DicomWebError(f"The DICOMweb server at {url} did not answer within {TIMEOUT_S:.0f} s while {what}.")
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return DicomWebError(f"The DICOMweb server at {url} answered HTTP {exc.response.status_code} "
                             f"({exc.response.reason}) while {what}.")
    return DicomWebError(f"DICOMweb {what} on {url} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _value(item: dict, tag: str, default: Any = "") -> Any:
    values = item.get(tag, {}).get("Value") or [default]
    return values[0]


#: A DICOM UID (PS3.5 9.1): components of digits joined by dots, 64 characters at most (leading zeros, which some
#: archives hold, are let through as the DICOMweb client does).
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def check_uid(uid: str, what: str = "StudyInstanceUID") -> str:
    """``uid`` when it is a DICOM UID; a one-line error saying so otherwise (before any request is made)."""
    if not _UID.fullmatch(uid) or len(uid) > 64:
        raise DicomWebError(f"{shown(uid)} is not a DICOM UID (digits and dots, at most 64 characters, e.g. "
                            f"1.2.840.113619.2.55.3); give the {what}.")
    return uid


def search_series(url: str, study_uid: str, redirects: Optional[RedirectCheck] = None) -> list[RemoteSeries]:
    """The series of ``study_uid`` on ``url`` (QIDO-RS); a one-line error when the study is not there. ``redirects``:
    as for `_client`."""
    check_uid(study_uid)
    client = _client(url, redirects=redirects)
    try:
        found = client.search_for_series(study_uid)
    except requests.exceptions.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            found = []
        else:
            raise _failure(exc, url, f"searching study {study_uid}") from None
    except requests.exceptions.RequestException as exc:
        raise _failure(exc, url, f"searching study {study_uid}") from None
    if not found:
        raise DicomWebError(f"No study {study_uid} on {url}; check the Study Instance UID.")
    return [RemoteSeries(str(_value(s, "0020000E")), str(_value(s, "00080060")), str(_value(s, "0008103E")).strip(),
                         int(_value(s, "00201209", 0) or 0)) for s in found]


def fetch_series(url: str, study_uid: str, series_uid: str | None, folder: str | os.PathLike,
                 redirects: Optional[RedirectCheck] = None) -> Path:
    """Retrieve one image series of ``study_uid`` (``series_uid``, or the study's only image series) into the new
    ``folder`` (WADO-RS), one file per instance; returns ``folder``. Several image series without a choice, or a
    series not in the study, are refused listing the study's series. ``redirects``: each redirect's target is checked
    by it before it is requested (`_client`; the web app's allow-list)."""
    folder = Path(folder)
    check_uid(study_uid)
    if series_uid is not None:
        check_uid(series_uid, "SeriesInstanceUID")
    if folder.exists() and any(folder.iterdir()):
        raise DicomWebError(f"{folder} is not empty; fetch into a new folder.")
    series = search_series(url, study_uid, redirects)
    images = [s for s in series if non_image_kind("", s.modality) is None]
    listing = "; ".join(s.describe() for s in series)
    if series_uid is None:
        if len(images) != 1:
            raise DicomWebError(f"Study {study_uid} on {url} holds {len(images)} image series; choose one with "
                                f"{SERIES_OPTION} UID: {listing}.")
        series_uid = images[0].uid
    chosen = next((s for s in series if s.uid == series_uid), None)
    if chosen is None:
        raise DicomWebError(f"No series {series_uid} in study {study_uid} on {url}; series found: {listing}.")
    if chosen not in images:
        raise DicomWebError(f"Series {series_uid} is a {non_image_kind('', chosen.modality)}, not an image series.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        n = 0
        grids: dict[tuple, int] = {}
        for n, ds in enumerate(_client(url, redirects=redirects).iter_series(study_uid, series_uid), start=1):
            key = _slice_grid(ds)
            grids[key] = grids.get(key, 0) + 1
            ds.save_as(work / f"{n:05d}.dcm", enforce_file_format=True)
        if n == 0:
            raise DicomWebError(f"Series {series_uid} on {url} returned no instances.")
        if len(grids) > 1:
            raise DicomWebError(_mixed_series(chosen, study_uid, url, grids, [s for s in images if s is not chosen]))
        if folder.exists():
            folder.rmdir()
        os.replace(work, folder)
    except requests.exceptions.RequestException as exc:
        raise _failure(exc, url, f"retrieving series {series_uid}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def _slice_grid(ds: Any) -> tuple:
    """A slice's grid: (rows, columns, pixel spacing, orientation), rounded as the series reader compares them."""
    def numbers(name: str, digits: int) -> tuple:
        try:
            return tuple(round(float(x), digits) for x in (ds.get(name) or ()))
        except (TypeError, ValueError):
            return ()
    return (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0), numbers("PixelSpacing", 4),
            numbers("ImageOrientationPatient", 3))


def _mixed_series(series: RemoteSeries, study_uid: str, url: str, grids: dict[tuple, int],
                  others: Sequence[RemoteSeries]) -> str:
    """One line for a DICOMweb series whose slices are not one volume (#69.10): the series by its UID and description
    (never the fetched temporary files), what differs, and what to choose instead."""
    (a, n_a), (b, n_b) = sorted(grids.items(), key=lambda kv: -kv[1])[:2]
    if a[:2] != b[:2]:
        what = f"sizes ({n_a} of {a[1]}x{a[0]} pixels, {n_b} of {b[1]}x{b[0]})"
    elif a[2] != b[2]:
        what = f"pixel spacings ({n_a} of {'x'.join(map(str, a[2])) or '?'} mm, {n_b} of " \
               f"{'x'.join(map(str, b[2])) or '?'} mm)"
    else:
        what = "orientations (a localizer or another series' slices stored in it?)"
    name = f"{series.uid} ({shown(series.description)})" if series.description else series.uid
    choose = (f"choose another series of the study: {'; '.join(s.describe() for s in others)}" if others else
              "the study holds no other image series; ask the archive's administrator to split it")
    return (f"Series {name} of study {study_uid} on {url} holds slices of different {what}, so it is not one "
            f"volume; {choose}.")


def dicom_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The DICOM files among ``paths`` (files, or folders searched recursively), in name order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".") and looks_like_dicom(f))
        elif p.is_file() and looks_like_dicom(p):
            found.append(p)
        elif not p.exists():
            raise DicomWebError(f"No such file or folder: {p}")
    return found


#: The elements that hold an image's pixels (PS3.5 8).
_PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_UNDEFINED_LENGTH = 0xFFFFFFFF


def incomplete(ds: Any) -> str | None:
    """Why the DICOM object ``ds`` (read whole, its elements not yet converted) is incomplete, or None: no data
    element at all (pydicom's reading of a file cut inside an element of undefined length, e.g. compressed pixel
    data, keeps none), an element shorter than its declared length (a file cut short), an image without its
    pixel data, native pixel data shorter than Rows x Columns x SamplesPerPixel x NumberOfFrames x BitsAllocated
    needs, or compressed pixel data whose items do not fit or hold fewer fragments than frames."""
    if not len(ds):
        return "it holds no readable data element (the file was cut short inside compressed pixel data or a sequence)"
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if length not in (None, _UNDEFINED_LENGTH) and isinstance(value, (bytes, bytearray)) and len(value) < length:
            return f"its element {tag} holds {len(value)} of its {length} bytes (the file was cut short)"
    if "Rows" not in ds or "Columns" not in ds:
        return None
    pixels = next((t for t in _PIXEL_TAGS if t in ds), None)
    if pixels is None:
        return "it is an image without pixel data"
    if pixels != 0x7FE00010:
        return None
    value = ds.get_item(pixels).value or b""
    if ds.file_meta.get("TransferSyntaxUID") is not None and ds.file_meta.TransferSyntaxUID.is_compressed:
        return _encapsulated_problem(bytes(value), ds.get("NumberOfFrames", 1))
    try:
        bits = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
                * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.get("BitsAllocated", 16) or 16))
    except (TypeError, ValueError):
        return "its image size (Rows, Columns, NumberOfFrames, BitsAllocated) cannot be read"
    needed = (bits + 7) // 8
    if len(value) < needed:
        return f"its pixel data hold {len(value)} of the {needed} bytes its image size needs"
    return None


_ITEM = (0xFFFE, 0xE000)
_SEQUENCE_DELIMITER = (0xFFFE, 0xE0DD)


def _encapsulated_problem(value: bytes, frames: Any) -> str | None:
    """Why encapsulated pixel data ``value`` (PS3.5 A.4: items, the first the basic offset table, as pydicom keeps
    them, without the sequence delimiter) are incomplete, or None: an item header cut, an item longer than what
    is left, or fewer fragments than ``frames`` (each frame has at least one)."""
    offset, items = 0, 0
    while offset < len(value):
        if offset + 8 > len(value):
            return f"its compressed pixel data end inside an item header (byte {offset} of {len(value)})"
        group, element, length = struct.unpack_from("<HHI", value, offset)
        if (group, element) == _SEQUENCE_DELIMITER and offset + 8 == len(value):
            break                                         # kept by a reader that includes the delimiter
        if (group, element) != _ITEM:
            return f"its compressed pixel data hold no item at byte {offset} (found ({group:04X},{element:04X}))"
        if length == _UNDEFINED_LENGTH or offset + 8 + length > len(value):
            return (f"its compressed pixel data item {items + 1} declares {length} bytes but only "
                    f"{len(value) - offset - 8} follow (the file was cut short)")
        offset, items = offset + 8 + length, items + 1
    fragments = max(items - 1, 0)                         # the first item is the basic offset table
    try:
        needed = int(frames or 1)
    except (TypeError, ValueError):
        return "its NumberOfFrames cannot be read"
    if fragments < needed:
        return f"its compressed pixel data hold {fragments} fragment(s) for {needed} frame(s)"
    return None


def _by_study(files: Sequence[Path]) -> Iterator[tuple[str, list[Any]]]:
    """Every file read whole and checked complete (`incomplete`) before anything is sent, grouped by study."""
    studies: dict[str, list[Any]] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f)
            problem = incomplete(ds)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types for a damaged file
            raise DicomWebError(f"{f} cannot be read as DICOM ({type(exc).__name__}); nothing was stored.") from None
        if problem:
            raise DicomWebError(f"{f} is not a complete DICOM file: {problem}; nothing was stored. Write or copy it "
                                "again.")
        if not str(ds.get("SOPInstanceUID", "")):
            raise DicomWebError(f"{f} has no SOPInstanceUID; nothing was stored.")
        studies.setdefault(str(ds.get("StudyInstanceUID", "")), []).append(ds)
    yield from studies.items()


def _stored_before(stored: Sequence[str], studies: Sequence[str]) -> str:
    """What a push error adds when earlier studies were stored: how many instances, of how many studies."""
    if not stored:
        return ""
    return f"; {len(stored)} instance(s) of {len(studies)} earlier study(ies) were stored before this failure"


def push(paths: Sequence[str | os.PathLike], url: str) -> dict[str, Any]:
    """Store the DICOM files in ``paths`` on ``url`` (STOW-RS, one request per study); returns a summary
    ``{"stored": n, "studies": [...], "sop_instance_uids": [...]}``. Every file is checked complete first (one
    that is not stops the push before anything is sent); an instance the server refuses, or does not confirm
    in its answer (ReferencedSOPSequence), is an error naming it."""
    files = dicom_files(paths)
    if not files:
        raise DicomWebError(f"No DICOM files in {', '.join(map(str, paths))}; nothing to store.")
    by_study = list(_by_study(files))
    client = _client(url)
    stored: list[str] = []
    studies: list[str] = []
    for study, datasets in by_study:
        before = _stored_before(stored, studies)
        try:
            response = client.store_instances(datasets, study_instance_uid=study or None)
        except requests.exceptions.RequestException as exc:
            failure = _failure(exc, url, f"storing {len(datasets)} instance(s)")
            raise DicomWebError(f"{str(failure).rstrip('.')}{before}.") from None
        failed = list(getattr(response, "FailedSOPSequence", []) or [])
        if failed:
            uids = ", ".join(str(item.get("ReferencedSOPInstanceUID", "?")) for item in failed[:3])
            raise DicomWebError(f"The server at {url} refused {len(failed)} instance(s) ({uids})"
                                f"{before}.")
        confirmed = {str(item.get("ReferencedSOPInstanceUID", ""))
                     for item in (getattr(response, "ReferencedSOPSequence", []) or [])}
        sent = [str(ds.SOPInstanceUID) for ds in datasets]
        missing = [uid for uid in sent if uid not in confirmed]
        if missing:
            raise DicomWebError(f"The server at {url} did not confirm {len(missing)} of {len(sent)} instance(s) of "
                                f"study {study} ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                                f"check the server's log before relying on them{before}.")
        stored += sent
        studies.append(study)
    return {"stored": len(stored), "studies": studies, "sop_instance_uids": stored}
