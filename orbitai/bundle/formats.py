"""Bundle files other than PyTorch weights, stored without pickle.

``metadata.json`` lists them under ``files``: role -> ``{"path", "format", "sha256"}``. The
checksum is verified before a file is opened; then it is read by its format:

* ``skops``: a fitted scikit-learn estimator or pipeline (``skops.io``: a zip of JSON and arrays).
  It loads only if every type in it is trusted (skops' own defaults plus `TRUSTED_TYPES`);
  anything else, a pickle included, is refused.
* ``json`` / ``radiomics_params``: plain JSON (a pyradiomics parameter set is a JSON object with
  pyradiomics' ``setting``, ``imageType``, ``featureClass``, ``voxelSetting`` sections).
* ``torch_state_dict``: a tensor state_dict loaded with ``torch.load(weights_only=True)``.
* ``npz``: named numeric arrays (NumPy, ``allow_pickle=False``), e.g. a classifier's trust statistics.
"""
from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio

from orbitai.errors import BundleError
from orbitai.io.checksums import sha256_file
from orbitai.staging import strict_json

FORMATS = ("skops", "json", "radiomics_params", "torch_state_dict", "npz")
#: Types trusted beyond skops' defaults (scikit-learn's fitted tree structure, used by forests).
TRUSTED_TYPES = ("sklearn.tree._tree.Tree",
                 # a Platt-scaled SVM (CalibratedClassifierCV): plain scikit-learn classes holding arrays
                 "sklearn.calibration._CalibratedClassifier", "sklearn.calibration._SigmoidCalibration")
RADIOMICS_SECTIONS = ("setting", "imageType", "featureClass", "voxelSetting")


def file_entry(path: str | os.PathLike, fmt: str) -> dict[str, str]:
    """The ``files`` entry of a file written into a bundle folder (name, format, checksum)."""
    if fmt not in FORMATS:
        raise BundleError(f"Unknown bundle file format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return {"path": Path(path).name, "format": fmt, "sha256": sha256_file(path)}


def save_sklearn(estimator: Any, path: str | os.PathLike) -> dict[str, str]:
    """Write a fitted scikit-learn estimator with skops; returns its ``files`` entry."""
    sio.dump(estimator, Path(path))
    return file_entry(path, "skops")


def save_json(data: Any, path: str | os.PathLike, fmt: str = "json") -> dict[str, str]:
    """Write a JSON parameter file (``fmt`` json or radiomics_params); returns its ``files`` entry."""
    if fmt == "radiomics_params":
        check_radiomics_params(data, str(path))
    Path(path).write_text(strict_json(data, sort_keys=True))
    return file_entry(path, fmt)


def save_npz(arrays: dict[str, Any], path: str | os.PathLike) -> dict[str, str]:
    """Write named numeric arrays (compressed .npz, no objects); returns its ``files`` entry."""
    with open(path, "wb") as f:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return file_entry(path, "npz")


def check_radiomics_params(data: Any, where: str) -> None:
    """Raise `BundleError` unless ``data`` looks like a pyradiomics parameter set."""
    if not isinstance(data, dict) or not data:
        raise BundleError(f"{where}: a radiomics parameter file must be a non-empty JSON object.")
    unknown = sorted(set(data) - set(RADIOMICS_SECTIONS))
    if unknown:
        raise BundleError(f"{where}: unknown radiomics parameter sections {unknown}; "
                          f"expected {', '.join(RADIOMICS_SECTIONS)}.")
    for key, value in data.items():
        if not isinstance(value, dict):
            raise BundleError(f"{where}: radiomics section {key!r} must be an object.")


def load_file(bundle_dir: str | os.PathLike, entry: dict[str, str], role: str = "file") -> Any:
    """Verify a bundle file's checksum, then read it by its format (never with pickle)."""
    folder = Path(bundle_dir)
    try:
        name, fmt, digest = entry["path"], entry["format"], entry["sha256"]
    except (KeyError, TypeError):
        raise BundleError(f"Bundle {folder}: the {role} entry needs path, format and sha256.") from None
    path = folder / name
    if Path(name).name != name or not path.is_file():
        raise BundleError(f"Bundle {folder}: the {role} file {name} is missing.")
    if sha256_file(path) != digest:
        raise BundleError(f"Bundle {folder}: checksum mismatch for {name} ({role}). The file is corrupt or was "
                          "replaced; reinstall or retrain the bundle.")
    if fmt == "skops":
        return _load_skops(path, role)
    if fmt in ("json", "radiomics_params"):
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"Bundle {folder}: {name} ({role}) is not valid JSON ({exc}).") from None
        if fmt == "radiomics_params":
            check_radiomics_params(data, f"Bundle {folder}: {name}")
        return data
    if fmt == "npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise BundleError(f"Bundle {folder}: {name} ({role}) is not a plain .npz of numeric arrays and was "
                              f"refused ({exc}).") from None
    if fmt == "torch_state_dict":
        import torch

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise BundleError(f"Bundle {folder}: {name} ({role}) is not a plain tensor state_dict and was "
                              "refused for safety.") from exc
    raise BundleError(f"Bundle {folder}: unknown format {fmt!r} for {name}; expected one of {', '.join(FORMATS)}.")


def _load_skops(path: Path, role: str) -> Any:
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path.name} ({role}) is not a skops file (a pickle or other format was refused).")
    try:
        untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    except Exception as exc:  # noqa: BLE001 - any failure to parse means the file is unusable
        raise BundleError(f"{path.name} ({role}) cannot be read as a skops file: {exc}") from None
    if untrusted:
        raise BundleError(f"{path.name} ({role}) holds types that are not trusted: {', '.join(untrusted)}; "
                          "it was refused.")
    try:
        return sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds on a malformed file
        raise BundleError(f"{path.name} ({role}) cannot be loaded: {exc}") from None
