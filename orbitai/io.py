"""Image I/O with geometry: one `Volume` type for NIfTI, NRRD, MetaImage and DICOM series.

Axis order and conventions (the same as SimpleITK and Slicer's ``arrayFromVolume``):

* ``Volume.array`` is indexed ``[k, j, i]`` = ``[z, y, x]`` (slice, row, column).
* ``spacing``, ``origin`` are given in ``(x, y, z)`` order, in millimetres.
* ``direction`` is a 3x3 matrix whose *columns* are the physical directions of the
  i, j, k axes, in the **LPS** patient coordinate system used by ITK/DICOM/NRRD files.
  Slicer's RAS system differs by negating the first two physical axes; see
  :meth:`Volume.ijk_to_ras` and :meth:`Volume.from_ijk_to_ras`.

SimpleITK does the file work; this module adds validation with clear errors and exact
round trips (label maps keep their integer type, oblique directions are preserved).
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import logging
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, cast

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.staging import write_failure

#: Files that SimpleITK reads as one volume, by suffix.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])

log = logging.getLogger("orbitai.io")


class VolumeError(InputError):
    """Raised for input that is not a usable 3D volume (the message says what to do)."""


@dataclass
class Volume:
    """A 3D image or label map with its physical geometry (see module docstring for axes)."""

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        # three values each: validate_geometry says so in one line otherwise
        self.spacing = cast("tuple[float, float, float]", tuple(float(s) for s in self.spacing))
        self.origin = cast("tuple[float, float, float]", tuple(float(o) for o in self.origin))
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        validate_geometry(self.array, self.spacing, self.origin, self.direction)

    # ----------------------------------------------------------------- geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along i, j, k (ITK order)."""
        return cast("tuple[int, int, int]", tuple(int(n) for n in self.array.shape[::-1]))

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) voxel indices to LPS millimetres."""
        m = np.eye(4)
        m[:3, :3] = self.direction @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 matrix mapping (i, j, k, 1) voxel indices to RAS millimetres (Slicer's IJKToRAS)."""
        m = self.ijk_to_lps()
        m[:3, :] = LPS_TO_RAS @ m[:3, :]
        return m

    @classmethod
    def from_ijk_to_ras(cls, array: np.ndarray, ijk_to_ras: np.ndarray, **kw) -> "Volume":
        """Build a volume from an array in [k, j, i] order and a Slicer IJKToRAS matrix."""
        m = np.asarray(ijk_to_ras, dtype=float)
        if m.shape != (4, 4):
            raise VolumeError(f"IJKToRAS must be a 4x4 matrix, got shape {m.shape}.")
        lin = LPS_TO_RAS @ m[:3, :3]
        spacing = np.linalg.norm(lin, axis=0)
        if np.any(spacing <= 0):
            raise VolumeError("IJKToRAS has a zero-length axis: the voxel spacing would be 0.")
        direction = lin / spacing
        origin = LPS_TO_RAS @ m[:3, 3]
        return cls(array, tuple(spacing), tuple(origin), direction, **kw)

    def index_to_physical(self, ijk: Sequence[float] | np.ndarray) -> np.ndarray:
        """LPS position (mm) of a continuous (i, j, k) index, or positions (n, 3) of indices (n, 3)."""
        return np.asarray(ijk, float) @ self.ijk_to_lps()[:3, :3].T + np.asarray(self.origin)

    def physical_to_index(self, lps: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) index of an LPS position (mm), or indices (n, 3) of positions (n, 3)."""
        lin = self.ijk_to_lps()[:3, :3]
        return np.linalg.solve(lin, (np.asarray(lps, float) - np.asarray(self.origin)).T).T

    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def same_geometry(self, other: "Volume", tol: float = 1e-5) -> bool:
        """True when both volumes sample the same physical grid."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=tol)
            and np.allclose(self.origin, other.origin, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def with_array(self, array: np.ndarray) -> "Volume":
        """A new volume on this volume's grid holding ``array`` (same shape required)."""
        array = np.asarray(array)
        if array.shape != self.array.shape:
            raise VolumeError(
                f"Array shape {array.shape} does not match the volume grid {self.array.shape}."
            )
        return Volume(array, self.spacing, self.origin, self.direction.copy())

    # ------------------------------------------------------------ SimpleITK
    def to_sitk(self) -> sitk.Image:
        img = sitk.GetImageFromArray(np.ascontiguousarray(self.array), isVector=False)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(tuple(self.direction.ravel()))
        for k, v in self.metadata.items():
            img.SetMetaData(k, v)
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, keep_metadata: bool = False) -> "Volume":
        if img.GetDimension() != 3:
            raise VolumeError(
                f"Expected a 3D image, got a {img.GetDimension()}D image of size {img.GetSize()}. "
                "Load a volume (a stack of slices), not a single slice or a time series."
            )
        if img.GetNumberOfComponentsPerPixel() != 1:
            raise VolumeError(
                f"Expected a scalar image, got {img.GetNumberOfComponentsPerPixel()} components per "
                "voxel (a colour/vector/4D image). Select a single-channel volume."
            )
        meta = {}
        if keep_metadata:
            meta = {k: img.GetMetaData(k) for k in img.GetMetaDataKeys()}
        return cls(
            sitk.GetArrayFromImage(img),
            img.GetSpacing(),
            img.GetOrigin(),
            np.array(img.GetDirection()).reshape(3, 3),
            meta,
        )


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Orthonormal 3x3 rotation ``Rz @ Ry @ Rx`` from angles about x, y, z (radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def validate_geometry(array: np.ndarray, spacing, origin, direction) -> None:
    """Raise `VolumeError` with a clear message if the geometry is not a valid 3D grid."""
    if array.ndim != 3:
        hint = (
            "a single 2D slice" if array.ndim == 2 else
            "a 4D series (time or channels)" if array.ndim == 4 else f"{array.ndim}D data"
        )
        raise VolumeError(
            f"Expected a 3D volume, got {hint} with shape {array.shape}. "
            "Provide a 3D scan (for a 4D series pick one time point or channel)."
        )
    if min(array.shape) < 1:
        raise VolumeError(f"The volume is empty (shape {array.shape}).")
    if array.dtype.kind not in "biuf":
        raise VolumeError(f"Unsupported voxel type {array.dtype}; expected integers or floats.")
    sp = np.asarray(spacing, float)
    if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise VolumeError(f"Voxel spacing must be three positive numbers, got {tuple(sp)}.")
    org = np.asarray(origin, float)
    if org.shape != (3,) or not np.all(np.isfinite(org)):
        raise VolumeError(f"Origin must be three finite numbers, got {tuple(org)}.")
    d = np.asarray(direction, float)
    if d.shape != (3, 3) or not np.all(np.isfinite(d)):
        raise VolumeError("Direction must be a finite 3x3 matrix.")
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise VolumeError(
            "Direction matrix is not orthonormal (sheared or scaled axes). "
            "Resample the image to an orthogonal grid first."
        )


def require_finite(vol: Volume, what: str = "image") -> None:
    """Raise `VolumeError` if the volume holds NaN or infinite values."""
    if vol.array.dtype.kind == "f" and not np.all(np.isfinite(vol.array)):
        n = int(np.count_nonzero(~np.isfinite(vol.array)))
        raise VolumeError(
            f"The {what} contains {n} NaN/infinite voxels. Fix or mask them before running "
            "(e.g. replace NaN by the background value)."
        )


def require_values(vol: Volume, what: str = "image", case_id: str = "") -> None:
    """The one check of an image's values before any model or radiomics reads it: no NaN or infinity
    (`require_finite`), not empty or constant (`require_contrast`)."""
    require_finite(vol, what)
    require_contrast(vol, what, case_id)


def require_contrast(vol: Volume, what: str = "image", case_id: str = "") -> None:
    """Raise `VolumeError` naming ``what`` (and the case) if every voxel has the same value: a blank or
    constant export holds no scan (radiomics' intensity normalisation would divide by zero)."""
    a = vol.array
    if a.size and a.min() == a.max():
        who = f"Case {case_id}: the" if case_id else "The"
        raise VolumeError(f"{who} {what} is empty or constant (every voxel is {a.flat[0]:g}); "
                          "it holds no scan: export the image again.")


def _is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES)


def read_volume(path: str | os.PathLike, keep_metadata: bool = False) -> Volume:
    """Read a 3D volume from a file (NIfTI/NRRD/MetaImage) or a DICOM series folder (see
    :func:`read_dicom_series`: what reading corrected is logged as a warning)."""
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"No such file or folder: {p}")
    if p.is_dir():
        return read_dicom_series(p)
    return _read_file(p, keep_metadata)


def read_scan(path: str | os.PathLike) -> tuple[Volume, Acquisition]:
    """A scan to run a model on and its :class:`Acquisition` (what was corrected, slice positions).

    A DICOM folder is read by :func:`read_dicom_scan`; a file's slices are taken along its axis of
    largest spacing."""
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"No such file or folder: {p}")
    if p.is_dir():
        return read_dicom_scan(p)
    vol = _read_file(p, False)
    axis = int(np.argmax(vol.spacing))
    normal = vol.direction[:, axis].copy()
    start = float(np.asarray(vol.origin) @ normal)
    n = vol.size_xyz[axis]
    gap = vol.spacing[axis]
    return vol, Acquisition("file", None, start + gap * np.arange(n), normal, gaps_mm=(gap, gap, gap))


def _read_file(p: Path, keep_metadata: bool) -> Volume:
    if p.is_file() and p.stat().st_size == 0:
        raise VolumeError(f"The image file {p} is empty (0 bytes); export or copy it again.")
    if not p.name.lower().endswith((".nrrd", ".nhdr")):   # teem checks NRRD data (length, gzip CRC) itself
        verify_volume_file(p)
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        verify_volume_file(p)                              # a truncated or corrupt file, named in one line
        detail = str(exc).strip().splitlines()[-1]
        if "spacing" in detail.lower() or "space vector" in detail.lower() or "space direction" in detail.lower():
            raise VolumeError(f"{p} has an invalid voxel spacing or orientation in its header (zero, missing or "
                              f"inconsistent; reader: {detail.split(': ', 1)[-1]}); export the image again or fix "
                              "its spacing / space directions.") from exc
        raise VolumeError(f"Could not read {p} as an image: {detail}") from exc
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    return Volume.from_sitk(img, keep_metadata=keep_metadata)


# ------------------------------------------------------------------ file integrity
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
    except (OSError, ValueError, KeyError, IndexError, struct.error, EOFError, zlib.error):
        return
    if layout is None:
        return
    name = p if layout.file == p else f"{p} (data file {layout.file.name})"
    if not layout.file.is_file():
        raise VolumeError(f"{name}: the data file {layout.file} is missing. Copy it next to the header.")
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


def _data_layout(p: Path) -> _DataLayout | None:
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
    voxels = int(np.prod([max(1, d) for d in dims[1:dims[0] + 1]], dtype=np.int64))
    expected = max(offset, size) + (voxels * bitpix + 7) // 8
    return _DataLayout(p, 0, "gzip" if gz else "raw", expected)


def _text_header(p: Path, stop: Callable[[str], bool]) -> tuple[list[str], int]:
    """Header lines of a text-header format up to ``stop(line)`` (inclusive) and the data offset."""
    lines: list[str] = []
    offset = 0
    with open(p, "rb") as f:
        for raw in f:
            offset += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            if stop(line):
                lines.append(line)
                return lines, offset
            lines.append(line)
            if len(lines) > 10_000:
                break
    return lines, -1      # no data in this file (a detached header)


def _nrrd_layout(p: Path) -> _DataLayout | None:
    with open(p, "rb") as f:
        if not f.read(4) == b"NRRD":
            return None
    lines, offset = _text_header(p, lambda line: line == "")
    fields = {}
    for line in lines[1:]:
        if ": " in line and not line.startswith("#"):
            key, value = line.split(": ", 1)
            fields[key.strip().lower()] = value.strip()
    sizes = [int(s) for s in fields["sizes"].split()]
    kind = fields.get("type", "").lower()
    nbytes = next((n for word, n in _NRRD_TYPE_BYTES if word in kind), 0)
    encoding = fields.get("encoding", "raw").lower()
    codec = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2"}.get(encoding)
    data_file = fields.get("data file", fields.get("datafile"))
    byte_skip = int(fields.get("byte skip", "0"))
    if not nbytes or codec is None or int(fields.get("line skip", "0")) != 0:
        return None
    if data_file is not None:
        if data_file.startswith("LIST") or " " in data_file or "%" in data_file:
            return None
        target, offset = p.parent / data_file, 0
    elif offset < 0:
        return None
    else:
        target = p
    expected = int(np.prod(sizes, dtype=np.int64)) * nbytes + max(byte_skip, 0)
    return _DataLayout(target, offset, codec, expected)


def _meta_layout(p: Path) -> _DataLayout | None:
    lines, offset = _text_header(p, lambda line: line.replace(" ", "").startswith("ElementDataFile="))
    fields = {}
    for line in lines:
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip()] = value.strip()
    if "ElementDataFile" not in fields or "DimSize" not in fields:
        return None
    nbytes = _MET_TYPE_BYTES.get(fields.get("ElementType", ""), 0)
    channels = int(fields.get("ElementNumberOfChannels", "1"))
    data_file = fields["ElementDataFile"]
    header_size = int(fields.get("HeaderSize", "0"))
    if not nbytes or header_size != 0 or data_file.startswith("LIST") or "%" in data_file or " " in data_file:
        return None
    target = p if data_file == "LOCAL" else p.parent / data_file
    compressed = fields.get("CompressedData", "False").lower() == "true"
    expected = int(np.prod([int(s) for s in fields["DimSize"].split()], dtype=np.int64)) * nbytes * channels
    return _DataLayout(target, offset if data_file == "LOCAL" else 0, "zlib" if compressed else "raw", expected)


@contextlib.contextmanager
def itk_warnings_off() -> Iterator[None]:
    """Silence ITK's multi-line warnings on stderr (e.g. GDCM's "No Series were found") inside the
    block, where the caller reports the problem itself in one line; the setting is restored after."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


#: Orientations may vary between slices only by a rotation about the common row direction (a gantry
#: tilt that changes during the series), within this many degrees of each other; anything else is
#: another series (a localizer) mixed in.
MAX_TILT_SPREAD_DEG = 30.0
#: A gap wider than this many median spacings is refused (slices missing), never interpolated.
MAX_GAP_FACTOR = 2.0


@dataclass
class Acquisition:
    """How a scan was acquired and what reading it corrected (printed and written to result.json).

    ``positions`` are the acquired slices' positions (mm) along ``normal`` (LPS), sorted; for a file
    they are its slices along the axis with the largest spacing."""

    source: str                                   # "dicom" or "file"
    modality: str | None = None                   # DICOM Modality (e.g. "CT"), None for files
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    tilt_deg: tuple[float, float] = (0.0, 0.0)    # smallest and largest gantry tilt of the slices
    gaps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)   # smallest, median, largest slice gap
    resampled: dict[str, Any] | None = None       # the regular grid the slices were resampled onto
    values: str | None = None                     # how stored values became Hounsfield units
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "modality": self.modality, "slices": int(len(self.positions)),
                "tilt_deg": [round(t, 2) for t in self.tilt_deg],
                "slice_gap_mm": {"min": round(self.gaps_mm[0], 3), "median": round(self.gaps_mm[1], 3),
                                 "max": round(self.gaps_mm[2], 3)},
                "resampled": self.resampled, "values": self.values, "notes": list(self.notes)}


def read_dicom_series(folder: str | os.PathLike, series_id: str | None = None) -> Volume:
    """Read one DICOM series from a folder (the first, or ``series_id``) in Hounsfield units for CT;
    see :func:`read_dicom_scan` (its notes are logged as warnings here)."""
    vol, acq = read_dicom_scan(folder, series_id)
    for note in acq.notes:
        log.warning(note)
    return vol


def read_dicom_scan(folder: str | os.PathLike, series_id: str | None = None) -> tuple[Volume, Acquisition]:
    """Read one DICOM series and say how: the volume and its :class:`Acquisition`.

    Geometry comes from every slice's ImagePositionPatient/ImageOrientationPatient: a series with
    gantry tilt (constant or varying), uneven spacing or gaps up to :data:`MAX_GAP_FACTOR` median
    spacings is resampled onto a regular orthogonal grid (:func:`orbitai.preprocess.slices.regular_grid`);
    the files are never changed. Values: rescale slope/intercept are applied (by GDCM); CT stored
    as 8-bit windowed values with WindowCenter/WindowWidth, or offset by +1024 without an intercept,
    is converted to Hounsfield units (see :func:`hounsfield_units`). Refused with a
    :class:`VolumeError` naming the slices: damaged files, slices of another orientation, missing
    slices (see :meth:`SliceGeometry.problem`), slices of different size or pixel spacing.
    """
    folder = Path(folder)
    with itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not ids:
        raise VolumeError(f"No DICOM series found in {folder}.")
    if series_id is None:
        series_id = ids[0]
    elif series_id not in ids:
        raise VolumeError(f"Series {series_id} not in {folder}; found: {', '.join(ids)}")
    with itk_warnings_off():
        files = [Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)]
    bad = _unreadable_dicom_files(folder, set(files))
    if bad:
        shown = ", ".join(p.name for p in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise VolumeError(f"{folder}: {shown} cannot be read as DICOM (truncated or damaged). "
                          "Re-copy or re-export the series.")
    geometry = dicom_slice_geometry(files)
    problem = geometry.problem()
    if problem:
        raise VolumeError(f"{folder}: {problem}. Re-export or re-copy the complete series.")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in geometry.files])      # sorted along the normal
    try:
        with itk_warnings_off():
            img = reader.Execute()
    except RuntimeError as exc:
        raise VolumeError(f"{folder}: the slices cannot be read as one series ({_last_line(exc)}).") from None
    acq = Acquisition("dicom", geometry.header.get("0008|0060", "").strip() or None, geometry.positions.copy(),
                      geometry.normal.copy())
    if len(geometry.files) > 1:
        gaps = geometry.gaps
        acq.gaps_mm = (float(gaps.min()), geometry.median_spacing, float(gaps.max()))
    tilt = geometry.tilt_deg()
    acq.tilt_deg = (float(tilt.min()), float(tilt.max())) if len(tilt) else (0.0, 0.0)
    vol = hounsfield_units(Volume.from_sitk(img), geometry.header, acq)   # on the stored slices (integers)
    if not geometry.regular():
        vol = _regularised(vol.array, geometry, acq)
    if acq.modality:
        vol.metadata["Modality"] = acq.modality
    return vol, acq


def _regularised(stack: np.ndarray, geometry: "SliceGeometry", acq: Acquisition) -> Volume:
    """The stack resampled onto a regular grid, with a note saying what was corrected."""
    from orbitai.preprocess.slices import regular_grid

    gaps = geometry.gaps
    step = max(float(gaps.min()), 0.5 * geometry.median_spacing)
    try:
        grid = regular_grid(stack, geometry.planes(), step, float(stack.min()))
    except ValueError as exc:
        raise VolumeError(f"{geometry.files[0].parent}: {exc}; the series cannot be put on a regular grid. "
                          "Export it without gantry tilt (or resliced by the scanner).") from None
    vol = Volume(grid.array, grid.spacing, grid.origin, grid.direction)
    lo, hi = acq.tilt_deg
    what = []
    if hi > TILT_TOLERANCE_DEG:
        what.append(f"gantry tilt {lo:.1f} degrees" if hi - lo < 0.1 else f"gantry tilt varying from {lo:.1f} to {hi:.1f} degrees")
    if geometry.uneven():
        what.append(f"uneven slice spacing {acq.gaps_mm[0]:.2f}-{acq.gaps_mm[2]:.2f} mm "
                    f"(median {acq.gaps_mm[1]:.2f} mm)")
    size = "x".join(str(n) for n in vol.size_xyz)
    sp = "x".join(f"{s:.3g}" for s in vol.spacing)
    acq.resampled = {"size": list(vol.size_xyz), "spacing": [round(s, 4) for s in vol.spacing],
                     "origin": [round(o, 4) for o in vol.origin],
                     "direction": [round(float(d), 6) for d in vol.direction.ravel()]}
    acq.notes.append(f"{len(geometry.files)} DICOM slices with {' and '.join(what) or 'an irregular grid'}: "
                     f"resampled onto a regular {size} grid of {sp} mm along the slice normal (files unchanged)")
    return vol


#: Below this the slices count as untilted (in-plane drift < 0.1 mm over 100 mm of slices).
TILT_TOLERANCE_DEG = 0.05


@dataclass(frozen=True)
class SliceGeometry:
    """Where the slices of a DICOM series lie, sorted along the slice normal.

    ``positions[i]`` is the centre of slice ``files[i]`` projected on ``normal`` (the slices' mean
    normal), in mm; ``orientation`` is the most common ImageOrientationPatient (row and column direction
    cosines), ``orientations``/``origins`` those of every slice, ``header`` the first slice's
    DICOM tags (value-related ones: Modality, rescale, window, bits)."""

    files: tuple[Path, ...]
    positions: np.ndarray
    orientation: np.ndarray
    normal: np.ndarray
    origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    orientations: np.ndarray = field(default_factory=lambda: np.zeros((0, 6)))
    pixel: tuple[float, float] = (1.0, 1.0)
    size: tuple[int, int] = (1, 1)
    header: dict[str, str] = field(default_factory=dict)

    @property
    def gaps(self) -> np.ndarray:
        """Distances (mm) between neighbouring slices along the normal."""
        return np.diff(self.positions)

    @property
    def median_spacing(self) -> float:
        return float(np.median(self.gaps)) if len(self.files) > 1 else 0.0

    def planes(self):
        """The slices as :class:`orbitai.preprocess.slices.Planes`."""
        from orbitai.preprocess.slices import Planes

        return Planes(self.origins, self.orientations[:, :3], self.orientations[:, 3:], self.pixel, self.size)

    def centres(self) -> np.ndarray:
        """LPS centre of every slice (K, 3)."""
        w, h = (self.size[0] - 1) * self.pixel[0] / 2, (self.size[1] - 1) * self.pixel[1] / 2
        return self.origins + w * self.orientations[:, :3] + h * self.orientations[:, 3:]

    def tilt_deg(self) -> np.ndarray:
        """Each slice's gantry tilt: the angle (degrees) between its normal and the line along which the
        slices were acquired (first to last centre); 0 for a series stacked along its normal."""
        if len(self.files) < 2:
            return np.zeros(len(self.files))
        c = self.centres()
        line = c[-1] - c[0]
        line /= np.linalg.norm(line)
        n = np.cross(self.orientations[:, :3], self.orientations[:, 3:])
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return np.degrees(np.arccos(np.clip(np.abs(n @ line), 0.0, 1.0)))

    def uneven(self, tolerance: float = 0.01) -> bool:
        """True when a gap is off the median by more than ``tolerance`` x the median (and 0.01 mm)."""
        gaps = self.gaps
        return bool(len(gaps)) and bool(np.max(np.abs(gaps - self.median_spacing)) >
                                        max(tolerance * self.median_spacing, 0.01))

    def regular(self) -> bool:
        """True when the slices already form a regular grid (ITK's series reader reads it exactly)."""
        same = len(self.orientations) == 0 or np.allclose(self.orientations, self.orientations[0], atol=1e-5)
        tilt = self.tilt_deg()
        return bool(same) and not self.uneven() and not (len(tilt) and tilt.max() > TILT_TOLERANCE_DEG)

    def problem(self, missing_factor: float = MAX_GAP_FACTOR, tolerance: float = 0.05) -> str | None:
        """One sentence on why the slices cannot be put on a regular grid, or None when they can.

        Refused: slices at the same position; a gap over ``missing_factor`` x the median spacing (+ 0.01 mm); in a
        series otherwise evenly spaced (every other gap within ``tolerance`` x the median), a gap of
        1.5 median spacings or more (one or more slices missing). Other uneven spacing is resampled.
        """
        if len(self.files) < 2:
            return None
        gaps, median = self.gaps, self.median_spacing
        names = [f.name for f in self.files]
        same = np.flatnonzero(gaps < 1e-3)
        if len(same) or median <= 0:
            i = int(same[0]) if len(same) else 0
            return (f"slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) lie at the same position "
                    f"{self.positions[i]:.2f} mm: the folder mixes series or time points")
        i = int(np.argmax(gaps))
        others = np.delete(gaps, i)
        even_elsewhere = len(others) and np.max(np.abs(others - median)) <= max(tolerance * median, 0.01)
        if gaps[i] > missing_factor * median + 0.01 or (even_elsewhere and gaps[i] >= 1.5 * median):
            lost = max(1, int(round(gaps[i] / median)) - 1)
            return (f"slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) are {gaps[i]:.1f} mm apart, "
                    f"the median spacing is {median:.2f} mm: {lost} slice{'s are' if lost > 1 else ' is'} missing "
                    f"between {self.positions[i]:.2f} and {self.positions[i + 1]:.2f} mm along the slice normal")
        return None


def dicom_slice_geometry(files: Sequence[str | os.PathLike]) -> SliceGeometry:
    """Read each file's header (not its pixels) and return the series' :class:`SliceGeometry`.

    Raises :class:`VolumeError` naming the file when a header cannot be read or lacks
    ImagePositionPatient/ImageOrientationPatient, and naming the slices whose orientation is not the
    series' own (up to a gantry tilt varying by :data:`MAX_TILT_SPREAD_DEG` about the row direction)
    or whose size or pixel spacing differs.
    """
    if not files:
        raise VolumeError("No DICOM files given.")
    reader = sitk.ImageFileReader()
    pos, orient, pixel, size = [], [], [], []
    header: dict[str, str] = {}
    paths = [Path(f) for f in files]
    for path in paths:
        reader.SetFileName(str(path))
        try:
            with itk_warnings_off():
                reader.ReadImageInformation()
            pos.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")])
            orient.append([float(v) for v in reader.GetMetaData("0020|0037").split("\\")])
        except (RuntimeError, ValueError) as exc:
            raise VolumeError(f"{path} is not a readable DICOM slice with ImagePositionPatient and "
                              f"ImageOrientationPatient ({_last_line(exc)}). Re-copy or re-export the series."
                              ) from None
        pixel.append(tuple(round(s, 6) for s in reader.GetSpacing()[:2]))
        size.append(tuple(reader.GetSize()[:2]))
        if not header:
            header = {k: reader.GetMetaData(k) for k in _VALUE_TAGS if reader.HasMetaDataKey(k)}
    orientation = np.asarray(orient)
    if orientation.shape[1:] != (6,) or np.asarray(pos).shape[1:] != (3,):
        raise VolumeError(f"{paths[0].parent}: ImagePositionPatient/ImageOrientationPatient must have 3 and 6 "
                          "values. Re-export the series.")
    keys = [tuple(np.round(o, 3)) for o in orientation]
    common = max(set(keys), key=keys.count)
    ref = orientation[keys.index(common)]
    ref_name = min(p.name for p, key in zip(paths, keys) if key == common)
    ref_normal = np.cross(ref[:3], ref[3:])
    normals = np.cross(orientation[:, :3], orientation[:, 3:])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip(normals @ ref_normal / np.linalg.norm(ref_normal), -1, 1)))
    same_row = np.all(np.abs(orientation[:, :3] - ref[:3]) < 1e-3, axis=1)
    odd = sorted(p.name for p, ok in zip(paths, same_row & (angle <= MAX_TILT_SPREAD_DEG)) if not ok)
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise VolumeError(f"{paths[0].parent}: {shown} {'have' if len(odd) > 1 else 'has'} another slice "
                          f"orientation than {ref_name} (a localizer or another series mixed in?). "
                          "Keep only the slices of one series in the folder.")
    for what, values in (("size", size), ("pixel spacing", pixel)):
        other = [p.name for p, v in zip(paths, values) if v != values[keys.index(common)]]
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise VolumeError(f"{paths[0].parent}: {shown} {'have' if len(other) > 1 else 'has'} another slice "
                              f"{what} than {ref_name}. Keep only the slices of one series in the folder.")
    normal = normals.mean(0)
    normal /= np.linalg.norm(normal)
    px, sz = pixel[0], size[0]
    origins = np.asarray(pos)
    centres = (origins + (sz[0] - 1) * px[0] / 2 * orientation[:, :3]
               + (sz[1] - 1) * px[1] / 2 * orientation[:, 3:])
    along = centres @ normal
    order = np.argsort(along, kind="stable")
    return SliceGeometry(tuple(paths[i] for i in order), along[order], ref.copy(), normal, origins[order],
                         orientation[order], (float(px[0]), float(px[1])), (int(sz[0]), int(sz[1])), header)


#: DICOM tags that say how stored values map to Hounsfield units.
_VALUE_TAGS = ("0008|0060", "0028|0100", "0028|0101", "0028|0103", "0028|1050", "0028|1051", "0028|1052",
               "0028|1053", "0018|1120")


def _tag_number(header: dict[str, str], tag: str) -> float | None:
    """The first value of a numeric DICOM tag (multi-valued tags hold e.g. '40\\400'), or None."""
    text = header.get(tag, "").strip()
    if not text:
        return None
    try:
        return float(text.split("\\")[0])
    except ValueError:
        return None


def hounsfield_units(vol: Volume, header: dict[str, str], acq: Acquisition) -> Volume:
    """CT values in Hounsfield units when the DICOM header makes the mapping certain, else unchanged.

    * 8-bit windowed (values 0-255, BitsStored <= 8, WindowCenter/WindowWidth given and not the 0-255
      display window itself): the inverse of DICOM's linear VOI function (PS3.3 C.11.2.1.2),
      ``HU = c - 0.5 + (v / 255 - 0.5) (w - 1)``; voxels at 0 and 255 were clipped, so they read as the
      window's ends.
    * offset by +1024 (Modality CT, no rescale intercept, and
      :func:`orbitai.preprocess.checks.offset_ct_evidence`: no negative value, air near 0, soft tissue
      near 1024, bone above 1700): ``HU = v - 1024``.

    A note saying so is added to ``acq``. Other CT not in Hounsfield units is left for
    :func:`orbitai.preprocess.checks.image_is_ct` to refuse."""
    if (acq.modality or "").upper() != "CT":
        return vol
    a = vol.array
    bits = _tag_number(header, "0028|0101")
    centre, width = _tag_number(header, "0028|1050"), _tag_number(header, "0028|1051")
    intercept, slope = _tag_number(header, "0028|1052") or 0.0, _tag_number(header, "0028|1053") or 1.0
    lo, hi = float(a.min()), float(a.max())
    if bits is not None and bits <= 8 and lo >= 0 and hi <= 255 and intercept == 0 and slope == 1:
        trivial = centre is not None and width is not None and abs(centre - 127.5) <= 1 and abs(width - 256) <= 1
        if centre is None or width is None or width <= 1 or trivial:
            return vol                                      # not certain: image_is_ct refuses it
        hu = (centre - 0.5 + (a.astype(np.float32) / 255.0 - 0.5) * (width - 1)).astype(np.float32)
        out = vol.with_array(hu)
        acq.values = f"8-bit window {centre:g}/{width:g}"
        acq.notes.append(f"CT stored as 8-bit values with window centre {centre:g} / width {width:g}: converted to "
                         f"Hounsfield units {centre - width / 2:g} to {centre + width / 2:g} (values outside the "
                         "window were clipped by the export and stay at its ends)")
        return out
    if intercept == 0 and slope == 1:
        from orbitai.preprocess.checks import offset_ct_evidence

        evidence = offset_ct_evidence(vol)
        if evidence:
            acq.values = "offset 1024"
            acq.notes.append(f"CT stored without its rescale intercept ({evidence}): converted to Hounsfield "
                             "units by subtracting 1024")
            return vol.with_array(a.astype(np.int32) - 1024)
    return vol


def _last_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


def _unreadable_dicom_files(folder: Path, series_files: set[Path]) -> list[Path]:
    """Files in ``folder`` that look like DICOM (preamble or .dcm/.ima suffix) but belong to no
    series GDCM could parse: truncated or damaged slices."""
    bad = []
    reader = sitk.ImageFileReader()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path in series_files or path.name.startswith(".") or path.name.upper() == "DICOMDIR":
            continue
        with open(path, "rb") as f:
            head = f.read(132)
        if head[128:132] != b"DICM" and path.suffix.lower() not in (".dcm", ".ima"):
            continue
        reader.SetFileName(str(path))
        try:
            with itk_warnings_off():
                reader.ReadImageInformation()
        except RuntimeError:
            bad.append(path)
    return bad


def write_image(img: sitk.Image, tmp: str | os.PathLike, path: str | os.PathLike, compress: bool) -> None:
    """``sitk.WriteImage(img, tmp)`` for the output ``path``; no room to write raises the `OSError` naming
    ``path`` (ITK's message drops the reason, which the command line reports as a full disk)."""
    try:
        sitk.WriteImage(img, str(tmp), compress)
    except RuntimeError:
        full = write_failure(tmp, path)
        if full is not None:
            raise full from None
        raise


def write_volume(vol: Volume, path: str | os.PathLike, compress: bool = True) -> Path:
    """Write atomically (temp file + rename) so a failure never leaves a half-written file."""
    p = Path(path)
    if not _is_volume_file(p):
        raise VolumeError(f"Unsupported output format for {p.name}; use one of {VOLUME_SUFFIXES}.")
    p.parent.mkdir(parents=True, exist_ok=True)
    img = vol.to_sitk()
    suffix = "".join(p.suffixes[-2:]) if p.name.lower().endswith(".nii.gz") else p.suffix
    if p.name.lower().endswith(".mhd"):
        # A header/raw pair cannot be renamed atomically as one file; write directly.
        sitk.WriteImage(img, str(p), compress)
        return p
    fd, tmp = tempfile.mkstemp(suffix=suffix, dir=p.parent, prefix=".tmp-")
    os.close(fd)
    try:
        write_image(img, tmp, p, compress)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def write_dicom_series(vol: Volume, folder: str | os.PathLike, modality: str = "CT") -> Path:
    """Write a scalar volume as a DICOM series (one file per slice) with its geometry.

    Values are stored as int16 with rescale slope 1 (HU for CT); this is for exchange and
    tests, not a full DICOM authoring tool.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = vol.direction
    arr = vol.array.astype(np.int16)
    for k in range(arr.shape[0]):
        write_dicom_slice(arr[k], folder / f"slice{k:04d}.dcm", vol.index_to_physical((0, 0, k)), d[:, 0], d[:, 1],
                          (vol.spacing[0], vol.spacing[1]), k + 1,
                          {"0008|0060": modality, "0018|0050": f"{vol.spacing[2]:.10f}"})
    return folder


#: Study and series UIDs of the series written here (tests and phantoms; one series per folder).
_UID = "1.2.826.0.1.3680043.2.1125.1"


def write_dicom_slice(pixels: np.ndarray, path: str | os.PathLike, position: Sequence[float] | np.ndarray,
                      row: Sequence[float] | np.ndarray,
                      col: Sequence[float] | np.ndarray, pixel: tuple[float, float], number: int,
                      tags: dict[str, str] | None = None) -> Path:
    """Write one 2D slice [row, column] as a DICOM file at ``position`` (ImagePositionPatient, LPS mm) with
    row/column directions ``row``/``col`` and ``pixel`` = (column, row) spacing; ``tags`` add or override
    DICOM tags ("gggg|eeee": value), e.g. Modality, RescaleIntercept or WindowCenter. GDCM stores integer
    pixels as given (with a rescale intercept/slope it stores ``(value - intercept) / slope``)."""
    sl = sitk.GetImageFromArray(np.ascontiguousarray(pixels))
    sl.SetSpacing((float(pixel[0]), float(pixel[1])))
    values = {
        "0008|0060": "CT",
        "0020|000d": _UID + ".1",
        "0020|000e": _UID + ".2",
        "0020|0037": "\\".join(f"{v:.10f}" for v in (*row, *col)),
        "0020|0032": "\\".join(f"{v:.10f}" for v in position),
        "0020|0013": str(number),
        "0028|0030": f"{pixel[1]:.10f}\\{pixel[0]:.10f}",
        **(tags or {}),
    }
    for tag, val in values.items():
        sl.SetMetaData(tag, val)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(path))
    writer.Execute(sl)
    return Path(path)


#: How far (in the image's voxels, at any corner) a segmentation's grid may lie from its image's and still
#: be the same physical space: the round-off of file headers, never a misplaced segmentation.
HALF_VOXEL = 0.5
#: The option that asks for a segmentation on another grid to be resampled onto its image's.
RESAMPLE_OPTION = "--resample-masks"


def grid_difference(image: Volume, other: Volume, voxels: float = HALF_VOXEL) -> str | None:
    """How ``other``'s grid differs from ``image``'s physical space (shape, spacing, origin or direction),
    or None when it is the same grid: as many voxels per axis, and each corner voxel of ``other`` within
    ``voxels`` (per axis, in ``image``'s voxels) of the same corner voxel of ``image``."""
    if image.shape != other.shape:
        return f"shape {other.shape} instead of the image's {image.shape}"
    n = np.asarray(image.size_xyz, float) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
    off = np.abs(image.physical_to_index(other.index_to_physical(corners)) - corners).max()
    if off <= voxels:
        return None
    sp_i, sp_o = np.asarray(image.spacing, float), np.asarray(other.spacing, float)
    shift = np.asarray(other.origin, float) - np.asarray(image.origin, float)
    if (np.abs(sp_o - sp_i) / sp_i * np.maximum(n, 1)).max() > voxels:
        return (f"spacing {tuple(round(float(v), 4) for v in sp_o)} mm instead of "
                f"{tuple(round(float(v), 4) for v in sp_i)} mm")
    if np.abs(image.physical_to_index(other.origin)).max() > voxels:
        return (f"origin shifted by {tuple(round(float(v), 3) for v in shift)} mm "
                f"({float(np.linalg.norm(shift)):.3f} mm)")
    return "a different direction (orientation) matrix"


def embed_on_lattice(image: Volume, labels: Volume, voxels: float = HALF_VOXEL) -> Volume | None:
    """``labels`` put into an empty array of ``image``'s grid when it is a crop of the image's voxels (same
    spacing and direction, every corner within ``voxels`` of a voxel centre, its whole box inside the image
    and smaller than it: a segmentation cropped to its extent, as Slicer saves ``.seg.nrrd`` files); else
    None. Lossless: voxels are copied, never interpolated. A grid of the image's size moved by whole voxels
    is not a crop (it is a shifted segmentation) and gives None."""
    if labels.array.ndim != 3:
        return None
    n = np.asarray(labels.size_xyz, float) - 1
    corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
    at = image.physical_to_index(labels.index_to_physical(corners))
    start = np.round(at[0])
    if np.abs(at - (corners + start)).max() > voxels:
        return None
    lo = start.astype(int)[::-1]                      # (k, j, i) of labels' first voxel in the image
    src = np.asarray(labels.array)
    hi = lo + np.asarray(src.shape)
    # a crop lies inside the image and is smaller than it; a whole-size grid moved by whole voxels is a shift
    if src.shape == image.shape or np.any(lo < 0) or np.any(hi > np.asarray(image.shape)):
        return None
    out = np.zeros(image.shape, src.dtype)
    out[tuple(slice(a, b) for a, b in zip(lo, hi))] = src
    return image.with_array(out)


def segmentation_on_image(image: Volume, labels: Volume, what: str, resample: bool = False,
                          image_name: str = "image", option: str | None = RESAMPLE_OPTION,
                          min_inside: float = 0.5) -> tuple[Volume, str | None]:
    """``labels`` on ``image``'s grid, and a warning when it had to be resampled.

    The one check of a segmentation given with an image (:func:`grid_difference`, half a voxel): on the
    same grid it is taken as it is (with the image's exact geometry), and so is a crop of the image's own
    voxels (:func:`embed_on_lattice`, e.g. Slicer's ``.seg.nrrd``); on another grid it is refused in one
    line starting with ``what`` (e.g. "Case c1: the segmentation seg.nrrd"), unless ``resample`` (what the
    user asked for with ``option``): then it is resampled by nearest neighbour, refused when less than
    ``min_inside`` of its labelled volume lands inside the image, and the warning says so."""
    what = what[:1].upper() + what[1:]
    diff = grid_difference(image, labels)
    if diff is None:
        return image.with_array(np.asarray(labels.array)), None
    embedded = embed_on_lattice(image, labels)
    if embedded is not None:     # a crop of the image's own voxels (e.g. Slicer's .seg.nrrd): nothing resampled
        return embedded, None
    if not resample:
        hint = f", or give {option} to resample it onto the {image_name}'s grid" if option else \
            f" (resample it onto the {image_name}'s grid first)"
        raise VolumeError(f"{what} does not lie in the {image_name}'s physical space: {diff}; give the "
                          f"segmentation made on this {image_name}{hint}.")
    before = float(np.count_nonzero(labels.array)) * labels.voxel_volume_mm3()
    moved = resample_like(labels, image, label=True)
    after = float(np.count_nonzero(moved.array)) * moved.voxel_volume_mm3()
    if before == 0 or after < min_inside * before:
        share = 0.0 if before == 0 else 100 * after / before
        raise VolumeError(f"{what} does not overlap the {image_name} (only {share:.0f} % of its labelled volume "
                          f"lies inside it); give the segmentation made on this {image_name}.")
    return moved, (f"{what} was not on the {image_name}'s grid ({diff}); it was resampled onto it (nearest "
                   f"neighbour, {100 * after / before:.0f} % of its labelled volume inside) as {option} asks")


def resample_like(vol: Volume, reference: Volume, label: bool = False, default: float = 0.0) -> Volume:
    """Resample ``vol`` onto ``reference``'s grid in physical space (nearest for labels)."""
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(vol.to_sitk(), reference.to_sitk(), sitk.Transform(), interp, default,
                        vol.to_sitk().GetPixelID())
    return Volume.from_sitk(out)


def resample_spacing(vol: Volume, spacing: Sequence[float], label: bool = False) -> Volume:
    """Resample to a new voxel spacing, covering the same physical extent."""
    img = vol.to_sitk()
    new_size = [max(1, int(round(n * s / t))) for n, s, t in zip(img.GetSize(), img.GetSpacing(), spacing)]
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(img, new_size, sitk.Transform(), interp, img.GetOrigin(), tuple(spacing),
                        img.GetDirection(), 0.0, img.GetPixelID())
    return Volume.from_sitk(out)
