"""How far to trust a classifier's call: an out-of-distribution score and calibrated probabilities (issue 51).

* **Out of distribution**: the Mahalanobis distance of the network's features (`orbitai.classify.trust_features`:
  the pooled channels of its Grad-CAM layer or last stage, else the input of its last linear layer) to the nearest
  class mean, with one shared covariance (Lee et al., NeurIPS 2018), estimated with Ledoit-Wolf shrinkage
  (scikit-learn) on the training cases. The threshold is the 95th percentile of the distances of held-out
  in-distribution cases, so that about 5 % of them are flagged.
* **Calibration**: temperature scaling, or temperature and a bias for two classes, or none, whichever
  cross-validates best on the validation split (`orbitai.classify.calibration`).

The fitted statistics (:class:`Trust`): the class means and the precision matrix in the bundle file ``trust.npz``
(listed under ``files``, checksum-verified, read without pickle), the scalars in ``metadata.json``'s ``trust``; read
back at prediction (:meth:`Trust.of_bundle`; an older bundle's inline arrays still load). A bundle without them
loads with a warning (:data:`NO_TRUST_WARNING`). The ``trust`` command's checks and report:
`orbitai.classify.trust_command`.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch
from scipy.stats import beta
from sklearn.covariance import LedoitWolf

from orbitai.bundle.core import refuse_package_folder
from orbitai.bundle.formats import save_npz
from orbitai.classify.calibration import (CALIBRATIONS, ece_floor, expected_calibration_error, fit_calibration,
                                          reliability, softmax)
from orbitai.classify.trust_features import Inputs, class_count, feature_size, features_and_logits
from orbitai.errors import BundleError
from orbitai.staging import strict_json

#: Share of in-distribution cases the threshold may flag, and the confidence that it does not flag more.
FLAG_SHARE, FLAG_CONFIDENCE = 0.05, 0.90
#: The bundle file of the means and precision matrix.
TRUST_FILE = "trust.npz"
#: What a flagged call says (result.json, summaries, tables, SR).
OOD_MESSAGE = "outside what this model was trained on: do not use"


def scope_message(reason: str) -> str:
    """What a call outside the model's scope says (result.json ``trust``, summaries, tables, SR)."""
    return f"outside what this model was made for ({reason}): do not use"


def do_not_use(trust: Optional["Trust"], distance: Optional[float], noise: bool = False, out_of_scope: str = "") -> str:
    """Why a call is not to be used ("" when it may be), in order: outside the model's scope (``out_of_scope``: the
    reasons), its input is noise, or its features lie beyond ``trust``'s threshold. The one rule of every task."""
    if out_of_scope:
        return scope_message(out_of_scope)
    if noise or (trust is not None and distance is not None and trust.flagged(distance)):
        return OOD_MESSAGE
    return ""


NO_TRUST_WARNING = ("This model carries no out-of-distribution statistics or calibration (an older bundle): its "
                    "probabilities are uncalibrated and a scan unlike its training data is not flagged. Fit them with "
                    "its task's 'trust' command.")


def flag_threshold(distances: np.ndarray) -> float:
    """The distance above which a case is flagged: flags the most held-out in-distribution cases ``k`` whose
    one-sided Clopper-Pearson upper bound (:data:`FLAG_CONFIDENCE`) on the flagged share stays at or under
    :data:`FLAG_SHARE` (none flagged when even 0 of n does not: the largest distance)."""
    d = np.sort(np.asarray(distances, np.float64))
    n = len(d)
    k = 0
    while k + 1 < n and beta.ppf(FLAG_CONFIDENCE, k + 2, n - k - 1) <= FLAG_SHARE:
        k += 1
    return float(d[n - 1 - k])



@dataclass(frozen=True)
class Trust:
    """The fitted statistics (see the module docstring)."""

    means: list[list[float]]           # per class, penultimate feature means
    precision: list[list[float]]       # inverse of the shared (shrunk) covariance
    threshold: float                   # distance above which a case is flagged
    temperature: float
    ece_before: float
    ece_after: float
    fitted_on: str
    bias: float = 0.0                  # second class's logit (two-class Platt scaling; 0 in older bundles)
    calibration: str = "temperature"   # the method chosen (CALIBRATIONS)

    def distance(self, feats: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row to the nearest class mean."""
        f = np.atleast_2d(np.asarray(feats, np.float64))
        prec = np.asarray(self.precision)
        d = [np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", f - m, prec, f - m), 0)) for m in np.asarray(self.means)]
        return np.min(d, axis=0)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature, self.bias)

    def flagged(self, distance: float) -> bool:
        return float(distance) > self.threshold

    def ood_json(self, distance: float) -> dict[str, Any]:
        """result.json's ``ood`` block of one call (and ``trust``: :data:`OOD_MESSAGE` when flagged)."""
        out: dict[str, Any] = {"distance": round(float(distance), 3), "threshold": round(self.threshold, 3),
                               "flagged": self.flagged(distance)}
        return {"ood": out, **({"trust": OOD_MESSAGE} if out["flagged"] else {})}

    def warning(self, distance: float, who: str = "The call") -> Optional[str]:
        """The warning line of a flagged call, else None."""
        if not self.flagged(distance):
            return None
        return (f"{who}: {OOD_MESSAGE} (distance {float(distance):.1f} to its training data, flagged above "
                f"{self.threshold:.1f})")

    def report(self, feats: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """Figures on a labelled set: share flagged, accuracy, ECE uncalibrated and calibrated, reliability bins."""
        y = np.asarray(labels, int)
        raw, cal = softmax(logits), self.probabilities(logits)
        return {"cases": int(len(y)), "flagged_share": float(np.mean(self.distance(feats) > self.threshold)),
                "accuracy": float(np.mean(raw.argmax(1) == y)),
                "accuracy_calibrated": float(np.mean(cal.argmax(1) == y)),
                "ece_uncalibrated": expected_calibration_error(raw, y),
                "ece_calibrated": expected_calibration_error(cal, y),
                "ece_of_a_calibrated_model": ece_floor(cal),
                "reliability_uncalibrated": reliability(raw, y), "reliability_calibrated": reliability(cal, y)}

    def to_json(self) -> dict[str, Any]:
        """metadata.json's ``trust`` block: the scalars (the arrays go to :data:`TRUST_FILE`)."""
        return {k: v for k, v in asdict(self).items() if k not in ("means", "precision")}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"means": np.asarray(self.means, np.float32), "precision": np.asarray(self.precision, np.float32)}

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], arrays: Optional[Mapping[str, Any]] = None,
                      where: str = "The trust statistics", features: Optional[int] = None,
                      classes: Optional[int] = None) -> Optional["Trust"]:
        """The statistics of a ``trust`` block with its ``arrays`` (or an older bundle's inline ones), checked
        (:func:`check_trust`; ``where`` names the bundle in the one-line `BundleError`); None without a block."""
        block = meta.get("trust")
        if not isinstance(block, dict):
            return None
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in block.items() if k in known}
        source = block if arrays is None else arrays
        means, precision = (_numeric_array(source, k, where) for k in ("means", "precision"))
        missing = sorted(k for k in ("threshold", "temperature") if k not in values)
        if missing:
            raise _refused(where, f"its trust block lacks {', '.join(missing)}")
        check_trust(means, precision, values, where, features, classes)
        values.update(means=means.tolist(), precision=precision.tolist())
        values.setdefault("ece_before", 0.0)
        values.setdefault("ece_after", 0.0)
        values.setdefault("fitted_on", "")
        return cls(**values)

    @classmethod
    def of_bundle(cls, bundle: Any, model: Any = None, features: Optional[int] = None) -> Optional["Trust"]:
        """The bundle's statistics (its ``trust`` file checksum-verified, read without pickle), None when it has none;
        checked against ``model`` (the bundle's network: its feature length and classes, or ``features``) and
        refused in one line naming the bundle when they cannot flag or calibrate anything (:func:`check_trust`)."""
        meta = bundle.metadata
        block = meta.get("trust")
        if not isinstance(block, dict):
            return None
        where = f"Bundle '{meta.get('name', bundle.path)}' ({bundle.path})"
        return cls.from_metadata(meta, None if "means" in block else bundle.load_file("trust"), where,
                                 features if features is not None else feature_size(model), class_count(model))


def _refused(where: str, why: str) -> BundleError:
    """The one line of a bundle refused for its trust statistics (``why``: what is wrong with them)."""
    return BundleError(f"{where} was refused: {why} (its out-of-distribution statistics, {TRUST_FILE} and "
                       "metadata.json's trust block); fit them again with its task's 'trust' command, or reinstall it.")


def _numeric_array(source: Mapping[str, Any], key: str, where: str) -> np.ndarray:
    """``source[key]`` as a 2-D float64 array; a missing, pickled (bytes), object or non-numeric one is a
    `BundleError`."""
    if key not in source:
        raise _refused(where, f"it holds no {key!r} array")
    value = source[key]
    a = value if isinstance(value, np.ndarray) else None
    if a is None and isinstance(value, list):
        try:
            a = np.asarray(value)
        except ValueError:          # ragged rows
            a = None
    if a is None or a.dtype.kind not in "biuf":
        raise _refused(where, f"its {key!r} is not an array of numbers "
                             f"({type(value).__name__}{'' if a is None else ' of ' + str(a.dtype)})")
    if a.ndim != 2:
        raise _refused(where, f"its {key!r} has shape {a.shape}, not a 2-D matrix")
    return a.astype(np.float64)


def check_trust(means: np.ndarray, precision: np.ndarray, scalars: Mapping[str, Any], where: str,
                features: Optional[int] = None, classes: Optional[int] = None) -> None:
    """Refuse (one `BundleError` line beginning with ``where``) statistics that cannot flag or calibrate: arrays or
    scalars that are not finite, a precision matrix that is not square, symmetric and positive definite (a zero one
    puts every case at distance 0), a threshold that is not a finite positive number (an infinite one flags
    nothing), a temperature that is not positive, and shapes that do not fit the network (``features`` long
    feature vectors, ``classes`` class means) or each other."""
    def refuse(why: str) -> None:
        raise _refused(where, why)

    for name, a in (("means", means), ("precision", precision)):
        if not np.isfinite(a).all():
            refuse(f"its {name!r} holds {'NaN' if np.isnan(a).any() else 'infinite'} values")
    n_classes, dim = means.shape
    if n_classes < 2:
        refuse(f"its 'means' has {n_classes} class row(s); a classifier has at least 2")
    if classes is not None and n_classes != classes:
        refuse(f"its 'means' has {n_classes} class rows but the network gives {classes} classes")
    if features is not None and dim != features:
        refuse(f"its 'means' has {dim} features per class but the network gives {features}")
    if precision.shape != (dim, dim):
        refuse(f"its 'precision' has shape {precision.shape}, not ({dim}, {dim}) as its 'means' need")
    scale = float(np.abs(precision).max())
    if not np.allclose(precision, precision.T, rtol=1e-4, atol=1e-6 * max(scale, 1e-30)):
        refuse("its 'precision' is not symmetric")
    try:
        ok = scale > 0 and float(np.linalg.eigvalsh((precision + precision.T) / 2).min()) > 1e-12 * scale
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        refuse("its 'precision' is not positive definite (every distance would be 0 or meaningless)")
    for key in ("threshold", "temperature", "bias", "ece_before", "ece_after"):
        if key not in scalars:
            continue
        v = scalars[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            refuse(f"its {key} is {v!r}, not a finite number")
    for key in ("threshold", "temperature"):
        if float(scalars[key]) <= 0:
            refuse(f"its {key} is {scalars[key]!r}; it must be above 0")
    if scalars.get("calibration", "temperature") not in CALIBRATIONS:
        refuse(f"its calibration is {scalars.get('calibration')!r}, not one of {', '.join(CALIBRATIONS)}")


def fit_trust(train_feats: np.ndarray, train_labels: np.ndarray, val_feats: np.ndarray, val_logits: np.ndarray,
              val_labels: np.ndarray, fitted_on: str) -> Trust:
    """Class means and shared covariance on the training cases; the threshold (:data:`FLAG_SHARE` of the validation
    cases flagged) and the calibration (:func:`fit_calibration`) on the validation cases."""
    y = np.asarray(train_labels, int)
    classes = sorted(set(y.tolist()))
    means = np.stack([train_feats[y == c].mean(0) for c in classes])
    centred = train_feats - means[np.searchsorted(classes, y)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    # stored as float32 (half the bundle file); the threshold is set with the stored values
    means, precision = means.astype(np.float32).astype(np.float64), precision.astype(np.float32).astype(np.float64)
    partial = Trust(means.tolist(), precision.tolist(), 0.0, 1.0, 0.0, 0.0, fitted_on)
    threshold = flag_threshold(partial.distance(val_feats))
    temperature, bias, method = fit_calibration(val_logits, val_labels)
    return Trust(means.tolist(), precision.tolist(), threshold, temperature,
                 expected_calibration_error(softmax(val_logits), val_labels),
                 expected_calibration_error(softmax(val_logits, temperature, bias), val_labels), fitted_on, bias,
                 method)


def fit_on_split(model: torch.nn.Module, train_x: Inputs, train_y: np.ndarray, val_x: Inputs, val_y: np.ndarray,
                 device: Any = "cpu", what: str = "cases") -> Trust:
    """A training command's trust block: :func:`fit_trust` on the network's features of its training split and its
    held-out split (which also gives the bundle's held-out metrics)."""
    f_tr, _ = features_and_logits(model, train_x, device)
    f_va, l_va = features_and_logits(model, val_x, device)
    return fit_trust(f_tr, train_y, f_va, l_va, val_y,
                     f"the training command's split: {len(train_y)} training and {len(val_y)} held-out {what}")


def fit_and_report(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray, np.ndarray],
                   test: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]], fitted_on: str
                   ) -> tuple[Trust, dict[str, Any]]:
    """:func:`fit_trust` on (features, labels) of the training cases and (features, logits, labels) of the
    validation cases; the report (validation figures, and the test set's when given)."""
    trust = fit_trust(train[0], train[1], *validation, fitted_on=fitted_on)
    report: dict[str, Any] = {"calibration": trust.calibration, "temperature": trust.temperature, "bias": trust.bias,
                              "threshold": trust.threshold,
                              "fitted_on": fitted_on, "validation": trust.report(*validation)}
    if test is not None:
        report["test"] = trust.report(*test)
    return trust, report


def write_trust(bundle_dir: Path, trust: Trust) -> None:
    """Put ``trust`` into the bundle: its arrays into :data:`TRUST_FILE`, listed under ``files`` with its checksum,
    its scalars into metadata.json (both written beside their targets, then moved over them; the weights untouched).
    A bundled model (inside the installed package) is never written (`orbitai.bundle.core.refuse_package_folder`)."""
    folder = Path(bundle_dir)
    refuse_package_folder(folder, "The bundle")
    tmp_arrays = folder / f".{TRUST_FILE}.{os.getpid()}.tmp.npz"
    path = folder / "metadata.json"
    tmp = path.with_name(f".metadata.{os.getpid()}.tmp")
    try:
        entry = save_npz(trust.arrays(), tmp_arrays)
        entry["path"] = TRUST_FILE
        meta = json.loads(path.read_text())
        meta["trust"] = trust.to_json()
        meta.setdefault("files", {})["trust"] = entry
        tmp.write_text(strict_json(meta))
        tmp_arrays.replace(folder / TRUST_FILE)
        tmp.replace(path)
    finally:
        tmp_arrays.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
