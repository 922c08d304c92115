"""What differs between the four modules in the browser: their options, their result table and how results are shown.

Each `WebModule` names the module's Logic (from the module folders the Slicer panels use, ``<Module>/<Module>Lib``)
and the options its Slicer panel passes to ``logic.start`` (`Option`, same keywords and choices as the panel's
parameter node). Everything else -- Apply/Cancel, progress, errors, the job itself -- is shared
(`orbitai.web.panel.WebJobPanel` over `orbitai.mrml.panel.JobController`).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from orbitai.errors import UserError

__all__ = ["Option", "WebModule", "MODULES", "module_lib"]

#: The module folders (beside the ``orbitai`` package in a source checkout), by Lib package.
_MODULE_FOLDERS = {"OrbitSegmentationLib": "OrbitSegmentation", "TAOActivityLib": "TAOActivity",
                   "IVGCResponseLib": "IVGCResponse", "NeuroDifferentialLib": "NeuroDifferential"}


def module_lib(name: str) -> Any:
    """Import a module's Lib package or one of its modules (e.g. ``"TAOActivityLib"``,
    ``"OrbitSegmentationLib.annotation_logic"``) from the checkout's module folder."""
    package = name.split(".")[0]
    folder = Path(__file__).resolve().parents[2] / _MODULE_FOLDERS[package]
    if not (folder / package).is_dir():
        raise UserError(f"orbitai web needs the OrbitAI module folders ({folder} is missing); run it from a source "
                        f"checkout (git clone, then pip install -e '.[web]').")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(name)


@dataclass(frozen=True)
class Option:
    """One option of a module panel, passed to ``logic.start`` under `name`.

    ``kind``: ``"choice"`` (a list from `choices`), ``"segmentation"`` (a segmentation node of the scene, or none),
    ``"flag"`` (on/off) or ``"form"`` (the IVGC clinical form: a dict of text values)."""

    name: str
    label: str
    kind: str
    choices: Optional[Callable[[], list[str]]] = None
    default: Any = None
    hint: str = ""


@dataclass(frozen=True)
class WebModule:
    """A module as the web app shows it."""

    key: str
    title: str
    lib: str                                    # the Lib package, e.g. "TAOActivityLib"
    logic_class: str                            # its JobLogic subclass
    apply_tip: str
    input_hint: str                             # what the input volume must be
    options: tuple[Option, ...]
    table: Callable[[Any], Any]                 # outputs -> the table node shown under the panel
    #: A display choice that re-shows the last results without a new run (TAO's heat map), or None.
    display: Optional[Option] = None
    #: Extra reason Apply cannot run, from the option values (IVGC: a model needs the clinical form).
    why_not_ready: Callable[[dict], str] = field(default=lambda values: "")

    def logic(self) -> type:
        return getattr(module_lib(self.lib), self.logic_class)

    def show(self, logic: Any, outputs: Any, input_node: Any, values: dict) -> None:
        """Show the outputs over their input, as the Slicer panel's ``showResults``."""
        if self.display is not None:
            logic.show(outputs, input_node, values[self.display.name])
        else:
            logic.show(outputs, input_node)


def _labels(lib: str, cls: str) -> Callable[[], list[str]]:
    return lambda: list(getattr(module_lib(lib), cls).modelLabels())


def _default(lib: str, cls: str) -> Callable[[], str]:
    return lambda: getattr(module_lib(lib), cls).defaultModelLabel()


def _device() -> Option:
    from orbitai.device import DEVICE_CHOICES

    return Option("device", "Device", "choice", lambda: list(DEVICE_CHOICES), DEVICE_CHOICES[0])


def _ivgc_why(values: dict) -> str:
    lib = module_lib("IVGCResponseLib")
    if not lib.IVGCResponseLogic.modelChoices():
        return (f"No IVGC model is installed (bundles {', '.join(lib.IVGCResponseLogic.models.bundled)}); "
                "see the README to train or install one.")
    if values.get("segmentation_node") is None:
        return "Select the segmentation of the recti of both orbits (run Orbit segmentation first)."
    return lib.IVGCResponseLogic.whyNotReady(values["model"], values["strategy"], values["clinical"])


def _modules() -> tuple[WebModule, ...]:
    from orbitai.ivgc.checks import DEFAULT_STRATEGY
    from orbitai.ivgc.rois import STRATEGY_NAMES
    from orbitai.tao.result import MAP_KINDS

    seg = ("OrbitSegmentationLib", "OrbitSegmentationLogic")
    tao = ("TAOActivityLib", "TAOActivityLogic")
    ivgc = ("IVGCResponseLib", "IVGCResponseLogic")
    neuro = ("NeuroDifferentialLib", "NeuroDifferentialLogic")
    return (
        WebModule(
            "orbit", "Orbit segmentation", *seg, "Segment the eyeballs, optic nerves and recti",
            "a CT or MRI of the orbits",
            (Option("model", "Model", "choice", _labels(*seg), lambda: module_lib(seg[0]).AUTOMATIC_MODEL),
             Option("window", "Sliding window", "choice", lambda: list(module_lib(seg[0]).WINDOW_CHOICES), "overlap"),
             _device()),
            table=lambda out: out.volumes_table_node),
        WebModule(
            "tao", "TAO activity", *tao, "Classify each eye as active or inactive thyroid eye disease",
            "an axial orbital T2 MRI",
            (Option("segmentation_node", "Orbit segmentation (optional)", "segmentation",
                    hint="crops each eye around its segmented structures"),
             Option("model", "Model", "choice", _labels(*tao), _default(*tao)),
             Option("maps", "Heat maps (occlusion, Grad-CAM)", "flag", default=True),
             _device()),
            table=lambda out: out.table_node,
            display=Option("shown_map", "Show map", "choice", lambda: list(module_lib(tao[0]).SHOWN_MAP_CHOICES),
                           MAP_KINDS["occlusion"])),
        WebModule(
            "ivgc", "IVGC response", *ivgc, "Predict the response to intravenous glucocorticoids",
            "a coronal orbital T2 MRI",
            (Option("segmentation_node", "Recti segmentation", "segmentation"),
             Option("strategy", "ROI strategy", "choice", lambda: list(STRATEGY_NAMES), DEFAULT_STRATEGY),
             Option("model", "Model", "choice", _labels(*ivgc), _default(*ivgc)),
             Option("clinical", "Clinical values", "form"),
             Option("gradcam", "Grad-CAM map", "flag", default=True),
             _device()),
            table=lambda out: out.result_table, why_not_ready=_ivgc_why),
        WebModule(
            "neuro", "NMOSD vs MS", *neuro, "Segment white-matter lesions and tell NMOSD from MS",
            "a brain FLAIR MRI",
            (Option("lesion_segmentation", "Lesion segmentation (optional)", "segmentation",
                    hint="empty: the lesions are segmented first"),
             Option("model", "Model", "choice", _labels(*neuro), _default(*neuro)),
             Option("heatmap", "Heat map", "flag", default=True),
             _device()),
            table=lambda out: out.probability_table or out.summary_table),
    )


#: The modules in the order of the page's tabs (built on first use: the Libs import the model registries).
MODULES: list[WebModule] = []


def modules() -> list[WebModule]:
    if not MODULES:
        MODULES.extend(_modules())
    return MODULES


def clinical_form() -> list[tuple[str, str, str]]:
    """The IVGC clinical form's rows (name, label, tip), as the Slicer panel builds them."""
    return module_lib("IVGCResponseLib").clinical_form()
