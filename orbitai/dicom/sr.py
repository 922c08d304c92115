"""Structure volumes as a DICOM Structured Report: a TID 1500 Measurement Report (Comprehensive 3D SR,
written with ``highdicom``). One measurement group (TID 1411) per structure and side, holding its volume in
cm3 (UCUM ``cm3``) and tied to its segment in the DICOM SEG (ReferencedSegment); the model is the observing
device and each measurement's algorithm."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from orbitai.dicom import DicomExportError, require_highdicom
from orbitai.dicom.seg import MANUFACTURER, segment_numbers
from orbitai.labels import LABEL_BY_NAME

if TYPE_CHECKING:  # pragma: no cover - pydicom is imported only to write
    from pydicom import Dataset

__all__ = ["write_sr"]


def write_sr(seg: Dataset, rows: Sequence[dict[str, Any]], sources: Sequence[Dataset], model: str, version: str,
             path: str | os.PathLike) -> Dataset:
    """Write the volumes of ``rows`` (label, name, volume_cm3; the rows :func:`orbitai.dicom.seg.write_seg`
    made ``seg`` from) as a TID 1500 Measurement Report at ``path``; returns the SR."""
    _pydicom, hd = require_highdicom()
    from pydicom.sr.codedict import codes

    numbers = segment_numbers(rows)
    algorithm = hd.sr.AlgorithmIdentification(name=model, version=version or "unknown")
    series = hd.sr.SourceSeriesForSegmentation(sources[0].SeriesInstanceUID)
    groups = []
    for r in rows:
        lab = LABEL_BY_NAME.get(str(r["name"]))
        if lab is None:
            raise DicomExportError(f"Structure {r['name']!r} is not in the orbit label scheme; no SR code.")
        structure = hd.sr.CodedConcept(lab.code.value, lab.code.scheme, lab.code.meaning)
        side = hd.sr.CodedConcept(lab.laterality.value, lab.laterality.scheme, lab.laterality.meaning)
        site = hd.sr.FindingSite(structure, laterality=side)
        volume = hd.sr.Measurement(name=codes.SCT.Volume, value=float(r["volume_cm3"]),
                                   unit=codes.UCUM.CubicCentimeter, algorithm_id=algorithm, finding_sites=[site])
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=lab.name),
            referenced_segment=hd.sr.ReferencedSegment(seg.SOPClassUID, seg.SOPInstanceUID,
                                                       numbers[int(r["label"])], source_series=series),
            finding_type=structure, finding_sites=[site], algorithm_id=algorithm, measurements=[volume]))
    device = hd.sr.ObserverContext(codes.DCM.Device, hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name=model, manufacturer_name=MANUFACTURER, model_name=f"{model} {version}".strip()))
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_device_context=device),
                                     procedure_reported=codes.LN.CTUnspecifiedBodyRegion
                                     if str(getattr(sources[0], "Modality", "")) == "CT"
                                     else codes.LN.MRIUnspecifiedBodyRegion,
                                     imaging_measurements=groups)
    try:
        sr = hd.sr.Comprehensive3DSR(evidence=[*sources, seg], content=report[0], series_instance_uid=hd.UID(),
                                     series_number=int(seg.SeriesNumber) + 1, sop_instance_uid=hd.UID(),
                                     instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
                                     series_description="OrbitAI orbit structure volumes")
    except (ValueError, TypeError, AttributeError) as exc:
        raise DicomExportError(f"The DICOM SR cannot be made: {exc}") from None
    sr.save_as(Path(path), enforce_file_format=True)
    return sr
