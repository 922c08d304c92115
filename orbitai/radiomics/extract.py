"""Radiomics features per ROI of a label map (one ROI per muscle, or unions of labels), as a tidy
table: one row per (case, ROI, feature)."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import SimpleITK as sitk

from orbitai.errors import InputError
from orbitai.io import read_volume
from orbitai.radiomics.protocol import RadiomicsProtocol, make_extractor
from orbitai.radiomics.shared import SharedExtractor

ImageLike = Union[sitk.Image, str, os.PathLike]
#: ROI name -> the label value, or the label values whose union forms the ROI.
Rois = Mapping[str, Union[int, Sequence[int]]]


@dataclass(frozen=True)
class FeatureRow:
    case_id: str
    roi: str
    image_type: str        # pyradiomics' image type: original, square, squareroot, wavelet-LLH, ...
    feature_class: str     # shape, firstorder, glcm, glrlm, glszm, ...
    feature: str           # e.g. Mean, Correlation
    value: float

    @property
    def name(self) -> str:
        """pyradiomics' feature name, e.g. ``wavelet-LLH_firstorder_Median``."""
        return f"{self.image_type}_{self.feature_class}_{self.feature}"


class FeatureTable:
    """Long ("tidy") table of radiomics features; :meth:`wide` gives the cases x features matrix."""

    COLUMNS = ("case_id", "roi", "image_type", "feature_class", "feature", "value")

    def __init__(self, rows: Iterable[FeatureRow] = ()):
        self.rows: list[FeatureRow] = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[FeatureRow]:
        return iter(self.rows)

    @classmethod
    def concat(cls, tables: Iterable["FeatureTable"]) -> "FeatureTable":
        return cls(r for t in tables for r in t.rows)

    def value(self, roi: str, name: str, case_id: Optional[str] = None) -> float:
        """One feature (pyradiomics name) of one ROI (and case, when the table holds several)."""
        hits = [r.value for r in self.rows if r.roi == roi and r.name == name
                and (case_id is None or r.case_id == case_id)]
        if len(hits) != 1:
            raise KeyError(f"{len(hits)} rows for ROI {roi!r}, feature {name!r}, case {case_id!r}")
        return hits[0]

    def wide(self, rois: Optional[Sequence[str]] = None) -> tuple[list[str], list[str], np.ndarray]:
        """``(case_ids, names, X)``: one row per case, one column per ROI feature named
        ``<roi>_<image type>_<class>_<feature>`` (the paper's ``all_original_shape_MajorAxisLength``)."""
        keep = set(rois) if rois is not None else None
        cases: dict[str, dict[str, float]] = {}
        for r in self.rows:
            if keep is None or r.roi in keep:
                cases.setdefault(r.case_id, {})[f"{r.roi}_{r.name}"] = r.value
        if not cases:
            return [], [], np.zeros((0, 0))
        case_ids = list(cases)
        names = list(cases[case_ids[0]])
        for c in case_ids[1:]:
            if set(cases[c]) != set(names):
                raise InputError(f"Case {c} has other radiomics features than case {case_ids[0]}; extract every "
                                 "case with the same protocol and ROIs.")
        return case_ids, names, np.array([[cases[c][n] for n in names] for c in case_ids], dtype=np.float64)

    def to_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.COLUMNS)
            for r in self.rows:
                w.writerow([r.case_id, r.roi, r.image_type, r.feature_class, r.feature, repr(r.value)])
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "FeatureTable":
        with Path(path).open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != cls.COLUMNS:
                raise InputError(f"{path} is not a radiomics feature table; its columns must be {list(cls.COLUMNS)}.")
            return cls(FeatureRow(r["case_id"], r["roi"], r["image_type"], r["feature_class"], r["feature"],
                                  float(r["value"])) for r in reader)


def _as_image(x: ImageLike) -> sitk.Image:
    if isinstance(x, sitk.Image):
        return x
    if hasattr(x, "to_sitk"):       # orbitai.io.Volume
        return x.to_sitk()

    return read_volume(x).to_sitk()


def _check_pair(image: sitk.Image, mask: sitk.Image) -> None:
    if image.GetDimension() != 3 or mask.GetDimension() != 3:
        raise InputError(f"Radiomics needs a 3D image and a 3D label map; got {image.GetDimension()}D and "
                         f"{mask.GetDimension()}D.")
    if image.GetSize() != mask.GetSize() or not (
            np.allclose(image.GetSpacing(), mask.GetSpacing(), atol=1e-4)
            and np.allclose(image.GetOrigin(), mask.GetOrigin(), atol=1e-3)
            and np.allclose(image.GetDirection(), mask.GetDirection(), atol=1e-4)):
        raise InputError("The label map does not lie on the image's grid (size, spacing, origin or direction "
                         "differ); resample the label map to the image first.")
    if not np.isfinite(sitk.GetArrayViewFromImage(image)).all():
        raise InputError("The image holds NaN or infinite values; radiomics needs finite intensities.")


def extract_features(image: ImageLike, mask: ImageLike, protocol: RadiomicsProtocol | str = "ivgc",
                     rois: Optional[Rois] = None, names: Optional[Mapping[int, str]] = None,
                     case_id: str = "", shared: bool = True) -> FeatureTable:
    """Features of every ROI of ``mask`` over ``image`` with ``protocol`` (a shipped name, a file,
    or a loaded protocol). ``rois`` maps ROI names to a label value or a list of values whose
    union forms the ROI; by default every label present is its own ROI, named by ``names``
    (value -> name) or ``label_<value>``. ``shared`` (default) computes each filtered image once
    for all ROIs (:class:`~orbitai.radiomics.shared.SharedExtractor`, pyradiomics' values);
    ``shared=False`` calls pyradiomics' ``execute`` once per ROI and pass (the reference)."""
    proto = protocol if isinstance(protocol, RadiomicsProtocol) else RadiomicsProtocol.load(protocol)
    img, lab = _as_image(image), _as_image(mask)
    _check_pair(img, lab)
    labels = sitk.GetArrayViewFromImage(lab)
    if rois is None:
        present = [int(v) for v in np.unique(labels) if v != 0]
        if not present:
            raise InputError("The label map is empty; radiomics needs at least one labelled ROI.")
        rois = {(names or {}).get(v, f"label_{v}"): v for v in present}
    masks: dict[str, np.ndarray] = {}
    for roi, values in rois.items():
        vals = [int(values)] if isinstance(values, (int, np.integer)) else [int(v) for v in values]
        masks[roi] = np.isin(labels, vals)
        if not masks[roi].any():
            raise InputError(f"ROI {roi!r} (label {', '.join(map(str, vals))}) has no voxels in the label map; "
                             "check the ROI's label values.")
    if shared:
        results = SharedExtractor(proto).execute(img, masks)
    else:
        results = {roi: plain_features(img, m, proto, roi) for roi, m in masks.items()}
    return table_from_results(results, case_id)


def plain_features(image: sitk.Image, mask: np.ndarray, protocol: RadiomicsProtocol, roi: str = "roi") -> dict:
    """One ROI through pyradiomics' own ``execute``, once per pass (the reference extraction)."""
    binary = sitk.GetImageFromArray(mask.astype(np.uint8))
    binary.CopyInformation(image)
    out: dict = {}
    for i, p in enumerate(protocol.passes, start=1):
        ex = make_extractor(p, f"{protocol.source or protocol.name}, pass {i}")
        try:
            result = ex.execute(image, binary, label=1)
        except ValueError as exc:
            raise InputError(f"Radiomics of ROI {roi!r} failed: {' '.join(str(exc).split())}") from exc
        out.update((k, v) for k, v in result.items() if not k.startswith("diagnostics_"))
    return out


def table_from_results(results: Mapping[str, Mapping[str, object]], case_id: str = "") -> FeatureTable:
    """A table from ROI -> pyradiomics feature dict (``<image type>_<class>_<feature>`` keys)."""
    rows: list[FeatureRow] = []
    for roi, features in results.items():
        for key, value in features.items():
            image_type, feature_class, feature = key.split("_", 2)
            rows.append(FeatureRow(case_id, roi, image_type, feature_class, feature, float(value)))  # type: ignore[arg-type]
    return FeatureTable(rows)
