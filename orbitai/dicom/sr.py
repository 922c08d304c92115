"""A result's numbers as a DICOM Structured Report: a TID 1500 Measurement Report (Comprehensive 3D SR, written
with ``highdicom``).

Each task declares its :class:`Finding` list: a finding tied to a segment of the DICOM SEG becomes a volumetric
ROI measurement group (TID 1411, with ReferencedSegment), one without a segment a measurement group of the
image as a whole (TID 1501: e.g. a probability per eye). The model is the observing device and each
measurement's algorithm; its parameters (e.g. an ROI strategy) are the algorithm's parameters.

Where no standard code names a measurement (the probability of a task's call, a lesion count, % of the
intracranial volume), the private coding scheme :data:`PRIVATE_SCHEME` names it, declared in the SR's Coding
Scheme Identification Sequence as DICOM asks of a private scheme."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydicom.dataset import Dataset as PlainDataset
from pydicom.sr.codedict import codes

from orbitai.dicom import DicomExportError, require_highdicom
from orbitai.dicom.seg import MANUFACTURER, SegmentDef, segment_numbers
from orbitai.labels import Code

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported only to write
    from pydicom import Dataset

__all__ = ["PRIVATE_SCHEME", "Finding", "Measure", "orbit_findings", "private_code", "write_sr", "call_finding",
           "VOLUME", "CM3", "PROBABILITY", "NO_UNITS", "PERCENT", "COUNT", "NOT_ASSESSED"]

#: OrbitAI's private coding scheme designator (PS3.3 C.12.1.1.2.1: "99" starts a private scheme).
PRIVATE_SCHEME = "99ORBITAI"
VOLUME = Code("SCT", "118565006", "Volume")
CM3 = Code("UCUM", "cm3", "cubic centimeter")
PROBABILITY = Code("DCM", "122157", "Probability")
NO_UNITS = Code("UCUM", "1", "no units")
PERCENT = Code("UCUM", "%", "Percent")
COUNT = Code("UCUM", "{count}", "count")


def private_code(value: str, meaning: str) -> Code:
    """A concept of OrbitAI's private coding scheme."""
    return Code(PRIVATE_SCHEME, value, meaning)


@dataclass(frozen=True)
class Measure:
    """One number of a finding: what it measures, its value, its unit."""

    name: Code
    value: float
    unit: Code


@dataclass(frozen=True)
class Finding:
    """One measurement group: ``label`` is its tracking identifier, ``finding`` its finding type; ``segment`` the
    label value of the SEG segment it measures (None: the image as a whole)."""

    label: str
    finding: Code
    measures: Sequence[Measure]
    site: Code | None = None
    laterality: Code | None = None
    segment: int | None = None
    evaluations: Sequence[tuple[Code, Code]] = field(default_factory=tuple)   # (concept, coded value)


#: The coded value of a call marked "do not use" (issue 61): the finding is not assessed.
NOT_ASSESSED = private_code("NOT-ASSESSED", "Not assessed")


def call_finding(label: str, subject: str, finding: Code, probability: float, not_assessed: str = "",
                 site: Code | None = None, laterality: Code | None = None) -> Finding:
    """The measurement group of a classifier's call: ``label`` (e.g. "P(active) right") with its probability, or,
    when the call is withheld (``not_assessed``: "not assessed: <reason>", `orbitai.result.not_assessed`), no
    probability: ``subject`` (e.g. "TAO activity right") and the reason as its tracking identifier and ``finding``
    evaluated as :data:`NOT_ASSESSED`."""
    if not_assessed:
        return Finding(f"{subject} - {not_assessed}", finding, [], site, laterality,
                       evaluations=((finding, NOT_ASSESSED),))
    return Finding(label, finding, [Measure(PROBABILITY, float(probability), NO_UNITS)], site, laterality)


def orbit_findings(rows: Sequence[dict[str, Any]], segments: Sequence[SegmentDef]) -> list[Finding]:
    """The volume (cm3) of each orbit structure row, tied to its segment."""
    by_value = {s.value: s for s in segments}
    return [Finding(by_value[int(r["label"])].label, by_value[int(r["label"])].type,
                    [Measure(VOLUME, float(r["volume_cm3"]), CM3)], by_value[int(r["label"])].type,
                    by_value[int(r["label"])].modifier, int(r["label"])) for r in rows]


def _coded(hd: Any, code: Code) -> Any:
    return hd.sr.CodedConcept(code.value, code.scheme, code.meaning)


def write_sr(seg: Dataset | None, segments: Sequence[SegmentDef], findings: Sequence[Finding],
             sources: Sequence[Dataset], model: str, version: str, path: str | os.PathLike,
             description: str = "OrbitAI orbit structure volumes", parameters: Sequence[str] = ()) -> Dataset:
    """Write ``findings`` as a TID 1500 Measurement Report at ``path``, measurements tied to ``seg``'s segments
    (made from ``segments``) where a finding names one; returns the SR."""
    _pydicom, hd = require_highdicom()

    numbers = segment_numbers(segments)
    algorithm = hd.sr.AlgorithmIdentification(name=model, version=version or "unknown",
                                              parameters=list(parameters) or None)
    series = hd.sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID)
    groups: list[Any] = []
    for f in findings:
        site = None
        if f.site is not None:
            site = hd.sr.FindingSite(_coded(hd, f.site),
                                     laterality=_coded(hd, f.laterality) if f.laterality is not None else None)
        measurements = [hd.sr.Measurement(name=_coded(hd, m.name), value=float(m.value), unit=_coded(hd, m.unit),
                                          algorithm_id=algorithm, finding_sites=[site] if site else None)
                        for m in f.measures]
        evaluations = [hd.sr.QualitativeEvaluation(_coded(hd, c), _coded(hd, v)) for c, v in f.evaluations] or None
        common = dict(tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f.label),
                      finding_type=_coded(hd, f.finding), finding_sites=[site] if site else None,
                      algorithm_id=algorithm, measurements=measurements or None, qualitative_evaluations=evaluations)
        if f.segment is not None:
            if seg is None or f.segment not in numbers:
                raise DicomExportError(f"Finding {f.label!r} names segment {f.segment}, which the SEG does not hold.")
            groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=hd.sr.ReferencedSegment(seg.SOPClassUID, seg.SOPInstanceUID, numbers[f.segment],
                                                           source_series=series), **common))
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(**common))
    device = hd.sr.ObserverContext(codes.DCM.Device, hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name=model, manufacturer_name=MANUFACTURER, model_name=f"{model} {version}".strip()))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=device),
                                     procedure_reported=codes.LN.CTUnspecifiedBodyRegion
                                     if str(getattr(sources[0], "Modality", "")) == "CT"
                                     else codes.LN.MRIUnspecifiedBodyRegion,
                                     imaging_measurements=groups)
    evidence = [*sources, seg] if seg is not None else list(sources)
    try:
        sr = hd.sr.Comprehensive3DSR(evidence=evidence, content=report[0], series_instance_uid=hd.UID(),
                                     series_number=int(getattr(seg, "SeriesNumber", 1000)) + 1,
                                     sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
                                     is_complete=True, series_description=description[:64])
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomExportError(f"The DICOM SR cannot be made: {exc}") from None
    if any(c.scheme == PRIVATE_SCHEME for f in findings
           for c in (f.finding, *(m.name for m in f.measures), *(code for pair in f.evaluations for code in pair))):
        scheme = PlainDataset()
        scheme.CodingSchemeDesignator = PRIVATE_SCHEME
        scheme.CodingSchemeName = "OrbitAI private concepts"
        scheme.CodingSchemeResponsibleOrganization = MANUFACTURER
        sr.CodingSchemeIdentificationSequence = [scheme]
    sr.save_as(Path(path), enforce_file_format=True)
    return sr
