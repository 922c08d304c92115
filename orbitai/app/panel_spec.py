"""One declaration per module panel, from which both front ends are made.

A `PanelSpec` says what a module's panel holds: the input it needs, its options (each with the keyword
``logic.start`` takes, the Slicer parameter-node field that stores it, its choices and default), a display choice
that re-shows results without a new run, when Apply may run (`PanelSpec.why_not_ready`) and which table is shown
under the panel. The Slicer panel's ``@parameterNodeWrapper`` class is made from it
(`orbitai.mrml.parameter_nodes.parameter_node_class`), and so is the browser's panel (`orbitai.web.module_panel.ModulePanel`); a test compares the two.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from orbitai.bundle.registry import missing_message, model_to_install
from orbitai.device import DEVICE_CHOICES
from orbitai.errors import OrbitAIError
from orbitai.mrml.jobs import JobLogic
from orbitai.modality import MODALITY_CHOICES

__all__ = ["Action", "Option", "PanelSpec", "KINDS", "device_option", "model_option", "modality_option", "modality_arguments",
           "scan_text", "reason"]

#: Option kinds: a list of texts, a segmentation node of the scene (or none), on/off, a form of text fields, one text.
KINDS = ("choice", "segmentation", "flag", "form", "text")


@dataclass(frozen=True)
class Option:
    """One option of a panel.

    ``name``: the keyword ``logic.start`` takes; ``parameter``: the Slicer parameter-node field (camelCase, bound by
    the ``.ui``'s ``SlicerParameterName``); ``choices``: the offered values (called each time: the installed models
    change); ``refreshed``: the choices are read again each time the panel is shown; ``form``: for a form, its rows
    ``(name, label, tool tip)``."""

    name: str
    parameter: str
    label: str
    kind: str
    choices: Optional[Callable[[], list[str]]] = None
    default: Any = None
    hint: str = ""
    refreshed: bool = False
    form: Optional[Callable[[], list[tuple[str, str, str]]]] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if (self.kind == "choice") != (self.choices is not None) or (self.kind == "form") != (self.form is not None):
            raise ValueError(f"option {self.name}: a choice has choices and a form has rows, nothing else")

    def default_value(self) -> Any:
        """The default (called when it is a function: the default model depends on what is installed)."""
        return self.default() if callable(self.default) else self.default


def _no_rule(values: dict[str, Any]) -> str:
    return ""


@dataclass(frozen=True)
class Action:
    """A button beside a panel's Apply that acts at once, with no child process (marking a segmentation finished).
    ``run(logic, input_node, values)`` returns the status line; an `OrbitAIError` is shown as the error. Slicer: the
    ``.ui``'s ``<name>Button``; the browser: ``orbitai-<panel key>-<name>``."""

    name: str
    label: str
    tip: str
    run: Callable[[Any, Any, dict[str, Any]], str]


@dataclass(frozen=True)
class PanelSpec:
    """A module panel (see the module docstring). ``logic`` is the module's `JobLogic` subclass; ``rule(values)`` says
    why the option values cannot run ("" when they can), after the input and the installed models are checked."""

    key: str                          # the browser tab and its state variables
    module: str                       # the Slicer module (its folder, .ui, parameter node)
    title: str
    logic: type[JobLogic]
    apply_tip: str                    # Apply's tool tip
    input_hint: str                   # what the input volume must be ("an axial orbital T2 MRI")
    options: tuple[Option, ...]
    table: str                        # the outputs' attribute holding the table shown under the panel
    display: Optional[Option] = None  # a choice that re-shows the last results (TAO's heat map), or None
    needs_model: bool = False         # Apply cannot run while no model of the task is installed
    what: str = ""                    # the task's name in "No <what> model is installed"
    rule: Callable[[dict[str, Any]], str] = field(default=_no_rule)
    #: The Slicer parameter-node field of the input volume.
    input_parameter: str = "inputVolume"
    #: False: Apply works on what the scene holds, not on the input volume (a section's fine-tuning).
    needs_input: bool = True
    #: Sections under the panel, each a panel of its own (own Logic, Apply, progress, table) sharing the input volume
    #: and the parameter node: in Slicer the ``.ui``'s widgets named with the section's ``prefix`` (``<prefix>ApplyButton``,
    #: ``<prefix>ProgressBar``, ``<prefix>StatusLabel``), in the browser an expandable part of the module's tab.
    sections: tuple["PanelSpec", ...] = ()
    actions: tuple[Action, ...] = ()
    prefix: str = ""

    def all_options(self) -> tuple[Option, ...]:
        """The options, then the display choice."""
        return (*self.options, *((self.display,) if self.display is not None else ()))

    @property
    def missing_input(self) -> str:
        return f"Select {self.input_hint}."

    def no_model(self) -> str:
        return (f"No {self.what} model is installed (bundles {', '.join(self.logic.models.bundled)}); "
                "see the README to train or install one.")

    def why_not_ready(self, input_node: Any, values: dict[str, Any], models_installed: bool = True) -> str:
        """Why Apply cannot run ("" when it can): no model installed, no input, then the module's rule."""
        if self.needs_model and not models_installed:
            return self.no_model()
        if input_node is None and self.needs_input:
            return self.missing_input
        why = self.rule(values)
        return "" if why and self.offers_model(values, why) else why

    def offers_model(self, values: dict[str, Any], why: str) -> bool:
        """Whether ``why`` (the rule's reason) only says that the chosen model is a registry model installed nowhere:
        then Apply runs and offers its download first (`orbitai.mrml.jobs.JobLogic.modelOffer`; the Logic checks the
        rest again when the job starts)."""
        if "model" not in values:
            return False
        try:
            entry = model_to_install(self.logic.models.resolve(values["model"]))
        except (OrbitAIError, AttributeError):
            return False
        return entry is not None and missing_message(entry) in why

    def start_options(self, values: dict[str, Any]) -> dict[str, Any]:
        """The keywords of ``logic.start`` from the option values by name (the display choice left out)."""
        return {o.name: values[o.name] for o in self.options}

    def show(self, logic: Any, outputs: Any, input_node: Any, values: dict[str, Any]) -> None:
        """Show the outputs over their input (with the display choice when there is one)."""
        if self.display is not None:
            logic.show(outputs, input_node, values[self.display.name])
        else:
            logic.show(outputs, input_node)

    def table_node(self, outputs: Any) -> Any:
        return getattr(outputs, self.table)


def model_option(logic: type[JobLogic], default: Any = None) -> Option:
    """The panel's model choice: the installed models of the Logic's task (read again each time the panel is
    shown), by default the task's default model."""
    return Option("model", "model", "Model", "choice", lambda: logic.modelLabels(),
                  (lambda: logic.defaultModelLabel()) if default is None else default, refreshed=True)


def device_option(parameter: str = "device") -> Option:
    """Where the model runs (``auto`` first); ``parameter``: its parameter-node field (a section's own)."""
    return Option("device", parameter, "Device", "choice", lambda: list(DEVICE_CHOICES), DEVICE_CHOICES[0])


def modality_option() -> Option:
    """What the scan is (``--modality``): auto (the scan's tags and image say) or the user's answer."""
    return Option("modality", "modality", "Scan", "choice", lambda: list(MODALITY_CHOICES), MODALITY_CHOICES[0],
                  hint="auto: from the scan's DICOM tags and image; choose when the scan is asked for or misread")


def modality_arguments(modality: Optional[str]) -> list[str]:
    """The command-line words of the Scan choice (none for auto)."""
    return [] if not modality or modality == MODALITY_CHOICES[0] else ["--modality", modality]


def scan_text(result: dict[str, Any]) -> str:
    """" Scan: <what the scan is>." from a result.json's ``scan`` block, "" without one; then " Reformatted: <how>."
    when the input was reformatted to the model's plane."""
    scan = result.get("scan")
    # a 3D acquisition reformatted to the model's plane says so (issue 66: result.json's "reformatted")
    moved = f" Reformatted: {result['reformatted']}." if result.get("reformatted") else ""
    return (f" Scan: {scan['summary']}." if isinstance(scan, dict) and scan.get("summary") else "") + moved


def trust_text(result: dict[str, Any]) -> str:
    """" Do not use: <why>." when result.json's call is flagged out of distribution (issue 51), else "";
    then " Scope: <what the model assumes>." when the result states its scope."""
    # a call withheld for it already reads "not assessed: <reason>" (orbitai.result.not_assessed, issue 61)
    flagged = f" Do not use: {result['trust']}." if result.get("trust") and result.get("call", "") is not None else ""
    scope = f" Scope: {result['scope']}" if result.get("scope") else ""
    return flagged + scope


def reason(check: Callable[..., Any], *args: Any) -> str:
    """The one-line message of ``check(*args)`` when it raises an `OrbitAIError`, else "" (a readiness rule)."""
    try:
        check(*args)
    except OrbitAIError as exc:
        return str(exc)
    return ""
