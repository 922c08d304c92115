"""The browser panel of one module, made from its `orbitai.app.panel_spec.PanelSpec` (the same declaration as Slicer's
parameter node): inputs, options, actions, the result table; the page's words for what the command line says."""
from __future__ import annotations

import functools
import re
from typing import Any, Callable

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from orbitai.app.panel_spec import Action, Option, PanelSpec
from orbitai.bundle.core import MODEL_NAME
from orbitai.errors import InputError, OrbitAIError, one_line
from orbitai.io.dicom_folder import shown
from orbitai.mrml.queries import node_by_id
from orbitai.mrml.results import refuse_other_scan, segmentations_of
from orbitai.mrml.tables import rows_from_table_node
from orbitai.web.clicks import sending
from orbitai.web.host import Signal, WebHost
from orbitai.web.model_offer import offer_ui
from orbitai.web.panel import WebJobPanel

#: The longest text a text option takes from the page (a model name).
MAX_TEXT_OPTION = 100
#: Text options that name a new model (fine-tuning's "New model name"): a plain name, said in the page's words.
MODEL_NAME_OPTIONS = ("name",)


class ModulePanel:
    """A module panel (`PanelSpec`) on the page of ``host``: its options in state (``<key>_<option>``) and its
    `WebJobPanel`; ``private``: a message in the page's words without the server's folders
    (`orbitai.web.loading.ScanLoader.private`); ``upload_limit``: the most bytes a model archive uploaded to the first
    Apply's offer may hold. Signals: ``results_imported`` (a job's outputs were imported: the scan
    they belong to, None for a module without input, and whether they are the shown scan's), ``model_installed``
    (the label of a model a section installed, and the option that offers it)."""

    results_imported = Signal(object, bool)
    model_installed = Signal(object, str)

    def __init__(self, host: WebHost, spec: PanelSpec, private: Callable[[str], str], upload_limit: int) -> None:
        self.spec, self.state, self.mrml, self.scan = spec, host.state, host.mrml, host.input_node
        self.server, self.upload_limit = host.server, upload_limit
        self.logic = spec.logic(host.mrml)
        # read once, with the model choices below (reading the bundles on every state change would be slow)
        self.models_installed = spec.logic.modelsAvailable()     # installed, or offered at the first Apply
        labels = {o.name: o.label for o in spec.all_options() if o.kind == "text" and o.name in MODEL_NAME_OPTIONS}
        self.job = WebJobPanel(host.server, spec.key, self.logic, self.jobInputs, self.showResults, self.whyNotReady,
                               spec.apply_tip, lambda text: private(page_words(text, labels)),
                               currentScan=host.input_node)
        for opt in self.options():
            default = opt.default_value()
            if opt.kind == "form":
                for name, _label, _tip in self.form_rows(opt):
                    self.state.setdefault(self.var(f"{opt.name}_{name}"), "")
            else:
                self.state.setdefault(self.var(opt.name), default)
            if opt.choices is not None:
                self.state.setdefault(self.var(f"{opt.name}_items"), opt.choices())
        self.state.setdefault(self.var("table_headers"), [])
        self.state.setdefault(self.var("table_rows"), [])
        #: scan node ID -> (table headers, rows) of its last result: the table follows the scan shown
        self.tables: dict[str, tuple[list, list]] = {}
        self.state.change(*self.option_vars(), "input_volume")(lambda **_: self.job.controller.refresh())
        self.job.on_model_installed = lambda _name: self.refresh_choices()   # the first Apply's download
        self.state.change(self.var("error"))(self._error_changed)
        if spec.display is not None:
            self.state.change(self.var(spec.display.name))(self._display_changed)
        self.job.controller.refresh()

    def var(self, name: str) -> str:
        return f"{self.spec.key}_{name}"

    def option_vars(self) -> list[str]:
        """The state variables of the options (a form's rows one each)."""
        out: list[str] = []
        for opt in self.options():
            if opt.kind == "form":
                out += [self.var(f"{opt.name}_{name}") for name, _l, _t in self.form_rows(opt)]
            else:
                out.append(self.var(opt.name))
        return out

    def options(self) -> list[Option]:
        return list(self.spec.all_options())

    @staticmethod
    def form_rows(opt: Option) -> list[tuple[str, str, str]]:
        """A form option's rows (name, label, tip)."""
        assert opt.form is not None
        return opt.form()

    def invalid_option(self) -> str:
        """Why an option's value cannot be used (a value the page sent that is not one of the option's choices, e.g. a
        server path as the model), or "". The same words whatever the value: nothing is looked up."""
        for opt in self.options():
            if opt.kind == "choice" and opt.choices is not None:
                value = self.state[self.var(opt.name)]
                if not isinstance(value, str) or value not in opt.choices():
                    return f"{opt.label}: choose one of the listed values."
            elif opt.kind == "flag" and not isinstance(self.state[self.var(opt.name)], bool):
                return f"{opt.label}: on or off."
            elif opt.kind == "segmentation" and self._segmentation_refusal(self.state[self.var(opt.name)]):
                return f"{opt.label}: {self._segmentation_refusal(self.state[self.var(opt.name)])}"
            elif opt.kind == "text" and not (isinstance(self.state[self.var(opt.name)], str)
                                             and len(self.state[self.var(opt.name)]) <= MAX_TEXT_OPTION):
                return f"{opt.label}: a text of at most {MAX_TEXT_OPTION} characters."
            elif opt.kind == "text" and opt.name in MODEL_NAME_OPTIONS and not _model_name(self.state[self.var(opt.name)]):
                return (f"{opt.label}: {shown(self.state[self.var(opt.name)].strip())} is not a model name; type a "
                        "plain name (letters, digits, - and _), without folders: the model is installed among your "
                        "models, or leave it empty.")
        return ""

    def _segmentation_choice(self, value: Any) -> bool:
        """Whether ``value`` is no segmentation (None, "") or the ID of one the page may list: a segmentation of the
        shown scan or of no scan (`orbitai.mrml.results.segmentations_of`)."""
        return not self._segmentation_refusal(value)

    def _segmentation_refusal(self, value: Any) -> str:
        """Why ``value`` cannot be the segmentation option ("" when it can): another scan's segmentation is refused
        in the words of `refuse_other_scan`, anything else not offered alike."""
        if value is None or value == "":
            return ""
        scan = self.scan()
        node = node_by_id(self.mrml.scene, value)
        if node is not None and node.IsA("vtkMRMLSegmentationNode") and not node.GetHideFromEditors():
            try:
                refuse_other_scan(node, scan)
            except OrbitAIError as exc:
                return one_line(exc)
            if any(n is node for n in segmentations_of(self.mrml.scene, scan)):
                return ""
        return "choose one of the listed segmentations, or none."

    def scan_shown(self, _node: Any = None) -> None:
        """Another scan is shown: a segmentation option holding a segmentation of another scan is emptied."""
        for opt in self.options():
            if opt.kind == "segmentation" and self._segmentation_refusal(self.state[self.var(opt.name)]):
                self.state[self.var(opt.name)] = None

    def values(self) -> dict[str, Any]:
        """The option values as ``logic.start`` takes them (segmentation IDs as nodes, the form as a dict)."""
        out: dict[str, Any] = {}
        for opt in self.options():
            if opt.kind == "form":
                out[opt.name] = {name: str(self.state[self.var(f"{opt.name}_{name}")] or "").strip()
                                 for name, _l, _t in self.form_rows(opt)}
            elif opt.kind == "segmentation":
                sid = self.state[self.var(opt.name)]
                node = node_by_id(self.mrml.scene, sid) if sid and self._segmentation_choice(sid) else None
                out[opt.name] = node if node is not None and node.IsA("vtkMRMLSegmentationNode") else None
            elif opt.kind == "text":
                out[opt.name] = str(self.state[self.var(opt.name)] or "").strip()
            else:
                out[opt.name] = self.state[self.var(opt.name)]
        return out

    # ---------------------------------------------------------------- JobController hooks
    def jobInputs(self) -> tuple[Any, dict[str, Any]]:
        invalid = self.invalid_option()
        if invalid:
            raise InputError(invalid)
        return self.scan(), self.spec.start_options(self.values())

    def whyNotReady(self) -> str:
        node = self.scan()
        invalid = self.invalid_option() if node is not None else ""
        return invalid or self.spec.why_not_ready(node, self.values() if node is not None else {}, self.models_installed)

    def showResults(self, outputs: Any, input_node: Any) -> None:
        values = self.values()
        current = input_node is None or input_node is self.scan()
        if self.spec.display is not None:
            self.job.controller.shownChoice = values[self.spec.display.name]
        if current:         # a result of a scan the user left is kept, and shown when they come back to it
            self.spec.show(self.logic, outputs, input_node, values)
        rows = rows_from_table_node(self.spec.table_node(outputs))
        names = list(rows[0]) if rows else []
        ids = list(getattr(outputs, "scan_ids", None) or [])       # rows that open their scan (the ranking's)
        ids = ids if len(ids) == len(rows) else [""] * len(rows)
        table = ([{"title": n, "key": f"c{i}"} for i, n in enumerate(names)],
                 [{**{f"c{i}": _cell(r[n]) for i, n in enumerate(names)}, **({"scan_id": s} if s else {})}
                  for r, s in zip(rows, ids)])
        if input_node is not None:
            self.tables[input_node.GetID()] = table
        if current:
            self.state[self.var("table_headers")], self.state[self.var("table_rows")] = table
        # the lists read again; the scan's results shown (a module without input has none)
        self.results_imported.emit(input_node if self.spec.needs_input else None, current)
        if hasattr(outputs, "select_model"):     # a model was installed: listed now, chosen when it is better
            self.model_installed.emit(outputs.select_model, getattr(outputs, "option", "model"))

    def run_action(self, action: Action) -> None:
        """An action's button (`orbitai.app.panel_spec.Action`): its status line, or its error (both the shown
        scan's)."""
        self.job.clearError()
        invalid = self.invalid_option()
        try:
            if invalid:
                raise InputError(invalid)
            self.job.controller.say(action.run(self.logic, self.scan(), self.values()))
        except OrbitAIError as exc:
            self.job.controller.say("")
            self.job.showError(one_line(exc))

    def _error_changed(self, **_: Any) -> None:
        """The page closed the error alert: it stays closed when the scan is shown again."""
        if not self.state[self.var("error")]:
            self.job.errorOf.pop(self.job.controller.shownScan, None)

    def show_table_of(self, input_node: Any) -> None:
        """The results table of ``input_node``'s last result (none: empty)."""
        if not self.spec.needs_input:
            return
        headers, rows = self.tables.get(input_node.GetID() if input_node is not None else "", ([], []))
        self.state[self.var("table_headers")], self.state[self.var("table_rows")] = headers, rows

    def refresh_choices(self) -> None:
        """Read the refreshed choices (the installed models) again."""
        for opt in self.options():
            if opt.refreshed and opt.choices is not None:
                self.state[self.var(f"{opt.name}_items")] = opt.choices()

    def _display_changed(self, **_: Any) -> None:
        assert self.spec.display is not None    # observed only for modules with a display choice
        if self.invalid_option():
            return
        choice = self.state[self.var(self.spec.display.name)]
        outputs = self.job.controller.outputsToReshow(choice, self.scan())
        if outputs is not None:
            self.spec.show(self.logic, outputs, self.scan(), self.values())

    # ---------------------------------------------------------------- page
    def build_ui(self) -> None:
        """The panel in the drawer: its options (disabled while a job runs), its actions, Apply, the progress, the
        status line, the model offer of a first Apply, the error and the results table."""
        key = self.spec.key
        enabled = f"{key}_inputs_enabled"
        for opt in self.options():
            disabled = (f"!{enabled}",)
            if opt.kind == "choice":
                v3.VSelect(label=opt.label, v_model=(self.var(opt.name),), items=(self.var(f"{opt.name}_items"),),
                           density="compact", hide_details=True, classes="mb-2", disabled=disabled,
                           id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "segmentation":
                v3.VSelect(label=opt.label, v_model=(self.var(opt.name),), items=("segmentations",),
                           clearable=True, density="compact", hide_details=True, classes="mb-2", disabled=disabled,
                           hint=opt.hint, id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "flag":
                v3.VCheckbox(label=opt.label, v_model=(self.var(opt.name),), density="compact", hide_details=True,
                             disabled=disabled, id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "text":
                v3.VTextField(label=opt.label, v_model=(self.var(opt.name),), hint=opt.hint, density="compact",
                              maxlength=MAX_TEXT_OPTION, classes="mb-2", disabled=disabled,
                              id=f"orbitai-{key}-{opt.name}")
            elif opt.kind == "form":
                with v3.VExpansionPanels(classes="mb-2"), v3.VExpansionPanel(title=opt.label):
                    with v3.VExpansionPanelText():
                        for name, label, tip in self.form_rows(opt):
                            v3.VTextField(label=label, v_model=(self.var(f"{opt.name}_{name}"),), hint=tip,
                                          placeholder="empty: not given", density="compact", disabled=disabled,
                                          id=f"orbitai-{key}-clinical-{name}")
        if self.spec.actions:
            with html.Div(classes="d-flex mb-2"):
                for action in self.spec.actions:
                    v3.VBtn(action.label, click=sending(self.state, functools.partial(self.run_action, action),
                                                        self.option_vars()),
                            disabled=(f"!{enabled}",), variant="tonal", size="small", title=action.tip,
                            classes="mr-2", id=f"orbitai-{key}-{action.name}")
        v3.VBtn(f"{{{{ {key}_apply_text }}}}", click=sending(self.state, self.job.apply, self.option_vars()),
                disabled=(f"!{key}_apply_enabled",), color="primary", block=True, id=f"orbitai-{key}-apply",
                title=(f"{key}_apply_tip",), classes="my-2")
        v3.VProgressLinear(model_value=(f"{key}_progress",), v_show=f"{key}_progress_visible", height=6,
                           id=f"orbitai-{key}-progress")
        html.Div(f"{{{{ {key}_status }}}}", classes="text-body-2 my-2", id=f"orbitai-{key}-status")
        offer_ui(self.server, key, self.job, self.upload_limit)   # the first Apply without its model
        v3.VAlert(text=(f"{key}_error",), v_if=f"{key}_error", type="error", density="compact", closable=True,
                  id=f"orbitai-{key}-error", click_close=f"{key}_error = ''")
        v3.VDataTable(headers=(f"{key}_table_headers",), items=(f"{key}_table_rows",), density="compact",
                      items_per_page=-1, hide_default_footer=True, v_show=f"{key}_table_rows.length",
                      classes="orbitai-results", id=f"orbitai-{key}-table",
                      # a row of a scan (the ranking's) opens it (`OrbitWebApp.open_scan`)
                      raw_attrs=["@click:row=\"(e, r) => r.item.scan_id && trigger('orbitai_open_scan', "
                                 "[r.item.scan_id])\""],
                      row_props=("(r) => r.item.scan_id ? {class: 'orbitai-scan-row', style: 'cursor: pointer', "
                                 "title: 'Open this scan'} : {}",))


def _model_name(text: str) -> bool:
    """Whether ``text`` (a new model's name as typed) is empty or a plain name (`orbitai.bundle.core.MODEL_NAME`)."""
    if not text.strip():
        return True
    return bool(MODEL_NAME.fullmatch(text.strip()))


def page_words(text: str, labels: dict[str, str]) -> str:
    """A job's message in the page's words: a command-line option it names (``--name``) becomes the field's label
    (``labels``: option name -> label), and the command line's alternatives (``or --out FOLDER ...``) go."""
    text = re.sub(r",? or --out FOLDER[^.;]*", "", text)
    for option, label in labels.items():
        text = re.sub(rf"--{re.escape(option)}\b", f'"{label}"', text)
    return text


def _cell(value: Any) -> Any:
    return f"{value:.4g}" if isinstance(value, float) else value
