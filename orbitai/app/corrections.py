"""Learning from the annotator's corrections, in the OrbitSegmentation and NeuroDifferential panels of Slicer and of
the browser (issue #48).

Sections under a module's panel, each a `JobLogic` with its own panel declaration (`PanelSpec` sections of the
module's `PANEL`); NeuroDifferential's fine-tuning (`orbitai.app.neuro_differential.LesionFinetuneLogic`) is this
one with the lesion network and ``orbitai neuro finetune-lesions``:

- **Learn from my corrections** (`FinetuneLogic`): the user marks corrected segmentations as finished (the
  section's action, which tags the segmentation node with `FINISHED` and refers to the scan it belongs to by the node
  reference `FINISHED_SCAN`, kept by Slicer through save, load and Add Data; a segmentation of another scan is refused
  in one line); Apply writes every
  finished pair into the job's folder and runs ``orbitai seg finetune`` in a child process of its own (progress, time
  left, Cancel; the same Apply after a cancel resumes where it stopped, since the same scans give the same files).
  The new model is installed in the user's model folder and listed in the model choices at once; it is selected only
  when it beats its base on the user's own held-out cases.
- **Which scan next** (`RankLogic`): ``orbitai seg rank`` over the scene's scans that have no finished segmentation
  (scans only: `unlabelled_scans`); it reports "scan n of N" as it goes and can be cancelled; each scan's facts are
  asked first (`orbitai.orbit.rank`) and a scan that surely does not show the orbits is listed last, not ranked, with
  the reason. A table lists them, the most worth correcting first.
"""
from __future__ import annotations

import csv
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from orbitai.app import requirements_file
from orbitai.app.panel_spec import Action, Option, PanelSpec, device_option
from orbitai.errors import InputError
from orbitai.jobs.child import JobError
from orbitai.jobs.inputs import JobFolder
from orbitai.mrml import table_node_from_rows, volume_from_volume_node
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.overlays import is_heat_map
from orbitai.mrml.scan_identity import patient_line
from orbitai.mrml.segmentations import segments_by_value
from orbitai.mrml.results import FINISHED_SCAN, belongs_to, is_result, refuse_other_scan
from orbitai.mrml.tables import show_table
from orbitai.orbit.models import SEG_MODELS
from orbitai.orbit.result import NOT_RANKED, RANKING_FILE
from orbitai.result import RESULT_FILE

#: Segmentation-node attribute: the task whose ground truth the user marked the segmentation as (a bundle task:
#: "segmentation" for the orbit structures, "lesion_segmentation" for white-matter lesions; "1" from before is the
#: orbit's).
FINISHED = "OrbitAI.Finished"
# FINISHED_SCAN (orbitai.mrml.results): the node-reference role from a finished segmentation to its scan.
#: Environment variable: more ``orbitai seg finetune`` options for the panels' fine-tuning (e.g. ``--steps 400``).
OPTIONS_VARIABLE = "ORBITAI_FINETUNE_OPTIONS"
#: The base model choice that means the bundled MRI model.
BUNDLED_MRI = "Bundled MRI model"


def finished_pairs(scene: Any, task: str = "segmentation") -> list[tuple[Any, Any]]:
    """(segmentation node, scan node) of every segmentation finished for ``task`` whose scan (its `FINISHED_SCAN`
    reference) is still in the scene and which is no other scan's result."""
    out = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")):
        seg = scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
        if {"1": "segmentation"}.get(seg.GetAttribute(FINISHED) or "", seg.GetAttribute(FINISHED)) == task:
            scan = seg.GetNodeReference(FINISHED_SCAN)
            if scan is not None and belongs_to(seg, scan):
                out.append((seg, scan))
    return out


#: Scalar-volume subclasses that are never a scan to segment (label maps; vector, tensor and diffusion volumes).
NOT_SCANS = ("vtkMRMLLabelMapVolumeNode", "vtkMRMLVectorVolumeNode", "vtkMRMLTensorVolumeNode")


def is_scan(node: Any) -> bool:
    """Whether the volume node ``node`` is a scan a user would segment: a scalar volume with voxels, not a label map
    nor a vector or tensor volume, not a heat map (one made by OrbitAI keeps its mark after the scene is saved, also
    when its scan is gone), no module's result (a derived volume) and no editor helper hidden from the user."""
    return (node is not None and node.IsA("vtkMRMLScalarVolumeNode") and not any(node.IsA(c) for c in NOT_SCANS)
            and node.GetImageData() is not None and not node.GetHideFromEditors() and not is_heat_map(node)
            and not is_result(node))


def refuse_not_a_scan(segmentation_node: Any, scan_node: Any) -> None:
    """One line when the volume a finished segmentation is (to be) the ground truth of is not a scan (`is_scan`): a
    heat map or another volume OrbitAI made, a label map, a hidden helper. Learning from it would train the network on
    a heat map as the image (a scene whose finished mark points at one)."""
    if is_scan(scan_node):
        return
    kind = ("a heat map OrbitAI made" if is_heat_map(scan_node) else "a result OrbitAI made" if is_result(scan_node)
            else "not a scalar volume of a scan")
    raise InputError(f"The finished segmentation '{segmentation_node.GetName()}' refers to '{scan_node.GetName()}', "
                     f"which is {kind}, not a scan: select its scan and press 'Mark finished' again.")


def unlabelled_scans(scene: Any, task: str = "segmentation") -> list[Any]:
    """The scene's scans (`is_scan`: not label maps, heat maps or a module's other results) with no segmentation
    finished for ``task``."""
    done = {scan.GetID() for _seg, scan in finished_pairs(scene, task)}
    out = []
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        if is_scan(node) and node.GetID() not in done:
            out.append(node)
    return out


def finished_text(scene: Any, task: str = "segmentation") -> str:
    """One line naming the finished segmentations (the fine-tuning section's status)."""
    pairs = finished_pairs(scene, task)
    if not pairs:
        return "No finished segmentation yet: correct a result, then mark it finished."
    names = ", ".join(f"{seg.GetName()} ({scan.GetName()})" for seg, scan in pairs[:6])
    return f"{len(pairs)} finished segmentation(s): {names}" + (" ..." if len(pairs) > 6 else "")


@dataclass
class FinetuneOutputs:
    """A finished fine-tuning: the installed model and its cross-validated figures."""

    model: str
    better_than_base: Optional[bool]
    summary_text: str
    table_node: Any
    info: dict[str, Any] = field(default_factory=dict)
    label: str = ""             # the new model's label in the panel's choices
    option: str = "model"       # the module panel's option that offers it

    @property
    def select_model(self) -> Optional[str]:
        """The label the panel's model choice (`option`) should switch to: the new model, when it beats its base."""
        return (self.label or self.model) if self.better_than_base else None

    def summary(self) -> str:
        if self.better_than_base is False:
            return (f"Installed '{self.model}', but it does not beat its base on your held-out cases: keep using the "
                    f"base. {self.summary_text}")
        if self.better_than_base is None:
            return (f"Installed '{self.model}' (one finished case: none held out to compare it with its base; choose "
                    f"it in the model list to use it). {self.summary_text}")
        return f"Installed '{self.model}' and selected it. {self.summary_text}"


class _SceneLogic(JobLogic):
    """A section's Logic: works on what the scene holds (no input volume), model choices led by the bundled MRI
    model."""

    requirements = requirements_file("OrbitSegmentation")
    models = SEG_MODELS
    needs_input = False
    #: The choice that means the task's bundled model (its default); not passed on the command line.
    bundled_label = BUNDLED_MRI

    @classmethod
    def modelLabels(cls) -> list[str]:
        """The bundled MRI model, then every installed segmentation model."""
        return [BUNDLED_MRI, *cls.modelChoices()]

    def modelArgument(self, option: str, model: Optional[str]) -> list[str]:
        """``[option, bundle name]`` for a model other than the bundled one; [] for it."""
        if not model or model == self.bundled_label:
            return []
        return [option, self.resolveModel(model).name]


class FinetuneLogic(_SceneLogic):
    """Fine-tune a segmentation model on the scene's finished segmentations (``orbitai seg finetune``)."""

    job_title = "Fine-tuning"
    warm_worker = False      # minutes of training in a process of its own: predictions keep the warm worker
    #: More ``seg finetune`` options (a shorter recipe in the tests); the environment's `OPTIONS_VARIABLE` adds its own.
    extra_arguments: ClassVar[tuple[str, ...]] = ()
    #: The task of the segmentations learnt from (the `FINISHED` value) and the command that learns.
    task = "segmentation"
    command: ClassVar[tuple[str, ...]] = ("seg", "finetune")
    #: The module panel's option whose choices list the new model.
    model_option = "model"

    def correctedLabels(self, segmentation_node: Any, scan_node: Any) -> Any:
        """The corrected segmentation as the command's label map on the scan's grid (one line when it does not fit):
        orbit-scheme structures here."""
        return self.segmentationLabels(segmentation_node, scan_node, f"'{segmentation_node.GetName()}'")

    def correctedLabelMap(self, segmentation_node: Any, scan_node: Any) -> Any:
        """`correctedLabels` for the job's file, called in the poll tick that starts writing it: orbit-scheme structures
        made a slab per tick from the segmentation's layers (`JobLogic.segmentationLabelSlabs`; the whole export in
        that tick only where a layer lies on another grid); the lesion fine-tuning's mask (`correctedLabels`, made
        a slab per tick too)."""
        if self.task != "segmentation":
            return self.correctedLabels(segmentation_node, scan_node)
        labels = self.segmentationLabelSlabs(segmentation_node, scan_node, f"'{segmentation_node.GetName()}'")
        return labels() if callable(labels) else labels

    def checkCorrected(self, segmentation_node: Any, scan_node: Any) -> None:
        """What "Mark finished" checks (one line when it fails), on Slicer's main thread: here the segment names
        (orbit-scheme structures, `segments_by_value`), no voxel read (the label map of a 512x512x300 scan took 1-3 s
        to export; Apply makes it). The lesion fine-tuning's check (`correctedLabels`: a lesion mask that lies on the
        FLAIR) counts the voxels of the segmentation's layers (no export either)."""
        if self.task != "segmentation":
            self.correctedLabels(segmentation_node, scan_node)
            return
        segments_by_value(segmentation_node)

    def markFinished(self, segmentation_node: Any, scan_node: Any, finished: bool = True) -> str:
        """Mark (or unmark) ``segmentation_node`` as a finished correction of ``scan_node``; returns the status line.
        Its segments must be orbit-scheme structures on the scan's grid, and it must be no other scan's result
        (checked now, one line otherwise)."""
        if segmentation_node is None or scan_node is None:
            raise InputError("Select the scan and its corrected segmentation.")
        if finished:
            refuse_not_a_scan(segmentation_node, scan_node)
            refuse_other_scan(segmentation_node, scan_node, self.task.replace("_", " "))   # (lesion) segmentation
            self.checkCorrected(segmentation_node, scan_node)
            segmentation_node.SetAttribute(FINISHED, self.task)
            segmentation_node.SetNodeReferenceID(FINISHED_SCAN, scan_node.GetID())
        else:
            segmentation_node.RemoveAttribute(FINISHED)
            segmentation_node.RemoveNodeReferenceIDs(FINISHED_SCAN)
        return finished_text(self.ctx.scene, self.task)

    def jobArguments(self, folder: JobFolder, input_node: Any = None, base: Optional[str] = None, name: str = "",
                     device: str = "auto", corrected: Any = None) -> list[str]:
        """Write every finished (scan, segmentation) pair and a manifest into ``folder``; the fine-tuning command."""
        pairs = finished_pairs(self.ctx.scene, self.task)
        if not pairs:
            raise InputError("No finished segmentation: correct a result, select it under 'Corrected segmentation' "
                             "and press 'Mark finished' (one or more scans).")
        for seg, scan in pairs:       # a heat map as a finished mark's scan (a scene's): refused before any file
            refuse_not_a_scan(seg, scan)
        rows = []
        for n, (seg, scan) in enumerate(pairs):
            # From a panel each file is written in the poll ticks (`JobLogic.start`), not in the press: the scan a slab
            # per tick (a view of its voxels), the label map too, made a slab per tick from the segmentation's layers
            # (its whole export took 0.5-0.9 s of one tick at 512x512x300).
            image = folder.write_input(volume_from_volume_node(scan, copy=False), f"case{n:03d}.nrrd")
            seg_file = folder.write_input(lambda seg=seg, scan=scan: self.correctedLabelMap(seg, scan),
                                          f"case{n:03d}_labels.nrrd")
            rows.append({"case_id": f"case{n:03d}", "image": image.name, "segmentation": seg_file.name,
                         "name": seg.GetName()})
        with (folder.path / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        args = [*self.command, "--manifest", str(folder.path / "manifest.csv"), "--summary", "{out}",
                "--device", self.checkDevice(device), "--overwrite", *self.modelArgument("--base", base)]
        if (name or "").strip():
            args += ["--name", name.strip()]
        return args + list(self.extra_arguments) + shlex.split(os.environ.get(OPTIONS_VARIABLE, ""))

    def importResults(self, out_dir: Path, input_node: Any = None, **options: Any) -> FinetuneOutputs:
        """Read the summary; add a table of the cross-validated figures (no input node needed)."""
        try:
            doc = json.loads((Path(out_dir) / RESULT_FILE).read_text(encoding="utf-8"))
            model = str(doc["model"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise JobError(f"The fine-tuning left no readable summary ({exc}); nothing was installed.") from None
        measure = f"held-out {doc.get('measure', 'mean Dice')}"
        rows = [{"model": doc.get("base", ""), measure: doc.get("base_score"), "steps": 0},
                {"model": model, measure: doc.get("tuned_score"), "steps": doc.get("stop_step")}]
        table = table_node_from_rows(self.ctx, rows, name=f"{model} cross-validation")
        return FinetuneOutputs(model, doc.get("better_than_base"), str(doc.get("summary", "")), table, doc,
                               self.models.label(model), self.model_option)

    def show(self, outputs: FinetuneOutputs, input_node: Any = None) -> None:
        show_table(self.ctx, outputs.table_node)


@dataclass
class RankOutputs:
    table_node: Any
    rows: list[dict[str, Any]]
    #: the scene's node ID of each row's scan ("" where it is gone): the page's rows open their scan
    scan_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.rows:
            return "No scan to rank."
        ranked = [r for r in self.rows if r["doubt"] != NOT_RANKED]
        left = len(self.rows) - len(ranked)
        text = (f"{len(self.rows)} scan(s) ranked; correct '{ranked[0]['scan']}' first." if ranked else
                f"{len(self.rows)} scan(s) listed; none could be ranked.")
        if ranked and left:
            text = text.replace(" ranked;", f" listed, {len(ranked)} ranked;")
        return text + (f" {left} not ranked: the note says why." if left else "")


class RankLogic(_SceneLogic):
    """Rank the scene's scans without a finished segmentation by the model's doubt (``orbitai seg rank``)."""

    job_title = "Ranking"

    def jobArguments(self, folder: JobFolder, input_node: Any = None, model: Optional[str] = None,
                     device: str = "auto") -> list[str]:
        scans = unlabelled_scans(self.ctx.scene)
        if not scans:
            raise InputError("No scan without a finished segmentation is loaded: load the scans to choose from.")
        files = [str(folder.write_input(volume_from_volume_node(s, copy=False), f"{s.GetID()}.nrrd"))
                 for s in scans]
        return ["seg", "rank", *files, "--out", "{out}", "--device", self.checkDevice(device),
                *self.modelArgument("--model", model)]

    def importResults(self, out_dir: Path, input_node: Any = None, **options: Any) -> RankOutputs:
        """The ranking as a table (scan names, not file names), most worth correcting first."""
        try:
            with (Path(out_dir) / RANKING_FILE).open(newline="", encoding="utf-8") as f:
                ranked = list(csv.DictReader(f))
        except OSError as exc:
            raise JobError(f"The ranking left no {RANKING_FILE} ({exc}).") from None
        rows, ids = [], []
        for n, r in enumerate(ranked, 1):
            node = self.ctx.scene.GetNodeByID(r["case_id"])
            ranked_here = float(r["score"]) >= 0.0       # a scan left out (see its note) has no doubt
            rows.append({"rank": n, "scan": node.GetName() if node is not None else r["case_id"],
                         "patient": patient_line(node),
                         "doubt": float(r["score"]) if ranked_here else NOT_RANKED,
                         "implausible": f"{r['implausible']}/{r['structures']}" if ranked_here else "",
                         "note": r.get("note", "")})
            ids.append(node.GetID() if node is not None else "")
        if not any(row["patient"] for row in rows):       # no DICOM series: no empty column
            for row in rows:
                del row["patient"]
        return RankOutputs(table_node_from_rows(self.ctx, rows, name="Scans to correct next"), rows, ids)

    def show(self, outputs: RankOutputs, input_node: Any = None) -> None:
        show_table(self.ctx, outputs.table_node)


def _mark(finished: bool):
    return lambda logic, input_node, values: logic.markFinished(values.get("corrected"), input_node, finished)


def finetune_section(key: str, module: str, logic: type[FinetuneLogic], what: str) -> PanelSpec:
    """The "Learn from my corrections" section of a module's panel (`orbitai.app.panel_spec.PanelSpec`) for a
    fine-tuning Logic; ``what``: what the corrected segmentations hold ("segmentation", "lesion segmentation")."""
    return PanelSpec(
        key=key, module=module, title="Learn from my corrections", logic=logic,
        apply_tip=f"Fine-tune the model on every finished {what} and install it as a new model (minutes on a CPU). "
                  "While it runs this button cancels it; Apply again goes on where it stopped.",
        input_hint=f"the scan a corrected {what} belongs to",
        options=(Option("corrected", "finetuneCorrected", f"Corrected {what}", "segmentation",
                        hint=f"a {what} of the input volume, corrected by you: mark it finished to learn from it"),
                 Option("base", "finetuneBase", "Start from", "choice", lambda: logic.modelLabels(),
                        logic.bundled_label, refreshed=True),
                 Option("name", "finetuneName", "New model name", "text", default="",
                        hint="empty: the base model's name + _ft; installed in ~/.orbitai/models"),
                 device_option("finetuneDevice")),
        table="table_node", needs_input=False, prefix="finetune",
        actions=(Action("markFinished", "Mark finished", f"Learn from this {what} of the input volume", _mark(True)),
                 Action("unmarkFinished", "Unmark", f"Do not learn from this {what}", _mark(False))))


#: The "Learn from my corrections" section of the OrbitSegmentation panel.
FINETUNE_SECTION = finetune_section("orbit_finetune", "OrbitSegmentation", FinetuneLogic, "segmentation")

#: The "Which scan next" section of the OrbitSegmentation panel.
RANK_SECTION = PanelSpec(
    key="orbit_rank", module="OrbitSegmentation", title="Which scan next", logic=RankLogic,
    apply_tip="Rank the loaded scans that have no finished segmentation, the most worth correcting first",
    input_hint="the scans to rank", table="table_node", needs_input=False, prefix="rank",
    options=(Option("model", "rankModel", "Model", "choice", lambda: RankLogic.modelLabels(), BUNDLED_MRI,
                    refreshed=True),
             device_option("rankDevice")))
