"""A result's DICOM files, written beside its other files when the input was a DICOM series:
``segmentation.dcm`` (SEG, when the result has a label map) and ``report.dcm`` (TID 1500 SR).

A task declares what differs as a :class:`DicomReport` (segments, findings, titles); :func:`dicom_extra`
gives the ``extra`` hook of :meth:`orbitai.result.TaskResult.write`, so the files are written into the
result's temporary folder and appear only with the complete result."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable, Sequence

from orbitai.dicom import DicomExportError
from orbitai.dicom.inputs import DERIVED_MARKER
from orbitai.dicom.seg import read_source_series, write_seg
from orbitai.dicom.sr import write_sr
from orbitai.errors import one_line
from orbitai.io.volume import Volume

__all__ = ["SEG_FILE", "SR_FILE", "DicomOutputs", "DicomReport", "dicom_extra", "dicom_input", "writer_available",
           "MISSING_WRITER", "NOT_WRITTEN", "optional_dicom"]

SEG_FILE = "segmentation.dcm"
SR_FILE = "report.dcm"
#: The derived source series of a volume file given with --dicom-attributes (orbitai.dicom.inputs).
SOURCE_FOLDER = "source_dicom"
MISSING_WRITER = "DICOM SEG and SR not written: pydicom/highdicom are missing (pip install 'orbitai[dicom]')."


@dataclass
class DicomReport:
    """What a task puts into DICOM: a label map with its segments (or none), and its findings."""

    model: str
    version: str
    findings: Sequence[Any]                       # orbitai.dicom.sr.Finding
    labels: Volume | None = None
    segments: Sequence[Any] = ()                  # orbitai.dicom.seg.SegmentDef
    seg_description: str = "OrbitAI segmentation"
    content_label: str = "ORBITAI"
    sr_description: str = "OrbitAI measurements"
    parameters: Sequence[str] = field(default_factory=tuple)
    masks: Sequence[Any] | None = None            # overlapping segments: one boolean array each
    seg_model: str | None = None                  # the SEG's algorithm when another model made it


def dicom_input(image: str | os.PathLike | None) -> bool:
    """Whether ``image`` is a DICOM series folder (the input's DICOM files get a SEG and an SR)."""
    return image is not None and Path(image).is_dir()


def writer_available() -> bool:
    """Whether pydicom and highdicom can be imported (DICOM SEG/SR are written only then)."""
    return find_spec("pydicom") is not None and find_spec("highdicom") is not None


def write_report(source: str | os.PathLike, report: DicomReport, folder: Path) -> dict[str, str]:
    """Write ``report`` into ``folder`` referencing the DICOM series in ``source``; returns result.json
    ``files`` entries (``dicom_seg`` when there is a label map, ``dicom_sr``)."""
    sources = read_source_series(source)
    files = {}
    seg = None
    if report.labels is not None and report.segments:
        seg = write_seg(report.labels, report.segments, sources, report.seg_model or report.model, report.version,
                        folder / SEG_FILE, report.seg_description, report.content_label, report.masks)
        files["dicom_seg"] = SEG_FILE
    write_sr(seg, report.segments if seg is not None else (), report.findings, sources, report.model,
             report.version, folder / SR_FILE, report.sr_description, report.parameters)
    files["dicom_sr"] = SR_FILE
    if (Path(source) / DERIVED_MARKER).is_file():     # a volume file made into a series: it goes with its SEG/SR
        (folder / SOURCE_FOLDER).mkdir()
        for f in sorted(Path(source).glob("*.dcm")):
            shutil.copyfile(f, folder / SOURCE_FOLDER / f.name)
        files["dicom_source"] = SOURCE_FOLDER
    return files


def dicom_extra(image: str | os.PathLike | None, report: Callable[[], DicomReport],
                warnings: list[str]) -> Callable[[Path], dict[str, str]] | None:
    """The ``extra`` hook writing ``report()`` when ``image`` is a DICOM folder and the writer is installed;
    None otherwise (without the writer, :data:`MISSING_WRITER` is added to ``warnings``). The DICOM
    files are optional: when they cannot be made the hook writes none of them and says why in ``warnings``
    (`optional_dicom`), which the command line prints with the result's."""
    if not dicom_input(image):
        return None
    if not writer_available():
        warnings.append(MISSING_WRITER)
        return None
    assert image is not None
    return lambda tmp: optional_dicom(lambda: write_report(image, report(), tmp), tmp, warnings)


class DicomOutputs:
    """The DICOM step of the per-case skeleton (`orbitai.predictor.Predictor.dicom_files`), mixed into a task's
    predictor: a DICOM input gets the SEG and SR of what the task's :meth:`dicom_report` says, written with the
    result (`dicom_extra`); a missing writer or a failure is said in the result's warnings (the predictor's
    ``warnings_of``)."""

    def dicom_files(self, made: Any, result: Any, case: Any) -> Callable[[Path], dict[str, str]] | None:
        return dicom_extra(case.given, lambda: self.dicom_report(made, result), self.warnings_of(result))

    def dicom_report(self, made: Any, result: Any) -> DicomReport:
        """What a DICOM input gets beside the result: the task's segments and findings."""
        raise NotImplementedError(f"{type(self).__name__} says no DICOM report")

    def warnings_of(self, result: Any) -> list[str]:
        """The result's warnings list, which this step adds to when it cannot write (``data["warnings"]``)."""
        return result.data.setdefault("warnings", [])


#: What result.json and the command line say when the optional DICOM SEG/SR could not be made.
NOT_WRITTEN = "DICOM SEG and SR not written ({reason}); the other results are complete."


def optional_dicom(write: Callable[[], dict[str, str]], folder: Path, warnings: list[str]) -> dict[str, str]:
    """``write()`` (DICOM files into ``folder``), or, when it fails, none of its files and a warning in ``warnings``
    (result.json's, which the command line prints): the DICOM copy is optional and never costs the result it
    accompanies. A cancel (KeyboardInterrupt) still ends the command."""
    try:
        return write()
    except Exception as exc:  # noqa: BLE001 - any failure of the optional copy (highdicom raises many kinds)
        for name in (SEG_FILE, SR_FILE):
            (folder / name).unlink(missing_ok=True)
        shutil.rmtree(folder / SOURCE_FOLDER, ignore_errors=True)
        reason = one_line(exc)
        if not isinstance(exc, DicomExportError):
            reason = f"{type(exc).__name__}: {reason}"
        warnings.append(NOT_WRITTEN.format(reason=reason[:300]))
        return {}
