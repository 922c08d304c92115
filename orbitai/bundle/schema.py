"""JSON Schemas of ``metadata.json``, one per task (``schemas/<task>.schema.json``, draft 2020-12).

`validate_metadata` checks a bundle's metadata against the base schema and its task's schema at
load and at save time and raises `BundleError` with one line naming the first problem. Listing
bundles needs only the required keys: Slicer lists the models at module load, before the
first run installs ``jsonschema``; loading or saving a model always runs the full check.

This layer names no task: the tasks are the schema files present, and a rule JSON Schema cannot state
(e.g. one field bounded by another) is registered by its task with `register_rule` when the task's
package is imported (``orbitai/tao/__init__.py``).
"""
from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from orbitai.errors import BundleError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
_SUFFIX = ".schema.json"
#: Tasks that have a schema (``schemas/<task>.schema.json``; ``base`` holds the rules of every task).
TASKS = tuple(sorted(p.name[:-len(_SUFFIX)] for p in SCHEMA_DIR.glob(f"*{_SUFFIX}") if p.name != f"base{_SUFFIX}"))
#: A task's rules beyond its JSON Schema, by task (see `register_rule`).
_RULES: dict[str, list[Callable[[dict[str, Any]], Any]]] = {}


def register_rule(task: str, rule: Callable[[dict[str, Any]], Any]) -> None:
    """Run ``rule(metadata)`` after the full schema check of every ``task`` bundle; it raises `BundleError`
    (one line) when the metadata breaks it. Registered by the task itself, so the bundle layer imports no task."""
    if task not in TASKS:
        raise BundleError(f"Unknown bundle task {task!r}; known tasks: {', '.join(TASKS)}.")
    if rule not in _RULES.setdefault(task, []):
        _RULES[task].append(rule)


def checks_key() -> tuple[Any, ...]:
    """What the check of a metadata file depends on beside the file: whether the full check runs here and each
    task's registered rules. `orbitai.bundle.core.iter_bundles` checks a file again when this changes."""
    return jsonschema_available(), tuple((task, tuple(rules)) for task, rules in sorted(_RULES.items()))


@lru_cache(maxsize=None)
def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


@lru_cache(maxsize=None)
def _validator(task: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        (f"orbitai/bundle/{n}.schema.json", Resource.from_contents(_schema(n))) for n in ("base", *TASKS))
    return Draft202012Validator(_schema(task), registry=registry)


def schema(task: str) -> dict[str, Any]:
    """The JSON Schema of ``task``'s metadata (base rules are included by ``$ref``)."""
    if task not in TASKS:
        raise BundleError(f"Unknown bundle task {task!r}; known tasks: {', '.join(TASKS)}.")
    return _schema(task)


def jsonschema_available() -> bool:
    """Whether the full schema check can run here (``jsonschema`` is installed)."""
    try:
        return importlib.util.find_spec("jsonschema") is not None
    except (ImportError, ValueError):   # a blocked or half-installed module
        return False


def validate_metadata(meta: Any, where: str = "metadata.json", full: bool | None = None) -> None:
    """Raise `BundleError` (one line, prefixed by ``where``) unless ``meta`` fits its task's schema.

    The required keys and the task are always checked. ``full=None`` adds the full JSON-Schema check
    (and the task's own rules) when ``jsonschema`` is installed; ``full=True`` requires it (loading
    or saving a model); ``full=False`` checks only the keys. The task's own rules (`register_rule`) run
    with the full check once the task's package is imported."""
    if not isinstance(meta, dict):
        raise BundleError(f"{where} must be a JSON object.")
    missing = [k for k in _schema("base")["required"] if k not in meta]
    task = meta.get("task")
    if not missing and task in TASKS:
        missing = [k for k in _schema(task)["required"] if k not in meta]
    if missing:
        raise BundleError(f"{where} lacks required keys {missing}.")
    if task not in TASKS:
        raise BundleError(f"{where}: unknown task {task!r}; known tasks: {', '.join(TASKS)}.")
    if full is None:
        full = jsonschema_available()
    if not full:
        return
    try:
        from jsonschema.exceptions import best_match
        validator = _validator(task)
    except ImportError as exc:
        raise BundleError(f"{where} cannot be checked: the Python package {exc.name or 'jsonschema'!r} is "
                          "missing; install OrbitAI's requirements (pip install jsonschema).") from exc
    error = best_match(validator.iter_errors(meta))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise BundleError(f"{where} does not fit the {task} schema at {at}: {error.message}.")
    for rule in _RULES.get(task, ()):   # e.g. TAO: the input block's rules live with the preprocessing that reads it
        rule(meta)
