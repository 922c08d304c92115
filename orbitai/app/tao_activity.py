"""Logic of the TAOActivity module: MRML in, MRML out, the classifier in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests. The
shared `orbitai.mrml.jobs.JobLogic` runs the job (``start``, ``finish``, blocking ``run``,
``loadResults``); this module declares its two hooks:

* `TAOActivityLogic.jobArguments` checks the MRI (and the optional orbit segmentation, written as
  a label map on the MRI's grid) and names the ``orbitai tao predict`` command;
* `TAOActivityLogic.importResults` reads a ``tao predict`` output folder through the core's
  contract (`orbitai.tao.result`: ``result.json``, ``occlusion.nrrd``, ``gradcam.nrrd``, all checked
  first) and adds the table, one markups ROI per eye (the network's crop box) and the heat-map
  overlays. `JobLogic.loadResults` wraps it so that a failure leaves the scene as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orbitai.app import requirements_file
from orbitai.app.panel_spec import (Option, PanelSpec, device_option, modality_arguments, modality_option, model_option,
                                     scan_text, trust_text)
from orbitai.errors import InputError
from orbitai.io import VolumeError
from orbitai.mrml import (
    geometry_of,
    overlay_node_from_volume,
    roi_node_from_box,
    show_overlay,
    show_volume,
    table_node_from_rows,
    volume_from_volume_node,
)
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.results import mark_results, refuse_other_scan
from orbitai.mrml.tables import show_table
from orbitai.jobs.inputs import JobFolder
from orbitai.result import not_assessed, shown_call, withheld
from orbitai.tao.models import TAO_MODELS
from orbitai.tao.result import MAP_KINDS, TaoResult, TaoResultError  # noqa: F401 - TaoResultError: the contract lives in the core

#: The panel's "Show map" choices: a heat map's display name, or none.
SHOWN_MAP_CHOICES = (*MAP_KINDS.values(), "none")
TABLE_NAME = "TAO activity"
# Every output node refers to the MRI it was computed from by the node reference orbitai.mrml.results.RESULT_OF.
MIN_SLICES = 5


@dataclass
class TaoOutputs:
    table_node: Any
    roi_nodes: list = field(default_factory=list)      # one per eye, in result order
    map_nodes: dict = field(default_factory=dict)      # kind ("occlusion", "gradcam") -> overlay node
    result: dict = field(default_factory=dict)         # result.json as read

    def summary(self) -> str:
        # a call marked do not use reads "not assessed: <reason>", without its P (issue 61)
        eyes = ", ".join(f"{e['side']} eye {shown_call(e, 'probability_active')}" for e in self.result["eyes"])
        text = f"{self.result['model']}: {eyes}." + scan_text(self.result) + trust_text(self.result)
        if self.result.get("warnings"):
            text += " Warnings: " + " ".join(self.result["warnings"])
        return text


# --------------------------------------------------------------------------- logic
class TAOActivityLogic(JobLogic):
    """Classify each eye of an orbital T2 MRI node as active or inactive TAO.

    ``start(input_node, segmentation_node=None, model="B", device="auto", maps=True)``,
    ``finish(job)``, ``run(...)`` and ``loadResults(folder, input_node)`` come from `JobLogic`, and so
    do the model choices (`JobLogic.modelLabels`, `resolveModel`: "A", "B", a panel label or a bundle)."""

    job_title = "TAO activity prediction"
    requirements = requirements_file("TAOActivity")
    models = TAO_MODELS     # model choices: Network A and B ("A", "B"), then other TAO bundles by name

    # ------------------------------------------------------------------------ checks
    @classmethod
    def checkInputs(cls, input_node, segmentation_node=None, device: str = "auto"):
        """The input as a `Volume`; raises a clear error for anything TAOActivity cannot use."""
        if input_node is None:
            raise VolumeError("Select an orbital T2 MRI volume.")
        if not input_node.IsA("vtkMRMLScalarVolumeNode") or input_node.IsA("vtkMRMLLabelMapVolumeNode"):
            raise VolumeError(f"'{input_node.GetName()}' is not a scalar MRI volume; select an axial orbital T2 MRI.")
        if input_node.GetImageData() is None:
            raise VolumeError(f"'{input_node.GetName()}' has no voxels.")
        vol = volume_from_volume_node(input_node, copy=False)   # a view: its file is written a slab per tick
        if vol.array.ndim != 3 or min(vol.shape) < MIN_SLICES:
            raise VolumeError(f"'{input_node.GetName()}' has only {min(vol.shape)} slice(s) (shape {vol.shape}); "
                              f"load an axial orbital T2 MRI with at least {MIN_SLICES} slices through the orbits.")
        if segmentation_node is not None and not segmentation_node.IsA("vtkMRMLSegmentationNode"):
            raise InputError(f"'{segmentation_node.GetName()}' is not a segmentation node.")
        refuse_other_scan(segmentation_node, input_node)
        cls.checkDevice(device)
        return vol

    # ------------------------------------------------------------------------ hooks
    def jobArguments(self, folder: JobFolder, input_node, segmentation_node=None, model: str = "B",
                      device: str = "auto", maps: bool = True, modality: str = "auto") -> list[str]:
        """Start hook: check the inputs, write them into ``folder``, name the ``tao predict`` command.
        The scene is not changed."""
        vol = self.checkInputs(input_node, segmentation_node, device)
        bundle = self.resolveModel(model)
        labels = None
        if segmentation_node is not None:
            labels = self.segmentationLabelSlabs(segmentation_node, input_node,   # made a slab per tick, not now
                                                 f"Orbit segmentation '{segmentation_node.GetName()}'")
        image = folder.write_input(vol, "input.nrrd")
        args = ["tao", "predict", str(image), "--model", str(bundle.path), "--device", self.checkDevice(device),
                "--out", "{out}"]
        if labels is not None:
            args += ["--segmentation", str(folder.write_input(labels, "orbit_labels.nrrd"))]
        if not maps:
            args.append("--no-maps")
        return args + modality_arguments(modality)

    def importResults(self, out_dir: Path, input_node, **_options: Any) -> TaoOutputs:
        """Finish hook: read a ``tao predict`` output folder, then add its table, crop ROIs and heat maps
        (everything is read and checked before the scene is touched)."""
        read = TaoResult.read(out_dir, geometry_of(input_node))
        result, maps = read.data, read.maps
        model = str(result.get("model", ""))
        rows = [{"side": e["side"], "P(active)": None if withheld(e) else float(e["probability_active"]),
                 "call": not_assessed(e) or e["call"], "model": model, "trust": e.get("trust", "")}
                for e in result["eyes"]]
        table = table_node_from_rows(
            self.ctx, rows, name=TABLE_NAME,
            descriptions={"P(active)": "probability of the active phase",
                          "call": f"active when P(active) >= {float(result['threshold']):g}; not assessed (no P) "
                                  "when the call is not to be used",
                          "trust": "empty, or why the call is not to be used (outside the model's training data)"})
        rois = []
        for e in result["eyes"]:
            box = e["crop_box_ras"]
            roi = roi_node_from_box(self.ctx, box["center"], box["size_mm"], box["axes"],
                                    name=f"TAO crop {e['side']}")
            roi.CreateDefaultDisplayNodes()
            rois.append(roi)
        nodes = {}
        for kind, m in maps.items():
            top = float(m.array.max())
            nodes[kind] = overlay_node_from_volume(
                self.ctx, m, input_node, name=f"TAO {MAP_KINDS[kind]}",
                value_range=(0.0, max(top, 1e-6)), threshold=0.05 * top if top > 0 else None)
        mark_results([table, *rois, *nodes.values()], input_node)
        return TaoOutputs(table, rois, nodes, result)

    def show(self, outputs: TaoOutputs, input_node, kind: str = "occlusion") -> None:
        """Show one heat map (a kind or its display name, see `SHOWN_MAP_CHOICES`) over the MRI, the
        crop boxes and the table (the table in the Slicer app; the web app shows its tables itself)."""
        kind = next((k for k, label in MAP_KINDS.items() if label == kind), kind)
        if kind in outputs.map_nodes:
            show_overlay(self.ctx, outputs.map_nodes[kind], input_node, opacity=0.5)
        else:
            show_volume(self.ctx, input_node)
        for roi in outputs.roi_nodes:
            roi.SetDisplayVisibility(True)
        show_table(self.ctx, outputs.table_node)


#: The panel, for Slicer and the browser (`orbitai.app.panel_spec`).
PANEL = PanelSpec(
    key="tao", module="TAOActivity", title="TAO activity", logic=TAOActivityLogic,
    apply_tip="Classify each eye as active or inactive thyroid eye disease", input_hint="an axial orbital T2 MRI",
    options=(Option("segmentation_node", "orbitSegmentation", "Orbit segmentation (optional)", "segmentation",
                    hint="crops each eye around its segmented structures"),
             model_option(TAOActivityLogic),
             Option("maps", "maps", "Heat maps (occlusion, Grad-CAM)", "flag", default=True),
             modality_option(),
             device_option()),
    display=Option("shown_map", "shownMap", "Show map", "choice", lambda: list(SHOWN_MAP_CHOICES), SHOWN_MAP_CHOICES[0]),
    table="table_node", needs_model=True, what="TAO")
