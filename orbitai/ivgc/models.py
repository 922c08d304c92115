"""The IVGC-response models OrbitAI ships (:data:`IVGC_MODELS`: paper 001's four) and their loader."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from orbitai.bundle.models import TaskModels
from orbitai.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from orbitai.bundle.core import Bundle

#: The bundled models by kind (paper 001's Table 2), the radiomics SVM first (the default).
IVGC_MODELS = TaskModels("ivgc_response", "an IVGC response model",
                         bundled={"ivgc_svm_demo": "Radiomics SVM",
                                  "ivgc_resnet50_demo": "ResNet-50",
                                  "ivgc_rdinet_demo": "RDINet",
                                  "ivgc_rdinet_clinical_demo": "RDINet with clinical features"},
                         default="ivgc_svm_demo",
                         aliases={"svm": "ivgc_svm_demo", "resnet50": "ivgc_resnet50_demo",
                                  "rdinet": "ivgc_rdinet_demo", "rdinet_clinical": "ivgc_rdinet_clinical_demo"})


def load_ivgc_model(name: Optional[str] = None, device: "torch.device | str" = "cpu") -> "tuple[Bundle, object]":
    """(bundle, model) of an IVGC-response bundle: a kind of :data:`IVGC_MODELS`, a panel label, a bundle name
    or folder (default ``ivgc_svm_demo``). The model is the scikit-learn pipeline of a radiomics bundle
    (skops, checksum-verified) or the network of a deep one, in eval mode on ``device``."""
    bundle = IVGC_MODELS.find(name)
    if bundle.architecture:
        return bundle, bundle.load_model(device).eval()
    return bundle, bundle.load_file("classifier")


@dataclass(frozen=True)
class Selected:
    """One ROI strategy's selected radiomics features (``orbitai ivgc select``)."""

    strategy: str
    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coefficients: tuple[float, ...]
    intercept: float

    @classmethod
    def from_selection(cls, doc: dict[str, Any], strategy: str, source: str = "the selection") -> "Selected":
        res = (doc.get("strategies") or {}).get(strategy)
        if res is None:
            raise InputError(f"{source} holds no ROI strategy {strategy!r} (it has {', '.join(doc.get('strategies') or {}) or 'none'}); "
                             f"run 'orbitai ivgc select --strategies {strategy}'.")
        names = list(res.get("selected") or [])
        if not names:
            raise InputError(f"{source}: no feature of ROI strategy {strategy!r} was selected "
                             f"({res.get('note', 'empty selection')}); a radiomics model needs at least one.")
        return cls(strategy, tuple(names), tuple(float(res["mean"][n]) for n in names),
                   tuple(float(res["scale"][n]) for n in names),
                   tuple(float(res["coefficients"][n]) for n in names), float(res.get("intercept") or 0.0))

    def standardise(self, radiomics: "np.ndarray") -> "np.ndarray":
        """The selected radiomics (N, features) standardised as the LASSO saw them (by the selection's mean and scale)."""
        scale = np.asarray(self.scale)
        return (np.asarray(radiomics, np.float64) - np.asarray(self.mean)) / np.where(scale > 0, scale, 1.0)

    def to_metadata(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "features": list(self.names), "mean": list(self.mean),
                "scale": list(self.scale), "coefficients": list(self.coefficients), "intercept": self.intercept}

    @classmethod
    def from_metadata(cls, block: dict[str, Any]) -> "Selected":
        return cls(str(block["strategy"]), tuple(block["features"]), tuple(block["mean"]), tuple(block["scale"]),
                   tuple(block["coefficients"]), float(block.get("intercept", 0.0)))
