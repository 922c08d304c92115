"""The deep models' part of ``orbitai ivgc predict`` (`orbitai.ivgc.predict`): the ROI crop through the network and
its Grad-CAM map. Its own module so that a radiomics model's prediction loads no torch."""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np
import torch

from orbitai.bundle.core import Bundle
from orbitai.classify.calibration import softmax
from orbitai.classify.trust import Trust
from orbitai.classify.trust_features import features_and_logits
from orbitai.errors import InputError
from orbitai.io import Volume
from orbitai.ivgc.data import MARGIN_MM, TARGET_SHAPE, preprocess
from orbitai.ivgc.gradcam import grad_cam_on_mri
from orbitai.progress import ProgressCallback

__all__ = ["deep_probability"]


def deep_probability(bundle: Bundle, net: Any, sitk_image: Any, labels: np.ndarray, roi: Any,
                     vectors: Mapping[str, Optional[np.ndarray]], gradcam: bool, device: Any, report: ProgressCallback,
                     trust: Optional[Trust] = None) -> tuple[float, Optional[float], Optional[Volume]]:
    """P(responder) of a deep model (ResNet-50, RDINet) on the MRI's ROI crop (calibrated by ``trust`` when given),
    the distance of the case's features to the training data (None without ``trust``) and, with ``gradcam``, its
    Grad-CAM map on the MRI. ``vectors``: the case's vector inputs by the network's input names (``radiomics``: the
    selected features, ``clinical``: the clinical values; None where the case has none)."""
    spec = bundle.metadata.get("input") or {}
    mri = Volume.from_sitk(sitk_image)
    x, crop = preprocess(mri, mri.with_array(labels), roi, tuple(spec.get("shape_array", TARGET_SHAPE)),
                         float(spec.get("margin_mm", MARGIN_MM)), bool(spec.get("roi_only", False)))
    inputs: dict[str, np.ndarray] = {"image": x}
    radiomics, clinical = vectors.get("radiomics"), vectors.get("clinical")
    if "radiomics" in net.input_names:
        if radiomics is None:
            raise InputError(f"Bundle {bundle.name}: RDINet needs the selected radiomics, the bundle lists none.")
        inputs["radiomics"] = radiomics.astype(np.float32)
    if "clinical" in net.input_names:
        assert clinical is not None
        inputs["clinical"] = clinical
    feats, logits = features_and_logits(net, {k: v[None] for k, v in inputs.items()}, device)
    probs = trust.probabilities(logits) if trust is not None else softmax(logits)
    probability = float(probs[0, 1])
    distance = float(trust.distance(feats)[0]) if trust is not None else None
    if not gradcam:
        return probability, distance, None
    report(4, 5, "Grad-CAM")
    target = int(probability >= float(bundle.metadata.get("threshold", 0.5)))
    with torch.enable_grad():
        cam = grad_cam_on_mri(net, inputs, crop, target, device)
    return probability, distance, cam.with_array(np.clip(cam.array, 0.0, 1.0).astype(np.float32))
