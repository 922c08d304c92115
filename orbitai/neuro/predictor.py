"""The ``neuro`` task's one predictor (`orbitai.predictor`): one brain FLAIR's white-matter lesions, lesion table and,
when asked, the NMOSD-vs-MS call.

:class:`NeuroPredictor` is made once with ``--model`` (the classifier), ``--lesion-model`` and ``--device`` and keeps
both networks for every case it predicts: ``orbitai neuro lesions`` (``classify`` false: the lesions only) and
``orbitai neuro predict`` (true: lesions and the call), one FLAIR or each case of a ``--manifest`` cohort (one
predictor per cohort worker, `orbitai.cohort.runner.worker_state`), call its ``predict``, the per-case skeleton of
`orbitai.predictor.Predictor` (the output folder checked before any work, the FLAIR read and the scan judged once,
the models with the device fallback, the result folder written whole, with a DICOM SEG and SR for a DICOM series);
the warm worker and the NeuroDifferential Logic's child run those commands. This class fills the skeleton's hooks.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from orbitai.dicom.export import DicomOutputs, DicomReport
from orbitai.dicom.inputs import model_input
from orbitai.errors import InputError
from orbitai.neuro.lesionseg import lesion_bundle, segment_with
from orbitai.neuro.predict import (
    Classifier,
    NeuroLesions,
    NeuroOptions,
    NeuroPrediction,
    check_flair_values,
    classify_lesions,
    lesions_data,
    lesions_on,
)
from orbitai.neuro.result import (
    BRAIN_FILE,
    HEATMAP_FILE,
    LESIONS_FILE,
    TABLE_FILE,
    NeuroResult,
    dicom_report,
    neuro_result,
)
from orbitai.predictor import Case, CaseInputs, Predictor
from orbitai.result import RESULT_FILE
from orbitai.scan.geometry import check_spacing

if TYPE_CHECKING:
    import torch

    from orbitai.bundle.core import Bundle
    from orbitai.io import Volume
    from orbitai.progress import ProgressCallback
    from orbitai.scan import ScanFacts

#: The files one ``neuro lesions|predict`` case may write.
CASE_FILES = (RESULT_FILE, LESIONS_FILE, TABLE_FILE, BRAIN_FILE, HEATMAP_FILE)


class NeuroPredictor(DicomOutputs, Predictor[NeuroOptions, Union[NeuroLesions, NeuroPrediction], NeuroResult]):
    """The NMOSD-vs-MS classifier ``model`` (a bundle name or folder; None: the bundled two-view demo) and the lesion
    network ``lesion_model`` (None: the bundled one) on a device, each loaded on the first case that needs it and
    kept for the others."""

    task = "neuro"
    Options = NeuroOptions
    result_task = NeuroResult.task
    case_files = CASE_FILES

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto",
                 lesion_model: Optional[str] = None) -> None:
        super().__init__(model, device)
        self.lesion_model = lesion_model
        self._classifiers: dict[str, Classifier] = {}
        self._lesion_nets: dict[str, tuple[Bundle, Any]] = {}

    def classifier(self, device: "torch.device | str") -> Classifier:
        """The classifier on ``device``: loaded (with its trust statistics) the first time, the same afterwards."""
        key = str(device)
        if key not in self._classifiers:
            self._classifiers[key] = Classifier.load(self.model, device)
        return self._classifiers[key]

    def segment(self, flair: "Volume", brain: "Volume", device: "torch.device | str") -> "Volume":
        """The lesion mask of ``flair`` inside ``brain`` by the lesion network on ``device`` (loaded the first time)."""
        key = str(device)
        if key not in self._lesion_nets:
            bundle = lesion_bundle(self.lesion_model)
            self._lesion_nets[key] = (bundle, bundle.load_model(device))
        bundle, net = self._lesion_nets[key]
        return segment_with(bundle, net, flair, brain, device)

    def read_inputs(self, inputs: Mapping[str, Any], options: NeuroOptions) -> CaseInputs:
        """``flair`` (or ``image``: a file or DICOM folder) and ``lesions`` (or ``segmentation``: its lesion
        segmentation; None: the lesion network's)."""
        flair = inputs["flair"] if "flair" in inputs else inputs["image"]
        lesions = inputs["lesions"] if "lesions" in inputs else inputs.get("segmentation")
        source = model_input(flair)        # --dicom-attributes never reaches the model (#62.11)
        if not Path(source).exists():
            raise InputError(f"The FLAIR {source} does not exist.")
        return CaseInputs(flair, source, [flair, lesions], {"lesions": lesions})

    def prepare(self, options: NeuroOptions) -> None:
        if options.classify:
            self.classifier(self.device)    # a bad --model fails before the long steps

    def check_scan(self, case: Case, options: NeuroOptions, facts: "Optional[ScanFacts]") -> None:
        check_spacing(case.volume, f"The FLAIR {Path(case.scan).name}")     # a header no step can serve
        check_flair_values(case.volume)

    def run(self, case: Case, options: NeuroOptions, device: "torch.device",
            progress: "Optional[ProgressCallback]" = None) -> Union[NeuroLesions, NeuroPrediction]:
        classifier = self.classifier(device) if options.classify else None
        found = lesions_on(case.volume, list(case.acquisition.notes), case.judged, case.inputs.get("lesions"),
                           self.lesion_model, lambda f, b: self.segment(f, b, device), options, progress,
                           6 if options.classify else 4)
        if classifier is None:
            return found
        return classify_lesions(classifier, found, options.heatmap, device, progress,
                                time.perf_counter() - case.stages["read"])

    def result(self, made: Union[NeuroLesions, NeuroPrediction], case: Case, options: NeuroOptions) -> NeuroResult:
        pred = made if isinstance(made, NeuroPrediction) else None
        found = made.found if isinstance(made, NeuroPrediction) else made
        data = pred.data() if pred is not None else lesions_data(found, str(self.device),
                                                                 case.stages["read"] + case.stages["run"])
        result, _ = neuro_result(data, found.lesions, found.table.lesions, found.extraction.mask,
                                 pred.heatmap if pred is not None else None)
        return result

    def dicom_report(self, made: Union[NeuroLesions, NeuroPrediction], result: NeuroResult) -> "DicomReport":
        """A DICOM FLAIR also gets a SEG and an SR (`orbitai.dicom`)."""
        return dicom_report(result.data, result.lesions, result.brain)
