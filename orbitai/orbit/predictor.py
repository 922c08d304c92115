"""`OrbitPredictor`: the orbit segmentation predictor (task ``seg``) that every front end calls for one case: the
command line (``orbitai seg predict``, one image or each case of a cohort, serial or on a Dask worker), and through
it the warm worker, the Logic's child, the Slicer module and the browser; ``seg evaluate``, ``seg rank`` and the
annotation tools' model prior run its :meth:`OrbitPredictor.run`. The per-case steps are `orbitai.predictor`'s."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

import numpy as np

from orbitai.dicom.export import DicomOutputs, DicomReport, dicom_input, writer_available
from orbitai.dicom.seg import RESAMPLED_NOTE, orbit_segments
from orbitai.dicom.sr import orbit_findings
from orbitai.engine.inference import model_probabilities
from orbitai.io import Volume, require_values, write_volume
from orbitai.orbit.anatomy import check_structures, verdict
from orbitai.orbit.locate import orbit_focus
from orbitai.orbit.predict import ModelCache, PriorRun, SegOptions, SegRun
from orbitai.orbit.result import CASE_FILES, LABELMAP_FILE, SOFT_VOLUME_KEY, SegmentationResult, check_row
from orbitai.orbit.rules import class_values, eyeball_class, orbit_midline, structure_volumes
from orbitai.orbit.segment import OrbitSearch, segment
from orbitai.predictor import Case, CaseInputs, Predictor
from orbitai.preprocess.checks import check_spacing
from orbitai.preprocess.slices import structure_gap_warnings
from orbitai.scan import ScanFacts
from orbitai.scan.values import bundled_model_family, check_not_wrapped

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback

__all__ = ["OrbitPredictor"]


class OrbitPredictor(DicomOutputs, Predictor[SegOptions, "SegRun | PriorRun", SegmentationResult]):
    """The segmentation model(s) on a device: the one ``--model`` names, or the bundled default of each modality
    met (a batch mixing CT and MRI loads both), each loaded once for every case this predictor segments.

    ``predict(inputs={"image": path}, out, options)``: ``options`` are `SegOptions` (``window``, ``mirror``,
    ``uncertainty``, ``labelmap``, ``population``, ``modality``) or a mapping of them."""

    task = "seg"
    Options = SegOptions
    result_task = SegmentationResult.task
    case_files = CASE_FILES

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self.models = ModelCache(model, self.device)


    def read_inputs(self, inputs: Mapping[str, Any], options: SegOptions) -> CaseInputs:
        return CaseInputs(inputs["image"], inputs["image"], [inputs["image"]])

    def check_scan(self, case: Case, options: SegOptions, facts: Optional[ScanFacts]) -> None:
        """Values no model reads (none, wrapped) and a header no step can serve; the values measured once."""
        require_values(case.volume, "image")
        check_spacing(case.volume, os.fspath(case.scan))
        case.values = check_not_wrapped(case.volume if facts is None or facts.values is None else facts.values,
                                        os.fspath(case.scan))

    def is_ct(self, case: Case) -> bool:
        """Whether ``case`` takes the bundled CT model: the scan's facts say (refusing what neither fits: 8-bit CT, an
        image that does not say)."""
        return bundled_model_family(case.judged, os.fspath(case.scan), case.values) == "CT"

    def run(self, case: Case, options: SegOptions, device: "torch.device",
            progress: "Optional[ProgressCallback]" = None, search: Optional[OrbitSearch] = None
            ) -> "SegRun | PriorRun":
        """The segmentation of ``case.volume`` (its ``facts`` judged; ``values`` measured, or None) by the model of its
        family; ``search``: where the orbits are looked for (``seg rank``'s). With ``options.prior``, the network's
        class probabilities instead (`PriorRun`, of which `orbitai.orbit.prior.compute_prior` makes the prior)."""
        is_ct = not self.models.name and self.is_ct(case)       # a named model reads every scan
        t0 = time.perf_counter()
        (progress or (lambda done, total, message: None))(0, 1, "loading model")
        bundle, model, spec = self.models.get(is_ct)
        case.stages["model"] = time.perf_counter() - t0
        if options.prior:
            return network_prior(case.volume, bundle, model, spec, device, progress, options.mirror)
        res = segment(case.volume, model, spec, options.window, device, progress=progress, mirror=options.mirror,
                      facts=case.facts, search=search or OrbitSearch())
        case.stages.update({"preprocess": res.prep_seconds, "window": res.window_seconds})
        return SegRun(res, bundle, spec)

    def result(self, made: "SegRun | PriorRun", case: Case, options: SegOptions) -> SegmentationResult:
        assert isinstance(made, SegRun), "a prior is no segmentation result"
        res, spec, acquisition, facts = made.seg, made.spec, case.acquisition, case.judged
        if dicom_input(case.given) and writer_available() and acquisition.resampled is not None:
            acquisition.notes.append(RESAMPLED_NOTE)
        rows = structure_volumes(res.labels, spec.structures)
        # partial-volume-aware volumes from the class probabilities: on thick slices the voxel count misses what
        # lies partly in a voxel
        soft = res.soft_volumes(spec.structures)
        # each structure (its soft volume) against the normal adult range and the model's own confidence (the whole
        # verdict: a warning)
        checks = {c.label: c for c in check_structures(res.labels, spec.structures, res.confidence,
                                                       population=options.population, volumes=soft)}
        for r in rows:
            r[SOFT_VOLUME_KEY] = round(soft.get(r["label"], r["volume_cm3"]), 4)
            r.update(check_row(checks[r["label"]]))
        # structures lying where the acquired slices are too far apart for them: said, not guessed silently
        gap_warnings = structure_gap_warnings(res.labels.array, res.labels.ijk_to_lps(),
                                              {r["label"]: r["structure"] for r in rows}, acquisition.positions,
                                              acquisition.normal)
        warnings = list(res.warnings) + gap_warnings + facts.notes
        most = verdict(list(checks.values()))
        if most:
            warnings.append(most)
        uncertainty_map = None
        if options.uncertainty and res.confidence is not None:
            uncertainty_map = res.confidence.with_array((1.0 - res.confidence.array).astype("float32"))
        return SegmentationResult(res.labels, rows, made.bundle.name, warnings, uncertainty_map,
                                  {"device": str(self.device), "window": options.window,
                                   "seconds": round(res.seconds, 3), "window_seconds": round(res.window_seconds, 3),
                                   "population": options.population, "acquisition": acquisition.to_json(),
                                   "scan": facts.to_json()})

    def extra_files(self, made: "SegRun | PriorRun", result: SegmentationResult, case: Case, options: SegOptions
                    ) -> Optional[Callable[[Path], dict[str, str]]]:
        if not options.labelmap or not isinstance(made, SegRun):
            return None
        return lambda tmp: {"labelmap": write_volume(made.seg.labels, tmp / LABELMAP_FILE).name}

    def dicom_report(self, made: "SegRun | PriorRun", result: SegmentationResult) -> DicomReport:
        """The SEG and TID 1500 SR of a DICOM input: each structure and side, its volume."""
        assert isinstance(made, SegRun)
        segments = orbit_segments(result.volumes)
        return DicomReport(made.bundle.name, str(made.bundle.metadata.get("version", "")),
                           orbit_findings(result.volumes, segments), made.seg.labels, segments,
                           "OrbitAI orbit segmentation", "ORBIT", "OrbitAI orbit structure volumes")

    def warnings_of(self, result: SegmentationResult) -> list[str]:
        return result.warnings


def network_prior(image: Volume, bundle: Any, model: Any, spec: Any, device: Any, progress=None,
                  mirror: bool = True) -> PriorRun:
    """The class probabilities of ``image`` by the segmentation network ``model`` of ``bundle`` (input ``spec``) on
    ``device``: what `OrbitPredictor.run` makes when asked for the prior (`orbitai.orbit.prior.compute_prior`)."""
    # where the orbits lie (the front of a head, narrowed to the orbit pair a coarse pass finds: the segmentation of
    # a 1 mm head fell from 14.6 to 4.3 s so); the whole scan when no eyeball is found there (an unusual field of
    # view), as `orbitai.orbit.segment.segment` does
    probs, grid = model_probabilities(image, model, spec, device=device, progress=progress, mirror=mirror,
                                      focus=orbit_focus(model, spec.structures))
    centre = None
    eye = eyeball_class(spec.structures)
    if eye > 0 and not (probs.argmax(0) == eye).any():
        probs, grid = model_probabilities(image, model, spec, device=device, progress=progress, mirror=mirror)
    if eye > 0:
        classes = Volume(probs.argmax(0).astype(np.uint8), grid.GetSpacing(), grid.GetOrigin(),
                         np.asarray(grid.GetDirection(), float).reshape(3, 3))
        centre = orbit_midline(classes, class_values(spec.structures), eye)
    return PriorRun(bundle.name, tuple(spec.structures), probs, grid, centre)
