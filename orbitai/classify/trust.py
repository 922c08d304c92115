"""How far to trust a classifier's call: an out-of-distribution score and calibrated probabilities (issue 51).

* **Out of distribution**: the Mahalanobis distance of the network's features to the nearest class mean, with one
  shared covariance (Lee et al., NeurIPS 2018), estimated with Ledoit-Wolf shrinkage (scikit-learn) on the training
  cases. The features are the mean and standard deviation over space of each channel of the Grad-CAM layer
  (``cam_layer``: the last feature block, where the image's content and texture are still seen; measured on TAO
  Network B, noise and a T2 without fat suppression lie 6-13 from the training data there against 2-3 for a
  phantom, while the 16 inputs of its last linear layer place noise as close as a phantom), else the input of the
  last linear layer. The threshold is the 95th percentile of the distances
  of held-out in-distribution cases, so that about 5 % of them are flagged.
* **Calibration**: temperature scaling (Guo et al., ICML 2017) fitted on a validation split by minimising the
  negative log-likelihood; the expected calibration error (15 equal-width bins of the top-class probability) before
  and after.

The fitted statistics (:class:`Trust`) are plain numbers stored in the bundle's ``metadata.json`` (``trust``), read
back at prediction; a bundle without them loads with a warning (:data:`NO_TRUST_WARNING`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from sklearn.covariance import LedoitWolf

#: Share of held-out in-distribution cases the threshold flags.
FLAG_SHARE = 0.05
ECE_BINS = 15
#: What a flagged call says (result.json, summaries, tables, SR).
OOD_MESSAGE = "outside what this model was trained on: do not use"
NO_TRUST_WARNING = ("This model carries no out-of-distribution statistics or calibration (an older bundle): its "
                    "probabilities are uncalibrated and a scan unlike its training data is not flagged. Fit them with "
                    "its task's 'trust' command.")


def last_linear(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last ``nn.Linear`` (its classification layer)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not linears:
        raise ValueError("the model has no linear layer to take penultimate features from")
    return linears[-1]


def _pooled(a: torch.Tensor) -> torch.Tensor:
    """Per-channel mean and standard deviation over the spatial axes of an (N, C, ...) activation."""
    dims = tuple(range(2, a.ndim))
    return torch.cat([a.mean(dims), a.std(dims)], 1) if dims else a


def features_and_logits(model: torch.nn.Module, x: np.ndarray, device: Any = "cpu", batch: int = 32
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The features of the out-of-distribution score (see the module docstring) and the logits of ``x`` (N, ...),
    in eval mode."""
    seen: list[torch.Tensor] = []
    cam = getattr(model, "cam_layer", None)
    if isinstance(cam, torch.nn.Module):
        hook = cam.register_forward_hook(lambda _m, _i, out: seen.append(_pooled(out.detach())))
    else:
        hook = last_linear(model).register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach()))
    was = model.training
    model.eval()
    logits = []
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch):
                logits.append(model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])).to(device)).cpu())
    finally:
        hook.remove()
        model.train(was)
    feats = torch.cat([f.flatten(1).cpu() for f in seen]).double().numpy()
    return feats, torch.cat(logits).double().numpy()


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, np.float64) / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the top-class probability: the bin-size-weighted mean |accuracy - confidence| over equal-width bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    right = pred == np.asarray(labels)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (bounded to 0.05-20)."""
    y = np.asarray(labels, int)

    def nll(t: float) -> float:
        p = softmax(logits, t)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1))))
    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


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

    def distance(self, feats: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row to the nearest class mean."""
        f = np.atleast_2d(np.asarray(feats, np.float64))
        prec = np.asarray(self.precision)
        d = [np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", f - m, prec, f - m), 0)) for m in np.asarray(self.means)]
        return np.min(d, axis=0)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits, self.temperature)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Optional["Trust"]:
        block = meta.get("trust")
        return cls(**block) if isinstance(block, dict) else None


def fit_trust(train_feats: np.ndarray, train_labels: np.ndarray, val_feats: np.ndarray, val_logits: np.ndarray,
              val_labels: np.ndarray, fitted_on: str) -> Trust:
    """Class means and shared covariance on the training cases; the threshold (:data:`FLAG_SHARE` of the validation
    cases flagged) and the temperature on the validation cases."""
    y = np.asarray(train_labels, int)
    classes = sorted(set(y.tolist()))
    means = np.stack([train_feats[y == c].mean(0) for c in classes])
    centred = train_feats - means[np.searchsorted(classes, y)]
    precision = LedoitWolf(assume_centered=True).fit(centred).precision_
    partial = Trust(means.tolist(), precision.tolist(), 0.0, 1.0, 0.0, 0.0, fitted_on)
    threshold = float(np.quantile(partial.distance(val_feats), 1 - FLAG_SHARE))
    temperature = fit_temperature(val_logits, val_labels)
    return Trust(means.tolist(), precision.tolist(), threshold, temperature,
                 expected_calibration_error(softmax(val_logits), val_labels),
                 expected_calibration_error(softmax(val_logits, temperature), val_labels), fitted_on)
