"""What an image file's header says, read here before any image reader (SimpleITK, teem, MetaIO) sees the file.

:func:`check_image_file` is the one check every image read passes first (`orbitai.io.files.read_volume`,
`read_scan`, `orbitai.io.segfile.read_segmentation`; the browser's uploads and the command line alike):

* **the header is bounded** (:data:`MAX_HEADER_BYTES`, :data:`MAX_HEADER_LINES`): a NRRD header of two million
  comment lines kept teem busy for minutes (its header parse is quadratic); it is refused in one line at once;
* **a detached header names only a data file inside its own folder**: NRRD's ``data file:`` / ``datafile:`` (one
  name, a ``LIST`` of names, or a ``%d`` pattern with its range), MetaImage's ``ElementDataFile`` (the same forms),
  a NIfTI / Analyze ``.hdr`` and its ``.img``: a relative path without ``..``, never absolute, never ``-`` (the
  standard input), not a link that leads out of the folder, not a device or pipe. An upload's folder holds only
  the files of that upload, so an uploaded header can name only a file that came with it;
* **the decoded size is bounded** (voxels x components x bytes, from the header, before anything is allocated):
  a few MB of gzip may expand to many GB; :data:`MAX_DECODED_BYTES` unless the caller gives its own limit (the web
  server's upload limit);
* a NIfTI whose voxel spacing (``pixdim``) is 0 is refused (SimpleITK reads it as 1 mm: volumes in mm3 go wrong).
"""
from __future__ import annotations

import gzip
import math
import os
import re
import stat
import struct
import zlib
from pathlib import Path
from typing import Callable, Optional

import SimpleITK as sitk

from orbitai.io.dicom_folder import shown
from orbitai.io.volume import VolumeError

__all__ = ["MAX_HEADER_BYTES", "MAX_HEADER_LINES", "MAX_DECODED_BYTES", "check_image_file", "text_header",
           "nrrd_fields", "meta_fields", "decoded_bytes", "check_decoded_size", "image_bytes"]

#: The longest text header read (NRRD, MetaImage): Slicer's segmentations with hundreds of segments stay far below.
MAX_HEADER_BYTES = 4 << 20
#: The most header lines read: teem parses 20 000 in 0.03 s (two million took minutes).
MAX_HEADER_LINES = 20_000
#: The most bytes one image may take in memory once decoded (a whole-body CT of 512 x 512 x 3000 int16 is 1.5 GB),
#: unless the caller gives its own limit.
MAX_DECODED_BYTES = 4 << 30
_FIX = "Export the image again"
_DRIVE = re.compile(r"^[A-Za-z]:")
_NUMBERED = re.compile(r"%0?\d*d")


def _size_text(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


def _too_long(p: Path, what: str) -> VolumeError:
    return VolumeError(f"{p}: its header is longer than {what} (no image header is this long: the file is damaged "
                       f"or not an image). {_FIX} or give the image file itself.")


def text_header(p: Path, stop: Callable[[str], bool], rest: Optional[Callable[[str], bool]] = None
                ) -> tuple[list[str], int]:
    """The lines of a text header (NRRD, MetaImage) up to ``stop(line)`` (inclusive) and the offset of the byte after
    it (-1 when no line stopped it: a detached header). From a line where ``rest(line)`` (a ``LIST`` of data files)
    every further line is read, to the end. Refused (`VolumeError`) beyond :data:`MAX_HEADER_LINES` lines or
    :data:`MAX_HEADER_BYTES`."""
    lines: list[str] = []
    offset, listing = 0, False
    with open(p, "rb") as f:
        while True:
            raw = f.readline(MAX_HEADER_BYTES + 1 - offset)
            if not raw:
                return lines, -1
            offset += len(raw)
            if offset > MAX_HEADER_BYTES:
                raise _too_long(p, _size_text(MAX_HEADER_BYTES))
            if len(lines) >= MAX_HEADER_LINES:
                raise _too_long(p, f"{MAX_HEADER_LINES} lines")
            line = raw.decode("latin-1").rstrip("\r\n")
            lines.append(line)
            if listing:
                continue
            if rest is not None and rest(line):
                listing = True
            elif stop(line):
                return lines, offset


def _key(text: str) -> str:
    return "".join(text.split()).lower()


def nrrd_fields(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """A NRRD header's fields (names lower case without spaces: ``datafile``, ``lineskip``, ...) and the lines after
    a ``data file: LIST`` field (its file names). Comments and ``key:=value`` pairs are left out, as teem does."""
    fields: dict[str, str] = {}
    for n, line in enumerate(lines[1:], 1):
        if line == "" and "datafile" not in fields:
            break                                   # attached data follow
        if line.startswith("#") or ":=" in line or ":" not in line:
            continue
        name, value = line.split(":", 1)
        fields[_key(name)] = value.strip()
        if _key(name) == "datafile" and value.split()[:1] == ["LIST"]:
            return fields, [ln for ln in lines[n + 1:] if ln.strip()]
    return fields, []


def meta_fields(lines: list[str]) -> tuple[dict[str, str], list[str]]:
    """A MetaImage header's fields (``ElementDataFile`` last) and the lines after ``ElementDataFile = LIST``."""
    fields: dict[str, str] = {}
    for n, line in enumerate(lines):
        if "=" not in line:
            continue
        name, value = line.split("=", 1)
        fields[name.strip()] = value.strip()
        if _key(name) == "elementdatafile":
            fields["ElementDataFile"] = value.strip()
            listed = value.split()[:1] == ["LIST"]
            return fields, [ln.strip() for ln in lines[n + 1:] if ln.strip()] if listed else []
    return fields, []


def _nrrd_list(line: str) -> bool:
    """Whether a NRRD header line is ``data file: LIST`` (file names follow to the end)."""
    name, _, value = line.partition(":")
    return ":=" not in line and _key(name) == "datafile" and value.split()[:1] == ["LIST"]


def _meta_data_line(line: str) -> bool:
    """Whether a MetaImage header line is its last field, ``ElementDataFile``."""
    return _key(line.split("=", 1)[0]) == "elementdatafile"


def _meta_list(line: str) -> bool:
    return _meta_data_line(line) and line.split("=", 1)[-1].split()[:1] == ["LIST"]


def _data_names(value: str, listed: list[str], local: tuple[str, ...]) -> list[str]:
    """The file names a data-file field's ``value`` stands for: one name, the ``LIST`` lines, or a ``%d`` pattern's
    first and last names (the number cannot add a folder); ``local`` values (MetaImage's ``LOCAL``) name none."""
    words = value.split()
    if not words or value in local:
        return []
    if words[0] == "LIST":
        return listed
    if len(words) in (4, 5) and all(re.fullmatch(r"[-+]?\d+", w) for w in words[1:4]):
        pattern, first, last = words[0], int(words[1]), int(words[2])
        if len(_NUMBERED.findall(pattern)) != 1 or pattern.count("%") != 1:
            return [pattern]                  # refused below: not a numbered name
        return [pattern % first, pattern % last]
    return [value]


def _check_data_name(p: Path, name: str, field: str) -> None:
    """Refuse a data file ``name`` (from header ``p``'s ``field``) that is not a file inside ``p``'s folder."""
    parts = re.split(r"[\\/]", name)
    bad = (not name or name == "-" or "\0" in name or "%" in name or os.path.isabs(name)
           or name.startswith(("/", "\\", "~")) or bool(_DRIVE.match(name)) or ".." in parts)
    if not bad:
        base = os.path.realpath(p.parent)
        target = os.path.realpath(p.parent / name)
        bad = os.path.commonpath([base, target]) != base
        if not bad and os.path.exists(target):
            bad = not stat.S_ISREG(os.stat(target).st_mode)
    if bad:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise VolumeError(f"{p}: its header's {field} names {shown!r}, which is not a file beside the header: a "
                          "detached header may only name a data file in its own folder (no absolute path, no '..'). "
                          "Put the data file next to the header and name it without a folder.")


def _nifti_pair(p: Path) -> list[str]:
    """The other files of a NIfTI / Analyze pair (``x.hdr`` and ``x.img``, gzipped or not) that exist."""
    name = p.name
    low = name.lower()
    for suffix in (".hdr.gz", ".img.gz", ".hdr", ".img"):
        if low.endswith(suffix):
            stem = name[:-len(suffix)]
            return [stem + s for s in (".hdr", ".img", ".hdr.gz", ".img.gz", ".HDR", ".IMG")
                    if stem + s != name and (p.parent / (stem + s)).exists()]
    return []


def _nifti_spacing(p: Path) -> None:
    """Refuse a NIfTI-1/2 header whose ``pixdim`` of a spatial axis is 0 or not a number."""
    try:
        with open(p, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        with (gzip.open(p, "rb") if gz else open(p, "rb")) as f:
            head = f.read(540)
    except (OSError, EOFError, zlib.error):   # zlib.error: a damaged deflate stream (found by fuzzing)
        return                              # the integrity check and the reader say what is wrong
    for order in "<>":
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            pixdim = struct.unpack(order + "8f", head[76:108])
            break
        if len(head) >= 540 and struct.unpack(order + "i", head[:4])[0] == 540:
            dims = struct.unpack(order + "8q", head[16:80])
            pixdim = struct.unpack(order + "8d", head[104:168])
            break
    else:
        return
    if not 1 <= dims[0] <= 7:
        return
    for axis in range(1, min(3, dims[0]) + 1):
        value = pixdim[axis]
        if not math.isfinite(value) or value == 0:
            what = "slice spacing" if axis == 3 else "voxel spacing"
            raise VolumeError(f"{p}: its header gives a {what} of {value:g} (NIfTI pixdim[{axis}]): the voxel size "
                              "along that axis is unknown, so sizes and volumes in mm would be wrong. Export the image "
                              "again with its voxel spacing (or set pixdim in its header).")


#: MetaIO's most dimensions (``MET_MAX_NUMBER_OF_DIMS`` in ITK's MetaIO).
_META_MAX_DIMS = 10
#: A whole number in ASCII digits (``str.isdigit`` also takes digits that ``int`` refuses, such as superscripts).
WHOLE_NUMBER = re.compile(r"[0-9]+")


def _meta_dims(p: Path, fields: dict[str, str]) -> None:
    """Refuse a MetaImage header whose ``NDims`` is not a count of 1 to 10 or whose ``DimSize`` is not that many
    positive whole numbers: MetaIO reads such a header without complaint and then spins or reads past its arrays (an
    ``NDims`` of 118 digits kept SimpleITK's header read busy beyond 16 s, found by fuzz_metaimage)."""
    if "NDims" not in fields:
        return
    words = fields["NDims"].split()
    if len(words) != 1 or not WHOLE_NUMBER.fullmatch(words[0]) or not 1 <= int(words[0]) <= _META_MAX_DIMS:
        raise VolumeError(f"{p}: its header's NDims {shown(fields['NDims'], limit=40)} is not a number of dimensions "
                          f"(1 to {_META_MAX_DIMS}). Export the image again.")
    sizes = fields.get("DimSize", "").split()
    whole = all(WHOLE_NUMBER.fullmatch(w) and int(w) > 0 for w in sizes)
    if "DimSize" in fields and (len(sizes) != int(words[0]) or not whole):
        raise VolumeError(f"{p}: its header's DimSize {shown(fields['DimSize'], limit=60)} is not {words[0]} "
                          "positive whole numbers, one per dimension. Export the image again.")


def image_bytes(size, components: int, pixel_id: int) -> int:
    """Bytes an image of ``size`` voxels, ``components`` per voxel, of SimpleITK pixel type ``pixel_id`` takes."""
    text = sitk.GetPixelIDValueAsString(pixel_id)
    bits = re.search(r"(\d+)-bit", text)
    each = int(bits.group(1)) // 8 if bits else 8
    if "complex" in text:
        each *= 2
    n = 1
    for s in size:
        n *= max(int(s), 1)
    return n * max(int(components), 1) * each


def decoded_bytes(p: Path) -> Optional[tuple[int, str]]:
    """(bytes, what) the image file ``p`` takes once decoded, from its header alone (SimpleITK reads no voxel for
    it); None when its header cannot be read here (the reader then says why)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    size = reader.GetSize()
    comps = reader.GetNumberOfComponents()
    what = "x".join(str(s) for s in size) + " voxels" + (f" of {comps} components" if comps > 1 else "")
    return image_bytes(size, comps, reader.GetPixelID()), what


def check_decoded_size(p: Path, size: int, what: str, max_bytes: Optional[int] = None,
                       limit_name: str = "") -> None:
    """Refuse an image of ``size`` decoded bytes over ``max_bytes`` (:data:`MAX_DECODED_BYTES` when None)."""
    limit = MAX_DECODED_BYTES if max_bytes is None else int(max_bytes)
    if size > limit:
        name = limit_name or "what OrbitAI reads at once"
        raise VolumeError(f"{p}: the image would take {_size_text(size)} in memory once decoded ({what}), more than "
                          f"{_size_text(limit)} ({name}); crop or downsample it first.")


def check_image_file(path: str | os.PathLike, max_bytes: Optional[int] = None, limit_name: str = "") -> None:
    """The checks before any reader opens the image file ``path`` (see the module's docstring); each refusal is one
    `VolumeError` line naming the file. ``max_bytes``: the most bytes the decoded image may take
    (:data:`MAX_DECODED_BYTES` when None), ``limit_name`` what that limit is, for the message."""
    p = Path(path)
    low = p.name.lower()
    with open(p, "rb") as f:
        magic = f.read(4)
    if magic == b"NRRD":
        lines, _ = text_header(p, lambda line: line == "", _nrrd_list)
        fields, listed = nrrd_fields(lines)
        if "datafile" in fields:
            for name in _data_names(fields["datafile"], listed, ()):
                _check_data_name(p, name, "data file")
    elif low.endswith((".mha", ".mhd")):
        lines, _ = text_header(p, _meta_data_line, _meta_list)
        fields, listed = meta_fields(lines)
        _meta_dims(p, fields)
        if "ElementDataFile" in fields:
            for name in _data_names(fields["ElementDataFile"], listed, ("LOCAL",)):
                _check_data_name(p, name, "ElementDataFile")
    elif low.endswith((".hdr", ".img", ".hdr.gz", ".img.gz")):
        for name in _nifti_pair(p):
            _check_data_name(p, name, "image / header pair")
    if low.endswith((".nii", ".nii.gz", ".hdr", ".hdr.gz")):
        _nifti_spacing(p)
    found = decoded_bytes(p)
    if found is not None:
        check_decoded_size(p, found[0], found[1], max_bytes, limit_name)
