"""Logic of the NeuroDifferential module: MRML in, MRML out, the model in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests. The
shared `orbitai.mrml.jobs.JobLogic` runs the job (``start``, ``finish``, blocking ``run``,
``loadResults``); this module declares its two hooks:

* `NeuroDifferentialLogic.jobArguments` checks the FLAIR, the optional lesion segmentation (exported
  onto the FLAIR's grid; refused when it is empty or does not lie on the FLAIR), the model and the
  device, writes them into the job's folder and names ``orbitai neuro predict`` (or ``orbitai neuro
  lesions`` for "lesions only") -- nothing starts on a bad value;
* `NeuroDifferentialLogic.importResults` reads the output folder through the core's contract
  (`orbitai.neuro.result.NeuroResult`, every file checked first) and adds the lesion segmentation over
  the FLAIR, the lesion summary and per-lesion tables, the NMOSD/MS probability table, the heat-map
  overlay and the intracranial mask. `JobLogic.loadResults` wraps it: a failure leaves the scene as it was.

Under the panel, "Learn from my corrections" (`LesionFinetuneLogic`, issue #48) fine-tunes the lesion network on the
FLAIRs whose lesion segmentations the user corrected and marked finished (``orbitai neuro finetune-lesions``); the
new model appears in the panel's "Lesion model" choice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.app import requirements_file
from orbitai.app.corrections import FinetuneLogic, finetune_section
from orbitai.app.panel_spec import (Option, PanelSpec, device_option, modality_arguments, modality_option, model_option,
                                     reason, scan_text, trust_text)
from orbitai.errors import InputError
from orbitai.io.segfile import LabelInfo, lesion_table
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import (
    geometry_of,
    overlay_node_from_volume,
    segmentation_node_from_labels,
    show_overlay,
    show_volume,
    table_node_from_rows,
)
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.results import mark_results, refuse_other_scan
from orbitai.mrml.label_slabs import LabelSlabs
from orbitai.mrml.segment_labelmaps import segments_volume_mm3
from orbitai.mrml.tables import show_table
from orbitai.neuro.models import LESION_MODELS, NEURO_MODELS
from orbitai.result import not_assessed, shown_call, withheld

#: Bundle name -> panel label of paper 003's four classifiers (declared in `orbitai.neuro.models`).
MODELS = NEURO_MODELS.bundled
#: The paper's best model family.
DEFAULT_MODEL = NEURO_MODELS.default
#: The model choice that runs ``orbitai neuro lesions``: lesions and lesion table, no classification.
LESIONS_ONLY = "Lesions only (no NMOSD/MS classification)"
#: The model choice shown when no NMOSD-vs-MS bundle is installed (Apply says why it cannot run).
NO_MODEL = "No NMOSD/MS model installed"
#: Location classes of the lesion table, in the order the tables show them (others follow by name).
LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "deep_white_matter", "callosal")
#: Share of a given lesion segmentation's volume that must lie inside the FLAIR.
MIN_INSIDE = 0.9
SUMMARY_TABLE = "lesion summary"
LESION_TABLE = "lesions"
PROBABILITY_TABLE = "NMOSD vs MS"
# Every output node refers to the FLAIR it was computed from by the node reference orbitai.mrml.results.RESULT_OF.


@dataclass
class NeuroOutputs:
    """The nodes one run added (None where the result has none) and result.json as read."""

    lesion_segmentation: Any
    summary_table: Any
    lesion_table: Any = None
    probability_table: Any = None
    heatmap_node: Any = None
    brain_segmentation: Any = None
    result: dict = field(default_factory=dict)

    @property
    def shown_table(self) -> Any:
        """The table shown under the panel: the NMOSD/MS probability, else (lesions only) the lesion summary."""
        return self.probability_table or self.summary_table

    def summary(self) -> str:
        r = self.result
        les = r["lesions"]
        text = (f"{les['count']} lesion{'s' if les['count'] != 1 else ''}, {float(les['total_ml']):.2f} mL "
                f"({float(les['percent_icv']):.2f} % of the intracranial volume, {float(les['icv_ml']):.0f} mL)."
                ) + scan_text(r)
        if "applies" in r:
            model = MODELS.get(r["model"], r["model"])
            if r["applies"]:
                text += f" {model}: {shown_call(r, 'probability_nmosd', 'P(NMOSD)')}."   # or not assessed (#61)
            else:
                text += f" {model} does not apply: {r['reason']}."
            text += trust_text(r)
        if r.get("warnings"):
            text += " Warnings: " + " ".join(r["warnings"])
        return text


def lesion_labels(logic: JobLogic, segmentation_node, input_node, whole: bool = False):
    """A lesion segmentation (every segment is lesion: every non-zero voxel) as a label map on the FLAIR's grid, for
    `write_job_input`: made a slab per poll tick from the segmentation's layers (`LabelSlabs`, checked from the part
    of the grid they cover: no whole export on Slicer's main thread) unless ``whole`` or only the whole export makes
    it (`JobLogic.segmentationLabelSlabs`). One-line errors for a node that is not a segmentation, one without lesion
    voxels, or one that does not lie on the FLAIR (less than `MIN_INSIDE` of its volume inside it)."""
    if not segmentation_node.IsA("vtkMRMLSegmentationNode"):
        raise InputError(f"'{segmentation_node.GetName()}' is not a segmentation node.")
    refuse_other_scan(segmentation_node, input_node, "lesion segmentation")
    what = f"Lesion segmentation '{segmentation_node.GetName()}'"
    segmentation = segmentation_node.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    own_mm3 = segments_volume_mm3(segmentation_node)
    if own_mm3 <= 0:
        raise InputError(f"{what} holds no lesion voxel; select one with the lesions, or none to have them found.")
    table = {i + 1: n for i, n in enumerate(dict.fromkeys(names))}
    labels = (logic.segmentationLabels(segmentation_node, input_node, what, table=table) if whole else
              logic.segmentationLabelSlabs(segmentation_node, input_node, what, table=table))
    labels = labels() if callable(labels) else labels
    if isinstance(labels, LabelSlabs):
        inside = float(sum(labels.label_counts().values())) * float(np.prod(labels.spacing))
    else:
        inside = float(np.count_nonzero(labels.array)) * labels.voxel_volume_mm3()
    if inside < MIN_INSIDE * own_mm3:
        raise InputError(f"{what} does not lie on the FLAIR '{input_node.GetName()}' (only {100 * inside / own_mm3:.0f} % "
                         "of its volume is inside it); select the segmentation made on this FLAIR.")
    return labels


def lesion_mask(logic: JobLogic, segmentation_node, input_node):
    """A lesion segmentation (every segment is lesion) as a 0/1 mask on the FLAIR's grid (`lesion_labels`, whole)."""
    labels = lesion_labels(logic, segmentation_node, input_node, whole=True)
    return labels.with_array((np.asarray(labels.array) != 0).astype(np.uint8))


# --------------------------------------------------------------------------- logic
class NeuroDifferentialLogic(JobLogic):
    """White-matter lesions and NMOSD-vs-MS probability of a brain FLAIR node.

    ``start(input_node, lesion_segmentation=None, model=DEFAULT_MODEL, device="auto", heatmap=True)``,
    ``finish(job)``, ``run(...)`` and ``loadResults(folder, input_node)`` come from `JobLogic`;
    ``model`` is a panel label, a bundle name or folder, or `LESIONS_ONLY`."""

    job_title = "FLAIR lesion analysis"
    requirements = requirements_file("NeuroDifferential")
    models = NEURO_MODELS   # model choices: paper 003's four, then other NMOSD-vs-MS bundles by name

    # ------------------------------------------------------------------------ models
    @classmethod
    def modelLabels(cls) -> list[str]:
        """The panel's model choices: the installed classifiers (or `NO_MODEL`), then `LESIONS_ONLY`."""
        return [*(list(cls.modelChoices()) or [NO_MODEL]), LESIONS_ONLY]

    @classmethod
    def resolveModel(cls, model: Optional[str]):
        """The bundle for ``model`` (`JobLogic.resolveModel`); None for `LESIONS_ONLY`; one clear line for
        `NO_MODEL`."""
        key = (model or "").strip()
        if key == LESIONS_ONLY:
            return None
        if key == NO_MODEL:
            raise InputError(f"No NMOSD-vs-MS model is installed (bundles {', '.join(cls.models.bundled)}); train "
                             f"one with 'orbitai neuro train' (see docs/modules/neuro-differential.md), or choose '{LESIONS_ONLY}'.")
        return super().resolveModel(model)

    @classmethod
    def whyNotReady(cls, model: Optional[str]) -> str:
        """Why the model choice cannot run ("" when it can)."""
        return reason(cls.resolveModel, model)

    # ------------------------------------------------------------------------ checks
    @classmethod
    def checkFlair(cls, input_node):
        """The FLAIR node's voxels as a `Volume` (the child checks what a FLAIR must be: 3D head, finite, not CT/T1)."""
        vol = cls.inputVolume(input_node, "a brain FLAIR volume")
        if min(vol.shape) < 3:
            raise InputError(f"'{input_node.GetName()}' is not a 3D volume (shape {vol.shape}); load a 3D brain FLAIR.")
        return vol

    def lesionMask(self, segmentation_node, input_node):
        """The lesion segmentation as a 0/1 mask on the FLAIR's grid (`lesion_mask`)."""
        return lesion_mask(self, segmentation_node, input_node)

    # ------------------------------------------------------------------------ hooks
    def jobArguments(self, folder: JobFolder, input_node, lesion_segmentation=None, model: Optional[str] = DEFAULT_MODEL,
                     device: str = "auto", heatmap: bool = True, modality: str = "auto",
                     lesion_model: Optional[str] = None) -> list[str]:
        """Start hook: check every input, write them into ``folder``, name the ``neuro predict`` (or
        ``neuro lesions``) command. The scene is not changed. ``lesion_model``: a lesion network other than the
        bundled one (a label or name of `LESION_MODELS`, e.g. the user's fine-tuned one)."""
        vol = self.checkFlair(input_node)
        device = self.checkDevice(device)
        bundle = self.resolveModel(model)
        lesion_args = ([] if not lesion_model or lesion_model == LESION_MODELS.default_label else
                       ["--lesion-model", str(LESION_MODELS.find(lesion_model).path)])
        lesions = lesion_labels(self, lesion_segmentation, input_node) if lesion_segmentation is not None else None
        flair = folder.write_input(vol, "flair.nrrd")
        if bundle is None:
            args = ["neuro", "lesions", str(flair)]
        else:
            args = ["neuro", "predict", str(flair), "--model", str(bundle.path)]
            if not heatmap:
                args.append("--no-heatmap")
        if lesions is not None:     # a label map, every non-zero voxel lesion (a slab per tick, see lesion_labels)
            args += ["--lesions", str(folder.write_input(lesions, "lesions.nrrd"))]
        return [*args, *lesion_args, *modality_arguments(modality), "--device", device, "--out", "{out}"]

    def importResults(self, out_dir: Path, input_node, **_options: Any) -> NeuroOutputs:
        """Finish hook: read a ``neuro predict|lesions`` output folder (all of it checked before the scene
        is touched), then add the lesion segmentation, the tables, the heat map and the intracranial mask."""
        from orbitai.neuro.result import BRAIN_SEGMENT, NeuroResult

        read = NeuroResult.read(out_dir, geometry_of(input_node))
        r, base = read.data, input_node.GetName()
        summary_rows, lesion_rows = table_rows(read)
        icv = float(r["lesions"]["icv_ml"])
        nodes = [segmentation_node_from_labels(self.ctx, read.lesions, reference_node=input_node, name=f"{base} lesions",
                                               table=lesion_table(), include_empty=True)]
        nodes.append(table_node_from_rows(
            self.ctx, summary_rows, name=f"{base} {SUMMARY_TABLE}",
            units={"volume": "mL", "ICV": "mL", "% of ICV": "%"},
            descriptions={"lesions": "number of lesions (26-connected components)",
                          "volume": "lesion volume", "% of ICV": f"lesion volume in % of the intracranial volume ({icv:.0f} mL)",
                          "ICV": "intracranial volume (brain and CSF) of the brain extraction"}))
        outputs = NeuroOutputs(nodes[0], nodes[1], result=r)
        if lesion_rows:
            outputs.lesion_table = table_node_from_rows(
                self.ctx, lesion_rows, name=f"{base} {LESION_TABLE}", units={"volume": "mL", "R": "mm", "A": "mm", "S": "mm"},
                descriptions={"location": "location class (majority of the lesion's voxels)",
                              "R": "centroid, right (RAS)", "A": "centroid, anterior (RAS)", "S": "centroid, superior (RAS)"})
            nodes.append(outputs.lesion_table)
        if read.classified:
            outputs.probability_table = table_node_from_rows(
                self.ctx, [probability_row(r)], name=f"{base} {PROBABILITY_TABLE}",
                descriptions={"P(NMOSD)": "probability of NMOSD (vs multiple sclerosis) from the model",
                              "call": f"NMOSD when P(NMOSD) >= {float(r['threshold']):g}, else MS; not assessed "
                                      "(no P) when the call is not to be used",
                              "input": "the classifier's input image (lesion mask, FLAIR or FLAIR inside the lesions)",
                              "trust": "empty, or why the call is not to be used (outside the model's training "
                                       "data or its scope)"})
            nodes.append(outputs.probability_table)
        if read.heatmap is not None:
            top = float(read.heatmap.array.max())
            outputs.heatmap_node = overlay_node_from_volume(self.ctx, read.heatmap, input_node, name=f"{base} NMOSD-MS heat map",
                                                            value_range=(0.0, max(top, 1e-6)),
                                                            threshold=0.05 * top if top > 0 else None)
            nodes.append(outputs.heatmap_node)
        if read.brain is not None:
            outputs.brain_segmentation = segmentation_node_from_labels(
                self.ctx, read.brain, reference_node=input_node, name=f"{base} intracranial",
                table={1: LabelInfo(1, BRAIN_SEGMENT, (170, 170, 255))})
            outputs.brain_segmentation.GetDisplayNode().SetVisibility(False)   # shown on demand, over the lesions
            nodes.append(outputs.brain_segmentation)
        mark_results(nodes, input_node)
        return outputs

    def show(self, outputs: NeuroOutputs, input_node) -> None:
        """Show the lesions and the heat map over the FLAIR and the probability (or summary) table (Slicer app)."""
        outputs.lesion_segmentation.CreateDefaultDisplayNodes()
        outputs.lesion_segmentation.GetDisplayNode().SetVisibility(True)
        if outputs.heatmap_node is not None:
            show_overlay(self.ctx, outputs.heatmap_node, input_node, opacity=0.4)
        else:
            show_volume(self.ctx, input_node)
        show_table(self.ctx, outputs.shown_table)


# --------------------------------------------------------------------------- rows
def table_rows(read) -> tuple[list[dict], list[dict]]:
    """(summary rows: all lesions then one per location class; per-lesion rows) of a `NeuroResult`."""
    s = read.data["lesions"]
    icv = float(s["icv_ml"])
    rows = [{"location": "all", "lesions": int(s["count"]), "volume": float(s["total_ml"]),
             "% of ICV": float(s["percent_icv"]), "ICV": icv}]
    found = [r.location for r in read.lesion_rows]
    for loc in [*LOCATIONS, *sorted(set(found) - set(LOCATIONS))]:
        volume = sum(r.volume_ml for r in read.lesion_rows if r.location == loc)
        rows.append({"location": loc, "lesions": found.count(loc), "volume": float(volume),
                     "% of ICV": 100.0 * volume / icv, "ICV": icv})
    lesions = [{"id": r.id, "location": r.location, "volume": r.volume_ml, "voxels": r.voxels,
                "R": r.centroid_ras[0], "A": r.centroid_ras[1], "S": r.centroid_ras[2]} for r in read.lesion_rows]
    return rows, lesions


def probability_row(r: dict) -> dict:
    """The NMOSD/MS table's row of result.json ``r`` (a classification): P(NMOSD), P(MS) and the call, or
    'does not apply' and why."""
    p = None if withheld(r) else r.get("probability_nmosd")      # a call marked do not use: not assessed, no P
    return {"P(NMOSD)": float(p) if p is not None else None, "P(MS)": 1.0 - float(p) if p is not None else None,
            "call": (not_assessed(r) or r["call"]) if r["applies"] else "does not apply",
            "threshold": float(r["threshold"]),
            "model": MODELS.get(r["model"], r["model"]), "architecture": r["architecture"],
            "input": r["input_mode"], "reason": r.get("reason") or "", "trust": r.get("trust") or ""}


class LesionFinetuneLogic(FinetuneLogic):
    """Fine-tune the lesion network on the scene's finished lesion segmentations (``neuro finetune-lesions``)."""

    requirements = requirements_file("NeuroDifferential")
    models = LESION_MODELS
    bundled_label = LESION_MODELS.default_label
    task = "lesion_segmentation"
    command = ("neuro", "finetune-lesions")
    model_option = "lesion_model"

    @classmethod
    def modelLabels(cls) -> list[str]:
        """The bundled lesion model, then the user's lesion models."""
        return cls.models.labels()

    def correctedLabels(self, segmentation_node: Any, scan_node: Any) -> Any:
        """Every segment is lesion: the 0/1 mask of `lesion_mask`, checked from the layers and made a slab per tick
        (`lesion_labels`: no whole export on Slicer's main thread, in "Mark finished" nor in the Apply's ticks)."""
        labels = lesion_labels(self, segmentation_node, scan_node)
        if isinstance(labels, LabelSlabs):
            return labels.as_mask()
        return labels.with_array((np.asarray(labels.array) != 0).astype(np.uint8))


#: The panel's "Learn from my corrections" section.
LESION_FINETUNE_SECTION = finetune_section("neuro_finetune", "NeuroDifferential", LesionFinetuneLogic,
                                           "lesion segmentation")

#: The panel, for Slicer and the browser (`orbitai.app.panel_spec`).
PANEL = PanelSpec(
    key="neuro", module="NeuroDifferential", title="NMOSD vs MS", logic=NeuroDifferentialLogic,
    apply_tip="Segment the white-matter lesions and tell NMOSD from MS", input_hint="a brain FLAIR MRI",
    options=(Option("lesion_segmentation", "lesionSegmentation", "Lesion segmentation (optional)", "segmentation",
                    hint="empty: the lesions are segmented first"),
             model_option(NeuroDifferentialLogic),
             Option("heatmap", "heatmap", "Heat map", "flag", default=True),
             modality_option(),
             device_option(),
             Option("lesion_model", "lesionModel", "Lesion model", "choice", LESION_MODELS.labels,
                    LESION_MODELS.default_label, refreshed=True,
                    hint="the network that finds the lesions: the bundled one or yours, fine-tuned on your corrections")),
    table="shown_table", rule=lambda values: NeuroDifferentialLogic.whyNotReady(values["model"]),
    sections=(LESION_FINETUNE_SECTION,))
