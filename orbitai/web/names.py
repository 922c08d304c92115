"""The one rule for what a browser client names: a file name is a name, never a path; a path is a scan under DATA.

Everything a client sends can be forged (a page's own checks are no defence), so the server applies these rules to
every client-given name and path before it reaches the file system:

* `client_file_name`: an uploaded file's name, reduced to its last component (no folder, drive letter, ``..`` or
  control character), or refused;
* `client_path`: a path typed or picked in the page, resolved (symlinks too) under the DATA folder the server was
  started with, or refused with one message whether it exists or not;
* `web_url`: whether a text is an http(s) URL (the only thing that goes to DICOMweb).

No trame import here: the rules are tested on their own.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from orbitai.errors import InputError
from orbitai.io.dicom_folder import shown

__all__ = ["client_file_name", "client_path", "web_url", "PATH_REFUSED", "MAX_NAME_BYTES", "DicomWebAllowList",
           "DICOMWEB_OPTION"]

#: The longest file name most file systems take (bytes, UTF-8).
MAX_NAME_BYTES = 255
#: The one refusal of a client path: it does not say whether the path exists.
PATH_REFUSED = ("only a scan inside the data folder the server was started with can be loaded by its path (pick one "
                "in the list), or give an http(s) DICOMweb series URL")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def client_file_name(name: Any) -> str:
    """A client-given file name as a name in a folder of the server's: its last component after ``/`` or ``\\``,
    a drive letter dropped. `InputError` (one line) when nothing usable is left: not a string, empty, ``.``, ``..``,
    control characters (NUL included) or over `MAX_NAME_BYTES`."""
    if not isinstance(name, str):
        raise InputError("an uploaded file came without a name; upload it again from the page")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InputError(f"the uploaded file name {shown(name)} holds control characters; rename the file")
    base = _DRIVE.sub("", re.split(r"[/\\]", name)[-1]).strip()
    if base in ("", ".", ".."):
        raise InputError(f"the uploaded file name {shown(name)} names a folder, not a file; upload the file itself")
    if len(base.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InputError(f"the uploaded file name {shown(base)} is longer than {MAX_NAME_BYTES} bytes; rename the "
                         "file")
    return base


def _textually_inside(path: str, root: str) -> bool:
    """Whether ``path`` (normalised, absolute) lies under ``root`` (absolute), comparing text only."""
    try:
        return os.path.commonpath([root, path]) == root and path != root
    except ValueError:          # another drive (Windows)
        return False


def client_path(text: Any, data: Optional[Path]) -> Path:
    """The real path (symlinks resolved) of a client-given path -- absolute, or relative to ``data`` -- when it lies
    inside ``data``; `InputError` with `PATH_REFUSED` otherwise (the same whether it exists or not; also without a
    DATA folder, and for a URL: ``file:`` and the like are not paths).

    The text is checked before the file system is asked anything: a drive letter, a backslash (a UNC ``\\\\host``
    name would make Windows reach out over SMB), an absolute path not under DATA or ``..`` leaving it is refused
    without a lookup (no automount or hung network mount can block the server); only then are links resolved and the
    real path checked again."""
    if (data is None or not isinstance(text, str) or not text.strip() or "\x00" in text
            or _SCHEME.match(text.strip()) or _DRIVE.match(text.strip()) or "\\" in text):
        raise InputError(PATH_REFUSED)
    text = text.strip()
    root_text = os.path.normpath(os.path.abspath(data))
    if not _textually_inside(os.path.normpath(os.path.join(root_text, text)), root_text):
        raise InputError(PATH_REFUSED)
    root = os.path.realpath(data)
    relative = os.path.relpath(os.path.normpath(os.path.join(root_text, text)), root_text)
    path = os.path.realpath(os.path.join(root, relative))
    if not _textually_inside(path, root):
        raise InputError(PATH_REFUSED)
    return Path(path)


def web_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL with a host."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


#: The ``orbitai web`` option that names a DICOMweb server the page may fetch from.
DICOMWEB_OPTION = "--dicomweb"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _root_key(root: str) -> Optional[tuple[str, str, int, str, str]]:
    """What two DICOMweb service roots are compared by: scheme, host (lower case), port (the scheme's default when
    none), path (without its last ``/``) and the user part; None for anything that is not an http(s) URL."""
    try:
        parts = urlsplit(root.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.query or parts.fragment:
        return None
    user = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return (scheme, parts.hostname.lower().strip("[]"), port or _DEFAULT_PORTS[scheme],
            re.sub("/+", "/", parts.path).rstrip("/"), user)


class DicomWebAllowList:
    """The DICOMweb servers a page may make the server fetch from (issue 61 item 6): the service roots given at start
    (``orbitai web --dicomweb URL``, and DATA when it is a DICOMweb URL), nothing else -- no other host, port or path,
    and no address of the server's own machine (loopback) unless it is one of them. Anything a page sends can be
    forged: without this a page could make the server request any address it can reach (its own loopback ports
    included)."""

    def __init__(self, roots: Any = ()) -> None:
        self.roots: set[tuple] = set()
        for root in roots:
            key = _root_key(self.service_root(root))
            if key is None:
                raise InputError(f"{DICOMWEB_OPTION} takes a DICOMweb service root such as "
                                 f"http://pacs.example.org:8042/dicom-web, got {shown(root)}")
            self.roots.add(key)

    @staticmethod
    def service_root(url: str) -> str:
        """The service root of a DICOMweb URL (what comes before ``/studies/``), or ``url`` as it is."""
        return re.split(r"/studies(/|$)", url.strip(), maxsplit=1)[0]

    def check(self, url: str) -> None:
        """`InputError` in one line unless ``url`` lies under one of the allowed service roots (compared as
        `_root_key`, before any name is looked up or any connection made)."""
        root = self.service_root(url)
        if _root_key(root) not in self.roots:
            allowed = "none is" if not self.roots else "it is not one of them"
            raise InputError(f"{shown(root)} is not a DICOMweb server this server fetches from: only the servers it "
                             f"was started with ({DICOMWEB_OPTION} URL) are, and {allowed}")
