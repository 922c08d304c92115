"""Radiomics protocols: shipped pyradiomics parameter files, loaded and validated.

A protocol file (YAML or JSON) is either a plain pyradiomics parameter file (``imageType``,
``featureClass``, ``setting``) or a list of such blocks under ``passes`` with a shared top-level
``setting``; see ``params/ivgc.yaml``. Each pass runs as one pyradiomics extractor. Protocols are
plain data (:meth:`RadiomicsProtocol.to_dict`), so a model bundle stores one as JSON.
"""
from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional

from orbitai.errors import InputError
from orbitai.staging import looks_like_path

_PYRADIOMICS_KEYS = ("imageType", "featureClass", "setting", "voxelSetting")
_PROTOCOL_KEYS = ("name", "description", "features", "setting", "passes")


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped in ``orbitai/radiomics/params``."""
    folder = resources.files("orbitai.radiomics").joinpath("params")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, source: str) -> Any:
    from ruamel.yaml import YAML, YAMLError  # comes with pyradiomics (through pykwalify)

    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        first = " ".join(str(exc).split())
        raise InputError(f"Radiomics parameter file {source} is not valid YAML: {first}") from exc


@dataclass(frozen=True)
class RadiomicsProtocol:
    """Named feature-extraction passes, each a pyradiomics parameter dict."""

    name: str
    passes: tuple[dict[str, Any], ...]
    description: str = ""
    #: Number of features per ROI the protocol is meant to give (checked by tests), if stated.
    features: Optional[int] = None
    source: str = field(default="", compare=False)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike = "ivgc") -> "RadiomicsProtocol":
        """A shipped protocol by name (``"ivgc"``) or a parameter file by path."""
        text, source = _protocol_text(name_or_path)
        data = _read_yaml(text, source)
        default = Path(source).name.split(".")[0]
        return cls.from_dict(data, source=source, default_name=default)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", default_name: str = "custom") -> "RadiomicsProtocol":
        if not isinstance(data, Mapping):
            raise InputError(f"Radiomics parameter file {source} must hold a mapping (imageType, featureClass, "
                             "setting, or passes).")
        if "passes" not in data:       # a plain pyradiomics parameter file: one pass
            unknown = sorted(set(data) - set(_PYRADIOMICS_KEYS))
            if unknown:
                raise InputError(f"Radiomics parameter file {source}: unknown keys {unknown}; a pyradiomics file "
                                 f"holds {list(_PYRADIOMICS_KEYS)}.")
            passes = [dict(data)]
            meta: Mapping[str, Any] = {}
        else:
            unknown = sorted(set(data) - set(_PROTOCOL_KEYS))
            if unknown:
                raise InputError(f"Radiomics protocol {source}: unknown keys {unknown}; a protocol holds "
                                 f"{list(_PROTOCOL_KEYS)}.")
            if not isinstance(data["passes"], list) or not data["passes"]:
                raise InputError(f"Radiomics protocol {source}: 'passes' must be a non-empty list of pyradiomics "
                                 "parameter blocks.")
            shared = dict(data.get("setting") or {})
            passes = []
            for p in data["passes"]:
                p = copy.deepcopy(dict(p))
                p["setting"] = {**shared, **(p.get("setting") or {})}
                passes.append(p)
            meta = data
        for i, p in enumerate(passes, start=1):
            _validate_pass(p, f"{source}, pass {i}")
        features = meta.get("features")
        return cls(name=str(meta.get("name", default_name)), passes=tuple(passes),
                   description=" ".join(str(meta.get("description", "")).split()),
                   features=None if features is None else int(features), source=source)

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` reads back (settings are already merged per pass)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description,
                               "passes": copy.deepcopy(list(self.passes))}
        if self.features is not None:
            out["features"] = self.features
        return out

    @property
    def bin_width(self) -> float:
        """The first pass's bin width (pyradiomics' default 25 when unset)."""
        return float(self.passes[0].get("setting", {}).get("binWidth", 25))


def _protocol_text(name_or_path: str | os.PathLike) -> tuple[str, str]:
    """A shipped protocol's name first, then a path (`orbitai.staging.looks_like_path`: text written as a path
    is only a path): a folder ``ivgc`` in the working directory never hides the shipped ``ivgc``."""
    path = Path(name_or_path)
    name = str(name_or_path)
    as_path = looks_like_path(name, (".yaml", ".yml", ".json"))
    ref = resources.files("orbitai.radiomics").joinpath("params").joinpath(f"{name}.yaml")
    if not as_path and ref.is_file():
        return ref.read_text(), f"{name}.yaml"
    if path.is_file():
        return path.read_text(), str(path)
    if as_path or path.exists():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise InputError(f"The radiomics parameter file {path} {what}; give a YAML/JSON file or one of the shipped "
                         f"protocols {shipped_protocols()}.")
    raise InputError(f"Unknown radiomics protocol {name!r}; shipped: {shipped_protocols()}, or give a "
                     "parameter file path.")


def _validate_pass(params: dict[str, Any], where: str) -> None:
    """pyradiomics' own schema check, its error as one line."""
    make_extractor(params, where)


class _QuietSumAverage(logging.Filter):
    """pyradiomics warns on every GLCM that Sum Average = 2 x Joint Average (symmetrical GLCM);
    the feature stays in the set (the paper's 24 GLCM features), the repeated line goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("GLCM is symmetrical")


_QUIET = _QuietSumAverage()


def make_extractor(params: Mapping[str, Any], where: str = "parameters"):
    """A pyradiomics ``RadiomicsFeatureExtractor`` for one pass (its schema errors as InputError)."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    glcm_log = logging.getLogger("radiomics.glcm")
    if _QUIET not in glcm_log.filters:
        glcm_log.addFilter(_QUIET)
    # pyradiomics sets its logger to INFO, whose records reach the application's handlers: a line per
    # feature class and image; keep them for a verbose (DEBUG) run only.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("radiomics").setLevel(logging.WARNING)

    try:
        return RadiomicsFeatureExtractor(copy.deepcopy(dict(params)))
    except Exception as exc:     # pykwalify SchemaError and pyradiomics' ValueErrors alike
        msg = " ".join(str(getattr(exc, "msg", exc)).split())
        raise InputError(f"Radiomics parameters {where} are not valid for pyradiomics: {msg}") from exc
