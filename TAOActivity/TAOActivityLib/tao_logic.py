"""Logic of the TAOActivity module: MRML in, MRML out, the classifier in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests.

* `TAOActivityLogic.start` writes the MRI (and the optional orbit segmentation, as a label map on
  the MRI's grid) to a temporary folder and starts ``orbitai tao predict`` as a child process
  (progress lines; cancel kills it); `finish` collects it; `run` does both, blocking.
* `TAOActivityLogic.load_results` reads a ``tao predict`` output folder (``result.json``,
  ``occlusion.nrrd``, ``gradcam.nrrd``), checks all of it, and only then adds the table, one
  markups ROI per eye (the network's crop box) and the heat-map overlays to the scene. If anything
  fails, every node it added is removed again: a failure or a cancel leaves the scene as it was.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from orbitai.io import Volume, VolumeError, read_volume, write_volume
from orbitai.mrml.jobs import ModuleJob, ProgressFn
from orbitai.runner import OrbitaiJob

#: Panel choices: key -> (bundle name, label). Other installed TAO bundles are offered by name.
NETWORKS = {"A": ("tao_network_a_demo", "Network A (VGG-like)"),
            "B": ("tao_network_b_demo", "Network B (ResNet-like)")}
DEVICES = ("auto", "cpu", "cuda", "mps")
MAP_KINDS = {"occlusion": "occlusion", "gradcam": "Grad-CAM"}
TABLE_NAME = "TAO activity"
#: Attribute set on every output node: the ID of the MRI it was computed from.
INPUT_ATTRIBUTE = "OrbitAI.TAO.InputVolume"
MIN_SLICES = 5


class TAOResultError(RuntimeError):
    """A ``tao predict`` output folder that is missing files or does not follow the contract."""


@dataclass
class TAOOutputs:
    table_node: Any
    roi_nodes: list = field(default_factory=list)      # one per eye, in result order
    map_nodes: dict = field(default_factory=dict)      # kind ("occlusion", "gradcam") -> overlay node
    result: dict = field(default_factory=dict)         # result.json as read

    def summary(self) -> str:
        eyes = ", ".join(f"{e['side']} eye {e['call']} (P = {e['probability_active']:.2f})"
                         for e in self.result["eyes"])
        text = f"{self.result['model']}: {eyes}."
        if self.result.get("warnings"):
            text += " Warnings: " + " ".join(self.result["warnings"])
        return text


# --------------------------------------------------------------------------- result folder
def _vec(value, n: int, what: str) -> list[float]:
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise TAOResultError(f"{what} must be {n} numbers, got {value!r}.") from None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise TAOResultError(f"{what} must be {n} finite numbers, got {value!r}.")
    return out


def read_result(out_dir: str | Path, reference: Optional[Volume] = None) -> tuple[dict, dict[str, Volume]]:
    """(result.json, {kind: map Volume}) of a ``tao predict`` output folder, fully checked.

    ``reference``: the input image's geometry; the maps must lie on its grid. Touches no scene."""
    out = Path(out_dir)
    path = out / "result.json"
    if not path.is_file():
        raise TAOResultError(f"The prediction wrote no result.json in {out}.")
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TAOResultError(f"result.json cannot be read: {exc}") from None
    if not isinstance(result, dict) or not isinstance(result.get("eyes"), list) or not result["eyes"]:
        raise TAOResultError("result.json lists no eyes.")
    threshold = float(result.get("threshold", 0.5))
    sides = []
    for n, e in enumerate(result["eyes"]):
        where = f"result.json eye {n + 1}"
        if not isinstance(e, dict):
            raise TAOResultError(f"{where} is not an object.")
        if e.get("side") not in ("right", "left"):
            raise TAOResultError(f"{where}: side must be 'right' or 'left', got {e.get('side')!r}.")
        p = e.get("probability_active")
        if not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise TAOResultError(f"{where}: probability_active must be in [0, 1], got {p!r}.")
        if e.get("call") not in ("active", "inactive"):
            raise TAOResultError(f"{where}: call must be 'active' or 'inactive', got {e.get('call')!r}.")
        box = e.get("crop_box_ras")
        if not isinstance(box, dict):
            raise TAOResultError(f"{where} has no crop_box_ras.")
        _vec(box.get("center"), 3, f"{where} crop centre")
        size = _vec(box.get("size_mm"), 3, f"{where} crop size")
        if min(size) <= 0:
            raise TAOResultError(f"{where}: crop size must be positive, got {size}.")
        axes = np.array([_vec(a, 3, f"{where} crop axis") for a in (box.get("axes") or [])])
        if axes.shape != (3, 3) or not np.allclose(axes @ axes.T, np.eye(3), atol=1e-3):
            raise TAOResultError(f"{where}: crop axes must be three orthonormal 3-vectors.")
        sides.append(e["side"])
    if len(set(sides)) != len(sides):
        raise TAOResultError(f"result.json lists the same eye twice: {sides}.")
    result.setdefault("threshold", threshold)
    maps: dict[str, Volume] = {}
    for kind in MAP_KINDS:
        p = out / f"{kind}.nrrd"
        if not p.exists():
            continue
        m = read_volume(p)
        if reference is not None and not m.same_geometry(reference, tol=1e-3):
            raise VolumeError(f"The {kind} map (shape {m.shape}) does not lie on the input volume's grid "
                              f"(shape {reference.shape}).")
        if not np.isfinite(m.array).all():
            raise TAOResultError(f"The {kind} map has NaN or infinite values.")
        maps[kind] = m
    return result, maps


# --------------------------------------------------------------------------- logic
class TAOActivityLogic:
    """Classify each eye of an orbital T2 MRI node as active or inactive TAO."""

    def __init__(self, context=None) -> None:
        from orbitai.mrml import get_context

        self.ctx = context or get_context()

    # ------------------------------------------------------------------------ models
    @staticmethod
    def modelChoices() -> list[tuple[str, str]]:
        """(label, model) for every installed TAO bundle: Network A and B first, then others by name."""
        from orbitai.bundle import iter_bundles

        names = {b.name for b in iter_bundles() if b.metadata.get("task") == "tao_activity"}
        choices = [(label, key) for key, (name, label) in sorted(NETWORKS.items()) if name in names]
        known = {name for name, _ in NETWORKS.values()}
        return choices + [(n, n) for n in sorted(names - known)]

    @staticmethod
    def availableModels() -> list[str]:
        return [model for _, model in TAOActivityLogic.modelChoices()]

    @staticmethod
    def resolveModel(model: str):
        """The bundle for ``model`` ("A", "B", a bundle name or folder); a clear error if missing."""
        from orbitai.bundle import BundleError, find_bundle

        key = (model or "B").strip()
        name = NETWORKS[key.upper()][0] if key.upper() in NETWORKS else key
        try:
            bundle = find_bundle(name)
        except BundleError as exc:
            if key.upper() in NETWORKS:
                raise BundleError(f"{NETWORKS[key.upper()][1]} is not installed (no bundle '{name}'). {exc}") from None
            raise
        if bundle.metadata.get("task") != "tao_activity":
            raise BundleError(f"Bundle '{bundle.name}' is a {bundle.metadata.get('task')} model, "
                              "not a TAO activity classifier.")
        return bundle

    @staticmethod
    def ensureDependencies() -> bool:
        from orbitai.mrml.dependencies import ensure_dependencies

        return ensure_dependencies(["captum", "monai", "skimage"])

    # ------------------------------------------------------------------------ checks
    @staticmethod
    def check_inputs(input_node, segmentation_node=None, device: str = "auto") -> Volume:
        """The input as a `Volume`; raises a clear error for anything TAOActivity cannot use."""
        from orbitai.mrml import volume_from_volume_node

        if input_node is None:
            raise VolumeError("Select an orbital T2 MRI volume.")
        if not input_node.IsA("vtkMRMLScalarVolumeNode") or input_node.IsA("vtkMRMLLabelMapVolumeNode"):
            raise VolumeError(f"'{input_node.GetName()}' is not a scalar MRI volume; select an axial orbital T2 MRI.")
        if input_node.GetImageData() is None:
            raise VolumeError(f"'{input_node.GetName()}' has no voxels.")
        vol = volume_from_volume_node(input_node)
        if vol.array.ndim != 3 or min(vol.shape) < MIN_SLICES:
            raise VolumeError(f"'{input_node.GetName()}' has only {min(vol.shape)} slice(s) (shape {vol.shape}); "
                              f"load an axial orbital T2 MRI with at least {MIN_SLICES} slices through the orbits.")
        if segmentation_node is not None and not segmentation_node.IsA("vtkMRMLSegmentationNode"):
            raise ValueError(f"'{segmentation_node.GetName()}' is not a segmentation node.")
        d = (device or "auto").strip().lower()
        if not (d in DEVICES or d.startswith("cuda:")):
            raise ValueError(f"Unknown device {device!r}; use one of {', '.join(DEVICES)}.")
        return vol

    # ---------------------------------------------------------------------------- run
    def start(self, input_node, segmentation_node=None, model: str = "B", device: str = "auto",
              maps: bool = True) -> ModuleJob:
        """Check and write the inputs to a temporary folder and start the child; returns at once.
        The scene is not changed."""
        from orbitai.mrml import labels_from_segmentation_node
        from orbitai.mrml.transaction import temporary_nodes

        vol = self.check_inputs(input_node, segmentation_node, device)
        bundle = self.resolveModel(model)
        labels = None
        if segmentation_node is not None:
            try:
                with temporary_nodes(self.ctx.scene):   # the export adds helper nodes
                    labels = labels_from_segmentation_node(segmentation_node, input_node)
            except ValueError as exc:
                raise ValueError(f"Orbit segmentation '{segmentation_node.GetName()}': {exc}") from None
        workdir = Path(tempfile.mkdtemp(prefix="orbitai-tao-"))
        try:
            image = write_volume(vol, workdir / "input.nrrd")
            args = ["tao", "predict", str(image), "--model", str(bundle.path), "--device", device.strip().lower(),
                    "--out", "{out}"]
            if labels is not None:
                args += ["--segmentation", str(write_volume(labels, workdir / "orbit_labels.nrrd"))]
            if not maps:
                args.append("--no-maps")
            return ModuleJob(OrbitaiJob(args).start(), workdir)
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def finish(self, job: ModuleJob, input_node) -> TAOOutputs:
        """Collect a finished child's results into the scene (raises, scene unchanged, if it failed)."""
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
    def load_results(self, result_dir: str | Path, input_node) -> TAOOutputs:
        """Read a ``tao predict`` output folder and add its table, crop ROIs and heat maps to the scene.

        Everything is read and checked first; if adding the nodes still fails, the nodes added so
        far are removed, so the scene gets all of the outputs or none."""
        from orbitai.mrml import geometry_of, overlay_node_from_volume, roi_node_from_box, table_node_from_rows
        from orbitai.mrml.transaction import rollback_on_error

        if input_node is None:
            raise VolumeError("The input volume is gone from the scene.")
        result, maps = read_result(result_dir, geometry_of(input_node))
        model = str(result.get("model", ""))
        rows = [{"side": e["side"], "P(active)": float(e["probability_active"]), "call": e["call"],
                 "model": model} for e in result["eyes"]]
        with rollback_on_error(self.ctx.scene):
            table = table_node_from_rows(
                self.ctx, rows, name=TABLE_NAME,
                descriptions={"P(active)": "probability of the active phase",
                              "call": f"active when P(active) >= {float(result['threshold']):g}"})
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
            for node in [table, *rois, *nodes.values()]:
                node.SetAttribute(INPUT_ATTRIBUTE, input_node.GetID())
        return TAOOutputs(table, rois, nodes, result)

    def show(self, outputs: TAOOutputs, input_node, kind: str = "occlusion") -> None:
        """Show one heat map over the MRI, the crop boxes and the table (Slicer app)."""
        import slicer

        from orbitai.mrml import show_overlay

        if kind in outputs.map_nodes:
            show_overlay(self.ctx, outputs.map_nodes[kind], input_node, opacity=0.5)
        else:
            slicer.util.setSliceViewerLayers(background=input_node, foreground=None)
        for roi in outputs.roi_nodes:
            roi.SetDisplayVisibility(True)
        slicer.app.layoutManager().setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpTableView)
        slicer.app.applicationLogic().GetSelectionNode().SetActiveTableID(outputs.table_node.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
