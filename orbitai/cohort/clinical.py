"""Typed clinical-feature schemas: each feature's column, unit, kind, valid range or levels and
what to do when a value is missing. A schema validates a manifest's rows (one-line errors naming
the case and the column) and turns them into a numeric matrix, filling missing values with
statistics learnt on the training rows only.

:data:`IVGC_CLINICAL` is the 16 features of the IVGC-response cohort (the phantom generator writes
them in this order)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from orbitai.cohort.manifest import ManifestError
from orbitai.errors import InputError

Kind = Literal["continuous", "integer", "binary", "categorical"]
#: ``error``: a missing value is refused; ``median`` / ``mode``: filled from the training rows.
MissingPolicy = Literal["error", "median", "mode"]
#: Cell values read as missing.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "none", "null", "?"})


@dataclass(frozen=True)
class ClinicalFeature:
    """One manifest column. ``low``/``high`` bound continuous and integer values (inclusive);
    binary features take 0/1; categorical ones take one of ``levels`` (coded by its index)."""

    name: str
    unit: str
    description: str
    kind: Kind = "continuous"
    low: float | None = None
    high: float | None = None
    levels: tuple[str, ...] = ()
    missing: MissingPolicy = "error"

    def __post_init__(self) -> None:
        if self.kind == "categorical" and not self.levels:
            raise InputError(f"Categorical feature {self.name!r} needs its levels.")
        if self.kind == "binary" and self.levels and len(self.levels) != 2:
            raise InputError(f"Binary feature {self.name!r} has two levels, got {self.levels}.")

    def _range(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        unit = "" if self.unit == f"{lo}-{hi}" else self.unit   # a score's "unit" is its range: said once
        return f"{lo} to {hi} {unit}".rstrip()

    def parse(self, raw: object, case_id: str) -> float | None:
        """The value of one cell as a number (categorical: the level's index), None when missing.
        Raises :class:`~orbitai.cohort.manifest.ManifestError` naming the case and the column."""
        where = f"Case {case_id}, column {self.name!r}"
        text = "" if raw is None else str(raw).strip()
        if text.lower() in MISSING_TOKENS:
            if self.missing == "error":
                raise ManifestError(f"{where}: the value is missing; this feature is required (fill it in "
                                    "or drop the case).")
            return None
        if self.kind == "categorical":
            if text not in self.levels:
                raise ManifestError(f"{where}: {text!r} is not one of the levels {list(self.levels)}.")
            return float(self.levels.index(text))
        try:
            value = float(text)
        except ValueError:
            raise ManifestError(f"{where}: {text!r} is not a number ({self.description}, {self.unit}).") from None
        if not math.isfinite(value):
            raise ManifestError(f"{where}: {text!r} is not a finite number.")
        if self.kind == "binary":
            if value not in (0.0, 1.0):
                raise ManifestError(f"{where}: {text!r} must be 0 or 1 ({self.description}).")
            return value
        if self.kind == "integer" and value != round(value):
            raise ManifestError(f"{where}: {text!r} must be a whole number ({self.description}).")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ManifestError(f"{where}: {text} is outside the valid range {self._range()} ({self.description}).")
        return value


@dataclass(frozen=True)
class ClinicalSchema:
    """An ordered set of clinical features."""

    features: tuple[ClinicalFeature, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> ClinicalFeature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def check_columns(self, columns: Sequence[str], source: str = "The manifest") -> None:
        """Raise when a feature's column is absent."""
        missing = [n for n in self.names if n not in columns]
        if missing:
            raise ManifestError(f"{source} lacks clinical column(s) {missing}; add them (empty cells count "
                                "as missing values).")

    def parse_rows(self, rows: Sequence[Mapping[str, object]], case_ids: Sequence[str] | None = None,
                   ) -> np.ndarray:
        """(n_rows, n_features) float array, NaN where a value is missing (and allowed to be).
        ``case_ids`` name the rows in errors (default: each row's ``case_id``)."""
        if rows:
            self.check_columns(list(rows[0].keys()))
        out = np.full((len(rows), len(self.features)), np.nan)
        for r, row in enumerate(rows):
            cid = str(case_ids[r]) if case_ids is not None else str(row.get("case_id", f"row {r + 1}"))
            for c, f in enumerate(self.features):
                v = f.parse(row.get(f.name), cid)
                if v is not None:
                    out[r, c] = v
        return out

    def fill_values(self, matrix: np.ndarray) -> dict[str, float]:
        """Per feature, the value that replaces a missing one (median or mode of ``matrix``, the
        training rows); features whose policy is ``error`` are left out."""
        fill = {}
        for c, f in enumerate(self.features):
            if f.missing == "error":
                continue
            col = matrix[:, c][~np.isnan(matrix[:, c])]
            if not len(col):
                raise ManifestError(f"Column {f.name!r} has no value in any training case; nothing to fill "
                                    "missing values with.")
            if f.missing == "median":
                fill[f.name] = float(np.median(col))
            else:
                vals, counts = np.unique(col, return_counts=True)
                fill[f.name] = float(vals[np.argmax(counts)])
        return fill

    def impute(self, matrix: np.ndarray, fill: Mapping[str, float]) -> np.ndarray:
        """``matrix`` with its missing values replaced by ``fill`` (from :meth:`fill_values` on the
        training rows, so that no test value leaks into training)."""
        out = matrix.copy()
        for c, f in enumerate(self.features):
            holes = np.isnan(out[:, c])
            if holes.any():
                if f.name not in fill:
                    raise ManifestError(f"Column {f.name!r} has missing values but no fill value; compute "
                                        "the fill values on the training rows first.")
                out[holes, c] = fill[f.name]
        return out


def _f(name: str, unit: str, description: str, kind: Kind = "continuous", low: float | None = None,
       high: float | None = None, missing: MissingPolicy = "median") -> ClinicalFeature:
    return ClinicalFeature(name, unit, description, kind, low, high, missing=missing)


#: The 16 clinical features of the IVGC cohort. Ranges are physiological plausibility limits (a
#: value outside is a data-entry error), not reference ranges; laboratory values may be missing.
IVGC_CLINICAL = ClinicalSchema((
    _f("age_years", "years", "age at the start of IVGC", low=0, high=120, missing="error"),
    _f("sex_male", "0/1", "1 = male, 0 = female", "binary", missing="error"),
    _f("disease_duration_months", "months", "time from TAO onset to IVGC", low=0, high=600),
    _f("smoking", "0/1", "current smoker", "binary", missing="mode"),
    _f("trab_iu_per_l", "IU/L", "TSH-receptor antibody", low=0, high=1000),
    _f("ft3_pmol_per_l", "pmol/L", "free triiodothyronine", low=0, high=60),
    _f("ft4_pmol_per_l", "pmol/L", "free thyroxine", low=0, high=200),
    _f("tsh_miu_per_l", "mIU/L", "thyroid-stimulating hormone", low=0, high=500),
    _f("cas_score", "0-7", "clinical activity score (EUGOGO 7-point)", "integer", 0, 7, missing="error"),
    _f("exophthalmos_mm", "mm", "Hertel exophthalmometry, worse eye", low=5, high=40),
    _f("iop_mmhg", "mmHg", "intra-ocular pressure in primary gaze", low=0, high=80),
    _f("bcva_logmar", "logMAR", "best-corrected visual acuity, worse eye", low=-0.5, high=3.0),
    _f("diplopia_gorman", "0-3", "Gorman diplopia score", "integer", 0, 3, missing="mode"),
    _f("eyelid_retraction_mm", "mm", "upper eyelid retraction (MRD1 excess)", low=-5, high=15),
    _f("bmi_kg_per_m2", "kg/m2", "body-mass index", low=10, high=80),
    _f("prior_radioiodine", "0/1", "radioiodine therapy before IVGC", "binary", missing="mode"),
))
