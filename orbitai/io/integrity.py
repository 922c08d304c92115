"""File-integrity checks: a NIfTI, NRRD or MetaImage file that is truncated or corrupt is named in one line
(:func:`verify_volume_file`), before the image reader fails on it with a less helpful message."""
from __future__ import annotations

import bz2
import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path


from orbitai.io.dicom_folder import shown
from orbitai.io.headers import (WHOLE_NUMBER, _meta_data_line, _meta_list, meta_fields, nrrd_fields,
                                text_header)
from orbitai.io.volume import VolumeError


#: Bytes per element of NRRD ``type`` spellings and MetaImage ``ElementType`` values.
_NRRD_TYPE_BYTES = (("char", 1), ("int8", 1), ("short", 2), ("int16", 2), ("long", 8), ("int64", 8),
                    ("double", 8), ("float", 4), ("int32", 4), ("int", 4))
_MET_TYPE_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
                   "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
                   "MET_DOUBLE": 8}
_CHUNK = 1 << 20
_FIX = "Re-export or re-copy the file."


@dataclass(frozen=True)
class _DataLayout:
    """Where a volume file keeps its voxels and how many bytes the header promises."""

    file: Path
    offset: int          # first byte of the (possibly compressed) data in ``file``
    codec: str           # "raw", "gzip", "zlib" (gzip or zlib header) or "bzip2"
    expected: int        # bytes of data (after decompression, counted from ``offset`` for "raw")


def verify_volume_file(path: str | os.PathLike) -> None:
    """Raise :class:`VolumeError` when a NIfTI, NRRD or MetaImage file is truncated or corrupt.

    Compressed data are decompressed to the end in chunks (gzip and zlib check their CRC/Adler
    checksum and length on the way); the byte count must reach what the header promises (voxels x
    bytes per voxel, plus the header for NIfTI). Uncompressed files are checked by size. Files
    whose header cannot be parsed here are left to the image reader to refuse.
    """
    p = Path(path)
    try:
        layout = _data_layout(p)
    except VolumeError:
        raise
    except (OSError, ValueError, KeyError, IndexError, struct.error, EOFError, zlib.error, OverflowError):
        return
    if layout is None:
        return
    for one in layout if isinstance(layout, list) else [layout]:
        _verify_data(p, one)


def gzip_looks_whole(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a gzip-compressed NIfTI whose gzip trailer records the size its header promises (the
    uncompressed length modulo 2^32, as the gzip format stores it): a truncated file ends in other bytes. Cheap (its
    first and last bytes); says nothing of the CRC, which only :func:`verify_volume_file` checks. A reader may then
    decode such a file while it is verified (a valid file of that size would take the same memory); any other file
    is verified first, so that a corrupt one is refused before a reader allocates what its header claims."""
    p = Path(path)
    if not p.name.lower().endswith(".nii.gz"):
        return False
    try:
        layout = _nifti_layout(p)
        if layout is None or layout.codec != "gzip":
            return False
        with open(p, "rb") as f:
            f.seek(-4, os.SEEK_END)
            recorded = struct.unpack("<I", f.read(4))[0]
    except (OSError, ValueError, struct.error, EOFError, zlib.error, OverflowError):
        return False
    return recorded == layout.expected % (1 << 32)


def _verify_data(p: Path, layout: _DataLayout) -> None:
    """Raise `VolumeError` when ``layout``'s file is missing, corrupt or shorter than the header promises."""
    # the data file's name is the header's text: shown escaped, so a control character in it keeps the line one line
    name = p if layout.file == p else f"{p} (data file {shown(layout.file.name, quote=False)})"
    try:
        present = layout.file.is_file()
    except OSError:            # a header's name too long for the file system, say
        present = False
    if not present:
        raise VolumeError(f"{name}: the data file {shown(layout.file, limit=400, quote=False)} is missing. Copy it "
                          "next to the header.")
    complete = True
    if layout.codec == "raw":
        got = layout.file.stat().st_size - layout.offset
    else:
        try:
            got, complete = _decompressed_size(layout.file, layout.offset, layout.codec)
        except (OSError, zlib.error, ValueError) as exc:
            raise VolumeError(f"{name} is corrupt: {_stream_problem(exc)}. {_FIX}") from None
    if got < layout.expected or not complete:
        ends = "" if complete else ", the compressed stream ends early"
        raise VolumeError(f"{name} is truncated: {min(got, layout.expected)} of {layout.expected} bytes "
                          f"of image data{ends}. {_FIX}")


def _stream_problem(exc: Exception) -> str:
    """Plain words for a decompression error (zlib's own text in brackets)."""
    text = str(exc).strip().split("decompressing data: ")[-1].rstrip(".")
    if "data check" in text or "CRC" in text:
        return "CRC check failed (the data do not match their checksum)"
    if "length check" in text:
        return "length check failed (the data do not have their recorded length)"
    return f"damaged compressed data ({text or type(exc).__name__})"


def _decompressed_size(path: Path, offset: int, codec: str) -> tuple[int, bool]:
    """Decompress ``path`` from ``offset`` in small chunks (never the whole file in memory) and
    return (bytes out, whether the stream ended properly). zlib checks every gzip member's CRC-32
    and length (a zlib stream's Adler-32) and raises ``zlib.error`` when they do not match."""
    total = 0
    with open(path, "rb") as raw:
        raw.seek(offset)
        if codec == "bzip2":
            with bz2.BZ2File(raw, mode="rb") as stream:
                try:
                    while chunk := stream.read(_CHUNK):
                        total += len(chunk)
                except EOFError:
                    return total, False
            return total, True
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)          # gzip or zlib header
        while block := raw.read(_CHUNK // 16):
            while block:
                total += len(inflater.decompress(block, _CHUNK))
                block = inflater.unconsumed_tail
                if inflater.eof:                                     # a further gzip member may follow
                    block = inflater.unused_data.lstrip(b"\0")       # (zero padding after the last one)
                    if not block:
                        raw_rest = raw.read(_CHUNK // 16).lstrip(b"\0")
                        if not raw_rest:
                            return total, True
                        block = raw_rest
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    return total, inflater.eof


def _data_layout(p: Path) -> _DataLayout | list[_DataLayout] | None:
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _nifti_layout(p)
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd_layout(p)
    if name.endswith((".mha", ".mhd")):
        return _meta_layout(p)
    return None


def _nifti_layout(p: Path) -> _DataLayout | None:
    with open(p, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(p, "rb") as f:
        head = f.read(540)
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0]
        if size == 348:            # NIfTI-1
            dims = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            offset = int(struct.unpack(order + "f", head[108:112])[0])
            break
        if size == 540:            # NIfTI-2
            bitpix = struct.unpack(order + "h", head[14:16])[0]
            dims = struct.unpack(order + "8q", head[16:80])
            offset = struct.unpack(order + "q", head[168:176])[0]
            break
    else:
        return None
    if not 1 <= dims[0] <= 7 or bitpix <= 0:
        return None
    voxels = math.prod(max(1, d) for d in dims[1:dims[0] + 1])
    expected = max(offset, size) + (voxels * bitpix + 7) // 8
    return _DataLayout(p, 0, "gzip" if gz else "raw", expected)


def _nrrd_layout(p: Path) -> _DataLayout | None:
    with open(p, "rb") as f:
        if not f.read(4) == b"NRRD":
            return None
    lines, offset = text_header(p, lambda line: line == "")
    fields, _ = nrrd_fields(lines)
    sizes = [int(s) for s in fields["sizes"].split()]
    kind = fields.get("type", "").lower()
    nbytes = next((n for word, n in _NRRD_TYPE_BYTES if word in kind), 0)
    encoding = fields.get("encoding", "raw").lower()
    codec = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2"}.get(encoding)
    data_file = fields.get("datafile")
    byte_skip = int(fields.get("byteskip", "0"))
    if not nbytes or codec is None or int(fields.get("lineskip", "0")) != 0:
        return None
    if data_file is not None:
        if data_file.startswith("LIST") or " " in data_file or "%" in data_file:
            return None
        target, offset = p.parent / data_file, 0
    elif offset < 0:
        return None
    else:
        target = p
    expected = math.prod(sizes) * nbytes + max(byte_skip, 0)
    return _DataLayout(target, offset, codec, expected)


def _meta_layout(p: Path) -> _DataLayout | list[_DataLayout] | None:
    lines, offset = text_header(p, _meta_data_line, _meta_list)
    fields, listed = meta_fields(lines)
    if "ElementDataFile" not in fields or "DimSize" not in fields:
        return None
    nbytes = _MET_TYPE_BYTES.get(fields.get("ElementType", ""), 0)
    channels = int(fields.get("ElementNumberOfChannels", "1"))
    data_file = fields["ElementDataFile"]
    header_size = int(fields.get("HeaderSize", "0"))
    compressed = fields.get("CompressedData", "False").lower() == "true"
    sizes = [int(s) for s in fields["DimSize"].split()]
    if not nbytes or header_size != 0:
        return None
    if data_file.startswith("LIST") or "%" in data_file:
        # one file a slice (or slab): MetaIO reads a missing or short one as whatever memory held, so each is checked
        return None if compressed else _meta_files(p, data_file, listed, sizes, nbytes * channels)
    if " " in data_file:
        return None
    target = p if data_file == "LOCAL" else p.parent / data_file
    expected = math.prod(sizes) * nbytes * channels
    return _DataLayout(target, offset if data_file == "LOCAL" else 0, "zlib" if compressed else "raw", expected)


def _meta_files(p: Path, data_file: str, listed: list[str], sizes: list[int], voxel_bytes: int
                ) -> list[_DataLayout]:
    """The data files of a MetaImage stored one file a slice: ``LIST [nD]`` with the names on the lines that follow,
    or ``name%d first last step`` (MetaIO's two spellings). Each must hold its slab's bytes."""
    words = data_file.split()
    bad_pattern = VolumeError(f"{p}: its data file pattern {shown(data_file, limit=200)} is not 'name%d first last "
                              "step'. Re-export the image as one file (.mha or .nrrd).")
    # the dimensions each file holds: ``LIST 2D`` or a pattern's fifth word; else one less than the image's
    given = (words[1].rstrip("Dd") if len(words) > 1 else "") if words[0] == "LIST" else \
        (words[4] if len(words) == 5 else "")
    dims = min(max(int(given) if WHOLE_NUMBER.fullmatch(given) else len(sizes) - 1, 1), len(sizes))
    slab = math.prod(sizes[:dims]) * voxel_bytes          # Python integers: a header's sizes may be absurd
    needed = math.prod(sizes[dims:])
    if words[0] == "LIST":
        names = listed
    else:
        numeric = all(WHOLE_NUMBER.fullmatch(w.lstrip("-")) for w in words[1:4])
        if len(words) not in (4, 5) or not numeric or int(words[3]) == 0:
            raise bad_pattern
        first, last, step = (int(w) for w in words[1:4])
        numbers = range(first, last + (1 if step > 0 else -1), step)[:needed]   # never more names than slices
        try:
            names = [words[0] % n for n in numbers]
        except (TypeError, ValueError):
            raise bad_pattern from None
    if len(names) < needed:
        raise VolumeError(f"{p} names {len(names)} data files for its {needed} slices. Copy the missing files next "
                          "to the header or re-export the image as one file.")
    return [_DataLayout(p.parent / name, 0, "raw", slab) for name in names[:needed]]
