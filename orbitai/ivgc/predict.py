"""One patient's probability of responding to IVGC (paper 001) from a coronal T2 MRI, its recti
segmentation and, for RDINet (clinical), the 16 clinical features; with the selected radiomics
features' values and, for the image models, a Grad-CAM map on the MRI's grid.

The MRI and segmentation are read once and checked by the rules of the training inputs
(:func:`orbitai.ivgc.features.load_case`: 3D, finite, MRI not CT, orbit labels, the segmentation
on the MRI's grid within half a voxel -- on another grid refused, or with ``--resample-masks``
resampled onto it and said in ``warnings``); the ROI strategy's recti must
all be there (:func:`orbitai.ivgc.rois.strategy_masks`). The clinical values and the ROI strategy are
checked by the rules of :mod:`orbitai.ivgc.checks` (the IVGCResponse Logic checks them first). Radiomics
come from the bundle's own protocol file, the network input from the bundle's input block, so prediction
sees what training saw.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np
import SimpleITK as sitk

from orbitai.classify.calibration import binary_logits
from orbitai.classify.trust import NO_TRUST_WARNING, Trust, do_not_use, scope_message
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.errors import InputError
from orbitai.io import Volume, read_scan, resample_like
from orbitai.io.orient import in_plane, near_isotropic, reformat_to
from orbitai.ivgc.checks import bundle_strategy, check_clinical, check_clinical_names
from orbitai.ivgc.features import check_case_image, load_case
from orbitai.ivgc.models import Selected, load_ivgc_model
from orbitai.ivgc.result import CALLS, FeatureValue, IvgcResult
from orbitai.ivgc.rois import parse_strategies, strategy_masks
from orbitai.progress import ProgressCallback
from orbitai.radiomics.protocol import RadiomicsProtocol
from orbitai.radiomics.shared import SharedExtractor
from orbitai.scan import Expects, ScanFacts, scan_facts
from orbitai.scan.noise import noise_warning

if TYPE_CHECKING:
    from orbitai.bundle.core import Bundle

#: What the paper's models were made for (paper 001): coronal T2-weighted MRI of the orbits.
EXPECTS = Expects(modality="MR", weightings=("T2",), orbits=True,
                  name="The IVGC models (paper 001: coronal T2-weighted MRI of the orbits)")
#: What every IVGC model assumes, shown with each result (issue 51).
#: The paper's plane (paper 001: coronal T2): a 3D acquisition in another plane is reformatted to it (issue 66).
PLANE = "coronal"
SCOPE = ("For a patient with thyroid eye disease before intravenous glucocorticoids: a coronal T2-weighted MRI of "
         "the orbits with its recti segmented (paper 001). Trained on phantoms only; not for clinical use.")

log = logging.getLogger(__name__)


@dataclass
class IvgcPrediction:
    probability: float
    threshold: float
    model: str
    kind: str
    strategy: str
    clinical_used: bool
    features: list[FeatureValue]
    gradcam: Optional[Volume] = None
    seconds: float = 0.0
    device: str = "cpu"
    warnings: list[str] = field(default_factory=list)
    scan: Optional[ScanFacts] = None
    trust: Optional[Trust] = None          # the bundle's out-of-distribution statistics and calibration
    ood_distance: Optional[float] = None
    noise: bool = False                    # the MRI around the segmentation is noise (orbitai.io.values)
    out_of_scope: str = ""                 # why the scan breaks what the models were made for ("" if it does not)
    reformatted: str = ""                  # how a 3D acquisition in another plane was reformatted to coronal

    @property
    def call(self) -> str:
        return CALLS[int(self.probability >= self.threshold)]

    @property
    def flagged(self) -> str:
        """Why the call is not to be used ("" when it may be: `orbitai.classify.trust.do_not_use`)."""
        return do_not_use(self.trust, self.ood_distance, self.noise, self.out_of_scope)

    def result(self) -> IvgcResult:
        data = {"probability": round(float(self.probability), 6), "call": self.call, "threshold": self.threshold,
                "model": self.model, "kind": self.kind, "strategy": self.strategy,
                "clinical_used": self.clinical_used, "device": self.device, "seconds": round(self.seconds, 3),
                "warnings": self.warnings, "scope": SCOPE}
        if self.reformatted:
            data["reformatted"] = self.reformatted
        if self.trust is not None and self.ood_distance is not None:
            data.update(self.trust.ood_json(self.ood_distance))
        if self.flagged:
            data["trust"] = self.flagged
        if self.scan is not None:
            data["scan"] = self.scan.to_json()
        return IvgcResult(data, self.features, self.gradcam)


# --------------------------------------------------------------------------------------------- clinical
def read_clinical(path: str | Path) -> dict[str, Any]:
    """The ``--clinical`` JSON object ``{feature: value}`` (names of :data:`IVGC_CLINICAL`), unknown names refused."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(f"--clinical {path} cannot be read: {exc.strerror or exc}.") from None
    except ValueError as exc:
        raise InputError(f"--clinical {path} is not valid JSON ({exc}).") from None
    if not isinstance(data, dict):
        raise InputError(f"--clinical {path} must hold a JSON object {{feature: value}}.")
    check_clinical_names(data, f"--clinical {path}")
    return data


def clinical_vector(values: Mapping[str, Any], fill: Mapping[str, float], source: str = "--clinical"
                    ) -> tuple[np.ndarray, list[str]]:
    """The 16 clinical features in schema order, each checked against its range (:func:`check_clinical`);
    values missing that may be missing are filled with ``fill`` (the training cohort's). Returns (vector,
    names filled); missing required values are refused, all of them named."""
    given, filled = check_clinical(values, fill, required=True, source=source)
    return np.asarray([given[n] if n in given else float(fill[n]) for n in IVGC_CLINICAL.names], dtype=np.float32), filled


# --------------------------------------------------------------------------------------------- prediction
def coronal_case(image: Volume, sitk_image: Any, labels: np.ndarray) -> tuple[Any, np.ndarray, str]:
    """(SimpleITK image, labels on its grid, note) in the paper's coronal plane: a 3D acquisition in another plane
    reformatted (its voxels reordered, `orbitai.io.orient.reformat_to`) and the note saying so; anything else as
    given (``sitk_image``: ``image``'s, note ""): the radiomics are 3D, and a 2D acquisition in another plane was
    taken before too."""
    if in_plane(image, PLANE) or not near_isotropic(image):
        return sitk_image, labels, ""
    moved, moved_labels, note = reformat_to(image, PLANE, "The IVGC models", image.with_array(labels))
    return moved.to_sitk(), np.asarray((moved_labels or moved).array), note


@dataclass(frozen=True)
class IvgcOptions:
    """The options that decide one patient's prediction besides the model and the inputs (``ivgc predict``'s)."""

    strategy: Optional[str] = None           # ROI strategy (None: the model's own; another one is refused)
    gradcam: bool = True                     # the Grad-CAM map of an image model
    resample_masks: bool = False             # a segmentation off the MRI's grid is resampled instead of refused
    modality: Optional[str] = None           # what the user says the scan is (``--modality``)
    clinical_source: str = "--clinical"      # where the clinical values came from, in messages

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> "IvgcOptions":
        """From a command's options as its parser names them (``no_gradcam``, ``resample_masks``...)."""
        return cls(options.get("strategy"), not options.get("no_gradcam", False),
                   bool(options.get("resample_masks", False)), options.get("modality"),
                   options.get("clinical_source") or "--clinical")


def predict_ivgc(image: str | Path, segmentation: str | Path, model: Optional[str] = None,
                 clinical: Optional[Mapping[str, Any]] = None, options: IvgcOptions = IvgcOptions(),
                 device: Any = "cpu", progress: Optional[ProgressCallback] = None) -> IvgcPrediction:
    """Predict one patient (see the module docstring); ``clinical``: ``{feature: value}`` or None; ``options``
    (`IvgcOptions`): the ROI strategy, the Grad-CAM map, ``resample_masks`` (a segmentation off the MRI's grid is
    resampled onto it, said in ``warnings``, instead of refused), ``modality`` (what the scan is when the user says,
    else its tags and image say, `orbitai.scan.scan_facts`: a scan the paper's models were not made for gets a
    caveat) and ``clinical_source`` (where ``clinical`` came from, in messages).
    The model is loaded for this call; `orbitai.ivgc.predictor.IvgcPredictor` keeps it for every case."""
    return predict_with_model(lambda: load_ivgc_model(model, device), image, segmentation, clinical, options, device,
                              progress)


def predict_with_model(load: "Callable[[], tuple[Bundle, Any]]", image: str | Path, segmentation: str | Path,
                       clinical: Optional[Mapping[str, Any]], options: IvgcOptions, device: Any = "cpu",
                       progress: Optional[ProgressCallback] = None, facts: Optional[ScanFacts] = None
                       ) -> IvgcPrediction:
    """:func:`predict_ivgc` with the model that ``load()`` gives and, when the caller has judged the scan already,
    its ``facts`` (else judged here, once)."""
    vol, acquisition = read_scan(image)    # read once, with its tags; judged (unless the caller did) before load_case
    check_case_image(vol, image)
    if facts is None:
        facts = scan_facts(vol, acquisition.tags, image, options.modality)
    return predict_on_scan(load, vol, facts, image, segmentation, clinical, options, device, progress)


def predict_on_scan(load: "Callable[[], tuple[Bundle, Any]]", vol: Volume, facts: ScanFacts, image: str | Path,
                    segmentation: str | Path, clinical: Optional[Mapping[str, Any]], options: IvgcOptions,
                    device: Any = "cpu", progress: Optional[ProgressCallback] = None) -> IvgcPrediction:
    """One patient whose MRI ``image`` was read (``vol``, checked by `orbitai.ivgc.features.check_case_image`) and
    judged (``facts``), by the model that ``load()`` gives (a predictor's, loaded once): the body of
    `orbitai.ivgc.predictor.IvgcPredictor.run`."""
    t0 = time.perf_counter()
    report = progress or (lambda d, t, m: None)
    report(0, 5, "loading the model")
    bundle, net = load()
    meta = bundle.metadata
    selected = (meta.get("selection") or {}).get("features") if not bundle.architecture else None
    trust = Trust.of_bundle(bundle, net, len(selected) if isinstance(selected, list) else None)
    name = bundle_strategy(bundle, options.strategy)
    roi = parse_strategies([name])[0]
    needs_clinical = bool(meta.get("clinical"))
    warnings: list[str] = []
    clin = None
    if needs_clinical:
        clin, filled = clinical_vector(clinical or {}, meta.get("clinical_fill") or {}, options.clinical_source)
        if filled:
            warnings.append(f"clinical values not given, filled with the training cohort's: {', '.join(filled)}")
    elif clinical:
        check_clinical(clinical, source=options.clinical_source)   # checked all the same (types, ranges)
        warnings.append(f"model {bundle.name} ({meta.get('kind')}) does not use clinical features; they were ignored")
    report(1, 5, "reading the MRI and the segmentation")
    sitk_image, labels = load_case(image, segmentation, resample_masks=options.resample_masks, warnings=warnings,
                                   facts=facts, volume=vol)
    sitk_image, labels, reformatted = coronal_case(vol, sitk_image, labels)
    masks = strategy_masks(labels, [roi], f"The segmentation {Path(segmentation).name}")
    warnings.extend(facts.notes + facts.caveats(EXPECTS))
    out_of_scope = "; ".join(facts.breaks(EXPECTS))
    noise = noise_warning(sitk.GetArrayViewFromImage(sitk_image), labels, "MRI")   # a call on noise means nothing
    if noise:
        warnings.append(noise)
    sel = Selected.from_metadata(meta["selection"]) if meta.get("selection") else None
    features: list[FeatureValue] = []
    radiomics = None
    if sel is not None:
        report(2, 5, f"radiomics of ROI {name}")
        protocol = RadiomicsProtocol.from_dict(bundle.load_file("radiomics_protocol"), source=f"bundle {bundle.name}")
        values = SharedExtractor(protocol).execute(sitk_image, masks)[name]
        try:
            radiomics = np.array([values[n.split("_", 1)[1]] for n in sel.names], dtype=np.float64)
        except KeyError as exc:
            raise InputError(f"Bundle {bundle.name}: the protocol gives no feature {exc}; the bundle is inconsistent.") from None
        if not np.isfinite(radiomics).all():
            bad = [n for n, v in zip(sel.names, radiomics) if not np.isfinite(v)]
            raise InputError(f"The radiomics feature(s) {', '.join(bad)} are not finite for this segmentation "
                             "(too few voxels in the ROI?).")
        linear = bool(meta.get("uses_radiomics", True))     # the LASSO coefficients of the features the model uses
        features = [FeatureValue(n, float(v), c if linear else None) for n, v, c in zip(sel.names, radiomics, sel.coefficients)]
    cam = None
    distance: Optional[float] = None
    report(3, 5, "model")
    if not bundle.architecture:
        if radiomics is None:
            raise InputError(f"Bundle {bundle.name} holds a radiomics model without a feature selection.")
        probability = float(net.predict_proba(radiomics[None])[0, 1])
        if trust is not None and sel is not None:   # calibrated; how far its radiomics lie from the training cases'
            probability = float(trust.probabilities(binary_logits(np.array([probability])))[0, 1])
            distance = float(trust.distance(sel.standardise(radiomics[None]))[0])
    else:
        from orbitai.ivgc.predict_deep import deep_probability  # torch: not loaded for a radiomics model

        probability, distance, cam = deep_probability(bundle, net, sitk_image, labels, roi,
                                                      {"radiomics": radiomics, "clinical": clin}, options.gradcam,
                                                      device, report, trust)
        if cam is not None and reformatted:      # the map goes back onto the MRI's own grid
            cam = resample_like(cam, vol, default=0.0)
        if cam is not None and not cam.array.any():
            warnings.append("The Grad-CAM map is empty: no region of the image raises the model's output for the "
                            "predicted class (the call rests on its other inputs, or the model is undertrained).")
    if out_of_scope:
        warnings.append(f"The call: {scope_message(out_of_scope)}")
    if trust is None:
        warnings.append(NO_TRUST_WARNING)
    elif distance is not None:
        warnings.extend(w for w in [trust.warning(distance)] if w)
    report(5, 5, "done")
    return IvgcPrediction(probability, float(meta.get("threshold", 0.5)), bundle.name, str(meta.get("kind")), name,
                          needs_clinical, features, cam, time.perf_counter() - t0, str(device), warnings, facts,
                          trust, distance, bool(noise), out_of_scope, reformatted)
