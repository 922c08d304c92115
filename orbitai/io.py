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
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, cast

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.staging import write_failure

#: Files that SimpleITK reads as one volume, by suffix.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


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
        """LPS position (mm) of a continuous (i, j, k) index."""
        return self.ijk_to_lps()[:3, :3] @ np.asarray(ijk, float) + np.asarray(self.origin)

    def physical_to_index(self, lps: Sequence[float] | np.ndarray) -> np.ndarray:
        """Continuous (i, j, k) index of an LPS position (mm)."""
        lin = self.ijk_to_lps()[:3, :3]
        return np.linalg.solve(lin, np.asarray(lps, float) - np.asarray(self.origin))

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


def _is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES)


def read_volume(path: str | os.PathLike, keep_metadata: bool = False) -> Volume:
    """Read a 3D volume from a file (NIfTI/NRRD/MetaImage) or a DICOM series folder."""
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"No such file or folder: {p}")
    if p.is_dir():
        return read_dicom_series(p)
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


def read_dicom_series(folder: str | os.PathLike, series_id: str | None = None) -> Volume:
    """Read one DICOM series from a folder (the first, or ``series_id``).

    Refused with a :class:`VolumeError` naming the slices: a damaged (e.g. truncated) DICOM file in
    the folder, slices of another orientation, missing slices or uneven spacing (see
    :meth:`SliceGeometry.problem`), which ITK would otherwise average into one wrong spacing.
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
    reader.SetFileNames([str(f) for f in files])      # GDCM's order (sorted along the normal too)
    with itk_warnings_off():
        return Volume.from_sitk(reader.Execute())


@dataclass(frozen=True)
class SliceGeometry:
    """Where the slices of a DICOM series lie, sorted along the slice normal.

    ``positions[i]`` is slice ``files[i]``'s ImagePositionPatient projected on ``normal`` (mm);
    ``orientation`` is the series' ImageOrientationPatient (row and column direction cosines).
    """

    files: tuple[Path, ...]
    positions: np.ndarray
    orientation: np.ndarray
    normal: np.ndarray

    @property
    def gaps(self) -> np.ndarray:
        """Distances (mm) between neighbouring slices."""
        return np.diff(self.positions)

    @property
    def median_spacing(self) -> float:
        return float(np.median(self.gaps)) if len(self.files) > 1 else 0.0

    def problem(self, missing_factor: float = 1.5, tolerance: float = 0.05) -> str | None:
        """One sentence on why the slices do not form a regular grid, or None when they do.

        Missing slices: a gap over ``missing_factor`` x the median spacing. Uneven spacing: a gap
        off the median by more than ``tolerance`` x the median (and 0.01 mm).
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
        i = int(np.argmax(np.abs(gaps - median)))
        if gaps[i] > missing_factor * median:
            lost = max(1, int(round(gaps[i] / median)) - 1)
            return (f"slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) are {gaps[i]:.1f} mm apart, "
                    f"the median spacing is {median:.2f} mm: {lost} slice{'s are' if lost > 1 else ' is'} missing")
        if abs(gaps[i] - median) > max(tolerance * median, 0.01):
            return (f"the slice spacing is uneven: slices {i + 1} and {i + 2} ({names[i]}, {names[i + 1]}) are "
                    f"{gaps[i]:.2f} mm apart, the median spacing is {median:.2f} mm")
        return None


def dicom_slice_geometry(files: Sequence[str | os.PathLike]) -> SliceGeometry:
    """Read each file's header (not its pixels) and return the series' :class:`SliceGeometry`.

    Raises :class:`VolumeError` naming the file when a header cannot be read, lacks
    ImagePositionPatient/ImageOrientationPatient, or has another orientation than the first slice.
    """
    if not files:
        raise VolumeError("No DICOM files given.")
    reader = sitk.ImageFileReader()
    pos, orient = [], []
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
    orientation = np.asarray(orient)
    if orientation.shape[1:] != (6,) or np.asarray(pos).shape[1:] != (3,):
        raise VolumeError(f"{paths[0].parent}: ImagePositionPatient/ImageOrientationPatient must have 3 and 6 "
                          "values. Re-export the series.")
    odd = [p.name for p, o in zip(paths, orientation) if not np.allclose(o, orientation[0], atol=1e-4)]
    if odd:
        shown = ", ".join(odd[:5]) + (f" and {len(odd) - 5} more" if len(odd) > 5 else "")
        raise VolumeError(f"{paths[0].parent}: {shown} {'have' if len(odd) > 1 else 'has'} another slice "
                          f"orientation than {paths[0].name} (a localizer or another series mixed in?). "
                          "Keep only the slices of one series in the folder.")
    row, col = orientation[0, :3], orientation[0, 3:]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal) or 1.0
    along = np.asarray(pos) @ normal
    order = np.argsort(along, kind="stable")
    return SliceGeometry(tuple(paths[i] for i in order), along[order], orientation[0].copy(), normal)


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
    img = sitk.Cast(vol.to_sitk(), sitk.sitkInt16)
    d = vol.direction
    orient = "\\".join(f"{v:.10f}" for v in (*d[:, 0], *d[:, 1]))
    uid = "1.2.826.0.1.3680043.2.1125.1"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        pos = vol.index_to_physical((0, 0, k))
        tags = {
            "0008|0060": modality,
            "0020|000d": uid + ".1",
            "0020|000e": uid + ".2",
            "0020|0037": orient,
            "0020|0032": "\\".join(f"{v:.10f}" for v in pos),
            "0020|0013": str(k + 1),
            "0028|0030": f"{vol.spacing[1]:.10f}\\{vol.spacing[0]:.10f}",
            "0018|0050": f"{vol.spacing[2]:.10f}",
        }
        for tag, val in tags.items():
            sl.SetMetaData(tag, val)
        writer.SetFileName(str(folder / f"slice{k:04d}.dcm"))
        writer.Execute(sl)
    return folder


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
