"""The IVGC-response models OrbitAI ships (:data:`IVGC_MODELS`: paper 001's four) and their loader."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from orbitai.bundle.models import TaskModels

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
