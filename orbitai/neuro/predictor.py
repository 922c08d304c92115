"""The ``neuro`` task's one predictor (`orbitai.predictor`): one brain FLAIR's white-matter lesions, lesion table and,
when asked, the NMOSD-vs-MS call.

:class:`NeuroPredictor` is made once with ``--model`` (the classifier), ``--lesion-model`` and ``--device`` and keeps
both networks for every case it predicts: ``orbitai neuro lesions`` (``options["classify"]`` false: the lesions
only) and ``orbitai neuro predict`` (true: lesions and the call), one FLAIR or each case of a ``--manifest`` cohort
(one predictor per cohort worker, `orbitai.cohort.runner.worker_state`), call :meth:`NeuroPredictor.predict`; the
warm worker and the NeuroDifferential Logic's child run those commands. It does what the commands did: the output
folder checked before any work, the FLAIR read and the scan judged once (`orbitai.neuro.predict.lesions_of`), the
lesion model, the classifier, the result folder written whole (with a DICOM SEG and SR for a DICOM series) and the
commands' printed lines.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from orbitai.device import run_with_fallback
from orbitai.dicom.inputs import model_input
from orbitai.neuro.lesionseg import lesion_bundle, segment_with
from orbitai.neuro.predict import (Classifier, NeuroLesions, NeuroOptions, NeuroPrediction, classify_lesions,
                                   lesions_data, lesions_of)
from orbitai.neuro.result import (BRAIN_FILE, HEATMAP_FILE, LESIONS_FILE, TABLE_FILE, NeuroResult, neuro_result,
                                  withhold_calls)
from orbitai.predictor import Predictor
from orbitai.result import RESULT_FILE, check_outputs, not_assessed

if TYPE_CHECKING:
    import torch

    from orbitai.bundle.core import Bundle
    from orbitai.io import Volume
    from orbitai.progress import ProgressCallback
    from orbitai.scan import ScanFacts

#: The files one ``neuro lesions|predict`` case may write.
CASE_FILES = (RESULT_FILE, LESIONS_FILE, TABLE_FILE, BRAIN_FILE, HEATMAP_FILE)


class NeuroPredictor(Predictor):
    """The NMOSD-vs-MS classifier ``model`` (a bundle name or folder; None: the bundled two-view demo) and the lesion
    network ``lesion_model`` (None: the bundled one) on a device, each loaded on the first case that needs it and
    kept for the others."""

    task = "neuro"

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

    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Mapping[str, Any],
                facts: "Optional[ScanFacts]" = None,
                progress: "Optional[ProgressCallback]" = None) -> NeuroResult:
        """One FLAIR into the folder ``out``. ``inputs``: ``flair`` (or ``image``: a file or DICOM folder) and
        ``lesions`` (or ``segmentation``: its lesion segmentation; None: the lesion network's); ``options``: the
        command's (``classify``: the NMOSD/MS call too, default true; ``no_heatmap``, ``resample_masks``,
        ``modality``). Nothing is written on an error."""
        flair = inputs["flair"] if "flair" in inputs else inputs["image"]
        lesions = inputs["lesions"] if "lesions" in inputs else inputs.get("segmentation")
        folder = check_outputs(out, [flair, lesions], CASE_FILES, task=NeuroResult.task)
        settings = NeuroOptions.of(options)
        classify = bool(options.get("classify", True))
        source = model_input(flair)        # --dicom-attributes never reaches the model (#62.11)
        t0 = time.perf_counter()

        def run(device: "torch.device") -> Union[NeuroLesions, NeuroPrediction]:
            classifier = self.classifier(device) if classify else None    # a bad --model fails before the long steps
            found = lesions_of(source, lesions, self.lesion_model, lambda f, b: self.segment(f, b, device), settings,
                               progress, 6 if classify else 4, facts)
            if classifier is None:
                return found
            return classify_lesions(classifier, found, settings.heatmap, device, progress, t0)

        made = run_with_fallback(run, self.device)
        pred = made if isinstance(made, NeuroPrediction) else None
        found = made.found if isinstance(made, NeuroPrediction) else made
        data = pred.data() if pred is not None else lesions_data(found, str(self.device), time.perf_counter() - t0)
        result, dicom = neuro_result(data, found.lesions, found.table.lesions, found.extraction.mask,
                                     pred.heatmap if pred is not None else None, flair=flair)
        self.stamp(result)
        result.write(folder, dicom)       # staged beside OUT, moved into place when complete
        tell(found, pred, data, folder)
        return result


def tell(found: NeuroLesions, pred: Optional[NeuroPrediction], data: Mapping[str, Any], folder: Path) -> None:
    """The lines ``neuro lesions`` (``pred`` None) or ``neuro predict`` prints for one FLAIR."""
    for w in found.warnings:
        print(f"warning: {w}")
    for n in found.notes:
        print(f"note: {n}")
    if found.scan is not None:
        print(f"scan: {found.scan.summary()}")
    t = found.table
    print(f"{t.count} lesion(s), {t.total_ml:.2f} mL ({t.percent_icv:.2f} % of the intracranial volume "
          f"{t.icv_ml / 1000:.2f} L); " + ", ".join(f"{k} {v}" for k, v in t.location_counts().items() if v))
    if pred is not None:
        if pred.probability is None:
            print(f"classifier does not apply: {pred.reason}")
        else:   # a call marked do not use reads "not assessed: <reason>" in place of the call and P (issue 61)
            call = not_assessed(withhold_calls(dict(data))) or f"P(NMOSD) = {pred.probability:.3f} -> {pred.call}"
            print(f"{call} (model {pred.model}, {pred.seconds:.1f} s)")
        print(f"scope: {data['scope']}")
    print(f"wrote {folder}/{RESULT_FILE}")
