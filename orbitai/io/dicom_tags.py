"""Reading DICOM headers through SimpleITK (GDCM): ITK's multi-line warnings kept off stderr (`itk_warnings_off`),
an ITK error in one line (`last_line`), and the tags read from a series' first slice: those that say how stored values
map to Hounsfield units (`VALUE_TAGS`) and what the scan is (`ACQUISITION_TAGS`; kept in a job's input file:
`header_tags`)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Mapping

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


def header_tags(metadata: Mapping[str, str]) -> dict[str, str]:
    """The :data:`ACQUISITION_TAGS` (by number) an image file's header holds: those a front end keeps with a scan read
    from a DICOM series and writes into its job's input file (`orbitai.jobs.inputs`, NRRD ``key:=value`` fields),
    so that the job's judge reads the tags the series had; {} for a file without them."""
    wanted = set(ACQUISITION_TAGS.values())
    return {k: str(v) for k, v in metadata.items() if k in wanted and str(v).strip()}
