"""The ``ivgc`` task's one predictor (`orbitai.predictor`): one patient's probability of responding to IVGC.

:class:`IvgcPredictor` is made once with ``--model`` and ``--device`` and keeps its model for every case it
predicts: ``orbitai ivgc predict`` (one patient) and each case of ``ivgc predict --manifest`` (one predictor per
cohort worker, `orbitai.cohort.runner.worker_state`) call :meth:`IvgcPredictor.predict`; the warm worker and the
IVGCResponse Logic's child run that command. It does what the command did: the output folder checked before any
work, the MRI and segmentation read and the scan judged once (`orbitai.ivgc.predict.predict_with_model`), the
model, the result folder written whole (with a DICOM SR for a DICOM series) and the command's printed lines.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.device import run_with_fallback
from orbitai.dicom.export import dicom_extra
from orbitai.dicom.inputs import model_input
from orbitai.errors import InputError
from orbitai.ivgc.models import load_ivgc_model
from orbitai.ivgc.predict import IvgcOptions, IvgcPrediction, predict_with_model, read_clinical
from orbitai.ivgc.result import FEATURES_FILE, GRADCAM_FILE, IvgcResult, dicom_report
from orbitai.predictor import Predictor
from orbitai.result import RESULT_FILE, check_outputs, not_assessed

if TYPE_CHECKING:
    import torch

    from orbitai.bundle.core import Bundle
    from orbitai.progress import ProgressCallback
    from orbitai.scan import ScanFacts

#: The files one ``ivgc predict`` case may write.
CASE_FILES = (RESULT_FILE, FEATURES_FILE, GRADCAM_FILE)


class IvgcPredictor(Predictor):
    """An IVGC-response model (a kind, a panel label, a bundle name or folder; None: ``ivgc_svm_demo``) on a device,
    loaded on the first case and kept for the others."""

    task = "ivgc"

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self._loaded: dict[str, tuple[Bundle, Any]] = {}

    def loaded(self, device: "torch.device | str") -> "tuple[Bundle, Any]":
        """(bundle, model) on ``device``: loaded the first time, the same objects afterwards."""
        key = str(device)
        if key not in self._loaded:
            self._loaded[key] = load_ivgc_model(self.model, device)
        return self._loaded[key]

    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Mapping[str, Any],
                facts: "Optional[ScanFacts]" = None,
                progress: "Optional[ProgressCallback]" = None) -> IvgcResult:
        """One patient into the folder ``out``. ``inputs``: ``image`` (coronal T2 MRI: file or DICOM folder),
        ``segmentation`` (the recti) and ``clinical``: ``{feature: value}``, the ``--clinical`` JSON file's path,
        or None; ``options``: ``ivgc predict``'s (``strategy``, ``no_gradcam``, ``resample_masks``, ``modality``,
        ``clinical_source``). Nothing is written on an error."""
        image, segmentation, clinical = inputs["image"], inputs["segmentation"], inputs.get("clinical")
        clinical_file = clinical if isinstance(clinical, (str, os.PathLike)) else None
        folder = check_outputs(out, [image, segmentation, clinical_file], CASE_FILES, task=IvgcResult.task)
        for what, path in (("image", image), ("--segmentation", segmentation)):
            if not Path(path).exists():
                raise InputError(f"The {what} {path} does not exist.")
        values = read_clinical(os.fspath(clinical_file)) if clinical_file is not None else clinical
        settings = IvgcOptions.of(options)
        # --dicom-attributes never reaches the model (#62.11)
        pred = run_with_fallback(lambda d: predict_with_model(lambda: self.loaded(d), model_input(image),
                                                              segmentation, values, settings, d, progress, facts),
                                 self.device)
        result = pred.result()
        self.stamp(result)
        # a DICOM series also gets an SR of P(response) with the model and ROI strategy (orbitai.dicom)
        dicom = dicom_extra(image, lambda: dicom_report(result.to_json()), result.data.setdefault("warnings", []))
        result.write(folder, extra=dicom)     # staged beside OUT, moved into place when complete
        tell(pred, result, folder)
        return result


def tell(pred: IvgcPrediction, result: IvgcResult, folder: Path) -> None:
    """The lines ``ivgc predict`` prints for one patient."""
    for w in pred.warnings:
        print(f"warning: {w}")
    if pred.scan is not None:
        print(f"scan: {pred.scan.summary()}")
    if pred.reformatted:
        print(f"reformatted: {pred.reformatted}")
    # a call marked do not use reads "not assessed: <reason>" in place of the call and P (issue 61)
    call = not_assessed(result.data) or f"P(responder) = {pred.probability:.3f} -> {pred.call}"
    print(f"{call} (model {pred.model}, {pred.kind}, ROI {pred.strategy}, {pred.seconds:.1f} s)")
    print(f"scope: {result.data['scope']}")
    print(f"wrote {folder}/{RESULT_FILE}")
