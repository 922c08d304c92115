"""Writing a DICOM series (one file per slice, `write_dicom_series`) or one slice (`write_dicom_slice`) with its
geometry, for exchange, tests and phantoms; new UIDs (`new_uid`)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from orbitai.io.volume import Volume


def write_dicom_series(vol: Volume, folder: str | os.PathLike, modality: str = "CT", study_uid: str | None = None,
                       series_uid: str | None = None) -> Path:
    """Write a scalar volume as a DICOM series (one file per slice) with its geometry.

    Values are stored as int16 with rescale slope 1 (HU for CT); this is for exchange and
    tests, not a full DICOM authoring tool. Every call writes the same study and series UIDs unless
    ``study_uid`` / ``series_uid`` are given (so that slices written apart make one series, as tests compose
    them); give them, e.g. :func:`new_uid`, for series that must differ in a PACS.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    d = vol.direction
    arr = vol.array.astype(np.int16)
    uids = {"0020|000d": study_uid or _UID + ".1", "0020|000e": series_uid or _UID + ".2",
            "0020|0052": study_uid + ".0" if study_uid and len(study_uid) < 62 else _UID + ".3"}
    for k in range(arr.shape[0]):
        write_dicom_slice(arr[k], folder / f"slice{k:04d}.dcm", vol.index_to_physical((0, 0, k)), d[:, 0], d[:, 1],
                          (vol.spacing[0], vol.spacing[1]), k + 1,
                          {"0008|0060": modality, "0018|0050": f"{vol.spacing[2]:.10f}", **uids})
    return folder


def new_uid() -> str:
    """A new UID under the 2.25 root (a UUID as a decimal integer, PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


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
        "0020|0052": _UID + ".3",          # FrameOfReferenceUID (a DICOM SEG/SR shares it)
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
