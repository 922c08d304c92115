"""Logic of the TAOActivity module: MRML in, MRML out, the classifier in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests. The MRI
(and the optional orbit segmentation, as a label map) are written to a temporary folder,
``orbitai tao predict`` runs as a child process (progress lines; cancel kills it), and only when it
succeeds are the table, the crop boxes and the heat maps added to the scene: a failure or a cancel
leaves the scene as it was.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from orbitai.io import VolumeError, read_volume, write_volume
from orbitai.mrml.jobs import ModuleJob, ProgressFn
from orbitai.runner import OrbitaiJob

MAP_KINDS = {"occlusion": "occlusion", "gradcam": "Grad-CAM"}


@dataclass
class TAOOutputs:
    table_node: Any
    roi_nodes: list = field(default_factory=list)
    map_nodes: dict = field(default_factory=dict)      # kind -> overlay volume node
    result: dict = field(default_factory=dict)

    def summary(self) -> str:
        eyes = ", ".join(f"{e['side']} {e['call']} ({e['probability_active']:.2f})" for e in self.result["eyes"])
        text = f"Network {self.result['network']}: {eyes}."
        if self.result.get("warnings"):
            text += " Warnings: " + " ".join(self.result["warnings"])
        return text


class TAOActivityLogic:
    """Classify each eye of an orbital T2 MRI node as active or inactive TAO."""

    def __init__(self, context=None) -> None:
        from orbitai.mrml import get_context

        self.ctx = context or get_context()

    @staticmethod
    def availableModels() -> list[str]:
        from orbitai.bundle import iter_bundles

        return [b.name for b in iter_bundles() if b.metadata.get("task") == "tao_activity"]

    @staticmethod
    def ensureDependencies() -> bool:
        from orbitai.mrml.dependencies import ensure_dependencies

        return ensure_dependencies(["captum", "monai", "skimage"])

    # ---------------------------------------------------------------------------- run
    def start(self, input_node, segmentation_node=None, model: str = "B", device: str = "auto",
              maps: bool = True) -> ModuleJob:
        """Write the inputs to a temporary folder and start the child; returns at once."""
        from orbitai.mrml import labels_from_segmentation_node, volume_from_volume_node

        if input_node is None:
            raise VolumeError("Select an orbital T2 MRI volume.")
        vol = volume_from_volume_node(input_node)
        if min(vol.shape) < 5:
            raise VolumeError(f"'{input_node.GetName()}' has only {min(vol.shape)} slice(s) (shape {vol.shape}); "
                              "load an axial orbital T2 MRI with at least 5 slices through the orbits.")
        labels = labels_from_segmentation_node(segmentation_node, input_node) if segmentation_node else None
        workdir = Path(tempfile.mkdtemp(prefix="orbitai-tao-"))
        try:
            image = write_volume(vol, workdir / "input.nrrd")
            args = ["tao", "predict", str(image), "--model", model, "--device", device, "--out", "{out}"]
            if labels is not None:
                args += ["--segmentation", str(write_volume(labels, workdir / "orbit_labels.nrrd"))]
            if not maps:
                args.append("--no-maps")
            return ModuleJob(OrbitaiJob(args).start(), workdir)
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def finish(self, job: ModuleJob, input_node) -> TAOOutputs:
        """Collect a finished child's results into the scene (raises if it failed)."""
        try:
            res = job.checked_result("TAO activity prediction")
            return self.load_results(res.out_dir, input_node)
        finally:
            job.cleanup()

    def run(self, input_node, segmentation_node=None, model: str = "B", device: str = "auto", maps: bool = True,
            progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None) -> TAOOutputs:
        """Blocking run (scripts and tests): progress callback, optional cancel event."""
        job = self.start(input_node, segmentation_node, model, device, maps)
        job.wait(progress, cancel)
        return self.finish(job, input_node)

    # ------------------------------------------------------------------------ results
    def load_results(self, out_dir: str | Path, input_node) -> TAOOutputs:
        """Read a ``tao predict`` output folder and add its table, crop boxes and maps to the scene."""
        from orbitai.mrml import (geometry_of, overlay_node_from_volume, roi_node_from_box,
                                  table_node_from_rows)

        out = Path(out_dir)
        result = json.loads((out / "result.json").read_text())
        ref = geometry_of(input_node)
        maps = {}
        for kind in MAP_KINDS:   # read and check everything before the scene is touched
            path = out / f"{kind}.nrrd"
            if path.exists():
                m = read_volume(path)
                if not m.same_geometry(ref, tol=1e-3):
                    raise VolumeError(f"The {kind} map does not lie on the input volume's grid.")
                maps[kind] = m
        base = input_node.GetName()
        rows = [{"eye": e["side"], "P(active)": float(e["probability_active"]), "call": e["call"],
                 "model": result["model"]} for e in result["eyes"]]
        table = table_node_from_rows(self.ctx, rows, name=f"{base} TAO activity")
        rois = [roi_node_from_box(self.ctx, e["crop_box_ras"]["center"], e["crop_box_ras"]["size_mm"],
                                  e["crop_box_ras"]["axes"], name=f"{base} {e['side']} orbit crop")
                for e in result["eyes"]]
        nodes = {kind: overlay_node_from_volume(self.ctx, m, input_node, name=f"{base} TAO {MAP_KINDS[kind]}",
                                                value_range=(0.0, max(float(m.array.max()), 1e-6)),
                                                threshold=0.05 * float(m.array.max()) if m.array.max() > 0 else None)
                 for kind, m in maps.items()}
        return TAOOutputs(table, rois, nodes, result)

    def show(self, outputs: TAOOutputs, input_node, kind: str = "occlusion") -> None:
        """Show one heat map over the MRI and the table (Slicer app)."""
        import slicer

        from orbitai.mrml import show_overlay

        if kind in outputs.map_nodes:
            show_overlay(self.ctx, outputs.map_nodes[kind], input_node, opacity=0.5)
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(outputs.table_node.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
