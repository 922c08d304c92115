"""The `Volume` type: a 3D image or label map with its physical geometry, and the checks of that geometry.

Axis order and conventions (the same as SimpleITK and Slicer's ``arrayFromVolume``):

* ``Volume.array`` is indexed ``[k, j, i]`` = ``[z, y, x]`` (slice, row, column).
* ``spacing``, ``origin`` are given in ``(x, y, z)`` order, in millimetres.
* ``direction`` is a 3x3 matrix whose *columns* are the physical directions of the
  i, j, k axes, in the **LPS** patient coordinate system used by ITK/DICOM/NRRD files.
  Slicer's RAS system differs by negating the first two physical axes; see
  :meth:`Volume.ijk_to_ras` and :meth:`Volume.from_ijk_to_ras`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, cast

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError

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
            meta = _text_metadata(img)
        return cls(
            sitk.GetArrayFromImage(img),
            img.GetSpacing(),
            img.GetOrigin(),
            np.array(img.GetDirection()).reshape(3, 3),
            meta,
        )


def _text_metadata(img: sitk.Image) -> dict[str, str]:
    """The header's fields as text. A field whose name or value is not valid UTF-8 (a damaged or foreign header)
    is left out: SimpleITK hands such a name back with surrogates that it cannot take again."""
    meta = {}
    for key in img.GetMetaDataKeys():
        try:
            key.encode("utf-8")
            meta[key] = img.GetMetaData(key)
        except (UnicodeError, TypeError):
            continue
    return meta


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
    if abs(float(np.linalg.det(d))) < 1e-6:
        raise VolumeError(
            "Direction matrix is singular: two of the image's axes point the same way (or one has no direction), "
            "so its voxels have no 3D position. Export the image again or fix its orientation (space directions)."
        )
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise VolumeError(
            "Direction matrix is not orthonormal (sheared or scaled axes). "
            "Resample the image to an orthogonal grid first."
        )
