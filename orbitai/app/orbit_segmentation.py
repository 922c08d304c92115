"""Logic of the OrbitSegmentation module: MRML in, MRML out, model in a child process.

No Qt here, so the same code runs inside Slicer and headless (slicer-core) in the tests. The
shared `orbitai.mrml.jobs.JobLogic` runs the job; this module declares its two hooks: the start
hook writes the input volume to a temporary NRRD and names the ``orbitai seg predict`` command,
the finish hook reads its result folder (`orbitai.orbit.result.SegmentationResult`) and adds the
segmentation and tables. A failure or cancel leaves the scene as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from orbitai.app import requirements_file
from orbitai.app.corrections import FINETUNE_SECTION, RANK_SECTION
from orbitai.app.panel_spec import (Option, PanelSpec, device_option, modality_arguments, modality_option, model_option,
                                     scan_text)
from orbitai.errors import InputError
from orbitai.io import Volume, VolumeError
from orbitai.mrml import (
    geometry_of,
    labels_from_segmentation_node,
    segmentation_node_from_labels,
    show_volume,
    table_node_from_rows,
    volume_from_volume_node,
)
from orbitai.bundle.registry import model_to_install
from orbitai.mrml.jobs import JobLogic
from orbitai.mrml.results import refuse_other_scan
from orbitai.mrml.tables import show_table
from orbitai.orbit.anatomy import DEFAULT_POPULATION, POPULATIONS
from orbitai.orbit.models import SEG_MODELS
from orbitai.orbit.result import SegmentationResult
from orbitai.jobs.inputs import JobFolder

#: Model choice that lets the child pick the bundled model for the scan's modality.
AUTOMATIC_MODEL = "Automatic (by modality)"
#: What the summary calls each population of ``seg predict --population``.
POPULATION_TEXT = {"ted": "thyroid eye disease (TOM500) and normal adult", "healthy": "normal adult"}
#: Sliding-window modes of ``orbitai seg predict --window``.
WINDOW_CHOICES = ("overlap", "step1")


@dataclass
class SegmentationOutputs:
    segmentation_node: Any
    volumes_table_node: Any
    metrics_table_node: Any = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)      # result.json's other facts (scan, acquisition)

    def summary(self) -> str:
        text = f"{len(self.volumes)} structures segmented." + scan_text(self.info)
        if self.info.get("population"):
            text += f" Volume ranges: {POPULATION_TEXT.get(self.info['population'], self.info['population'])}."
        if self.warnings:
            text += " Warnings: " + " ".join(self.warnings)
        return text


class OrbitSegmentationLogic(JobLogic):
    """Segment the orbits of a volume node; write a segmentation node and volume/metric tables.

    ``start(input_node, model=None, device="auto", window="overlap", reference_node=None)``,
    ``finish(job)`` and ``run(...)`` come from `JobLogic`; ``model`` is a bundle name, None or
    `AUTOMATIC_MODEL` (the bundled model for the scan's modality)."""

    job_title = "Segmentation"
    requirements = requirements_file("OrbitSegmentation")
    models = SEG_MODELS     # model choices: the installed segmentation bundles by name

    # ------------------------------------------------------------------------ models
    @classmethod
    def modelLabels(cls) -> list[str]:
        """The panel's model choices: automatic, then every installed segmentation bundle."""
        return [AUTOMATIC_MODEL, *cls.modelChoices()]

    @classmethod
    def resolveModel(cls, model: Optional[str]):
        """The bundle for ``model`` (`JobLogic.resolveModel`); None for `AUTOMATIC_MODEL` or none (the child
        picks the bundled model for the scan's modality)."""
        if not model or model == AUTOMATIC_MODEL:
            return None
        return super().resolveModel(model)

    def neededModel(self, input_node: Any, options: dict[str, Any]) -> Optional[str]:
        """`JobLogic.neededModel`; for `AUTOMATIC_MODEL`, the bundled model the child will pick: by the stated Scan
        choice, else by the scan's facts without the image classifier (on the main thread: its DICOM Modality and the
        values of a sample of them, on a view of the node's voxels; the child judges the scan in full; issue 64's
        first-Apply download offer)."""
        model = options.get("model")
        if model and model != AUTOMATIC_MODEL:
            return super().neededModel(input_node, options)
        stated = str(options.get("modality") or "auto").upper()
        if stated != "AUTO":
            return self.models.resolve("CT" if stated == "CT" else "MR")
        ct, mr = self.models.resolve("CT"), self.models.resolve("MR")
        if input_node is None or input_node.IsA("vtkMRMLLabelMapVolumeNode") or not (
                model_to_install(ct) or model_to_install(mr)):
            return None          # both installed (a development checkout): nothing to offer, the scan is not read
        # the scan judge (scipy) on the first Apply only: the panel is built at the browser's launch (issue 81)
        from orbitai.scan import scan_facts, values as scan_values

        try:
            vol = volume_from_volume_node(input_node, copy=False)
            step = max(1, round((vol.array.size / 200_000) ** (1 / 3)))   # a strided sample: no copy of the scan
            sample = Volume(vol.array[::step, ::step, ::step], metadata=dict(vol.metadata))
            is_ct = scan_values.model_family(scan_facts(sample, image=False)) == "CT"
        except (ValueError, TypeError, VolumeError):
            return None
        return ct if is_ct else mr

    # ------------------------------------------------------------------------ hooks
    def jobArguments(self, folder: JobFolder, input_node, model: Optional[str] = None, device: str = "auto",
                      window: str = "overlap", reference_node=None, modality: str = "auto",
                      population: str = DEFAULT_POPULATION) -> list[str]:
        """Start hook: check the input, write it to ``folder``, name the ``seg predict`` command."""
        if input_node is None:
            raise VolumeError("Select an input volume.")
        vol = volume_from_volume_node(input_node, copy=False)   # a view: its file is written a slab per tick
        if min(vol.shape) < 3:
            raise VolumeError(f"'{input_node.GetName()}' is not a 3D volume (shape {vol.shape}); load a 3D CT or MRI.")
        if window not in WINDOW_CHOICES:
            raise InputError(f"Unknown window {window!r}; use one of {', '.join(WINDOW_CHOICES)}.")
        if population not in POPULATIONS:
            raise InputError(f"Unknown volume ranges {population!r}; use one of {', '.join(POPULATIONS)}.")
        if reference_node is not None and not reference_node.IsA("vtkMRMLSegmentationNode"):
            raise InputError(f"'{reference_node.GetName()}' is not a segmentation node.")
        refuse_other_scan(reference_node, input_node, "reference segmentation")
        image = folder.write_input(vol, "input.nrrd")
        args = ["seg", "predict", str(image), "--out", "{out}", "--device", self.checkDevice(device),
                "--window", window, "--population", population]
        if model and model != AUTOMATIC_MODEL:
            args += ["--model", model]
        return args + modality_arguments(modality)

    def importResults(self, out_dir: Path, input_node, reference_node=None, **_options: Any) -> SegmentationOutputs:
        """Finish hook: read and check the ``seg predict`` result folder, then add its nodes."""
        result = SegmentationResult.read(out_dir, geometry_of(input_node))
        labels, volumes, warnings = result.labels, result.volumes, result.warnings
        # Everything is computed before the scene is touched.
        metric_rows = None
        if reference_node is not None:
            from orbitai.orbit.evaluate import score_case

            ref = labels_from_segmentation_node(reference_node, input_node)
            structures = list(dict.fromkeys(r["structure"] for r in volumes))  # the model's structures
            metric_rows = score_case(labels.array, ref.array, structures, labels.spacing)
        base = input_node.GetName()
        seg_node = segmentation_node_from_labels(self.ctx, labels, name=f"{base} orbit segmentation",
                                                 reference_node=input_node)
        # the plausibility columns: what lies outside the range used (result.json's population), is enlarged within
        # the thyroid eye disease range (a finding) or where the model is uncertain
        # beside the voxel count's volume, the soft one (class probabilities: what lies partly in a voxel counts)
        rows = [{"structure": r["name"], "side": r["side"], "volume (cm3)": float(r["volume_cm3"]),
                 **({"soft volume (cm3)": float(r["soft_volume_cm3"])} if "soft_volume_cm3" in r else {}),
                 "check": "" if r.get("check", "normal") == "normal" else r["check"], "note": r.get("note", "")}
                for r in volumes]
        vol_table = table_node_from_rows(self.ctx, rows, name=f"{base} orbit volumes",
                                         units={k: "cm3" for k in rows[0] if k.endswith("(cm3)")} if rows else None)
        met_table = None
        if metric_rows is not None:
            met_table = table_node_from_rows(self.ctx, metric_rows, name=f"{base} orbit metrics",
                                             units={"volume_pred_cm3": "cm3", "volume_true_cm3": "cm3"})
        return SegmentationOutputs(seg_node, vol_table, met_table, volumes, warnings, dict(result.info))

    def show(self, outputs: SegmentationOutputs, input_node) -> None:
        """Show the segmentation over the input in 2D and 3D, and the volume table (in the Slicer app; the
        web app shows its tables itself)."""
        seg = outputs.segmentation_node
        seg.CreateDefaultDisplayNodes()
        seg.CreateClosedSurfaceRepresentation()
        show_volume(self.ctx, input_node)
        show_table(self.ctx, outputs.volumes_table_node)


#: The panel, for Slicer and the browser (`orbitai.app.panel_spec`).
PANEL = PanelSpec(
    key="orbit", module="OrbitSegmentation", title="Orbit segmentation", logic=OrbitSegmentationLogic,
    apply_tip="Segment the eyeballs, optic nerves and recti of both orbits", input_hint="a CT or MRI of the orbits",
    options=(model_option(OrbitSegmentationLogic, AUTOMATIC_MODEL),
             Option("window", "window", "Sliding window", "choice", lambda: list(WINDOW_CHOICES), WINDOW_CHOICES[0]),
             modality_option(),
             Option("population", "population", "Volume ranges", "choice", lambda: list(POPULATIONS), DEFAULT_POPULATION,
                    hint="ted: thyroid eye disease patients' ranges (an enlarged rectus within them is a finding); "
                         "healthy: normal adult ranges only"),
             device_option(),
             Option("reference_node", "referenceSegmentation", "Reference segmentation (optional)", "segmentation",
                    hint="scored against the result (Dice, volumes)")),
    table="volumes_table_node", sections=(FINETUNE_SECTION, RANK_SECTION))
