"""Cohort manifests and the preprocessing shared by segmentation training and evaluation.

A manifest is a CSV with at least ``case_id,image,segmentation`` (paths relative to the
CSV's folder or absolute); more columns (``label``, clinical features) are allowed.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from orbitai.io import Volume, VolumeError, read_volume


@dataclass
class Case:
    case_id: str
    image: Path
    segmentation: Path | None
    row: dict[str, str]


def read_manifest(path: str | Path, need_segmentation: bool = True) -> list[Case]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Manifest not found: {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        needed = ["case_id", "image"] + (["segmentation"] if need_segmentation else [])
        missing = [c for c in needed if c not in cols]
        if missing:
            raise VolumeError(f"Manifest {path} lacks column(s) {missing}; it has {cols}.")
        cases = []
        for i, row in enumerate(reader, start=2):
            def resolve(p: str) -> Path:
                q = Path(p)
                return q if q.is_absolute() else path.parent / q
            if not row.get("image"):
                raise VolumeError(f"Manifest {path} line {i}: empty image path.")
            seg = row.get("segmentation")
            if need_segmentation and not seg:
                raise VolumeError(f"Manifest {path} line {i}: empty segmentation path.")
            cases.append(Case(row["case_id"], resolve(row["image"]), resolve(seg) if seg else None, row))
    if not cases:
        raise VolumeError(f"Manifest {path} lists no cases.")
    return cases


def read_labels(path: Path) -> Volume:
    """A label map from ``.seg.nrrd`` (Slicer segmentation) or any label volume file."""
    if path.name.endswith(".seg.nrrd"):
        from orbitai.segfile import read_segmentation

        return read_segmentation(path)[0]
    return read_volume(path)


def to_classes(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Orbit-scheme values -> the model's side-agnostic classes through ``SegSpec.class_lut()``."""
    if labels.min() < 0 or labels.max() >= len(lut):
        raise VolumeError(f"Label values must lie in 0..{len(lut) - 1} (the orbit scheme); found "
                          f"{int(labels.min())}..{int(labels.max())}.")
    return lut[labels.astype(np.int64)]


def resample_pair(image: Volume, labels: Volume, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Image (linear) and labels (nearest) on the model's axis-aligned grid."""
    from orbitai.seg.inference import model_grid

    if not image.same_geometry(labels, tol=1e-3):
        raise VolumeError("Image and segmentation do not share the same geometry (size, spacing, origin, "
                          "direction); resample the segmentation onto the image first.")
    ref = model_grid(image, spacing)
    img = sitk.Cast(image.to_sitk(), sitk.sitkFloat32)
    fill = float(image.array.min())
    a = sitk.GetArrayFromImage(sitk.Resample(img, ref, sitk.Transform(), sitk.sitkLinear, fill))
    lab = labels.to_sitk()
    b = sitk.GetArrayFromImage(sitk.Resample(lab, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
    return a, b
