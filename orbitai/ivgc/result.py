"""The result folder of ``orbitai ivgc predict --out DIR`` (written and validated here only).

``DIR/result.json``::

    {"task": "ivgc_response", "probability": 0.83, "call": "responder", "threshold": 0.5,
     "model": "ivgc_svm_demo", "kind": "svm", "strategy": "mrlr", "clinical_used": false,
     "device": "cpu", "seconds": 3.1, "warnings": [],
     "files": {"features": "features.csv", "gradcam": "gradcam.nrrd"}}

A call marked "do not use" (``trust``) is ``null`` with a ``reason`` (not assessed); ``probability`` is kept as a
detail (`orbitai.result.withhold_call`).

``features.csv`` (``feature,value,coefficient``: the model's selected radiomics features of this
patient, the coefficient empty where the model has none) and, for image models unless
``--no-gradcam``, ``gradcam.nrrd`` (float32 in [0, 1] on the input MRI's grid).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from orbitai.dicom.export import DicomReport
from orbitai.dicom.sr import call_finding, private_code
from orbitai.errors import ResultError
from orbitai.io import Volume, write_volume
from orbitai.result import TaskResult, check_withheld, not_assessed, withhold_call

CALLS = ("non-responder", "responder")
FEATURE_COLUMNS = ("feature", "value", "coefficient")
FEATURES_FILE, GRADCAM_FILE = "features.csv", "gradcam.nrrd"


class IvgcResultError(ResultError):
    """An ``ivgc predict`` output folder that is missing files or does not follow the contract."""


@dataclass
class FeatureValue:
    name: str
    value: float
    coefficient: Optional[float] = None


@dataclass
class IvgcResult(TaskResult):
    """``data``: result.json without ``files``; ``features``: the rows of features.csv; ``gradcam``: the map."""

    data: dict[str, Any]
    features: list[FeatureValue] = field(default_factory=list)
    gradcam: Optional[Volume] = None

    task = "ivgc_response"
    error = IvgcResultError

    def __post_init__(self) -> None:
        withhold_call(self.data, "probability")      # a call marked do not use is not assessed (issue 61)

    @property
    def probability(self) -> float:
        return float(self.data["probability"])

    @property
    def call(self) -> Optional[str]:
        """The call, None when it is not assessed (marked do not use)."""
        call = self.data.get("call")
        return None if call is None else str(call)

    @property
    def warnings(self) -> list[str]:
        return list(self.data.get("warnings", []))

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in ("task", "files")}

    def features_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(FEATURE_COLUMNS)
        for f in self.features:
            w.writerow([f.name, repr(float(f.value)), "" if f.coefficient is None else repr(float(f.coefficient))])
        return buf.getvalue()

    def _write_files(self, folder: Path) -> dict[str, str]:
        check_data(self.data)
        (folder / FEATURES_FILE).write_text(self.features_csv())
        files = {"features": FEATURES_FILE}
        if self.gradcam is not None:
            files["gradcam"] = write_volume(self.gradcam, folder / GRADCAM_FILE).name
        return files

    @classmethod
    def _from_folder(cls, data: dict[str, Any], folder: Path, reference: Optional[Volume]) -> "IvgcResult":
        check_data(withhold_call(data, "probability"))    # an earlier result's marked call reads as not assessed
        features = read_features(cls.file_of(data, folder, "features"))
        path = cls.file_of(data, folder, "gradcam", required=False)
        gradcam = None
        if path is not None:
            gradcam = cls.read_map(path, "Grad-CAM map", reference)
            if float(gradcam.array.min()) < -1e-6 or float(gradcam.array.max()) > 1 + 1e-6:
                raise IvgcResultError("The Grad-CAM map must lie in [0, 1].")
        return cls(data, features, gradcam)


def check_data(data: dict[str, Any]) -> None:
    """Raise `IvgcResultError` unless result.json's findings follow the contract."""
    for key in ("probability", "threshold"):
        v = data.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
            raise IvgcResultError(f"result.json: {key} must be a number in [0, 1], got {v!r}.")
    expected = CALLS[int(float(data["probability"]) >= float(data["threshold"]))]
    if not check_withheld(data, "result.json", IvgcResultError) and data.get("call") != expected:
        raise IvgcResultError(f"result.json: call must be {expected!r} for probability {data['probability']} and "
                              f"threshold {data['threshold']}, got {data.get('call')!r}.")
    for key in ("model", "kind", "strategy"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise IvgcResultError(f"result.json: {key} must be a non-empty string, got {data.get(key)!r}.")
    if not isinstance(data.get("clinical_used"), bool):
        raise IvgcResultError(f"result.json: clinical_used must be true or false, got {data.get('clinical_used')!r}.")


def read_features(path: Path) -> list[FeatureValue]:
    """The rows of features.csv (its columns and numbers checked)."""
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except (OSError, UnicodeDecodeError) as exc:
        raise IvgcResultError(f"{path.name} cannot be read: {exc}") from None
    if not rows or tuple(rows[0]) != FEATURE_COLUMNS:
        raise IvgcResultError(f"{path.name} must have the columns {','.join(FEATURE_COLUMNS)}.")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        try:
            name, value, coef = row
            v, c = float(value), (float(coef) if coef != "" else None)
        except ValueError:
            raise IvgcResultError(f"{path.name} line {n}: expected feature,value,coefficient numbers, got {row}.") from None
        if not math.isfinite(v) or (c is not None and not math.isfinite(c)):
            raise IvgcResultError(f"{path.name} line {n}: {name} is not finite.")
        out.append(FeatureValue(name, v, c))
    return out


def dicom_report(data: dict[str, Any]) -> Any:
    """What ``ivgc predict`` puts into DICOM (:mod:`orbitai.dicom.export`): an SR with P(response to intravenous
    glucocorticoids), the model as the algorithm and its kind, ROI strategy and clinical use as the algorithm's
    parameters (no SEG: the result holds no label map); a call marked do not use is "not assessed" there, without
    its probability (`orbitai.dicom.sr.call_finding`). ``data`` is result.json's body; the numbers are the same."""
    response = private_code("IVGC-RESPONSE", "Response to intravenous glucocorticoids")
    finding = call_finding("P(responder)", "IVGC response", response, float(data["probability"]),
                           not_assessed(withhold_call(dict(data), "probability")))
    parameters = [f"kind: {data.get('kind', '')}", f"ROI strategy: {data.get('strategy', '')}",
                  f"clinical used: {str(bool(data.get('clinical_used'))).lower()}"]
    return DicomReport(str(data.get("model", "")), "", [finding], sr_description="OrbitAI IVGC response",
                       parameters=parameters)
