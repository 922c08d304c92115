"""`TaoPredictor`: the TAO activity predictor (task ``tao``) that every front end calls for one case: the command line
(``orbitai tao predict``, one image or each case of a cohort, serial or on a Dask worker), and through it the warm
worker, the Logic's child, the Slicer module and the browser; ``tao evaluate`` runs its :meth:`TaoPredictor.run`. The
per-case steps are `orbitai.predictor`'s."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from orbitai.cohort.manifest import read_labels
from orbitai.dicom.export import DicomOutputs, DicomReport
from orbitai.dicom.inputs import model_input
from orbitai.predictor import Case, CaseInputs, Predictor
from orbitai.tao.figure import save_tao_figure
from orbitai.tao.predict import TaoModels, TaoPrediction, predict_tao
from orbitai.tao.preprocess import GivenLabels
from orbitai.tao.result import CASE_FILES, FIGURE_FILE, TaoResult, dicom_report
from orbitai.tao.spec import EXPECTS

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback

__all__ = ["TaoOptions", "TaoPredictor"]


@dataclass(frozen=True)
class TaoOptions:
    """The options that decide one TAO prediction besides the model and the inputs (``tao predict``'s)."""

    maps: bool = True                       # the occlusion and Grad-CAM maps
    figure: bool = False                    # tao_maps.png (with the maps)
    resample_masks: bool = False            # a segmentation off the MRI's grid is resampled instead of refused
    modality: Optional[str] = None          # what the user says the scan is (``--modality``)
    given: str = ""                         # how a given segmentation is named in messages ("": by its file)

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> "TaoOptions":
        """From a command's options as ``tao predict`` names them (``maps``, ``figure``, ``resample_masks``...)."""
        return cls(bool(options.get("maps", True)), bool(options.get("figure")), bool(options.get("resample_masks")),
                   options.get("modality"))


class TaoPredictor(DicomOutputs, Predictor[TaoOptions, TaoPrediction, TaoResult]):
    """The TAO activity network (``model``: A, B or a bundle name/folder; None: the default, B) on a device, and
    OrbitSegmentation's MRI model for a scan given without its segmentation, each loaded once for every case.

    ``predict(inputs={"image": path, "segmentation": path or None}, out, options)``: ``options`` are `TaoOptions`
    or a mapping of them."""

    task = "tao"
    Options = TaoOptions
    result_task = TaoResult.task
    case_files = CASE_FILES

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self.models = TaoModels(model)

    def read_inputs(self, inputs: Mapping[str, Any], options: TaoOptions) -> CaseInputs:
        """The MRI (the user's file, not the series --dicom-attributes made of it) and its orbit segmentation."""
        image, segmentation = inputs["image"], inputs.get("segmentation")
        labels = read_labels(Path(segmentation)) if segmentation else None
        return CaseInputs(image, model_input(image), [image, segmentation],
                          {"segmentation": segmentation, "labels": labels})

    def run(self, case: Case, options: TaoOptions, device: "torch.device",
            progress: "Optional[ProgressCallback]" = None) -> TaoPrediction:
        given = GivenLabels(options.resample_masks,
                            options.given or f"the segmentation {Path(case.inputs.get('segmentation') or '').name}")
        return predict_tao(case.volume, case.inputs.get("labels"), self.model or "B", device, maps=options.maps,
                           progress=progress, given=given, facts=case.facts, models=self.models)

    def result(self, made: TaoPrediction, case: Case, options: TaoOptions) -> TaoResult:
        facts = case.judged
        made.warnings.extend(facts.notes + facts.caveats(EXPECTS))      # a protocol TAO's network was not made for
        made.out_of_scope(facts.breaks(EXPECTS))                         # ... and when sure, each call says do not use
        result = made.result(case.volume)
        result.data["scan"] = facts.to_json()
        return result

    def extra_files(self, made: TaoPrediction, result: TaoResult, case: Case, options: TaoOptions
                    ) -> Optional[Callable[[Path], dict[str, str]]]:
        if not (options.figure and options.maps):
            return None

        def write_figure(tmp: Path) -> dict[str, str]:
            save_tao_figure(made, tmp / FIGURE_FILE, case.inputs.get("labels"),
                            title=f"{Path(case.given).name} - {made.model}")
            return {"figure": FIGURE_FILE}
        return write_figure

    def dicom_report(self, made: TaoPrediction, result: TaoResult) -> DicomReport:
        """A DICOM series also gets an SR of P(active) per eye (`orbitai.dicom`)."""
        return dicom_report(result.to_json())
