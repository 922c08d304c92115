"""The result folder of ``orbitai neuro predict|lesions --out DIR`` (written and validated here only).

``DIR/result.json`` of ``neuro predict``::

    {"task": "neuro_differential", "probability_nmosd": 0.81, "call": "NMOSD", "threshold": 0.5,
     "model": "neuro_twoview18_demo", "architecture": "twoview18", "input_mode": "lesion_mask",
     "applies": true,
     "lesions": {"count": 14, "total_ml": 1.25, "percent_icv": 0.09, "icv_ml": 1420.0,
                 "counts": {"periventricular": 8, ...}, "volumes_ml": {"periventricular": 0.7, ...}},
     "device": "cpu", "seconds": 7.9, "warnings": [], "notes": [],
     "files": {"lesions": "lesions.seg.nrrd", "lesion_table": "lesions.csv", "brain": "brain.seg.nrrd",
               "heatmap": "heatmap.nrrd"}}

Without any lesion the classifier does not apply: ``"applies": false``, ``probability_nmosd`` and
``call`` null, a ``reason`` and no heat map. A call marked "do not use" (``trust``) is not assessed: ``call`` null and
a ``reason``, ``probability_nmosd`` kept as a detail (`orbitai.result.withhold_call`). ``neuro lesions`` writes the same folder without the
classification: no ``applies``, ``probability_nmosd``, ``call`` nor heat map.

``lesions.seg.nrrd``: segment ``white_matter_lesion`` (label 1) on the FLAIR's grid; ``lesions.csv``:
one row per lesion (``id,volume_ml,location,centroid_r,centroid_a,centroid_s,voxels``, as many rows
as ``lesions.count``); ``brain.seg.nrrd`` (optional): segment ``intracranial`` on the FLAIR's grid;
``heatmap.nrrd`` (optional): float32 in [0, 1] on the FLAIR's grid.
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from orbitai.dicom.export import DicomReport, dicom_extra
from orbitai.dicom.seg import SegmentDef
from orbitai.dicom.sr import CM3, COUNT, PERCENT, VOLUME, Finding, Measure, call_finding, private_code
from orbitai.errors import ResultError
from orbitai.io import Volume, VolumeError, write_volume
from orbitai.io.segfile import LabelInfo, lesion_table, read_segmentation, write_segmentation
from orbitai.labels import ANATOMICAL_STRUCTURE, Code
from orbitai.result import RESULT_FILE, TaskResult, check_withheld, not_assessed, withhold_call

TASK = "neuro_differential"
#: Class names of P(NMOSD) < threshold and >= threshold.
CALLS = ("MS", "NMOSD")
LESION_SEGMENT = "white_matter_lesion"
BRAIN_SEGMENT = "intracranial"
LESION_COLUMNS = ("id", "volume_ml", "location", "centroid_r", "centroid_a", "centroid_s", "voxels")
LESIONS_FILE, TABLE_FILE, BRAIN_FILE, HEATMAP_FILE = "lesions.seg.nrrd", "lesions.csv", "brain.seg.nrrd", "heatmap.nrrd"
#: The lesion summary's scalar entries (``lesions`` in result.json).
SUMMARY_NUMBERS = ("total_ml", "percent_icv", "icv_ml")


class NeuroResultError(ResultError):
    """A ``neuro predict|lesions`` output folder that is missing files or does not follow the contract."""


@dataclass
class LesionRow:
    """One row of lesions.csv: a lesion (26-connected component), its volume, location class and centroid."""

    id: int
    volume_ml: float
    location: str
    centroid_ras: tuple[float, float, float]
    voxels: int

    def to_csv(self) -> list[str]:
        r, a, s = self.centroid_ras
        return [str(self.id), repr(float(self.volume_ml)), self.location, repr(float(r)), repr(float(a)),
                repr(float(s)), str(self.voxels)]


def lesion_row(row: Any) -> LesionRow:
    """A `LesionRow` from a lesions.csv-like dict (``centroid_r/a/s`` or ``centroid_ras``) or an object with
    those attributes (``orbitai.neuro.lesion_table.Lesion``)."""
    def get(key: str) -> Any:
        return row.get(key) if isinstance(row, Mapping) else getattr(row, key, None)

    centroid = get("centroid_ras")
    if centroid is None:
        centroid = (get("centroid_r"), get("centroid_a"), get("centroid_s"))
    try:
        r, a, s = (float(c) for c in centroid)
        return LesionRow(int(get("id")), float(get("volume_ml")), str(get("location")), (r, a, s), int(get("voxels")))
    except (TypeError, ValueError):
        raise NeuroResultError(f"A lesion row needs id, volume_ml, location, centroid and voxels; got {row!r}.") from None


@dataclass
class NeuroResult(TaskResult):
    """``data``: result.json without ``task``/``files``; ``lesions``: the 0/1 lesion mask on the FLAIR's grid;
    ``lesion_rows``: lesions.csv; ``brain``: the 0/1 intracranial mask; ``heatmap``: the map in [0, 1]."""

    data: dict[str, Any]
    lesions: Volume
    lesion_rows: list[LesionRow] = field(default_factory=list)
    brain: Optional[Volume] = None
    heatmap: Optional[Volume] = None

    task = TASK
    error = NeuroResultError

    def __post_init__(self) -> None:
        withhold_calls(self.data)       # a call marked do not use is not assessed (issue 61)

    # ------------------------------------------------------------------ findings
    @property
    def classified(self) -> bool:
        """Whether the folder holds a classification (``neuro predict``), not only lesions (``neuro lesions``)."""
        return "applies" in self.data

    @property
    def applies(self) -> bool:
        return bool(self.data.get("applies"))

    @property
    def probability(self) -> Optional[float]:
        p = self.data.get("probability_nmosd")
        return None if p is None else float(p)

    @property
    def call(self) -> Optional[str]:
        return self.data.get("call")

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.data["lesions"])

    @property
    def warnings(self) -> list[str]:
        return list(self.data.get("warnings", []))

    @property
    def notes(self) -> list[str]:
        return list(self.data.get("notes", []))

    # ---------------------------------------------------------------------- write
    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in ("task", "files")}

    def lesions_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(LESION_COLUMNS)
        w.writerows(r.to_csv() for r in self.lesion_rows)
        return buf.getvalue()

    def _write_files(self, folder: Path) -> dict[str, str]:
        check_data(self.data, heatmap=self.heatmap is not None)
        check_rows(self.lesion_rows, int(self.data["lesions"]["count"]), "lesion rows")
        check_locations(self.data["lesions"], self.lesion_rows, "lesion rows")
        grid = self.lesions
        for what, vol in (("brain mask", self.brain), ("heat map", self.heatmap)):
            if vol is not None and not vol.same_geometry(grid, tol=1e-4):
                raise VolumeError(f"The {what} (shape {vol.shape}) does not lie on the lesion mask's grid "
                                  f"(shape {grid.shape}).")
        files = {"lesions": write_segmentation(_binary(self.lesions), folder / LESIONS_FILE,
                                               table=lesion_table(LESION_SEGMENT)).name}
        (folder / TABLE_FILE).write_text(self.lesions_csv())
        files["lesion_table"] = TABLE_FILE
        if self.brain is not None:
            table = {1: LabelInfo(1, BRAIN_SEGMENT, (170, 170, 255))}
            files["brain"] = write_segmentation(_binary(self.brain), folder / BRAIN_FILE, table=table).name
        if self.heatmap is not None:
            heat = np.asarray(self.heatmap.array, dtype=np.float32)
            if not np.isfinite(heat).all() or heat.min() < -1e-6 or heat.max() > 1 + 1e-6:
                raise NeuroResultError("The heat map must hold finite values in [0, 1].")
            files["heatmap"] = write_volume(self.heatmap.with_array(np.clip(heat, 0.0, 1.0)), folder / HEATMAP_FILE).name
        return files

    # ----------------------------------------------------------------------- read
    @classmethod
    def _from_folder(cls, data: dict[str, Any], folder: Path, reference: Optional[Volume]) -> "NeuroResult":
        files = data.get("files") or {}
        check_data(withhold_calls(data), heatmap="heatmap" in files)   # an earlier marked call reads as not assessed
        lesions = read_mask(cls.file_of(data, folder, "lesions"), LESION_SEGMENT, reference)
        rows = read_lesion_rows(cls.file_of(data, folder, "lesion_table"))
        count = int(data["lesions"]["count"])
        check_rows(rows, count, TABLE_FILE)
        check_locations(data["lesions"], rows, TABLE_FILE)
        if count > 0 and not lesions.array.any():
            raise NeuroResultError(f"{RESULT_FILE} counts {count} lesions but {files['lesions']} is empty.")
        path = cls.file_of(data, folder, "brain", required=False)
        brain = read_mask(path, BRAIN_SEGMENT, lesions) if path is not None else None
        if brain is not None and not brain.array.any():
            raise NeuroResultError(f"The brain mask {files['brain']} is empty.")
        path = cls.file_of(data, folder, "heatmap", required=False)
        heatmap = None
        if path is not None:
            heatmap = cls.read_map(path, "heat map", lesions)
            if float(heatmap.array.min()) < -1e-6 or float(heatmap.array.max()) > 1 + 1e-6:
                raise NeuroResultError("The heat map must lie in [0, 1].")
        body = {k: v for k, v in data.items() if k not in ("task", "files")}
        return cls(body, lesions, rows, brain, heatmap)


def write_neuro_result(out_dir: str | os.PathLike, data: Mapping[str, Any], lesions: Volume,
                       lesion_rows: Iterable[Any], brain: Optional[Volume] = None,
                       heatmap: Optional[Volume] = None, flair: Optional[str | os.PathLike] = None) -> Path:
    """Write the folder of ``neuro predict`` (``data`` with ``applies``) or ``neuro lesions`` (without)
    atomically (`TaskResult.write`: nothing is left on a failure); everything is checked against the
    contract first. ``data``: result.json's findings (numpy numbers accepted); ``lesions``: the lesion
    mask (non-zero = lesion) on the FLAIR's grid; ``lesion_rows``: dicts or objects as `lesion_row`
    takes. Returns the path of result.json."""
    result, extra = neuro_result(data, lesions, lesion_rows, brain, heatmap, flair)
    return result.write(out_dir, extra)


def neuro_result(data: Mapping[str, Any], lesions: Volume, lesion_rows: Iterable[Any], brain: Optional[Volume] = None,
                 heatmap: Optional[Volume] = None, flair: Optional[str | os.PathLike] = None
                 ) -> "tuple[NeuroResult, Optional[Callable[[Path], dict[str, str]]]]":
    """The result :func:`write_neuro_result` writes and its DICOM files' writer (``extra`` of `TaskResult.write`;
    None when ``flair`` is not a DICOM series), for a caller that marks the result first (a predictor's stamp)."""
    body = _plain({k: v for k, v in dict(data).items() if k not in ("task", "files")})
    # a DICOM FLAIR also gets a SEG and an SR (orbitai.dicom); they are optional: when they cannot be made the
    # rest is still written and result.json's warnings say why (orbitai.dicom.export.optional_dicom)
    extra = dicom_extra(flair, lambda: dicom_report(body, lesions, brain), body.setdefault("warnings", []))
    return NeuroResult(body, lesions, [lesion_row(r) for r in lesion_rows], brain, heatmap), extra


# --------------------------------------------------------------------------- checks
def _plain(value: Any) -> Any:
    """``value`` with numpy numbers, arrays and tuples as JSON's plain types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _binary(vol: Volume) -> Volume:
    return vol.with_array((np.asarray(vol.array) != 0).astype(np.uint8))


def _number(value: Any, what: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= float(value) <= high:
        span = f"in [{low:g}, {high:g}]" if math.isfinite(high) else f">= {low:g}"
        raise NeuroResultError(f"{RESULT_FILE}: {what} must be a finite number {span}, got {value!r}.")
    return float(value)


def _text(data: Mapping[str, Any], key: str) -> str:
    v = data.get(key)
    if not isinstance(v, str) or not v.strip():
        raise NeuroResultError(f"{RESULT_FILE}: {key} must be a non-empty string, got {v!r}.")
    return v


def check_summary(summary: Any) -> None:
    """Raise `NeuroResultError` unless ``lesions`` (the lesion table's summary) follows the contract:
    a lesion count, total volume, % of the intracranial volume and that volume (> 0, percent consistent),
    and per-location mappings ``{location: number >= 0}``."""
    if not isinstance(summary, dict):
        raise NeuroResultError(f"{RESULT_FILE}: lesions must be the lesion table's summary (an object), got {summary!r}.")
    count = summary.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise NeuroResultError(f"{RESULT_FILE}: lesions.count must be a whole number >= 0, got {count!r}.")
    total, pct, icv = (_number(summary.get(k), f"lesions.{k}") for k in SUMMARY_NUMBERS)
    if icv <= 0:
        raise NeuroResultError(f"{RESULT_FILE}: lesions.icv_ml must be > 0, got {icv!r}.")
    if abs(pct - 100.0 * total / icv) > 0.01 + 0.01 * pct:
        raise NeuroResultError(f"{RESULT_FILE}: lesions.percent_icv {pct} is not 100 x total_ml / icv_ml "
                               f"({100.0 * total / icv:.4g}).")
    if count == 0 and total > 0:
        raise NeuroResultError(f"{RESULT_FILE}: lesions.total_ml is {total} for no lesion.")
    for key, value in summary.items():
        if isinstance(value, dict):
            for name, v in value.items():
                _number(v, f"lesions.{key}.{name}")


def withhold_calls(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (result.json) with a classification's call marked "do not use" withheld
    (`orbitai.result.withhold_call`; one that does not apply keeps its own reason), in place."""
    if data.get("applies") is True:
        withhold_call(data, "probability_nmosd")
    return data


def check_data(data: Mapping[str, Any], heatmap: bool = False) -> None:
    """Raise `NeuroResultError` unless result.json's findings follow the contract (see the module
    docstring); ``heatmap``: whether the folder has a heat map (only for a classification that applies)."""
    check_summary(data.get("lesions"))
    count = int(data["lesions"]["count"])
    for key in ("warnings", "notes"):
        v = data.get(key, [])
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise NeuroResultError(f"{RESULT_FILE}: {key} must be a list of strings, got {v!r}.")
    if "seconds" in data:
        _number(data["seconds"], "seconds")
    if "device" in data and not isinstance(data["device"], str):
        raise NeuroResultError(f"{RESULT_FILE}: device must be a string, got {data['device']!r}.")
    if "applies" not in data:   # neuro lesions: no classification at all
        extra = [k for k in ("probability_nmosd", "call") if data.get(k) is not None]
        if extra or heatmap:
            raise NeuroResultError(f"{RESULT_FILE} has {', '.join(extra) or 'a heat map'} but no 'applies': "
                                   "a classification must say whether it applies.")
        return
    applies = data["applies"]
    if not isinstance(applies, bool):
        raise NeuroResultError(f"{RESULT_FILE}: applies must be true or false, got {applies!r}.")
    for key in ("model", "architecture", "input_mode"):
        _text(data, key)
    threshold = _number(data.get("threshold"), "threshold", 0.0, 1.0)
    p = data.get("probability_nmosd")
    if not applies:
        if p is not None or data.get("call") is not None:
            raise NeuroResultError(f"{RESULT_FILE}: a classification that does not apply has no probability_nmosd "
                                   "and no call (null).")
        _text(data, "reason")
        if heatmap:
            raise NeuroResultError(f"{RESULT_FILE}: a classification that does not apply has no heat map.")
        return
    if count == 0:
        raise NeuroResultError(f"{RESULT_FILE}: the classification cannot apply without any lesion (lesions.count 0).")
    p = _number(p, "probability_nmosd", 0.0, 1.0)
    expected = CALLS[int(p >= threshold)]
    near = abs(p - threshold) <= 1e-6   # a probability rounded onto the threshold: either call
    if check_withheld(dict(data), RESULT_FILE, NeuroResultError):
        return
    if data.get("call") != expected and not (near and data.get("call") in CALLS):
        raise NeuroResultError(f"{RESULT_FILE}: call must be {expected!r} for probability_nmosd {p} and threshold "
                               f"{threshold}, got {data.get('call')!r}.")


def check_rows(rows: list[LesionRow], count: int, where: str) -> None:
    """Raise `NeuroResultError` unless ``rows`` are ``count`` lesions with unique ids, volumes > 0, a
    location, finite centroids and voxel counts >= 1."""
    if len(rows) != count:
        raise NeuroResultError(f"{where}: {len(rows)} lesions listed, but {RESULT_FILE} counts {count}.")
    seen: set[int] = set()
    for r in rows:
        bad = ("id" if r.id < 1 or r.id in seen else
               "volume_ml" if not (math.isfinite(r.volume_ml) and r.volume_ml > 0) else
               "location" if not r.location.strip() else
               "centroid" if not all(math.isfinite(c) for c in r.centroid_ras) else
               "voxels" if r.voxels < 1 else "")
        if bad:
            raise NeuroResultError(f"{where}: lesion {r.id} has an invalid {bad} ({r}).")
        seen.add(r.id)


def check_locations(summary: Mapping[str, Any], rows: list[LesionRow], where: str) -> None:
    """Raise `NeuroResultError` unless the summary's per-location ``counts`` and ``volumes_ml`` (when given)
    are those of the lesion rows (volumes to rounding)."""
    counts, volumes = summary.get("counts"), summary.get("volumes_ml")
    for loc in sorted({r.location for r in rows} | set(counts or {}) | set(volumes or {})):
        mine = [r for r in rows if r.location == loc]
        if isinstance(counts, dict) and counts.get(loc, 0) != len(mine):
            raise NeuroResultError(f"{where}: {len(mine)} {loc} lesions listed, but {RESULT_FILE} counts "
                                   f"{counts.get(loc, 0)}.")
        total = sum(r.volume_ml for r in mine)
        if isinstance(volumes, dict) and abs(float(volumes.get(loc, 0.0)) - total) > 1e-3 + 0.01 * total:
            raise NeuroResultError(f"{where}: the {loc} lesions listed add up to {total:.4f} mL, but {RESULT_FILE} "
                                   f"says {volumes.get(loc, 0.0)} mL.")


def read_lesion_rows(path: Path) -> list[LesionRow]:
    """The rows of lesions.csv (columns, numbers and ids checked)."""
    try:
        lines = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise NeuroResultError(f"{path.name} cannot be read: {exc}") from None
    if not lines or tuple(lines[0]) != LESION_COLUMNS:
        raise NeuroResultError(f"{path.name} must have the columns {','.join(LESION_COLUMNS)}.")
    out = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            lid, vol, loc, r, a, s, vox = line
            out.append(LesionRow(int(lid), float(vol), loc, (float(r), float(a), float(s)), int(vox)))
        except ValueError:
            raise NeuroResultError(f"{path.name} line {n}: expected {','.join(LESION_COLUMNS)}, got {line}.") from None
    return out


def read_mask(path: Path, segment: str, reference: Optional[Volume]) -> Volume:
    """A one-segment ``.seg.nrrd`` (segment ``segment``) as a 0/1 uint8 mask, on ``reference``'s grid if given."""
    try:
        labels, table = read_segmentation(path)
    except VolumeError:
        raise
    except (OSError, ValueError) as exc:
        raise NeuroResultError(f"{path.name} cannot be read: {exc}") from None
    values = [v for v, info in table.items() if info.name == segment]
    if not values:
        raise NeuroResultError(f"{path.name} has no segment {segment!r} (segments: "
                               f"{', '.join(i.name for i in table.values()) or 'none'}).")
    present = {int(v) for v in np.unique(labels.array)} - {0}
    if not present <= {values[0]}:
        raise NeuroResultError(f"{path.name} holds label values {sorted(present - {values[0]})} besides "
                               f"{segment!r} ({values[0]}).")
    if reference is not None and not labels.same_geometry(reference, tol=1e-3):
        how = f"shape {labels.shape}, the FLAIR {reference.shape}" if labels.shape != reference.shape else \
            "same shape, another origin, spacing or orientation"
        raise VolumeError(f"{path.name} does not lie on the FLAIR's grid ({how}).")
    return labels.with_array((np.asarray(labels.array) == values[0]).astype(np.uint8))


# --------------------------------------------------------------------------- DICOM
#: Label values of the neuro SEG's segments (one mask each; the lesions lie inside the intracranial mask).
DICOM_LESION_VALUE, DICOM_BRAIN_VALUE = 1, 2


def dicom_report(data: Mapping[str, Any], lesions: Volume, brain: Optional[Volume]) -> Any:
    """What ``neuro lesions`` / ``neuro predict`` put into DICOM (:mod:`orbitai.dicom.export`): a SEG of the
    white-matter lesions and the intracranial mask, and an SR with the lesion count, total volume (cm3 = mL),
    % of intracranial volume, count and volume per location tied to the lesion segment, the intracranial
    volume tied to its segment and, from ``neuro predict``, P(NMOSD) with its model (a call marked do not use:
    "not assessed", without the probability). ``data`` is result.json's
    findings; the numbers are the same."""
    summary = _plain(dict(data)["lesions"])
    lesion_type = Code("SCT", "52988006", "Lesion")
    segments, masks, findings = [], [], []
    if int(summary["count"]) > 0 and bool(np.any(lesions.array)):
        segments.append(SegmentDef(DICOM_LESION_VALUE, "white_matter_lesions",
                                   Code("SCT", "49755003", "Morphologically Abnormal Structure"), lesion_type,
                                   colour=(216, 101, 79)))
        masks.append(np.asarray(lesions.array) != 0)
    if brain is not None and bool(np.any(brain.array)):
        segments.append(SegmentDef(DICOM_BRAIN_VALUE, "intracranial", ANATOMICAL_STRUCTURE,
                                   Code("SCT", "1101003", "Cranial Cavity"), colour=(241, 214, 145)))
        masks.append(np.asarray(brain.array) != 0)
    has = {s.value for s in segments}
    measures = [Measure(private_code("LESION-COUNT", "White matter lesion count"), float(summary["count"]), COUNT),
                Measure(VOLUME, float(summary["total_ml"]), CM3),
                Measure(private_code("LESION-PCT-ICV", "Lesion volume as percent of intracranial volume"),
                        float(summary["percent_icv"]), PERCENT)]
    for location, n in summary.get("counts", {}).items():
        measures.append(Measure(private_code(f"LESION-COUNT-{location}", f"Lesion count, {location.replace('_', ' ')}"),
                                float(n), COUNT))
    for location, ml in summary.get("volumes_ml", {}).items():
        measures.append(Measure(private_code(f"LESION-VOL-{location}", f"Lesion volume, {location.replace('_', ' ')}"),
                                float(ml), CM3))
    findings.append(Finding("white_matter_lesions", lesion_type, measures, Code("SCT", "68523003", "Cerebral White Matter"),
                            segment=DICOM_LESION_VALUE if DICOM_LESION_VALUE in has else None))
    findings.append(Finding("intracranial", Code("SCT", "1101003", "Cranial Cavity"),
                            [Measure(VOLUME, float(summary["icv_ml"]), CM3)],
                            segment=DICOM_BRAIN_VALUE if DICOM_BRAIN_VALUE in has else None))
    lesion_model = str(data.get("lesion_source") or "lesions")
    classifier = data.get("model") if data.get("applies") is not None else None
    if classifier and data.get("probability_nmosd") is not None:
        findings.append(call_finding("P(NMOSD)", "NMOSD vs MS", private_code("NMOSD-VS-MS", "NMOSD versus multiple "
                                     "sclerosis"), float(data["probability_nmosd"]),
                                     not_assessed(withhold_calls(dict(data)))))
    labels = lesions.with_array(np.zeros(lesions.shape, np.uint8)) if segments else None
    return DicomReport(str(classifier or lesion_model), "", findings, labels, segments,
                       "OrbitAI brain and white-matter lesions", "LESIONS",
                       "OrbitAI lesion measurements" + (" and NMOSD vs MS" if classifier else ""),
                       parameters=[f"lesions: {lesion_model}"], masks=masks, seg_model=lesion_model)
