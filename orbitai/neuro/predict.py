"""One patient's white-matter lesions and NMOSD-vs-MS probability from a brain FLAIR (paper 003).

The chain, each step one function of its own module:

1. read the FLAIR (file or DICOM folder) and check it is a usable 3D FLAIR of a head
   (:func:`orbitai.scan.flair.check_flair`);
2. brain extraction and intracranial volume, with the location-class map
   (:func:`orbitai.neuro.anatomy.extract_brain`);
3. the lesions: the user's segmentation (on the FLAIR's grid within half a voxel; on another grid
   refused, or with ``--resample-masks`` resampled onto it and said in ``warnings``) or the lesion model's (:func:`orbitai.neuro.lesionseg.segment_lesions`);
4. the lesion table (:func:`orbitai.neuro.lesion_table.lesion_table`);
5. with a classifier: its input as in training (:func:`orbitai.neuro.data.classifier_input`), the
   probability of NMOSD and an occlusion map mapped back onto the FLAIR's grid. Without any lesion
   the classifier does not apply (it was trained on patients with lesions): no probability, a reason.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np
import torch

from orbitai.classify.calibration import softmax
from orbitai.classify.trust import NO_TRUST_WARNING, Trust, do_not_use, scope_message
from orbitai.classify.trust_features import features_and_logits
from orbitai.cohort.manifest import read_labels
from orbitai.errors import InputError
from orbitai.explain.occlusion import occlusion_map
from orbitai.io import RESAMPLE_OPTION, Acquisition, Volume, read_scan, segmentation_on_image
from orbitai.neuro.anatomy import extract_brain
from orbitai.neuro.data import classifier_input, heat_to_flair
from orbitai.neuro.lesion_table import lesion_table
from orbitai.neuro.lesion_rules import removed_note
from orbitai.neuro.lesionseg import segment_lesions
from orbitai.neuro.second_look import dropped_note
from orbitai.neuro.models import load_neuro_model
from orbitai.neuro.scope import SCOPE, scope_warning
from orbitai.progress import ProgressCallback
from orbitai.scan import Expects, ScanFacts, scan_facts
from orbitai.scan.flair import check_flair, check_intracranial_volume
from orbitai.scan.geometry import check_spacing

#: What the lesion model and the NMOSD/MS classifier were made for (paper 003): a brain T2-FLAIR.
FLAIR_EXPECTS = Expects(modality="MR", weightings=("FLAIR",), brain=True,
                        name="The lesion model and the NMOSD/MS classifier (paper 003: brain T2-FLAIR)")

if TYPE_CHECKING:
    from orbitai.bundle.core import Bundle
    from orbitai.neuro.anatomy import BrainExtraction
    from orbitai.neuro.lesion_table import LesionTable

log = logging.getLogger(__name__)

#: The reason a call on lesions in a vascular-territory pattern gives (`orbitai.neuro.scope`).
VASCULAR = "lesions in a vascular-territory pattern"
#: Share of a given lesion segmentation's labelled volume that must fall inside the FLAIR.
MIN_OVERLAP = 0.95
#: Class names of the classifiers' two outputs (label 1 = NMOSD, as the phantoms' manifests).
CLASSES = ("MS", "NMOSD")
#: Occlusion patch and stride on the classifier's 100^3 input: 3 x 3 x 3 overlapping cubes of 40 voxels
#: (27 occluded copies, a few seconds on a CPU; 25/20 gave 125 copies and ~20 s).
OCCLUSION_PATCH, OCCLUSION_STRIDE = 40, 30


@dataclass
class NeuroLesions:
    """Steps 1-4: the FLAIR, its brain extraction, lesion mask and table."""

    flair: Volume
    extraction: "BrainExtraction"
    lesions: Volume
    table: "LesionTable"
    source: str                      # "given" or the lesion model's name
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scan: Optional[ScanFacts] = None    # what the scan is (orbitai.scan)


@dataclass
class NeuroPrediction:
    """Step 5 on top of :class:`NeuroLesions` (``probability`` None when the classifier does not apply)."""

    found: NeuroLesions
    model: str
    architecture: str
    input_mode: str
    threshold: float
    probability: Optional[float]
    reason: str = ""
    heatmap: Optional[Volume] = None
    seconds: float = 0.0
    device: str = "cpu"
    trust: Optional[Trust] = None          # the bundle's out-of-distribution statistics and calibration
    ood_distance: Optional[float] = None
    out_of_scope: str = ""                 # why the input breaks the classifier's scope ("" when it does not)

    @property
    def applies(self) -> bool:
        return self.probability is not None

    @property
    def flagged(self) -> str:
        """Why the call is not to be used ("" when it may be: `orbitai.classify.trust.do_not_use`)."""
        return do_not_use(self.trust, self.ood_distance, out_of_scope=self.out_of_scope)

    def data(self) -> dict[str, Any]:
        """result.json's findings (:mod:`orbitai.neuro.result`)."""
        out = lesions_data(self.found, self.device, self.seconds)
        out.update({"applies": self.applies, "probability_nmosd": None if self.probability is None
                    else round(float(self.probability), 6), "call": self.call, "threshold": self.threshold,
                    "model": self.model, "architecture": self.architecture, "input_mode": self.input_mode,
                    "scope": SCOPE})
        if not self.applies:
            out["reason"] = self.reason
        if self.trust is not None and self.ood_distance is not None:
            out["ood"] = self.trust.ood_json(self.ood_distance)["ood"]
        if self.flagged:
            out["trust"] = self.flagged
        return out

    @property
    def call(self) -> Optional[str]:
        if self.probability is None:
            return None
        return CLASSES[int(self.probability >= self.threshold)]


def lesions_data(found: NeuroLesions, device: str, seconds: float) -> dict[str, Any]:
    """result.json's findings of ``neuro lesions`` (the lesion summary, warnings, notes)."""
    return {"lesions": found.table.summary(), "lesion_source": found.source, "device": str(device),
            "seconds": round(float(seconds), 3), "warnings": list(found.warnings), "notes": list(found.notes),
            **({"scan": found.scan.to_json()} if found.scan is not None else {})}


def read_flair(path: str | Path) -> tuple[Volume, Acquisition]:
    """The FLAIR (a file or a DICOM folder, regularised as :func:`orbitai.io.read_scan` does) and its acquisition
    (notes, DICOM tags: read once); a missing path is refused in one line."""
    if not Path(path).exists():
        raise InputError(f"The FLAIR {path} does not exist.")
    vol, acq = read_scan(path)
    check_spacing(vol, f"The FLAIR {Path(path).name}")     # a header no step can serve: before any heavy work
    return vol, acq


def read_lesions(path: str | Path, flair: Volume, resample: bool = False, warnings: Optional[list[str]] = None,
                 case_id: str = "") -> Volume:
    """A lesion segmentation (label map or .seg.nrrd: every non-zero voxel is lesion) on the FLAIR's grid.

    On another grid (beyond half a voxel: :func:`orbitai.io.segmentation_on_image`) it is refused in one
    line, unless ``resample`` (``--resample-masks``): then resampled (nearest neighbour) when at least
    :data:`MIN_OVERLAP` of its labelled volume lies inside the FLAIR, and ``warnings`` gets a line saying so."""
    p = Path(path)
    who = f"Case {case_id}: the" if case_id else "The"
    if not p.exists():
        raise InputError(f"{who} lesion segmentation {path} does not exist.")
    labels = read_labels(p)
    mask = labels.with_array((np.asarray(labels.array) != 0).astype(np.uint8))
    on_flair, warning = segmentation_on_image(flair, mask, f"{who} lesion segmentation {p.name}", resample,
                                              image_name="FLAIR", option=RESAMPLE_OPTION if not case_id else None,
                                              min_inside=MIN_OVERLAP)
    if warning is not None:
        log.info("%s", warning)
        if warnings is not None:
            warnings.append(warning)
    return on_flair.with_array((np.asarray(on_flair.array) != 0).astype(np.uint8))


@dataclass(frozen=True)
class NeuroOptions:
    """The options that decide one FLAIR's result besides the models and the inputs (``neuro lesions|predict``'s)."""

    heatmap: bool = True                  # the occlusion map of the NMOSD/MS call
    resample_masks: bool = False          # a given segmentation off the FLAIR's grid is resampled instead of refused
    modality: Optional[str] = None        # what the user says the scan is (``--modality``)
    classify: bool = True                 # the NMOSD/MS call too (``neuro predict``; ``neuro lesions``: the lesions)

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> "NeuroOptions":
        """From a command's options as its parser names them (``no_heatmap``, ``resample_masks``, ``modality``,
        ``classify``)."""
        return cls(not options.get("no_heatmap", False), bool(options.get("resample_masks", False)),
                   options.get("modality"), bool(options.get("classify", True)))


@dataclass(frozen=True)
class Classifier:
    """An NMOSD-vs-MS bundle, its network on a device and its trust statistics, loaded together before the long
    steps: a bad ``--model`` fails at once, and statistics that cannot flag anything too."""

    bundle: "Bundle"
    net: Any
    trust: Optional[Trust]

    @classmethod
    def load(cls, model: Optional[str] = None, device: Any = "cpu") -> "Classifier":
        """The classifier bundle ``model`` (default: the bundled two-view demo) on ``device``."""
        bundle, net = load_neuro_model(model, device)
        return cls(bundle, net, Trust.of_bundle(bundle, net))


def find_lesions(flair_path: str | Path, lesions_path: Optional[str | Path] = None, lesion_model: Optional[str] = None,
                 device: Any = "cpu", progress: Optional[ProgressCallback] = None, steps: int = 4,
                 resample_masks: bool = False, modality: Optional[str] = None) -> NeuroLesions:
    """Steps 1-4 (see the module docstring); ``progress`` gets steps 0..3 of ``steps``; ``resample_masks``:
    a given segmentation off the FLAIR's grid is resampled (said in ``warnings``) instead of refused; ``modality``:
    what the scan is when the user says (``--modality``; else `orbitai.scan.scan_facts` reads it): a scan that is
    not a brain FLAIR gets a caveat. The lesion model is loaded for this call;
    `orbitai.neuro.predictor.NeuroPredictor` keeps it for every case."""
    return lesions_of(flair_path, lesions_path, lesion_model,
                      lambda flair, brain: segment_lesions(flair, brain, lesion_model, device=device),
                      NeuroOptions(resample_masks=resample_masks, modality=modality), progress, steps)


def lesions_of(flair_path: str | Path, lesions_path: Optional[str | Path], lesion_model: Optional[str],
               segment: Callable[[Volume, Volume], Volume], options: NeuroOptions,
               progress: Optional[ProgressCallback] = None, steps: int = 4,
               facts: Optional[ScanFacts] = None) -> NeuroLesions:
    """:func:`find_lesions` with the lesion model ``lesion_model`` (its name; None: the default) as ``segment``
    (FLAIR, brain mask) -> lesion mask (a predictor's, loaded once) and, when the caller has judged the scan
    already, its ``facts`` (else judged here, once)."""
    report = progress or (lambda d, t, m: None)
    report(0, steps, "reading the FLAIR")
    flair, acquisition = read_flair(flair_path)
    check_flair_values(flair)
    if facts is None:
        facts = scan_facts(flair, acquisition.tags, flair_path, options.modality)
    return lesions_on(flair, list(acquisition.notes), facts, lesions_path, lesion_model, segment, options, progress, steps)


def check_flair_values(flair: Volume) -> None:
    """What no model reads (not 3D, too small, values not finite), refused before asking what the scan is."""
    if np.ndim(flair.array) != 3 or min(np.shape(flair.array)) < 8 or not np.all(np.isfinite(flair.array)):
        check_flair(flair)


def lesions_on(flair: Volume, notes: list[str], facts: ScanFacts, lesions_path: Optional[str | Path],
               lesion_model: Optional[str], segment: Callable[[Volume, Volume], Volume], options: NeuroOptions,
               progress: Optional[ProgressCallback] = None, steps: int = 4) -> NeuroLesions:
    """Steps 2-4 on a FLAIR that was read (``flair``, with its acquisition ``notes``) and judged (``facts``): the body
    of `orbitai.neuro.predictor.NeuroPredictor.run` and of :func:`lesions_of`."""
    report = progress or (lambda d, t, m: None)
    disagree = check_flair(flair, facts=facts)        # what the user states wins: a disagreement is a caveat
    warnings: list[str] = facts.notes + facts.caveats(FLAIR_EXPECTS) + disagree
    given = read_lesions(lesions_path, flair, options.resample_masks, warnings) if lesions_path is not None else None
    report(1, steps, "brain extraction")
    extraction = extract_brain(flair)
    check_intracranial_volume(extraction.icv_ml)      # the FLAIR and its contrast were judged above, once
    notes += list(extraction.notes)
    if given is not None:
        lesions, source = given, "given"
    else:
        report(2, steps, "lesion segmentation")
        lesions = segment(flair, extraction.mask)
        notes += removed_note(lesions)          # what the false-positive rules removed, by kind (issue #65)
        notes += dropped_note(lesions)          # what the learned second look dropped (issue 79)
        source = lesion_model or "default lesion model"
    report(3, steps, "lesion table")
    table = lesion_table(lesions, extraction)
    return NeuroLesions(flair, extraction, lesions, table, source, warnings, notes, facts)


def predict_neuro(flair_path: str | Path, lesions_path: Optional[str | Path] = None, model: Optional[str] = None,
                  heatmap: bool = True, device: Any = "cpu", lesion_model: Optional[str] = None,
                  progress: Optional[ProgressCallback] = None, resample_masks: bool = False,
                  modality: Optional[str] = None) -> NeuroPrediction:
    """Steps 1-5: lesions, table, P(NMOSD) from the classifier bundle ``model`` (default: the bundled
    two-view demo) and its occlusion map on the FLAIR's grid. The models are loaded for this call;
    `orbitai.neuro.predictor.NeuroPredictor` keeps them for every case."""
    t0 = time.perf_counter()
    classifier = Classifier.load(model, device)       # before the long steps: a bad --model fails at once
    found = find_lesions(flair_path, lesions_path, lesion_model, device, progress, steps=6,
                         resample_masks=resample_masks, modality=modality)
    return classify_lesions(classifier, found, heatmap, device, progress, t0)


def classify_lesions(classifier: Classifier, found: NeuroLesions, heatmap: bool = True, device: Any = "cpu",
                     progress: Optional[ProgressCallback] = None, t0: Optional[float] = None) -> NeuroPrediction:
    """Step 5 on the lesions ``found`` (steps 1-4 of 6) by ``classifier``; ``t0``: when the prediction began (its
    ``seconds``)."""
    t0 = time.perf_counter() if t0 is None else t0
    report = progress or (lambda d, t, m: None)
    bundle, trust = classifier.bundle, classifier.trust
    meta = bundle.metadata
    spec = meta.get("input") or {}
    mode = str(spec.get("mode"))
    threshold = float(meta.get("threshold", 0.5))
    architecture = str(meta.get("network") or bundle.architecture)     # twoview18, resnet3d34, ...
    if found.table.count == 0:
        reason = ("no white-matter lesion was found, so the NMOSD-vs-MS classifier does not apply (it was trained "
                  "on patients with lesions)")
        report(6, 6, "done")
        return NeuroPrediction(found, bundle.name, architecture, mode, threshold, None, reason,
                               seconds=time.perf_counter() - t0, device=str(device))
    report(4, 6, "classification")
    probability, distance, heat = classify(classifier.net, found, spec, device, heatmap, threshold,
                                           lambda: report(5, 6, "occlusion map"), trust)
    vascular = scope_warning(found.lesions, found.extraction)
    reasons = ([VASCULAR] if vascular else []) + (found.scan.breaks(FLAIR_EXPECTS) if found.scan else [])
    out_of_scope = "; ".join(reasons)
    if vascular:
        found.warnings.append(vascular)
    if out_of_scope:
        found.warnings.append(f"The NMOSD/MS call: {scope_message(out_of_scope)}")
    if trust is None:
        found.warnings.append(NO_TRUST_WARNING)
    else:
        found.warnings.extend(w for w in [trust.warning(distance, "The NMOSD/MS call")] if w)
    report(6, 6, "done")
    return NeuroPrediction(found, bundle.name, architecture, mode, threshold, probability, heatmap=heat,
                           seconds=time.perf_counter() - t0, device=str(device), trust=trust,
                           ood_distance=distance if trust is not None else None, out_of_scope=out_of_scope)


def classify(net: Any, found: NeuroLesions, spec: dict, device: Any, heatmap: bool, threshold: float,
             before_heatmap: Callable[[], None] = lambda: None, trust: Optional[Trust] = None
             ) -> tuple[float, float, Optional[Volume]]:
    """P(NMOSD) of one patient (calibrated by ``trust`` when given), the distance of its features to the training
    data (``trust``'s; nan without), and, when ``heatmap``, the occlusion map of the call on the FLAIR's grid
    (scaled to [0, 1]: the share of the call's probability each region carries; 0 where occluding it
    does not lower the probability)."""
    x, info = classifier_input(found.flair, found.lesions, str(spec.get("mode")), int(spec.get("size", 100)))
    feats, logits = features_and_logits(net, np.ascontiguousarray(x, dtype=np.float32)[None, None], device)
    probability = float((trust.probabilities(logits) if trust is not None else softmax(logits))[0, 1])
    distance = float(trust.distance(feats)[0]) if trust is not None else float("nan")
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None].to(device)
    net.eval()
    if not heatmap:
        return probability, distance, None
    before_heatmap()
    target = int(probability >= threshold)
    occ = occlusion_map(net, t, target, patch=OCCLUSION_PATCH, stride=OCCLUSION_STRIDE, method="batched",
                        batch_size=9)
    occ = np.clip(occ, 0.0, None)
    peak = float(occ.max())
    occ = occ / peak if peak > 0 else occ
    heat = heat_to_flair(occ.astype(np.float32), info, found.flair)
    return probability, distance, heat.with_array(np.clip(np.asarray(heat.array), 0.0, 1.0).astype(np.float32))
