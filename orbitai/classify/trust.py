"""How far to trust a classifier's call: an out-of-distribution score and calibrated probabilities (issue 51).

* **Out of distribution**: the Mahalanobis distance of the network's features to the nearest class mean, with one
  shared covariance (Lee et al., NeurIPS 2018), estimated with Ledoit-Wolf shrinkage (scikit-learn) on the training
  cases. The features are the mean and standard deviation over space of each channel of the Grad-CAM layer
  (``cam_layer``: the last feature block, where the image's content and texture are still seen; measured on TAO
  Network B, noise and a T2 without fat suppression lie 6-13 from the training data there against 2-3 for a
  phantom, while the 16 inputs of its last linear layer place noise as close as a phantom), or a ResNet's last
  stage (``layer4``), else the input of the last linear layer. The threshold is the 95th percentile of the distances
  of held-out in-distribution cases, so that about 5 % of them are flagged.
* **Calibration**: temperature scaling (Guo et al., ICML 2017) fitted on a validation split by minimising the
  negative log-likelihood, or for a two-class model temperature and a bias on the second class's logit (Platt
  scaling of the logit difference: a temperature alone cannot move a model whose probabilities lean to one class),
  or none: the one of the three with the lowest 5-fold cross-validated negative log-likelihood on the validation
  split (:func:`fit_calibration`; on a nearly separable validation set the bias alone overfits). The expected
  calibration error (15 equal-width bins of the top-class probability) before and after.

The fitted statistics (:class:`Trust`): the class means and the precision matrix in the bundle file ``trust.npz``
(listed under ``files``, checksum-verified, read without pickle), the scalars in ``metadata.json``'s ``trust``; read
back at prediction (:meth:`Trust.of_bundle`; an older bundle's inline arrays still load). A bundle without them
loads with a warning (:data:`NO_TRUST_WARNING`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import json
import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.stats import beta
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import StratifiedKFold

from orbitai.bundle.core import refuse_package_folder
from orbitai.bundle.formats import save_npz
from orbitai.errors import BundleError, UserError
from orbitai.io.checksums import sha256_input
from orbitai.staging import strict_json, write_json_atomic

#: Share of in-distribution cases the threshold may flag, and the confidence that it does not flag more.
FLAG_SHARE, FLAG_CONFIDENCE = 0.05, 0.90
#: The bundle file of the means and precision matrix.
TRUST_FILE = "trust.npz"
CALIBRATIONS = ("none", "temperature", "temperature+bias")
ECE_BINS = 15
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


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` (its classification layer)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear layer to take penultimate features from")
    return linears[-1]


def _feature_layer(model: torch.nn.Module) -> Optional[torch.nn.Module]:
    """The layer whose pooled channels are the out-of-distribution features (see the module docstring), None when
    they are the input of the last linear layer."""
    cam = getattr(model, "cam_layer", None)
    if not isinstance(cam, torch.nn.Module):      # a ResNet without a named Grad-CAM layer: its last stage
        cam = getattr(model, "layer4", None)
    return cam if isinstance(cam, torch.nn.Module) else None


def feature_size(model: Any) -> Optional[int]:
    """How many features :func:`features_and_logits` gives for ``model``, read from its layers (twice the channels of
    the feature layer's last convolution or normalisation, else the inputs of its last linear layer); None for a
    model that is no network or whose layers do not say."""
    if not isinstance(model, torch.nn.Module):
        return None
    layer = _feature_layer(model)
    if layer is not None:
        kinds = (torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm)
        sizes = [int(getattr(m, "out_channels", 0) or getattr(m, "num_features", 0) or getattr(m, "num_channels", 0))
                 for m in layer.modules() if isinstance(m, kinds)]
        return 2 * sizes[-1] if sizes and sizes[-1] > 0 else None
    try:
        return int(last_linear(model).in_features)
    except ValueError:
        return None


def class_count(model: Any) -> Optional[int]:
    """How many classes ``model`` gives logits of (its last linear layer's outputs); None for a model that is no
    network (the radiomics SVM's two-class logits are made by :func:`binary_logits`: 2)."""
    if not isinstance(model, torch.nn.Module):
        return 2 if hasattr(model, "predict_proba") else None
    try:
        return int(last_linear(model).out_features)
    except ValueError:
        return None


def _pooled(a: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and (population) standard deviation over the spatial axes of an (N, C, ...) activation
    (0 where the activation has one position, as a 3D ResNet's last stage may)."""
    dims = tuple(range(2, a.ndim))
    return torch.cat([a.mean(dims), a.std(dims, correction=0)], 1) if dims else a


Inputs = Union[np.ndarray, Mapping[str, np.ndarray]]


def features_and_logits(model: torch.nn.Module, x: Inputs, device: Any = "cpu", batch: int = 32
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The features of the out-of-distribution score (see the module docstring) and the logits of ``x`` (N, ...),
    or of named inputs ``{name: (N, ...)}`` given to the model in the order of its ``input_names``, in eval mode."""
    names: Sequence[str] = tuple(getattr(model, "input_names", ("image",)))
    arrays = [x] if isinstance(x, np.ndarray) else [np.asarray(x[n]) for n in names]
    seen: list[torch.Tensor] = []
    cam = _feature_layer(model)
    if cam is not None:
        hook = cam.register_forward_hook(lambda _m, _i, out: seen.append(_pooled(out.detach())))
    else:
        hook = last_linear(model).register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach()))
    was = model.training
    model.eval()
    logits = []
    try:
        with torch.no_grad():
            for i in range(0, len(arrays[0]), batch):
                part = [torch.from_numpy(np.ascontiguousarray(a[i:i + batch], dtype=np.float32)).to(device)
                        for a in arrays]
                logits.append(model(*part).cpu())
    finally:
        hook.remove()
        model.train(was)
    feats = torch.cat([f.flatten(1).cpu() for f in seen]).double().numpy()
    return feats, torch.cat(logits).double().numpy()


def binary_logits(p: np.ndarray) -> np.ndarray:
    """Two-class logits (log(1 - p), log p) of probabilities of the second class (a model that gives only
    probabilities, such as the radiomics SVM); their softmax is ``p`` again."""
    q = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.stack([np.log1p(-q), np.log(q)], 1)


def softmax(logits: np.ndarray, temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """Softmax of ``logits / temperature``, ``bias`` added to the second class's (two-class models)."""
    z = np.array(logits, np.float64) / temperature
    if bias:
        z[:, 1] += bias
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, float]]:
    """The reliability diagram's bins (equal width over the top-class probability): each non-empty bin's range,
    cases, mean confidence and accuracy."""
    conf, right = probs.max(1), probs.argmax(1) == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            out.append({"from": round(float(lo), 4), "to": round(float(hi), 4), "cases": int(inside.sum()),
                        "confidence": float(conf[inside].mean()), "accuracy": float(right[inside].mean())})
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class probability: the bin-size-weighted mean |accuracy - confidence| over equal-width bins."""
    n = len(np.asarray(labels))
    return float(sum(b["cases"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(probs, labels, bins)))


def _nll(logits: np.ndarray, y: np.ndarray, temperature: float, bias: float) -> float:
    p = softmax(logits, temperature, bias)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))


def _fit(logits: np.ndarray, y: np.ndarray, method: str) -> tuple[float, float]:
    """(temperature, bias) of one calibration method minimising the negative log-likelihood (temperature bounded to
    0.05-20, bias to +-10)."""
    if method == "none":
        return 1.0, 0.0
    with_bias = method == "temperature+bias"
    bounds = [(np.log(0.05), np.log(20.0))] + [(-10.0, 10.0)] * with_bias
    v = minimize(lambda v: _nll(logits, y, float(np.exp(v[0])), float(v[1]) if with_bias else 0.0),
                 np.zeros(1 + with_bias), method="L-BFGS-B", bounds=bounds).x
    return float(np.exp(v[0])), float(v[1]) if with_bias else 0.0


def ece_floor(probs: np.ndarray, draws: int = 1000, seed: int = 0) -> dict[str, float]:
    """What a perfectly calibrated model's ECE would read on this many cases: the ECE of ``probs`` against labels
    drawn from ``probs`` themselves, over ``draws`` draws (mean and 95th percentile). On a few hundred cases with
    probabilities away from 0 and 1 the floor is several hundredths: an ECE within it cannot be told from perfect
    calibration on that set."""
    rng = np.random.default_rng(seed)
    p = np.asarray(probs, np.float64)
    cum = np.cumsum(p, 1)
    values = [expected_calibration_error(p, (rng.random((len(p), 1)) > cum[:, :-1]).sum(1)) for _ in range(draws)]
    return {"mean": float(np.mean(values)), "p95": float(np.quantile(values, 0.95))}


def fit_calibration(logits: np.ndarray, labels: np.ndarray, folds: int = 5) -> tuple[float, float, str]:
    """(temperature, bias, method): of the methods of :data:`CALIBRATIONS` (the bias only for two classes), the one
    with the lowest ``folds``-fold cross-validated negative log-likelihood of ``labels``, refitted on all of them."""
    y = np.asarray(labels, int)
    logits = np.asarray(logits, np.float64)
    methods = CALIBRATIONS if logits.shape[1] == 2 else CALIBRATIONS[:2]
    k = min(folds, int(np.bincount(y).min()) if len(set(y.tolist())) > 1 else 0)
    if k < 2:           # too few cases of a class to cross-validate: temperature alone
        return (*_fit(logits, y, "temperature"), "temperature")
    split = list(StratifiedKFold(k, shuffle=True, random_state=0).split(logits, y))
    scores = {m: np.mean([_nll(logits[te], y[te], *_fit(logits[tr], y[tr], m)) for tr, te in split]) for m in methods}
    best = min(methods, key=lambda m: scores[m])
    return (*_fit(logits, y, best), best)


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


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature alone (no bias) minimising the negative log-likelihood of ``labels``."""
    return _fit(np.asarray(logits, np.float64), np.asarray(labels, int), "temperature")[0]


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


#: The fewest cases of each class that a ``trust`` command fits on, in its training and its validation manifest:
#: fewer give no class mean, covariance, threshold or calibration that can be trusted (issue 69).
MIN_CASES_PER_CLASS = 10
#: The keys every report of a ``trust`` command holds (an existing --report file is replaced only when it has them).
REPORT_KEYS = ("calibration", "temperature", "threshold", "fitted_on", "validation")


def check_trust_inputs(bundle: Any, sets: Sequence[tuple[str, Optional[str], Optional[Sequence[Any]]]],
                       label: Any, report: Optional[str] = None,
                       min_per_class: int = MIN_CASES_PER_CLASS) -> None:
    """Refuse, before any file changes, what a ``trust`` command cannot fit on or must not write (one `UserError`
    line saying what to do):

    * a bundle inside the installed package (a bundled model: read-only for every command);
    * ``sets``: (option, manifest, cases) of ``--manifest`` (training), ``--validation`` and ``--test``:
      the validation (or test) manifest the training one, a case of one in another (by case_id or by the image's
      checksum), fewer than ``min_per_class`` cases of each class (``label(case)``: 0 or 1) in the training or the
      validation cases;
    * ``report``: a file that is an input, lies in the bundle, is a folder, or exists and is no earlier report."""
    try:
        refuse_package_folder(bundle.path, "--model")
    except UserError:
        raise UserError(f"--model {bundle.name} is a bundled model ({bundle.path}), which no command rewrites; copy "
                        f"its folder to one of your own and give that folder as --model (nothing was changed).") from None
    given = [(opt, path, list(cases)) for opt, path, cases in sets if cases is not None]
    paths = {opt: Path(path).resolve() for opt, path, _ in given if path}
    for opt, path in paths.items():
        for other, before in paths.items():
            if other == opt:
                break
            if path == before:
                raise UserError(f"{opt} is the same manifest as {other} ({path.name}): validation and test cases must "
                                f"be cases the statistics are not fitted on; give {opt} another manifest.")
    for opt, manifest, cases in given[:2]:      # training and validation: both classes, enough of each
        counts = [sum(1 for c in cases if int(label(c)) == k) for k in (0, 1)]
        if min(counts) < min_per_class:
            raise UserError(f"{opt} {manifest or ''} has {counts[0]} case(s) of label 0 and {counts[1]} of label 1; fitting "
                            f"the trust statistics needs at least {min_per_class} cases of each label in --manifest and "
                            "--validation (nothing was changed).")
    seen_ids: dict[str, str] = {}
    seen_images: dict[str, tuple[str, str]] = {}
    for opt, _, cases in given:
        ids, images = {}, {}
        for c in cases:
            if c.case_id in seen_ids:
                raise UserError(f"Case {c.case_id} is in both {seen_ids[c.case_id]} and {opt}: validation and test "
                                "cases must not be training cases (nor each other's); remove it from one of them.")
            ids[c.case_id] = opt
            digest = sha256_input(c.image)
            if digest in seen_images:
                other_opt, other_id = seen_images[digest]
                raise UserError(f"Case {c.case_id} of {opt} has the same image as case {other_id} of {other_opt} "
                                f"({Path(c.image).name}): validation and test cases must not be training cases; "
                                "remove it from one of them.")
            images[digest] = (opt, c.case_id)
        seen_ids.update(ids)
        seen_images.update(images)
    if report:
        inputs = [Path(p) for _, p, _ in given if p] + [Path(x) for _, _, cases in given for c in cases
                                                        for x in (c.image, c.segmentation) if x is not None]
        check_report_path(report, inputs, Path(bundle.path))


def check_report_path(report: str, inputs: Sequence[Path], bundle_dir: Path) -> None:
    """Refuse, before any work, a ``--report`` file that would overwrite an input, a file of the bundle or a file
    that is no earlier report (one `UserError` line)."""
    target = Path(report).resolve()
    if target.is_dir():
        raise UserError(f"--report {report} is a folder; give a file name such as report.json.")
    if not target.parent.is_dir():
        raise UserError(f"--report {report}: the folder {target.parent} does not exist; create it or choose another.")
    for p in inputs:
        if p.resolve() == target:
            raise UserError(f"--report {report} is the input {p}; choose another file name (nothing was changed).")
    bundle = bundle_dir.resolve()
    if target.parent == bundle or bundle in target.parents:
        raise UserError(f"--report {report} lies in the bundle {bundle_dir}, whose files only the command itself "
                        "writes; choose a file outside it (nothing was changed).")
    if target.exists():
        try:
            earlier = json.loads(target.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if not (isinstance(earlier, dict) and all(k in earlier for k in REPORT_KEYS)):
            raise UserError(f"--report {report} already exists and is not the report of a trust command; choose "
                            "another file name (nothing was changed).")


def show_report(report: dict[str, Any], path: Optional[str] = None) -> None:
    """Print a ``trust`` command's report (the reliability bins left out) and write it whole to ``path`` (strict
    JSON, atomically)."""
    if path:
        write_json_atomic(path, report, indent=1)
    short = {k: ({kk: vv for kk, vv in v.items() if not kk.startswith("reliability")} if isinstance(v, dict) else v)
             for k, v in report.items()}
    print(strict_json(short, indent=1), end="")
