"""Reading DICOM headers through SimpleITK (GDCM): ITK's multi-line warnings kept off stderr (`itk_warnings_off`),
an ITK error in one line (`last_line`), and the tags read from a series' first slice: those that say how stored values
map to Hounsfield units (`VALUE_TAGS`) and what the scan is (`ACQUISITION_TAGS`, `acquisition_tags`)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import SimpleITK as sitk


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


def last_line(exc: Exception) -> str:
    """The last line of an ITK/GDCM error message (the one that says what failed)."""
    lines = str(exc).strip().splitlines()
    return lines[-1].strip() if lines else type(exc).__name__


#: DICOM tags that say how stored values map to Hounsfield units.
VALUE_TAGS = ("0008|0060", "0028|0100", "0028|0101", "0028|0103", "0028|1050", "0028|1051", "0028|1052",
              "0028|1053", "0018|1120")

#: DICOM tags (keyword -> number as GDCM writes it) that say what the scan is (read by :mod:`orbitai.scan`).
ACQUISITION_TAGS = {"Modality": "0008|0060", "SeriesDescription": "0008|103e", "ProtocolName": "0018|1030",
                    "ScanningSequence": "0018|0020", "SequenceVariant": "0018|0021", "ScanOptions": "0018|0022",
                    "SequenceName": "0018|0024", "RepetitionTime": "0018|0080", "EchoTime": "0018|0081",
                    "InversionTime": "0018|0082", "SliceThickness": "0018|0050", "ImageType": "0008|0008"}


def acquisition_tags(path: str | os.PathLike) -> dict[str, str]:
    """The :data:`ACQUISITION_TAGS` of a DICOM folder's first series (its first slice's header); {} for a file or
    a folder without DICOM (what a command that reads the image on its own passes to :mod:`orbitai.scan`)."""
    p = Path(path)
    if not p.is_dir():
        return {}
    with itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(p))
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), ids[0]) if ids else ()
    if not files:
        return {}
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(files[0]))
    try:
        with itk_warnings_off():
            reader.ReadImageInformation()
    except RuntimeError:
        return {}
    return {k: reader.GetMetaData(k) for k in ACQUISITION_TAGS.values() if reader.HasMetaDataKey(k)}
