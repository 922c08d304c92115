"""The ``ivgc`` task's one predictor (`orbitai.predictor`): one patient's probability of responding to IVGC.

:class:`IvgcPredictor` is made once with ``--model`` and ``--device`` and keeps its model for every case it
predicts: ``orbitai ivgc predict`` (one patient) and each case of ``ivgc predict --manifest`` (one predictor per
cohort worker, `orbitai.cohort.runner.worker_state`) call its ``predict``, the per-case skeleton of
`orbitai.predictor.Predictor` (the output folder checked before any work, the MRI read and the scan judged once, the
model with the device fallback, the result folder written whole, with a DICOM SR for a DICOM series); the warm worker
and the IVGCResponse Logic's child run that command. This class fills the skeleton's hooks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.dicom.export import DicomOutputs, DicomReport
from orbitai.dicom.inputs import model_input
from orbitai.errors import InputError
from orbitai.ivgc.features import check_case_image
from orbitai.ivgc.models import load_ivgc_model
from orbitai.ivgc.predict import IvgcOptions, IvgcPrediction, predict_on_scan, read_clinical
from orbitai.ivgc.result import FEATURES_FILE, GRADCAM_FILE, IvgcResult, dicom_report
from orbitai.predictor import Case, CaseInputs, Predictor
from orbitai.result import RESULT_FILE

if TYPE_CHECKING:
    import torch

    from orbitai.bundle.core import Bundle
    from orbitai.progress import ProgressCallback
    from orbitai.scan import ScanFacts

#: The files one ``ivgc predict`` case may write.
CASE_FILES = (RESULT_FILE, FEATURES_FILE, GRADCAM_FILE)


class IvgcPredictor(DicomOutputs, Predictor[IvgcOptions, IvgcPrediction, IvgcResult]):
    """An IVGC-response model (a kind, a panel label, a bundle name or folder; None: ``ivgc_svm_demo``) on a device,
    loaded on the first case and kept for the others.

    ``predict(inputs, out, options)``: ``inputs``: ``image`` (coronal T2 MRI: file or DICOM folder), ``segmentation``
    (the recti) and ``clinical``: ``{feature: value}``, the ``--clinical`` JSON file's path, or None; ``options``:
    `IvgcOptions` or ``ivgc predict``'s options (``strategy``, ``no_gradcam``, ``resample_masks``, ``modality``,
    ``clinical_source``)."""

    task = "ivgc"
    Options = IvgcOptions
    result_task = IvgcResult.task
    case_files = CASE_FILES

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self._loaded: dict[str, tuple[Bundle, Any]] = {}

    def loaded(self, device: "torch.device | str") -> "tuple[Bundle, Any]":
        """(bundle, model) on ``device``: loaded the first time, the same objects afterwards."""
        key = str(device)
        if key not in self._loaded:
            self._loaded[key] = load_ivgc_model(self.model, device)
        return self._loaded[key]

    def read_inputs(self, inputs: Mapping[str, Any], options: IvgcOptions) -> CaseInputs:
        image, segmentation, clinical = inputs["image"], inputs["segmentation"], inputs.get("clinical")
        clinical_file = clinical if isinstance(clinical, (str, os.PathLike)) else None
        for what, path in (("image", image), ("--segmentation", segmentation)):
            if not Path(path).exists():
                raise InputError(f"The {what} {path} does not exist.")
        values = read_clinical(os.fspath(clinical_file)) if clinical_file is not None else clinical
        # --dicom-attributes never reaches the model (#62.11)
        return CaseInputs(image, model_input(image), [image, segmentation, clinical_file],
                          {"segmentation": segmentation, "clinical": values})

    def prepare(self, options: IvgcOptions) -> None:
        self.loaded(self.device)        # a bad --model: before the MRI is read

    def check_scan(self, case: Case, options: IvgcOptions, facts: "Optional[ScanFacts]") -> None:
        check_case_image(case.volume, case.scan)       # 3D, finite, not constant

    def run(self, case: Case, options: IvgcOptions, device: "torch.device",
            progress: "Optional[ProgressCallback]" = None) -> IvgcPrediction:
        return predict_on_scan(lambda: self.loaded(device), case.volume, case.judged, os.fspath(case.scan),
                               case.inputs["segmentation"], case.inputs.get("clinical"), options, device, progress)

    def result(self, made: IvgcPrediction, case: Case, options: IvgcOptions) -> IvgcResult:
        return made.result()

    def dicom_report(self, made: IvgcPrediction, result: IvgcResult) -> "DicomReport":
        """A DICOM series also gets an SR of P(response) with the model and ROI strategy (`orbitai.dicom`)."""
        return dicom_report(result.to_json())
