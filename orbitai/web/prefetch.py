"""Reading a scan for the web app without its libraries (trame, Slicer's): `read_scan_for_page`, and the DATA scan
read on a thread while ``orbitai web`` imports them (`prefetch_scan`, issue 67's launch: a 1 mm head's 0.7 s read no
longer follows the 2.8 s import but runs beside it; SimpleITK's reading leaves the interpreter to the imports).
"""
from __future__ import annotations

import os
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from orbitai.dicom.inputs import resolve_image
from orbitai.io.files import read_scan
from orbitai.web.identity import read_identity, series_name

__all__ = ["Prefetch", "prefetch_scan", "read_scan_for_page"]


def read_scan_for_page(source: str, tmp: Path, upload: bool = False, max_bytes: Optional[int] = None,
                       limit_name: str = "") -> tuple[Any, str, dict[str, str]]:
    """(Volume, node name, identity) of a scan: a file, a DICOM folder or a DICOMweb series URL (fetched into ``tmp``).
    A DICOM series is named as Slicer's DICOM browser names it (`orbitai.web.identity.series_name`), never after the
    folder it was fetched or uploaded into (``upload``: ``source`` is the server's temporary folder)."""
    path = resolve_image(source, None, tmp)
    vol, _acquisition = read_scan(path, max_bytes, limit_name)
    file_name = Path(source.rstrip("/")).name
    identity = read_identity(path, file_name)
    name = series_name(identity)
    if not name and "File" not in identity:         # DICOM without series number or description
        name = f"{identity.get('Modality') or 'DICOM'} series" if upload or "://" in source else file_name
    return vol, name or file_name.split(".")[0] or "volume", identity


@dataclass(frozen=True)
class Prefetch:
    """The read of ``source`` under way (its `read_scan_for_page` result, or its error, in ``future``)."""

    source: str
    future: Future


def _read_file(source: str) -> tuple[Any, str, dict[str, str]]:
    with tempfile.TemporaryDirectory(prefix="orbitai-web-") as tmp:
        return read_scan_for_page(source, Path(tmp))


def prefetch_scan(data: Optional[str]) -> Optional[Prefetch]:
    """Start reading DATA when it is one scan file (a folder is listed and a DICOMweb URL fetched by the app, as
    before); None otherwise. The app's first load of the same DATA takes the result, or its error, as its own."""
    if not data or "://" in data or not os.path.isfile(data):
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orbitai-prefetch")
    future = pool.submit(_read_file, data)
    pool.shutdown(wait=False)              # the thread ends with its one read
    return Prefetch(data, future)
