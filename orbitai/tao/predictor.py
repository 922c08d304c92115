"""`TaoPredictor`: the TAO activity predictor (task ``tao``) that every front end calls for one case: the command line
(``orbitai tao predict``, one image or each case of a cohort, serial or on a Dask worker), and through it the warm
worker, the Logic's child, the Slicer module and the browser."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.cohort.manifest import read_labels
from orbitai.device import run_with_fallback
from orbitai.dicom.export import dicom_extra
from orbitai.dicom.inputs import model_input
from orbitai.io import read_scan
from orbitai.predictor import Predictor
from orbitai.result import not_assessed
from orbitai.scan import ScanFacts, scan_facts
from orbitai.tao.figure import save_tao_figure
from orbitai.tao.predict import TaoModels, predict_tao
from orbitai.tao.preprocess import GivenLabels
from orbitai.tao.result import FIGURE_FILE, TaoResult, dicom_report
from orbitai.tao.spec import EXPECTS

if TYPE_CHECKING:
    import torch

    from orbitai.progress import ProgressCallback

__all__ = ["TaoPredictor"]


class TaoPredictor(Predictor):
    """The TAO activity network (``model``: A, B or a bundle name/folder; None: the default, B) on a device, and
    OrbitSegmentation's MRI model for a scan given without its segmentation, each loaded once for every case.

    ``predict(inputs={"image": path, "segmentation": path or None}, out, options)``: ``options`` are ``maps``
    (occlusion and Grad-CAM), ``figure``, ``resample_masks`` and ``modality`` (the ``--modality`` value)."""

    task = "tao"

    def __init__(self, model: Optional[str] = None, device: "str | torch.device | None" = "auto") -> None:
        super().__init__(model, device)
        self.models = TaoModels(model)

    def predict(self, inputs: Mapping[str, Any], out: str | os.PathLike, options: Mapping[str, Any],
                facts: Optional[ScanFacts] = None, progress: "Optional[ProgressCallback]" = None) -> TaoResult:
        """Classify both eyes of one MRI and write ``out`` (staged); print what ``tao predict`` prints."""
        image_path, segmentation, out = inputs["image"], inputs.get("segmentation"), Path(out)
        maps = options.get("maps", True)
        source = model_input(image_path)      # the user's file, not the series --dicom-attributes made of it
        image, acquisition = read_scan(source)
        if facts is None:
            facts = scan_facts(image, acquisition.tags, source, options.get("modality"))
        labels = read_labels(Path(segmentation)) if segmentation else None
        given = GivenLabels(bool(options.get("resample_masks")), f"the segmentation {Path(segmentation or '').name}")
        pred = run_with_fallback(lambda d: predict_tao(image, labels, self.model or "B", d, maps=maps, progress=progress,
                                                       given=given, facts=facts, models=self.models), self.device)
        pred.warnings.extend(facts.notes + facts.caveats(EXPECTS))      # a protocol TAO's network was not made for
        pred.out_of_scope(facts.breaks(EXPECTS))                         # ... and when sure, each call says do not use

        def write_figure(tmp: Path) -> dict[str, str]:
            save_tao_figure(pred, tmp / FIGURE_FILE, labels, title=f"{Path(image_path).name} - {pred.model}")
            return {"figure": FIGURE_FILE}

        result = pred.result(image)
        self.stamp(result)
        result.data["scan"] = facts.to_json()
        # a DICOM series also gets an SR of P(active) per eye (orbitai.dicom)
        dicom = dicom_extra(image_path, lambda: dicom_report(result.to_json()), result.data.setdefault("warnings", []))
        figure = write_figure if options.get("figure") and maps else None

        def extra(tmp: Path) -> dict[str, str]:
            return {**(figure(tmp) if figure else {}), **(dicom(tmp) if dicom else {})}

        # written into a temporary folder beside OUT and moved into place only when complete
        result.write(out, extra=extra if figure or dicom else None)
        for w in pred.warnings:
            print(f"warning: {w}")
        print(f"scan: {facts.summary()}")
        if pred.reformatted:
            print(f"reformatted: {pred.reformatted}")
        for e in result.data["eyes"]:      # a call marked do not use reads "not assessed: <reason>", no P (issue 61)
            print(f"{e['side']:<6} " + (not_assessed(e) or f"P(active) = {e['probability_active']:.3f} -> {e['call']}"))
        print(f"scope: {pred.to_json()['scope']}")
        print(f"wrote {out}/result.json ({pred.seconds:.1f} s, model {pred.model})")
        return result
