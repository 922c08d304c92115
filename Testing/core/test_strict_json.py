"""Issue 69.4: every result.json, metadata.json and report a command writes is strict JSON (RFC 8259: no bare NaN or
Infinity, which a browser's JSON.parse rejects). One writer, `orbitai.staging.strict_json`, writes a value that
could not be computed as null; no module of the package writes JSON any other way."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np

from orbitai.classify.trust import Trust, write_trust
from orbitai.classify.trust_command import show_report
from orbitai.result import TaskResult
from orbitai.staging import strict_json

PACKAGE = Path(__file__).resolve().parents[2] / "orbitai"


def strict_load(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity, as JSON.parse does."""
    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_numbers_that_could_not_be_computed_as_null():
    data = {"nan": float("nan"), "inf": [np.float32(np.inf), -np.inf], "array": np.array([1.5, np.nan]),
            "int": np.int64(3), "flag": np.bool_(True), "tuple": (1, float("nan")), "text": "NaN"}
    back = strict_load(strict_json(data))
    assert back == {"nan": None, "inf": [None, None], "array": [1.5, None], "int": 3, "flag": True,
                    "tuple": [1, None], "text": "NaN"}
    assert strict_load(strict_json({"x": object()}, default=lambda o: float("inf"))) == {"x": None}


class _Result(TaskResult):
    task = "test"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return self.data

    def _write_files(self, folder: Path) -> dict[str, str]:
        return {}


def test_a_result_with_a_distance_that_could_not_be_computed_is_strict_json(tmp_path):
    path = _Result({"ood": {"distance": float("nan"), "threshold": float("inf"), "flagged": False}}).write(tmp_path / "r")
    assert strict_load(path.read_text())["ood"] == {"distance": None, "threshold": None, "flagged": False}


def test_the_bundle_metadata_and_the_trust_report_are_strict_json(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"name": "x", "files": {}}))
    trust = Trust([[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [0.0, 1.0]], 2.0, 1.3, float("nan"), 0.05, "synthetic")
    write_trust(tmp_path, trust)
    assert strict_load((tmp_path / "metadata.json").read_text())["trust"]["ece_before"] is None
    show_report({"calibration": "temperature", "validation": {"ece_calibrated": float("nan")}}, str(tmp_path / "r.json"))
    assert strict_load((tmp_path / "r.json").read_text())["validation"]["ece_calibrated"] is None


#: Writers of JSON that is no file or output of a command: the warm worker's requests down a pipe, read by Python.
NOT_OUTPUTS = {"jobs/warm.py"}
WRITERS = {"write_text", "write", "print", "write_text_atomic", "dump"}


def _json_writes(tree: ast.AST) -> list[int]:
    """Lines where ``json.dump`` writes or ``json.dumps`` text is handed to a writer (write_text, write, print,
    write_text_atomic) in ``tree``."""
    def is_json(call: ast.AST, name: str) -> bool:
        return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == name
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "json")

    lines = []
    for node in ast.walk(tree):
        if is_json(node, "dump"):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in WRITERS and any(is_json(n, "dumps") for a in node.args for n in ast.walk(a)):
                lines.append(node.lineno)
    return lines


def test_no_module_writes_json_but_through_the_strict_writer():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("testing/") or rel in NOT_OUTPUTS or rel == "staging.py":
            continue
        found += [f"{rel}:{n}" for n in _json_writes(ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, f"JSON written without orbitai.staging.strict_json (NaN would be a bare NaN): {found}"
