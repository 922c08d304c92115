"""The result folder of ``orbitai seg predict IMAGE --out DIR`` (written and validated here only).

``DIR/segmentation.seg.nrrd``  the label map in the input's geometry (Slicer segmentation file); for a
                               DICOM series with gantry tilt or uneven spacing, on the regular grid it
                               was resampled onto (``acquisition.resampled``), which covers the series
``DIR/volumes.csv``            one row per structure and side: label, name, structure, side, voxels, volume_cm3,
                               soft_volume_cm3 (from the class probabilities: what lies partly in a voxel counts),
                               check (normal, not found, outside the normal adult range, uncertain,
                               enlarged, within the thyroid eye disease range)
``DIR/uncertainty.nrrd``       1 - max class probability per voxel (when asked for)
``DIR/segmentation.dcm``       DICOM SEG of the label map, when the input was a DICOM series (files key
                               ``dicom_seg``; see :mod:`orbitai.dicom.seg` for its geometry)
``DIR/report.dcm``             DICOM TID 1500 Measurement Report of the volumes (``dicom_sr``; same condition)
``DIR/result.json``::

    {"task": "segmentation", "model": "orbit_svnet_ct_demo", "device": "cpu", "window": "overlap",
     "seconds": 12.3, "window_seconds": 9.8, "population": "ted", "warnings": [],
     "acquisition": {"source": "dicom", "modality": "CT", "slices": 28, "tilt_deg": [20.0, 20.0],
                     "slice_gap_mm": {"min": 2.35, "median": 2.35, "max": 4.7},
                     "resampled": {"size": [...], "spacing": [...], "origin": [...], "direction": [...]},
                     "values": null, "notes": ["28 DICOM slices with gantry tilt 20.0 degrees ..."]},
     "structures": [{"label": 1, "name": "eyeball_left", "structure": "eyeball", "side": "left",
                     "voxels": 6512, "volume_cm3": 6.51, "soft_volume_cm3": 6.57, "check": "normal", "note": "",
                     "normal_cm3": [5.5, 9.5], "confidence": 0.95, "range_cm3": [5.5, 9.5]}, ...],
     "files": {"segmentation": "segmentation.seg.nrrd", "volumes": "volumes.csv",
               "uncertainty": "uncertainty.nrrd"}}
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.errors import ResultError
from orbitai.io import Volume, VolumeError, write_volume
from orbitai.io.segfile import read_segmentation, write_segmentation
from orbitai.result import RESULT_FILE, TaskResult

SEGMENTATION_FILE = "segmentation.seg.nrrd"
VOLUMES_FILE = "volumes.csv"
UNCERTAINTY_FILE = "uncertainty.nrrd"
#: The plain label map that ``seg predict --labelmap`` adds to OUT.
LABELMAP_FILE = "labels.nrrd"
#: What one ``seg predict`` may write into its folder (OUT, or OUT/<case>/ in a batch).
CASE_FILES = (RESULT_FILE, SEGMENTATION_FILE, VOLUMES_FILE, UNCERTAINTY_FILE, LABELMAP_FILE)
#: What ``seg rank`` writes into its folder: the scans most worth correcting first (`orbitai.orbit.rank`).
RANKING_FILE = "ranking.csv"
#: How a scan of ``seg rank`` that is not ranked (left out, unreadable) is marked: the start of its note.
NOT_RANKED = "not ranked"
VOLUME_COLUMNS = ("label", "name", "structure", "side", "voxels", "volume_cm3")
#: Each structure's partial-volume-aware volume: its class probability summed around it on the model grid
#: (orbitai.orbit.segment.SegResult.soft_volumes), what the checks compare with the ranges. Optional when read.
SOFT_VOLUME_KEY = "soft_volume_cm3"
#: Each structure's plausibility (orbitai.orbit.anatomy.check_structures): its status, a sentence for the
#: reader (empty when normal), the normal adult range and the model's mean confidence over it.
#: ``range_cm3`` is the range the check used (the normal one, for thyroid eye disease up to TED's upper bound;
#: the result's ``population`` says whose: orbitai.orbit.anatomy.POPULATIONS).
CHECK_KEYS = ("check", "note", "normal_cm3", "confidence", "range_cm3")


def check_row(check) -> dict[str, Any]:
    """The :data:`CHECK_KEYS` of a structure row from its :class:`~orbitai.orbit.anatomy.StructureCheck`."""
    d = check.to_json()
    return {"check": d["status"], "note": d["note"], "normal_cm3": d["normal_cm3"], "confidence": d["confidence"],
            "range_cm3": d["range_cm3"]}


@dataclass
class SegmentationResult(TaskResult):
    """One segmentation: ``labels`` (orbit scheme, input grid), ``volumes`` (one dict per structure
    and side), optional ``uncertainty`` map, ``warnings`` and the run's facts in ``info``."""

    labels: Volume
    volumes: list[dict[str, Any]]
    model: str
    warnings: list[str] = field(default_factory=list)
    uncertainty: Optional[Volume] = None
    info: dict[str, Any] = field(default_factory=dict)   # device, window, seconds, window_seconds, acquisition

    task = "segmentation"

    @property
    def data(self) -> dict[str, Any]:
        """result.json's content (without ``files``)."""
        return {"task": self.task, **self.to_json()}

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, **self.info, "warnings": list(self.warnings),
                "structures": [{k: r[k] for k in (*VOLUME_COLUMNS, SOFT_VOLUME_KEY, *CHECK_KEYS) if k in r}
                               for r in self.volumes]}

    def _write_files(self, folder: Path) -> dict[str, str]:
        files = {"segmentation": write_segmentation(self.labels, folder / SEGMENTATION_FILE).name}
        columns = [*VOLUME_COLUMNS, *(k for k in (SOFT_VOLUME_KEY, "check") if all(k in r for r in self.volumes))]
        with (folder / VOLUMES_FILE).open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows({k: r[k] for k in columns} for r in self.volumes)
        files["volumes"] = VOLUMES_FILE
        if self.uncertainty is not None:
            files["uncertainty"] = write_volume(self.uncertainty, folder / UNCERTAINTY_FILE).name
        return files

    @classmethod
    def _from_folder(cls, data: dict[str, Any], folder: Path,
                     reference: Optional[Volume]) -> "SegmentationResult":
        volumes = _check_structures(data.get("structures"))
        seg_path = cls.file_of(data, folder, "segmentation")
        try:
            labels, _table = read_segmentation(seg_path)
        except (OSError, ValueError) as exc:
            if isinstance(exc, VolumeError):
                raise
            raise cls.error(f"{seg_path.name} cannot be read: {exc}") from None
        if reference is not None and not labels.same_geometry(reference, tol=1e-3):
            raise VolumeError(f"The segmentation (shape {labels.shape}) does not lie on the input volume's grid "
                              f"(shape {reference.shape}).")
        present = {int(v) for v in np.unique(labels.array)} - {0}
        listed = {r["label"] for r in volumes}
        if not present <= listed:
            raise cls.error(f"The segmentation holds labels {sorted(present - listed)} that {RESULT_FILE} "
                              "does not list.")
        csv_path = cls.file_of(data, folder, "volumes")
        with csv_path.open(newline="") as f:
            csv_rows = list(csv.DictReader(f))
        if [r.get("name") for r in csv_rows] != [r["name"] for r in volumes]:
            raise cls.error(f"{VOLUMES_FILE} and {RESULT_FILE} list different structures.")
        unc_path = cls.file_of(data, folder, "uncertainty", required=False)
        uncertainty = cls.read_map(unc_path, "uncertainty map", reference) if unc_path is not None else None
        info = {k: v for k, v in data.items() if k not in ("task", "model", "warnings", "structures", "files")}
        return cls(labels, volumes, str(data.get("model", "")), list(data.get("warnings", [])),
                   uncertainty, info)


def _check_structures(rows: Any) -> list[dict[str, Any]]:
    """result.json's ``structures`` checked: one object per label with a finite volume >= 0."""
    if not isinstance(rows, list):
        raise ResultError(f"{RESULT_FILE} lists no structures.")
    out, seen = [], set()
    for n, r in enumerate(rows):
        where = f"{RESULT_FILE} structure {n + 1}"
        if not isinstance(r, dict) or not all(k in r for k in VOLUME_COLUMNS):
            raise ResultError(f"{where} must have the keys {', '.join(VOLUME_COLUMNS)}.")
        label, vol = r["label"], r["volume_cm3"]
        if not isinstance(label, int) or label < 1 or label in seen:
            raise ResultError(f"{where}: label must be a positive integer listed once, got {label!r}.")
        if not isinstance(vol, (int, float)) or not math.isfinite(vol) or vol < 0:
            raise ResultError(f"{where}: volume_cm3 must be a finite number >= 0, got {vol!r}.")
        soft = r.get(SOFT_VOLUME_KEY, 0.0)
        if not isinstance(soft, (int, float)) or not math.isfinite(soft) or soft < 0:
            raise ResultError(f"{where}: {SOFT_VOLUME_KEY} must be a finite number >= 0, got {soft!r}.")
        seen.add(label)
        out.append(dict(r))
    return out
