"""Image I/O with geometry: one `Volume` type for NIfTI, NRRD, MetaImage and DICOM series.

Axis order and conventions (the same as SimpleITK and Slicer's ``arrayFromVolume``):

* ``Volume.array`` is indexed ``[k, j, i]`` = ``[z, y, x]`` (slice, row, column).
* ``spacing``, ``origin`` are given in ``(x, y, z)`` order, in millimetres.
* ``direction`` is a 3x3 matrix whose *columns* are the physical directions of the
  i, j, k axes, in the **LPS** patient coordinate system used by ITK/DICOM/NRRD files.
  Slicer's RAS system differs by negating the first two physical axes; see
  :meth:`Volume.ijk_to_ras` and :meth:`Volume.from_ijk_to_ras`.

SimpleITK does the file work; this package adds validation with clear errors and exact
round trips (label maps keep their integer type, oblique directions are preserved). One concern per module:

* :mod:`orbitai.io.volume`     `Volume` and its geometry (`VolumeError`, `rotation`, `validate_geometry`)
* :mod:`orbitai.io.values`     an image's values: finite, not constant; CT stored with +1024
* :mod:`orbitai.io.files`      reading and writing volume files (atomic writes)
* :mod:`orbitai.io.integrity`  truncated or corrupt NIfTI / NRRD / MetaImage files named in one line
* :mod:`orbitai.io.dicom`      reading a DICOM series: Hounsfield units, `Acquisition`
* :mod:`orbitai.io.dicom_geometry` where a series' slices lie (`SliceGeometry`: tilt, gaps, slices missing)
* :mod:`orbitai.io.dicom_tags` DICOM headers read quietly; the tags that say what a scan is
* :mod:`orbitai.io.dicom_write` writing a DICOM series or slice
* :mod:`orbitai.io.regrid`     tilted or unevenly spaced slices onto a regular grid
* :mod:`orbitai.io.grids`      a segmentation against its image's grid (half a voxel), resampling
* :mod:`orbitai.io.orient`     an acquisition's plane; a 3D one reformatted to a model's plane (no interpolation)

The names below are the ones the rest of OrbitAI imports from ``orbitai.io``.
"""
from __future__ import annotations

from orbitai.io.dicom import Acquisition, read_dicom_scan
from orbitai.io.dicom_geometry import dicom_slice_geometry
from orbitai.io.dicom_tags import itk_warnings_off
from orbitai.io.dicom_write import write_dicom_series, write_dicom_slice
from orbitai.io.files import read_scan, read_volume, write_image, write_volume
from orbitai.io.grids import RESAMPLE_OPTION, grid_difference, resample_like, resample_spacing, segmentation_on_image
from orbitai.io.integrity import verify_volume_file
from orbitai.io.values import require_contrast, require_finite, require_values
from orbitai.io.volume import Volume, VolumeError, rotation

__all__ = [
    "RESAMPLE_OPTION", "Acquisition", "Volume", "VolumeError", "dicom_slice_geometry", "grid_difference",
    "itk_warnings_off", "read_dicom_scan", "read_scan", "read_volume", "require_contrast", "require_finite",
    "require_values", "resample_like", "resample_spacing", "rotation", "segmentation_on_image", "verify_volume_file",
    "write_dicom_series", "write_dicom_slice", "write_image", "write_volume",
]
