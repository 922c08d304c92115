"""Reading and writing volume files (NIfTI, NRRD, MetaImage; a folder is read as a DICOM series).

SimpleITK does the file work; this module adds validation with clear errors and exact round trips (label maps keep
their integer type, oblique directions are preserved) and writes atomically."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from orbitai.io.dicom import Acquisition, read_dicom_scan, read_dicom_series
from orbitai.io.dicom_folder import refuse_non_image_file
from orbitai.io.dicom_tags import ACQUISITION_TAGS, header_tags
from orbitai.io.headers import check_image_file
from orbitai.io.integrity import gzip_looks_whole, verify_volume_file
from orbitai.io.volume import Volume, VolumeError
from orbitai.progress import interruptible, started
from orbitai.staging import write_failure

#: Files that SimpleITK reads as one volume, by suffix.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")


def _is_volume_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in VOLUME_SUFFIXES)


def read_volume(path: str | os.PathLike, keep_metadata: bool = False, max_bytes: int | None = None,
                limit_name: str = "") -> Volume:
    """Read a 3D volume from a file (NIfTI/NRRD/MetaImage) or a DICOM series folder (see
    :func:`read_dicom_series`: what reading corrected is logged as a warning). ``max_bytes``: the most bytes the
    decoded image may take (`orbitai.io.headers.MAX_DECODED_BYTES` when None; ``limit_name`` says what it is)."""
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"No such file or folder: {p}")
    if p.is_dir():
        return read_dicom_series(p, max_bytes=max_bytes, limit_name=limit_name)
    return _read_file(p, keep_metadata, max_bytes, limit_name)


def read_scan(path: str | os.PathLike, max_bytes: int | None = None, limit_name: str = ""
              ) -> tuple[Volume, Acquisition]:
    """A scan to run a model on and its :class:`Acquisition` (what was corrected, slice positions).

    A DICOM folder is read by :func:`read_dicom_scan`; a file's slices are taken along its axis of
    largest spacing, and the DICOM tags its header holds (a front end's job input made from a series:
    :func:`orbitai.io.dicom_tags.header_tags`) are its acquisition's, its Modality kept as a DICOM series' is. A scan
    stored as signed 8-bit values is refused (a CT wrapped into -128..127). ``max_bytes``, ``limit_name``: as for
    :func:`read_volume`."""
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"No such file or folder: {p}")
    if p.is_dir():
        return read_dicom_scan(p, max_bytes=max_bytes, limit_name=limit_name)
    vol = _read_file(p, True, max_bytes, limit_name)
    tags = header_tags(vol.metadata)
    modality = tags.get(ACQUISITION_TAGS["Modality"], "").strip() or None
    vol.metadata = {"Modality": modality} if modality else {}
    if vol.array.dtype == np.int8:
        raise VolumeError(f"{p} stores its values as signed 8-bit integers (-128 to 127): no scanner's values fit "
                          "them (a CT's Hounsfield units wrapped around), so no model can read it. Export the scan "
                          "again with its original values (16-bit).")
    axis = int(np.argmax(vol.spacing))
    normal = vol.direction[:, axis].copy()
    start = float(np.asarray(vol.origin) @ normal)
    n = vol.size_xyz[axis]
    gap = vol.spacing[axis]
    return vol, Acquisition("file", modality, start + gap * np.arange(n), normal, gaps_mm=(gap, gap, gap), tags=tags)


def _read_file(p: Path, keep_metadata: bool, max_bytes: int | None = None, limit_name: str = "") -> Volume:
    if p.is_file() and p.stat().st_size == 0:
        raise VolumeError(f"The image file {p} is empty (0 bytes); export or copy it again.")
    refuse_non_image_file(p)           # a SEG / SR / RTSTRUCT, or one slice of a series, is not an image to read
    check_image_file(p, max_bytes, limit_name)   # bounded header, data files beside it, decoded size, NIfTI spacing
    # The data's check (to the end of a gzip stream, its CRC) runs before SimpleITK's read, or beside it, each
    # decompressing on its own core (0.55 -> 0.30 s for a 1 mm head), when the gzip trailer has the promised size
    # (a truncated file is refused before the reader allocates its header's size); its verdict comes first, so a
    # corrupt file is refused even where the reader returned an image. teem checks NRRD data (length, gzip CRC) itself.
    checked = None
    if gzip_looks_whole(p):
        checked = started(verify_volume_file, p)
    elif not p.name.lower().endswith((".nrrd", ".nhdr")):
        verify_volume_file(p)
    try:
        img = interruptible(sitk.ReadImage, str(p))        # a cancel stops the command during a long decode too
    except RuntimeError as exc:
        if checked is not None:                            # a truncated or corrupt file, named in one line
            checked()
        else:
            verify_volume_file(p)
        if "determinant is 0" in str(exc) or "Bad direction" in str(exc):
            raise VolumeError(f"{p} has a singular direction matrix in its header: two of its axes point the same "
                              "way (or one has no direction), so its voxels have no 3D position. Export the image "
                              "again or fix its space directions.") from None
        detail = str(exc).strip().splitlines()[-1]
        if "spacing" in detail.lower() or "space vector" in detail.lower() or "space direction" in detail.lower():
            raise VolumeError(f"{p} has an invalid voxel spacing or orientation in its header (zero, missing or "
                              f"inconsistent; reader: {detail.split(': ', 1)[-1]}); export the image again or fix "
                              "its spacing / space directions.") from exc
        raise VolumeError(f"Could not read {p} as an image: {detail}") from exc
    if checked is not None:
        checked()
    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    return Volume.from_sitk(img, keep_metadata=keep_metadata)


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
