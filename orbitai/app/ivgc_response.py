"""Logic of the IVGCResponse module: MRML in, MRML out, the prediction in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests. The
shared `orbitai.mrml.jobs.JobLogic` runs the job (``start``, ``finish``, blocking ``run``,
``loadResults``); this module declares its two hooks:

* `IVGCResponseLogic.jobArguments` checks the T2 MRI, the recti segmentation (written as an orbit
  label map on the MRI's grid; every rectus the ROI strategy needs must be there), the model and the
  clinical values (`orbitai.cohort.clinical.IVGC_CLINICAL`: numbers inside their plausible ranges,
  and every required one for a model that uses them; the ROI strategy the model was trained on) by the
  rules of `orbitai.ivgc.checks`, which the child applies again, writes them into the job's folder and
  names the ``orbitai ivgc predict`` command -- nothing starts on a bad value;
* `IVGCResponseLogic.importResults` reads a ``ivgc predict`` output folder through the core's
  contract (`orbitai.ivgc.result.IvgcResult`: ``result.json``, ``features.csv``, ``gradcam.nrrd``,
  all checked first) and adds the result table, the selected-features table and the Grad-CAM
  overlay. `JobLogic.loadResults` wraps it so that a failure leaves the scene as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from orbitai.app import requirements_file
from orbitai.app.panel_spec import (Option, PanelSpec, device_option, modality_arguments, modality_option, model_option,
                                     reason, scan_text, trust_text)
from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.errors import InputError
from orbitai.ivgc import checks
from orbitai.ivgc.checks import DEFAULT_STRATEGY
from orbitai.ivgc.models import IVGC_MODELS
from orbitai.ivgc.rois import STRATEGIES, strategy_masks
from orbitai.mrml import geometry_of, overlay_node_from_volume, show_overlay, show_volume, table_node_from_rows
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.results import mark_results, refuse_other_scan
from orbitai.mrml.tables import show_table
from orbitai.jobs.inputs import JobFolder
from orbitai.result import not_assessed, shown_call, withheld
from orbitai.staging import strict_json

#: Bundle name -> panel label of paper 001's four models (declared in `orbitai.ivgc.models`).
MODELS = IVGC_MODELS.bundled
DEFAULT_MODEL = IVGC_MODELS.default
RESULT_TABLE = "IVGC response"
FEATURES_TABLE = "IVGC radiomics features"
GRADCAM_NAME = "IVGC Grad-CAM"
# Every output node refers to the MRI it was computed from by the node reference orbitai.mrml.results.RESULT_OF.
RECTI_MISSING = "Select the segmentation of the recti of both orbits (or create one with Orbit Segmentation)."


@dataclass
class IvgcOutputs:
    result_table: Any
    features_table: Any = None
    gradcam_node: Any = None
    result: dict = field(default_factory=dict)      # result.json as read

    def summary(self) -> str:
        r = self.result
        # a call marked do not use reads "not assessed: <reason>", without its P (issue 61)
        text = (f"{MODELS.get(r['model'], r['model'])} on {r['strategy']}: "
                f"{shown_call(r, 'probability', 'P(response)')}.") + scan_text(r) + trust_text(r)
        if r.get("warnings"):
            text += " Warnings: " + " ".join(r["warnings"])
        return text


def clinical_form() -> list[tuple[str, str, str]]:
    """The clinical form's rows: (feature name, label with its unit, tool tip with the plausible range
    and whether it may be left empty), in `IVGC_CLINICAL` order."""
    rows = []
    for f in IVGC_CLINICAL.features:
        if f.kind == "binary":
            allowed = "0 or 1"
        else:
            allowed = f"{f.low:g} to {f.high:g}" + (" (whole number)" if f.kind == "integer" else "")
        empty = "required by models with clinical features" if f.missing == "error" else \
            f"may be left empty (the model fills in the training cohort's {f.missing})"
        rows.append((f.name, f"{f.description} ({f.unit})", f"{f.name}: {allowed} {f.unit}; {empty}."))
    return rows


# --------------------------------------------------------------------------- logic
class IVGCResponseLogic(JobLogic):
    """Predict the response to intravenous glucocorticoids from an orbital T2 MRI node.

    ``start(input_node, segmentation_node, strategy="mrlr", model=DEFAULT_MODEL, clinical=None,
    device="auto", gradcam=True)``, ``finish(job)``, ``run(...)`` and ``loadResults(folder,
    input_node)`` come from `JobLogic`."""

    job_title = "IVGC response prediction"
    requirements = requirements_file("IVGCResponse")
    models = IVGC_MODELS    # model choices: paper 001's four, then other IVGC bundles by name

    # ------------------------------------------------------------------------ models
    @staticmethod
    def needsClinical(bundle) -> bool:
        """Whether the bundle's model takes the clinical features (its metadata says so)."""
        return bool(bundle.metadata.get("clinical"))

    # ------------------------------------------------------------------------ checks
    @staticmethod
    def checkStrategy(strategy: Optional[str]) -> str:
        """The ROI strategy by name (`orbitai.ivgc.checks.check_strategy`, the rule ``ivgc predict`` applies)."""
        return checks.check_strategy(strategy)

    @staticmethod
    def checkClinical(values: Optional[Mapping[str, Any]], required: bool,
                       fill: Optional[Mapping[str, float]] = None) -> dict[str, float]:
        """The clinical form's values (``{name: number or text}``, empty = not given) as numbers, by the rule
        ``ivgc predict`` applies (`orbitai.ivgc.checks.check_clinical`): every value given checked against
        `IVGC_CLINICAL` whatever the model; with ``required`` the missing ones refused (those ``fill``, the
        bundle's training-cohort values, has a value for may be left empty)."""
        return checks.check_clinical(values, fill, required)[0]

    @classmethod
    def checkChoices(cls, model: Optional[str], strategy: Optional[str],
                      clinical: Optional[Mapping[str, Any]]) -> tuple[Any, str, dict[str, float], bool]:
        """(bundle, strategy, clinical values, whether the model uses them) for the panel's choices;
        one-line errors for a model that is not installed, a strategy it was not trained on, or
        clinical values it cannot use (see `checkClinical`)."""
        strategy = cls.checkStrategy(strategy)
        values = cls.checkClinical(clinical, required=False)     # typing errors first, whatever the model
        bundle = cls.resolveModel(model)
        strategy = checks.bundle_strategy(bundle, strategy, cls.models.label(bundle.name))
        needs = cls.needsClinical(bundle)
        if needs:
            cls.checkClinical(clinical, required=True, fill=bundle.metadata.get("clinical_fill") or {})
        return bundle, strategy, values, needs

    @classmethod
    def whyNotReady(cls, model: Optional[str], strategy: Optional[str], clinical: Optional[Mapping[str, Any]]) -> str:
        """Why the panel's choices cannot run ("" when they can): the message of `checkChoices`."""
        return reason(cls.checkChoices, model, strategy, clinical)

    @classmethod
    def checkVolume(cls, input_node):
        """The MRI node's voxels as a `Volume` (the child checks what an MRI must be: 3D, finite, not CT)."""
        return cls.inputVolume(input_node, "a coronal orbital T2 MRI volume")

    def rectiLabels(self, segmentation_node, input_node, strategy: str):
        """The recti segmentation as an orbit label map on the MRI's grid, with every rectus (both
        orbits) that ``strategy`` needs; one-line errors naming the segmentation otherwise."""
        if segmentation_node is None:
            raise InputError(RECTI_MISSING)
        if not segmentation_node.IsA("vtkMRMLSegmentationNode"):
            raise InputError(f"'{segmentation_node.GetName()}' is not a segmentation node.")
        refuse_other_scan(segmentation_node, input_node)
        what = f"Segmentation '{segmentation_node.GetName()}'"
        labels = self.segmentationLabelSlabs(segmentation_node, input_node, what)   # made a slab per tick
        if callable(labels):                 # only the whole export makes this map (a layer on another grid)
            labels = labels()
            strategy_masks(labels.array, [STRATEGIES[strategy]], what)
        else:                                # the values present, from the part of the grid the segments cover
            strategy_masks(np.array(labels.present_values(), np.int64), [STRATEGIES[strategy]], what)
        return labels

    # ------------------------------------------------------------------------ hooks
    def jobArguments(self, folder: JobFolder, input_node, segmentation_node=None, strategy: str = DEFAULT_STRATEGY,
                      model: Optional[str] = DEFAULT_MODEL, clinical: Optional[Mapping[str, Any]] = None,
                      device: str = "auto", gradcam: bool = True, modality: str = "auto") -> list[str]:
        """Start hook: check every input, write them into ``folder``, name the ``ivgc predict``
        command. The scene is not changed."""
        vol = self.checkVolume(input_node)
        device = self.checkDevice(device)
        labels = self.rectiLabels(segmentation_node, input_node, self.checkStrategy(strategy))
        bundle, strategy, values, needs = self.checkChoices(model, strategy, clinical)
        args = ["ivgc", "predict", str(folder.write_input(vol, "t2.nrrd")),
                "--segmentation", str(folder.write_input(labels, "recti_labels.nrrd")),
                "--model", str(bundle.path), "--strategy", strategy, "--device", device, "--out", "{out}"]
        if needs:
            path = folder.path / "clinical.json"
            path.write_text(strict_json(values))
            args += ["--clinical", str(path)]
        if not gradcam:
            args.append("--no-gradcam")
        return args + modality_arguments(modality)

    def importResults(self, out_dir: Path, input_node, **_options: Any) -> IvgcOutputs:
        """Finish hook: read an ``ivgc predict`` output folder, then add the result table, the
        selected-features table and the Grad-CAM overlay (all read and checked before the scene is touched)."""
        from orbitai.ivgc.result import IvgcResult

        read = IvgcResult.read(out_dir, geometry_of(input_node))
        r = read.data
        threshold = float(r["threshold"])
        row = {"P(response)": None if withheld(r) else float(r["probability"]), "call": not_assessed(r) or r["call"],
               "threshold": threshold,
               "model": r["model"], "kind": r.get("kind", ""), "ROI strategy": r["strategy"],
               "clinical features": "used" if r.get("clinical_used") else "not used", "trust": r.get("trust", "")}
        nodes = [table_node_from_rows(
            self.ctx, [row], name=RESULT_TABLE,
            descriptions={"P(response)": "probability that the patient responds to IVGC",
                          "call": f"responder when P(response) >= {threshold:g}; not assessed (no P) when the call "
                                  "is not to be used",
                          "ROI strategy": STRATEGIES[r["strategy"]].description,
                          "trust": "empty, or why the call is not to be used (outside the model's training data)"})]
        features = None
        if read.features:
            features = table_node_from_rows(
                self.ctx, [(f.name, f.value, f.coefficient) for f in read.features], name=FEATURES_TABLE,
                columns=["feature", "value", "coefficient"],
                descriptions={"value": "this patient's value (pyradiomics, ROI prefix)",
                              "coefficient": "the model's coefficient (empty: the model has none)"})
            nodes.append(features)
        gradcam = None
        if read.gradcam is not None:
            top = float(read.gradcam.array.max())
            gradcam = overlay_node_from_volume(self.ctx, read.gradcam, input_node, name=GRADCAM_NAME,
                                               value_range=(0.0, max(top, 1e-6)),
                                               threshold=0.05 * top if top > 0 else None)
            nodes.append(gradcam)
        mark_results(nodes, input_node)
        return IvgcOutputs(nodes[0], features, gradcam, r)

    def show(self, outputs: IvgcOutputs, input_node) -> None:
        """Show the Grad-CAM over the MRI (when there is one) and the result table (Slicer app)."""
        if outputs.gradcam_node is not None:
            show_overlay(self.ctx, outputs.gradcam_node, input_node, opacity=0.5)
        else:
            show_volume(self.ctx, input_node)
        show_table(self.ctx, outputs.result_table)


def _ready(values: dict[str, Any]) -> str:
    """The panel's rule: a recti segmentation, then the model, strategy and clinical values `checkChoices` accepts."""
    if values.get("segmentation_node") is None:
        return RECTI_MISSING
    return IVGCResponseLogic.whyNotReady(values["model"], values["strategy"], values["clinical"])


#: The panel, for Slicer and the browser (`orbitai.app.panel_spec`).
PANEL = PanelSpec(
    key="ivgc", module="IVGCResponse", title="IVGC response", logic=IVGCResponseLogic,
    apply_tip="Predict the response to intravenous glucocorticoids", input_hint="a coronal orbital T2 MRI",
    options=(Option("segmentation_node", "rectiSegmentation", "Recti segmentation", "segmentation"),
             Option("strategy", "strategy", "ROI strategy", "choice", lambda: list(STRATEGIES), DEFAULT_STRATEGY),
             model_option(IVGCResponseLogic),
             Option("clinical", "clinical", "Clinical values", "form", form=clinical_form),
             Option("gradcam", "gradcam", "Grad-CAM map", "flag", default=True),
             modality_option(),
             device_option()),
    table="result_table", needs_model=True, what="IVGC", rule=_ready)
