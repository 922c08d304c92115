"""Per-eye TAO activity prediction with occlusion and Grad-CAM maps in the input's geometry."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch

from orbitai.bundle import Bundle
from orbitai.classify.train import predict_proba
from orbitai.classify.trust import NO_TRUST_WARNING, Trust, do_not_use, scope_message
from orbitai.classify.trust_features import features_and_logits
from orbitai.explain import grad_cam, occlusion_map
from orbitai.io import Volume
from orbitai.labels import ORBIT_LABELS
from orbitai.orbit.anatomy import check_structures, verdict
from orbitai.orbit.models import load_seg_model
from orbitai.orbit.segment import segment
from orbitai.progress import ProgressCallback
from orbitai.scan import ScanFacts
from orbitai.scan.noise import noise_warning
from orbitai.tao.data import centre_crop
from orbitai.tao.models import load_tao_model
from orbitai.tao.preprocess import (REFUSED_OFF_GRID, EyeCrop, GivenLabels, axial_input, check_tao_input,
                                    preprocess_eyes)
from orbitai.tao.result import MAP_KINDS, TaoResult
from orbitai.tao.spec import SCOPE, TaoInputSpec

log = logging.getLogger(__name__)

OCCLUSION_PATCH = 16     # pixels of the 128 x 128 input (6.2 mm with the default crop)
OCCLUSION_STRIDE = 8


@dataclass
class EyeResult:
    crop: EyeCrop
    probability_active: float
    occlusion: Optional[np.ndarray] = None     # (128, 128) drop in P(predicted class), >= 0
    gradcam: Optional[np.ndarray] = None       # (128, 128) in [0, 1]
    trust: Optional[Trust] = None              # the bundle's statistics (None: an older bundle)
    ood_distance: Optional[float] = None       # Mahalanobis distance of the eye's features (None: no statistics)
    noise: bool = False                        # the image around the segmentation is noise (orbitai.io.values)
    out_of_scope: str = ""                     # why the input breaks what the model was made for ("" if it does not)

    @property
    def trust_message(self) -> str:
        """Why the call is not to be used ("" when it may be: `orbitai.classify.trust.do_not_use`)."""
        return do_not_use(self.trust, self.ood_distance, self.noise, self.out_of_scope)

    @property
    def flagged(self) -> bool:
        return bool(self.trust_message)

    def to_json(self, threshold: float) -> dict:
        out = {"side": self.crop.side, "probability_active": round(self.probability_active, 6),
               "call": "active" if self.probability_active >= threshold else "inactive",
               "crop_box_ras": self.crop.box_ras(), "slices": int(self.crop.grid.shape[0])}
        if self.trust is not None and self.ood_distance is not None:
            out["ood"] = {**self.trust.ood_json(self.ood_distance)["ood"], "flagged": self.flagged,
                          **({"noise": True} if self.noise else {})}
        if self.flagged:
            out["trust"] = self.trust_message
        return out


@dataclass
class TaoPrediction:
    eyes: list[EyeResult]
    model: str
    network: str
    threshold: float
    seconds: float
    device: str
    warnings: list[str] = field(default_factory=list)
    segmentation_source: str = "given"
    reformatted: str = ""       # how a 3D acquisition in another plane was reformatted to axial ("": it was not)

    def to_json(self) -> dict:
        return {"model": self.model, "network": self.network, "device": self.device,
                "seconds": round(self.seconds, 3), "threshold": self.threshold,
                "segmentation": self.segmentation_source, "warnings": self.warnings, "scope": SCOPE,
                **({"reformatted": self.reformatted} if self.reformatted else {}),
                "eyes": [e.to_json(self.threshold) for e in self.eyes]}

    def out_of_scope(self, reasons: list[str]) -> None:
        """Flag every eye's call as outside what the model was made for (``reasons``: the scan's sure breaks of its
        protocol, `orbitai.scan.ScanFacts.breaks`), keeping a reason found before."""
        if reasons:
            for e in self.eyes:
                e.out_of_scope = "; ".join(([e.out_of_scope] if e.out_of_scope else []) + reasons)
            self.warnings.append(f"Every eye: {self.eyes[0].trust_message}" if self.eyes else scope_message(
                "; ".join(reasons)))

    def result(self, reference: Volume) -> TaoResult:
        """The ``predict --out DIR`` contract of this prediction (maps on ``reference``'s grid)."""
        return TaoResult(self.to_json(), self.maps_in(reference))

    def maps_in(self, reference: Volume) -> dict[str, Volume]:
        """Occlusion and Grad-CAM maps of all eyes as float32 volumes on ``reference``'s grid."""
        out = {}
        for kind in MAP_KINDS:
            acc = np.zeros(reference.shape, np.float32)
            for e in self.eyes:
                m = getattr(e, kind)
                if m is None:
                    break
                vol = e.crop.map_to_input(np.broadcast_to(m, (e.crop.grid.shape[0],) + m.shape), reference)
                acc = np.maximum(acc, vol.array)
            else:
                out[kind] = reference.with_array(np.clip(acc, 0.0, 1.0))
        return out


def input_spec(bundle: Bundle) -> TaoInputSpec:
    """The input block of a TAO bundle (crop size, slices, bias field, normalisation), checked."""
    return TaoInputSpec.from_metadata(bundle.metadata)


class TaoModels:
    """The networks a TAO prediction needs, each loaded once per device for every case it predicts (the model
    cache of `orbitai.tao.predictor.TaoPredictor`): the activity network ``name`` (A, B or a bundle name/folder;
    None: the default) and, for a scan given without its segmentation, OrbitSegmentation's MRI model."""

    def __init__(self, name: Optional[str] = "B") -> None:
        self.name = name
        self.loaded: dict[tuple[str, str], Any] = {}

    def network(self, device) -> tuple[Bundle, torch.nn.Module]:
        """(bundle, network in eval mode) of the activity network on ``device``."""
        return self._get("tao", device, lambda: load_tao_model(self.name, device))

    def orbits(self, device) -> tuple:
        """(bundle, network, input spec) of OrbitSegmentation's MRI model on ``device``."""
        return self._get("orbits", device, lambda: load_seg_model(None, image_is_ct=False, device=device))

    def _get(self, what: str, device, load: Callable[[], Any]) -> Any:
        key = (what, str(device))
        if key not in self.loaded:
            self.loaded[key] = load()
        return self.loaded[key]


def locate_orbits(image: Volume, device="cpu", progress: Optional[ProgressCallback] = None,
                  models: Optional[TaoModels] = None):
    """OrbitSegmentation's MRI model on ``image`` (used when no segmentation is given): its
    :class:`~orbitai.orbit.segment.SegResult` (labels and confidence). ``models``: where the model is kept."""
    _, model, spec = (models or TaoModels()).orbits(device)
    return segment(image, model, spec, "overlap", device, progress=progress, mirror=False)


def orbit_warnings(labels: Volume, confidence: Optional[Volume] = None) -> tuple[list[str], bool]:
    """What the orbit checks (:func:`orbitai.orbit.anatomy.check_structures`) say of the segmentation the
    crops stand on: each eyeball that is not normal, and the one-line verdict when most structures are
    implausible (enlarged muscles, a finding in TAO, are not held against it); and whether that verdict came."""
    present = {ORBIT_LABELS[int(v)].structure for v in np.unique(labels.array) if int(v) in ORBIT_LABELS}
    checks = check_structures(labels, sorted(present | {"eyeball"}), confidence)
    out = [f"{c.name}: {c.note}" for c in checks if c.label in (1, 2) and c.status != "normal"]
    most = verdict(checks)
    return out + ([f"The orbit segmentation: {most}"] if most else []), bool(most)


def explain_eye(model: torch.nn.Module, x: np.ndarray, target: int, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    xt = torch.from_numpy(x[None]).to(device)
    occ = occlusion_map(model, xt, target, patch=OCCLUSION_PATCH, stride=OCCLUSION_STRIDE)
    cam = grad_cam(model, xt, target, model.get_submodule("cam_layer"))
    return np.clip(np.asarray(occ, np.float32), 0, 1), np.asarray(cam, np.float32)


def predict_tao(image: Volume, labels: Optional[Volume], model_name: str = "B", device="cpu",
                maps: bool = True, threshold: float = 0.5, progress: Optional[ProgressCallback] = None,
                given: GivenLabels = REFUSED_OFF_GRID, facts: Optional[ScanFacts] = None,
                models: Optional[TaoModels] = None) -> TaoPrediction:
    """Classify each eye of an axial T2 MRI (a 3D one in another plane reformatted to axial, said in the result's
    ``reformatted``; maps stay on ``image``'s grid) as active/inactive TAO; ``labels`` (orbit scheme)
    place the crops, else OrbitSegmentation's MRI model finds the orbits. Given ``labels`` off the MRI's
    grid are refused (naming ``given.what``) unless ``given.resample_masks`` (then said in ``warnings``,
    :class:`~orbitai.tao.preprocess.GivenLabels`). ``facts``: what the
    scan is (`orbitai.scan.scan_facts`, judged once by the caller), read by the input checks. ``models``: the
    networks already loaded (a predictor's `TaoModels`; ``model_name`` is then theirs), else loaded here."""
    t0 = time.perf_counter()
    report = progress or (lambda d, t, m: None)
    check_tao_input(image, facts=facts)
    image, labels, reformatted = axial_input(image, labels)    # a 3D acquisition in another plane (issue 66)
    report(0, 4, "loading model")
    bundle, model = (models or TaoModels(model_name)).network(device)
    spec = input_spec(bundle)   # the bundle's input block drives the preprocessing
    trust = Trust.of_bundle(bundle, model)     # statistics that cannot flag anything refuse the bundle here
    source = "given"
    confidence = None
    if labels is None:
        report(1, 4, "finding the orbits")
        seg = locate_orbits(image, device, models=models)
        labels, confidence = seg.labels, seg.confidence
        source = "predicted by OrbitSegmentation"
    report(2, 4, f"preprocessing ({'N4, ' if spec.bias_field == 'n4' else ''}z-score, orbit crops)")
    crops = preprocess_eyes(image, labels, n4=spec.bias_field == "n4", crop_pixels=spec.crop_pixels,
                            slices=spec.slices, side_mm=spec.crop_side_mm, net_pixels=spec.net_pixels,
                            given=given, facts=facts)
    x = centre_crop(np.stack([c.canonical() for c in crops]), spec.net_pixels)
    if trust is None:
        probs, distances = predict_proba(model, x, device)[:, 1], [None] * len(crops)
    else:           # calibrated probabilities and how far each eye lies from the training data
        feats, logits = features_and_logits(model, x, device)
        probs, distances = trust.probabilities(logits)[:, 1], trust.distance(feats).tolist()
    eyes = [EyeResult(c, float(p), trust=trust, ood_distance=d) for c, p, d in zip(crops, probs, distances)]
    if maps:
        report(3, 4, "occlusion and Grad-CAM maps")
        for e, xi in zip(eyes, x):
            target = int(e.probability_active >= threshold)
            e.occlusion, e.gradcam = explain_eye(model, xi, target, device)
    report(4, 4, "done")
    orbits, implausible = orbit_warnings(labels, confidence)
    warnings = sorted({w for c in crops for w in c.warnings}) + orbits
    if source != "given" and implausible:
        for e in eyes:        # crops placed on orbits it found that are unlikely right
            e.out_of_scope = "the orbits it found are implausible"
    if trust is None:
        warnings.append(NO_TRUST_WARNING)
    noise = noise_warning(image.array, labels.array, "MRI")      # a call on noise is flagged and said to mean nothing
    for e in eyes:
        e.noise = bool(noise)
    warnings += [f"{e.crop.side} eye: {e.trust_message}" + ("" if e.out_of_scope else " (" + (
                 "its input is noise" if e.noise else f"distance {e.ood_distance:.1f} to its training data, flagged "
                 f"above {trust.threshold if trust else 0:.1f}") + ")") for e in eyes if e.flagged]
    if noise:
        warnings.append(noise)
    return TaoPrediction(eyes, bundle.name, bundle.metadata.get("network", "?"), threshold,
                         time.perf_counter() - t0, str(device), warnings, source, reformatted)
