"""Logic of the OrbitSegmentation module: MRML in, MRML out, model in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests.
The input volume is written to a temporary NRRD, ``orbitai seg predict`` runs as a child
process (progress lines, cancel kills it), and only when it succeeds are the segmentation
and tables added to the scene: a failure or cancel leaves the scene as it was.
"""
from __future__ import annotations

import csv
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from orbitai.io import VolumeError, write_volume
from orbitai.mrml.jobs import ModuleJob, ProgressFn
from orbitai.runner import OrbitaiJob


#: The running child of a segmentation (shared job type of all OrbitAI module Logics).
SegmentationJob = ModuleJob


@dataclass
class SegmentationOutputs:
    segmentation_node: Any
    volumes_table_node: Any
    metrics_table_node: Any = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.volumes)} structures segmented."
        if self.warnings:
            text += " Warnings: " + " ".join(self.warnings)
        return text


class OrbitSegmentationLogic:
    """Segment the orbits of a volume node; write a segmentation node and volume/metric tables."""

    def __init__(self, context=None) -> None:
        from orbitai.mrml import get_context

        self.ctx = context or get_context()

    # ------------------------------------------------------------------------ models
    @staticmethod
    def availableModels() -> list[str]:
        from orbitai.bundle import iter_bundles

        return [b.name for b in iter_bundles() if b.metadata.get("task") == "segmentation"]

    @staticmethod
    def ensureDependencies() -> bool:
        from orbitai.mrml.dependencies import ensure_dependencies

        return ensure_dependencies(["monai", "skimage"])

    # ---------------------------------------------------------------------------- run
    def start(self, input_node, model: Optional[str] = None, device: str = "auto",
              window: str = "overlap") -> SegmentationJob:
        """Write the input to a temporary file and start the child; returns at once."""
        from orbitai.mrml import volume_from_volume_node

        if input_node is None:
            raise VolumeError("Select an input volume.")
        vol = volume_from_volume_node(input_node)
        if min(vol.shape) < 3:
            raise VolumeError(f"'{input_node.GetName()}' is not a 3D volume (shape {vol.shape}); load a 3D CT or MRI.")
        workdir = Path(tempfile.mkdtemp(prefix="orbitseg-"))
        try:
            image = write_volume(vol, workdir / "input.nrrd")
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        args = ["seg", "predict", str(image), "--out", "{out}/segmentation.seg.nrrd",
                "--volumes", "{out}/volumes.csv", "--device", device, "--window", window]
        if model:
            args += ["--model", model]
        return SegmentationJob(OrbitaiJob(args).start(), workdir)

    def finish(self, job: SegmentationJob, input_node, reference_node=None) -> SegmentationOutputs:
        """Collect a finished child's results into the scene (raises if it failed)."""
        try:
            res = job.checked_result("Segmentation")
            out = res.out_dir
            warnings = [ln[len("warning: "):] for ln in res.stdout if ln.startswith("warning: ")]
            return self._import_results(out, input_node, reference_node, warnings)
        finally:
            job.cleanup()

    def run(self, input_node, model: Optional[str] = None, device: str = "auto", window: str = "overlap",
            reference_node=None, progress: Optional[ProgressFn] = None,
            cancel: Optional[threading.Event] = None) -> SegmentationOutputs:
        """Blocking run (scripts and tests): progress callback, optional cancel event."""
        job = self.start(input_node, model, device, window)
        job.wait(progress, cancel)
        return self.finish(job, input_node, reference_node)

    # ------------------------------------------------------------------------ results
    def _import_results(self, out: Path, input_node, reference_node, warnings) -> SegmentationOutputs:
        from orbitai.mrml import labels_from_segmentation_node, segmentation_node_from_labels, table_node_from_rows
        from orbitai.segfile import read_segmentation

        labels, _table = read_segmentation(out / "segmentation.seg.nrrd")
        with (out / "volumes.csv").open(newline="") as f:
            volumes = [dict(r) for r in csv.DictReader(f)]
        # Everything is computed before the scene is touched.
        metric_rows = None
        if reference_node is not None:
            from orbitai.seg.evaluate import score_case

            ref = labels_from_segmentation_node(reference_node, input_node)
            structures = list(dict.fromkeys(r["structure"] for r in volumes))  # the model's structures
            metric_rows = score_case(labels.array, ref.array, structures, labels.spacing)
        base = input_node.GetName()
        seg_node = segmentation_node_from_labels(self.ctx, labels, name=f"{base} orbit segmentation",
                                                 reference_node=input_node)
        rows = [{"structure": r["name"], "side": r["side"], "volume (cm3)": float(r["volume_cm3"])} for r in volumes]
        vol_table = table_node_from_rows(self.ctx, rows, name=f"{base} orbit volumes",
                                         units={"volume (cm3)": "cm3"})
        met_table = None
        if metric_rows is not None:
            met_table = table_node_from_rows(self.ctx, metric_rows, name=f"{base} orbit metrics",
                                             units={"volume_pred_cm3": "cm3", "volume_true_cm3": "cm3"})
        return SegmentationOutputs(seg_node, vol_table, met_table, volumes, warnings)

    def show(self, outputs: SegmentationOutputs, input_node) -> None:
        """Show the segmentation over the input in 2D and 3D and the volume table (Slicer app)."""
        import slicer

        seg = outputs.segmentation_node
        seg.CreateDefaultDisplayNodes()
        seg.CreateClosedSurfaceRepresentation()
        slicer.util.setSliceViewerLayers(background=input_node)
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(outputs.volumes_table_node.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
