"""The result folder of ``orbitai tao predict --out DIR`` (written and validated here only).

``DIR/result.json``::

    {"task": "tao_activity", "model": "tao_network_b_demo", "network": "B", "device": "cpu",
     "seconds": 1.2, "threshold": 0.5, "segmentation": "given", "warnings": [],
     "eyes": [{"side": "right", "probability_active": 0.83, "call": "active", "slices": 5,
               "crop_box_ras": {"center": [..3], "size_mm": [..3], "axes": [[..3] x 3], "corners": [...]}}],
     "files": {"occlusion": "occlusion.nrrd", "gradcam": "gradcam.nrrd"}}

An eye whose call is marked "do not use" (``trust``) has ``call`` null and a ``reason`` (not assessed), its
``probability_active`` kept as a detail (`orbitai.result.withhold_call`).

plus the heat maps (float32 in [0, 1] on the input's grid) that ``files`` names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.errors import ResultError
from orbitai.io import Volume, write_volume
from orbitai.labels import LEFT, RIGHT, Code
from orbitai.result import RESULT_FILE, TaskResult, check_withheld, not_assessed, withhold_call

#: Heat-map kinds: file stem -> display name.
MAP_KINDS = {"occlusion": "occlusion", "gradcam": "Grad-CAM"}
#: The figure that ``predict --figure`` adds to OUT (the inputs with both maps).
FIGURE_FILE = "tao_maps.png"
#: What one ``tao predict`` may write into its folder (OUT, or OUT/<case>/ in a cohort).
CASE_FILES = (RESULT_FILE, *(f"{kind}.nrrd" for kind in MAP_KINDS), FIGURE_FILE)


class TaoResultError(ResultError):
    """A ``tao predict`` output folder that is missing files or does not follow the contract."""


@dataclass
class TaoResult(TaskResult):
    """``data``: result.json as a dict; ``maps``: kind -> heat-map volume on the input grid."""

    data: dict[str, Any]
    maps: dict[str, Volume] = field(default_factory=dict)

    task = "tao_activity"
    error = TaoResultError

    def __post_init__(self) -> None:
        withhold_calls(self.data)

    @property
    def model(self) -> str:
        return str(self.data.get("model", ""))

    @property
    def warnings(self) -> list[str]:
        return list(self.data.get("warnings", []))

    @property
    def eyes(self) -> list[dict[str, Any]]:
        return list(self.data["eyes"])

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in ("task", "files")}

    def _write_files(self, folder: Path) -> dict[str, str]:
        files = {}
        for kind, vol in self.maps.items():
            if kind not in MAP_KINDS:
                raise ValueError(f"Unknown TAO map kind {kind!r}; expected one of {list(MAP_KINDS)}.")
            files[kind] = write_volume(vol, folder / f"{kind}.nrrd").name
        return files

    @classmethod
    def _from_folder(cls, data: dict[str, Any], folder: Path, reference: Optional[Volume]) -> "TaoResult":
        check_eyes(withhold_calls(data))    # an earlier result's marked call reads as not assessed too
        data.setdefault("threshold", 0.5)
        maps: dict[str, Volume] = {}
        for kind in MAP_KINDS:
            path = cls.file_of(data, folder, kind, required=False)
            if path is not None:
                maps[kind] = cls.read_map(path, f"{kind} map", reference)
        return cls(data, maps)


def withhold_calls(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with each eye's call marked "do not use" withheld (`orbitai.result.withhold_call`), in place."""
    eyes = result.get("eyes")
    for e in eyes if isinstance(eyes, list) else []:
        if isinstance(e, dict):
            withhold_call(e, "probability_active")
    return result


def check_eyes(result: dict[str, Any]) -> None:
    """Raise `TaoResultError` unless ``result['eyes']`` follows the contract."""
    try:
        threshold = float(result.get("threshold", 0.5))
    except (TypeError, ValueError):
        raise TaoResultError(f"result.json: threshold must be a number, got {result.get('threshold')!r}.") from None
    if not 0.0 <= threshold <= 1.0:
        raise TaoResultError(f"result.json: threshold must be in [0, 1], got {threshold}.")
    if not isinstance(result.get("eyes"), list) or not result["eyes"]:
        raise TaoResultError("result.json lists no eyes.")
    sides = []
    for n, e in enumerate(result["eyes"]):
        where = f"result.json eye {n + 1}"
        if not isinstance(e, dict):
            raise TaoResultError(f"{where} is not an object.")
        if e.get("side") not in ("right", "left"):
            raise TaoResultError(f"{where}: side must be 'right' or 'left', got {e.get('side')!r}.")
        p = e.get("probability_active")
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise TaoResultError(f"{where}: probability_active must be in [0, 1], got {p!r}.")
        if not check_withheld(e, where, TaoResultError) and e.get("call") not in ("active", "inactive"):
            raise TaoResultError(f"{where}: call must be 'active' or 'inactive', got {e.get('call')!r}.")
        box = e.get("crop_box_ras")
        if not isinstance(box, dict):
            raise TaoResultError(f"{where} has no crop_box_ras.")
        _vec(box.get("center"), 3, f"{where} crop centre")
        size = _vec(box.get("size_mm"), 3, f"{where} crop size")
        if min(size) <= 0:
            raise TaoResultError(f"{where}: crop size must be positive, got {size}.")
        axes = np.array([_vec(a, 3, f"{where} crop axis") for a in (box.get("axes") or [])])
        if axes.shape != (3, 3) or not np.allclose(axes @ axes.T, np.eye(3), atol=1e-3):
            raise TaoResultError(f"{where}: crop axes must be three orthonormal 3-vectors.")
        sides.append(e["side"])
    if len(set(sides)) != len(sides):
        raise TaoResultError(f"result.json lists the same eye twice: {sides}.")


def _vec(value: Any, n: int, what: str) -> list[float]:
    return TaoResult.vector(value, n, what)


def dicom_report(data: dict[str, Any]) -> Any:
    """What ``tao predict`` puts into DICOM (:mod:`orbitai.dicom.export`): an SR with P(active) of each eye, its
    side the finding site's laterality, the model as the algorithm (no SEG: the result holds no label map); an eye
    whose call is marked do not use has no probability there: its finding is "not assessed" with the reason
    (`orbitai.dicom.sr.call_finding`). ``data`` is result.json's body; the numbers are the same."""
    from orbitai.dicom.export import DicomReport
    from orbitai.dicom.sr import call_finding, private_code

    active = private_code("TAO-ACTIVE", "Active thyroid-associated ophthalmopathy")
    findings = [call_finding(f"P(active) {e['side']}", f"TAO activity {e['side']}", active,
                             float(e["probability_active"]), not_assessed(withhold_call(dict(e), "probability_active")),
                             Code("SCT", "81745001", "Eye"), LEFT if e["side"] == "left" else RIGHT)
                for e in data["eyes"]]
    return DicomReport(str(data.get("model", "")), "", findings, sr_description="OrbitAI TAO activity")
