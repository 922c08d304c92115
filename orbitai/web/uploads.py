"""Uploads from the page: each written as it arrives into a new temporary folder of its own, one per client
connection, bounded in size and file count, dropped when its connection closes or goes idle."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from orbitai.errors import InputError, one_line
from orbitai.web.names import client_file_name

#: The most files one upload may hold, and what each file counts against the size limit at least (a file system's
#: block: a million empty files are not free).
MAX_UPLOAD_FILES = 20_000
MIN_FILE_BYTES = 4096
#: An upload that got nothing for this long is dropped (its page was closed or reloaded mid-way).
UPLOAD_IDLE_S = 120.0
#: Detached headers: uploaded with their data files, the header is what loads (its data files are checked to lie
#: beside it, `orbitai.io.headers`).
DETACHED_HEADERS = (".nhdr", ".mhd", ".hdr")


class Upload:
    """One upload from the page, written as it arrives into its own new temporary folder: each file under its name
    as a name (`client_file_name`; a second file of the same name gets a number in front), never over ``limit``
    bytes in all (each file counting at least `MIN_FILE_BYTES`), never over `MAX_UPLOAD_FILES` files. The first
    refusal, or a file that cannot be written (`OSError`), is kept (`error`) and the rest of the upload is dropped;
    `remove` deletes the folder and everything in it."""

    def __init__(self, limit: int, max_files: int = MAX_UPLOAD_FILES) -> None:
        self.limit, self.max_files = int(limit), int(max_files)
        self.folder = Path(tempfile.mkdtemp(prefix="orbitai-upload-"))
        self.size = 0
        self.files: list[Path] = []
        self._taken: set[str] = set()
        self.error = ""

    def add(self, files: Any) -> None:
        """A group of files as the page sends them (``name``, ``content``: bytes or a list of bytes)."""
        if self.error:
            return
        try:
            if not isinstance(files, list):
                raise InputError("the page sent something else than files")
            for f in files:
                self._write(f if isinstance(f, dict) else {})
        except InputError as exc:
            self.error = one_line(exc)
        except OSError as exc:
            self.error = f"a file could not be written on the server ({exc.strerror or type(exc).__name__}); upload " \
                         "fewer or shorter-named files, or put the series in the server's data folder"

    def _write(self, f: dict) -> None:
        name = client_file_name(f.get("name"))
        content = f.get("content")
        # a file's chunks are written one after the other, never joined: a large file is not held twice
        chunks = [content] if isinstance(content, bytes) else content
        if not (isinstance(chunks, list) and all(isinstance(c, bytes) for c in chunks)):
            raise InputError(f"the uploaded file {name!r} came without its content; upload it again")
        if len(self.files) >= self.max_files:
            raise InputError(f"the upload holds more than {self.max_files} files; put large series in the server's "
                             "data folder instead")
        charged = max(sum(len(c) for c in chunks), MIN_FILE_BYTES)
        if self.size + charged > self.limit:
            raise InputError(f"the upload is over the limit of {self.limit // (1 << 20)} MB (orbitai web "
                             "--max-upload-mb); put large series in the server's data folder instead")
        unique, n = name, 1
        while unique.lower() in self._taken:        # lower case: one name on a case-insensitive file system too
            unique, n = f"{n}-{name}", n + 1
        path = self.folder / unique
        self._taken.add(unique.lower())
        self.size += charged
        with open(path, "xb") as out:      # a new file in the new folder: nothing existing is followed or replaced
            for chunk in chunks:
                out.write(chunk)
        self.files.append(path)

    def source(self) -> tuple[str, str]:
        """(what to load, the name to show): the one file, or the folder of several (a DICOM series)."""
        if self.error:
            raise InputError(self.error)
        if not self.files:
            raise InputError("no file arrived")
        if len(self.files) == 1:
            return str(self.files[0]), self.files[0].name
        headers = [f for f in self.files if f.name.lower().endswith(DETACHED_HEADERS)]
        if len(headers) == 1:             # a header with its data file(s): the header is the image
            return str(headers[0]), headers[0].name
        return str(self.folder), f"{len(self.files)} uploaded files"

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class Uploads:
    """The uploads under way, one per client connection (a page's upload is never mixed with another's): created on
    a connection's first group, dropped (folder removed) when it ends, when its connection closes (`drop`) or when it
    got nothing for `UPLOAD_IDLE_S` (`expire`, on every group). ``clock``: for the tests; ``max_files``: the most files
    one upload may hold."""

    def __init__(self, limit: int, idle_s: float = UPLOAD_IDLE_S, clock: Any = time.monotonic,
                 max_files: int = MAX_UPLOAD_FILES) -> None:
        self.limit, self.idle_s, self.clock, self.max_files = int(limit), float(idle_s), clock, int(max_files)
        self.pending: dict[Any, tuple[Upload, float]] = {}

    def add(self, client: Any, files: Any) -> None:
        """A group of files from ``client``'s connection."""
        self.expire()
        upload = self.pending[client][0] if client in self.pending else Upload(self.limit, self.max_files)
        self.pending[client] = (upload, self.clock())
        upload.add(files)

    def finish(self, client: Any) -> Optional[Upload]:
        """``client``'s upload, now ended (the caller removes it), or None."""
        self.expire()
        found = self.pending.pop(client, None)
        return found[0] if found is not None else None

    def drop(self, client: Any) -> None:
        found = self.pending.pop(client, None)
        if found is not None:
            found[0].remove()

    def expire(self) -> None:
        now = self.clock()
        for client in [c for c, (_u, last) in self.pending.items() if now - last > self.idle_s]:
            self.drop(client)

    def remove_all(self) -> None:
        for client in list(self.pending):
            self.drop(client)
