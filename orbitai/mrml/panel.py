"""The Slicer side of every OrbitAI module's panel (the state machine itself, `JobController`, is in
`orbitai.mrml.controller`, shared with the browser). `JobPanelMixin` is the thin Qt side: it adapts `JobView` to the module's ``.ui`` widgets (``applyButton``, ``progressBar``,
``statusLabel`` and the input selectors), keeps the parameter node connected to them and polls on
a QTimer. A module Widget supplies two hooks: ``jobInputs()`` (the input node and the options, read
from the parameter node) and ``showResults(outputs, inputNode)``. `SectionPanel` does the same for a section of
a panel. The parameter node class and its choices are `orbitai.mrml.parameter_nodes`; the module's description
(category, help, docs link) is `orbitai.mrml.module_info`.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

import slicer
import vtk

from orbitai.errors import OrbitAIError
from orbitai.mrml.controller import POLL_MS, JobController
from orbitai.mrml.jobs import ModelOffer
from orbitai.mrml.parameter_nodes import parameterChoices, parameterWidgets, refreshChoices, resetUnknownChoices
from orbitai.mrml.results import segmentations_of

__all__ = ["JobPanelMixin", "SectionPanel"]

log = logging.getLogger(__name__)


class SectionPanel:
    """A section of a module panel (`orbitai.app.panel_spec.PanelSpec.sections`) on the ``.ui`` widgets named with its
    prefix (``<prefix>ApplyButton``, ``<prefix>ProgressBar``, ``<prefix>StatusLabel``, and ``<name>Button`` for each
    action): its own Logic, `JobController` and poll timer; the input volume and the parameter node are the module's.
    It is the section's `JobView`."""

    def __init__(self, widget: "JobPanelMixin", spec: Any) -> None:
        self.widget, self.spec = widget, spec
        self.logic = spec.logic()
        self.controller = JobController(self.logic, self, self.jobInputs, self.showResults, self.whyNotReady,
                                        spec.apply_tip, currentScan=widget.inputNode)
        self.timer = widget.pollTimer(self.controller.poll)
        self.ui("ApplyButton").connect("clicked(bool)", self.onApply)
        for action in spec.actions:
            getattr(widget.ui, f"{action.name}Button").connect("clicked(bool)", self._actionSlot(action))

    def ui(self, suffix: str) -> Any:
        return getattr(self.widget.ui, f"{self.spec.prefix}{suffix}")

    def _actionSlot(self, action: Any) -> Callable[..., None]:
        return lambda checked=False: self.runAction(action)

    def onApply(self, checked: bool = False) -> None:
        self.controller.apply()

    def values(self) -> dict[str, Any]:
        p = self.widget._parameterNode
        return {o.name: getattr(p, o.parameter) for o in self.spec.all_options()} if p is not None else {}

    def jobInputs(self) -> tuple[Any, dict[str, Any]]:
        return self.widget.inputNode(), self.spec.start_options(self.values())

    def whyNotReady(self) -> str:
        if self.widget._parameterNode is None:
            return "Loading..."
        return self.spec.why_not_ready(self.widget.inputNode(), self.values())

    def showResults(self, outputs: Any, inputNode: Any) -> None:
        self.spec.show(self.logic, outputs, inputNode, self.values())
        self.widget.offerOwnSegmentations()
        if hasattr(outputs, "select_model"):     # a model was installed: listed now, chosen when it is better
            self.widget.selectModel(outputs.select_model, getattr(outputs, "option", "model"))

    def offerModel(self, offer: ModelOffer, answer: Callable[[Optional[str]], None]) -> None:
        """The section's Apply without its model: the module's dialog (`JobPanelMixin.offerModel`)."""
        self.widget.offerModel(offer, answer)

    def modelInstalled(self, name: str) -> None:
        self.widget.modelInstalled(name)

    def runAction(self, action: Any) -> None:
        """An action's button: its status line, or its error (nothing else changes)."""
        try:
            self.controller.say(action.run(self.logic, self.widget.inputNode(), self.values()))
        except OrbitAIError as exc:
            self.controller.say(str(exc))
            self.showError(str(exc))

    # ------------------------------------------------------------------ JobView on the section's widgets
    def setInputsEnabled(self, enabled: bool) -> None:
        widgets = parameterWidgets(self.widget.ui)
        for o in self.spec.all_options():
            if o.parameter in widgets:
                widgets[o.parameter].enabled = enabled
        for action in self.spec.actions:
            getattr(self.widget.ui, f"{action.name}Button").enabled = enabled

    def setApplyButton(self, text: str, enabled: bool, toolTip: str) -> None:
        button = self.ui("ApplyButton")
        button.text = self.spec.title if text == "Apply" else text
        button.enabled = enabled
        button.toolTip = toolTip

    def setProgress(self, done: int, total: int, visible: bool) -> None:
        bar = self.ui("ProgressBar")
        bar.maximum = max(int(total), 1)
        bar.value = int(done)
        bar.visible = visible

    def setStatus(self, text: str) -> None:
        self.ui("StatusLabel").text = text

    def showError(self, message: str) -> None:
        slicer.util.errorDisplay(message)

    def setPolling(self, on: bool) -> None:
        if on:
            self.timer.start()
        else:
            self.timer.stop()


class JobPanelMixin:
    """Qt side of a job panel, mixed into a module's ``ScriptedLoadableModuleWidget`` (listed first).

    A module Widget sets `panel` (its `orbitai.app.panel_spec.PanelSpec`: the Logic, the options and when Apply may
    run), `parameterNodeClass` (made from it by `parameter_node_class`) and `inputWidgets`,
    and calls `setupJobPanel` in ``setup()``. The mixin loads the ``.ui`` (``applyButton``, ``progressBar``,
    ``statusLabel``), keeps the parameter node connected to it across enter/exit and scene close, reads the options
    from it (`jobInputs`), shows results by the panel's rule, implements `JobView` on those widgets and polls the
    job on a QTimer. Qt is imported lazily, so this module imports headless."""

    #: The module's panel description (`orbitai.app.panel_spec.PanelSpec`).
    panel: Any = None
    #: The module's ``@parameterNodeWrapper`` class, made from `panel`.
    parameterNodeClass: Any = None
    #: ``self.ui`` names of the widgets locked while a job runs (selectors and option widgets).
    inputWidgets: tuple[str, ...] = ()
    #: The module's parameter node (a ``parameterNodeClass``), None while none is connected.
    _parameterNode: Any = None
    #: Whether a model of the module's task is installed; read each time the module is shown (`enter`, which Slicer
    #: calls right after ``setup``).
    modelsInstalled = True

    if TYPE_CHECKING:   # given by ScriptedLoadableModuleWidget and VTKObservationMixin in a module's Widget
        layout: Any
        parent: Any
        moduleName: str

        def resourcePath(self, filename: str) -> str: ...
        def addObserver(self, obj: Any, event: Any, method: Callable[..., Any]) -> None: ...
        def removeObserver(self, obj: Any, event: Any, method: Callable[..., Any]) -> None: ...
        def removeObservers(self) -> None: ...

    @property
    def refreshedChoices(self) -> dict[str, Callable[[], list[Any]]]:
        """``Choice`` fields re-read each time the module is shown (`refreshChoices`): the installed models."""
        options = [*self.panel.all_options(), *(o for sec in self.panel.sections for o in sec.all_options())]
        return {o.parameter: o.choices for o in options if o.refreshed}

    def setupJobPanel(self) -> None:
        """Load ``UI/<Module>.ui``, make the panel's Logic and its `JobController`, connect the parameter node."""
        logic, applyToolTip = self.panel.logic(), self.panel.apply_tip
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.panel.module}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = logic
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self.jobController = JobController(logic, self, self.jobInputs, self.showResults, self.whyNotReady,
                                           applyToolTip, currentScan=self.inputNode)
        self._jobTimer = self.pollTimer(self.jobController.poll)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.NodeAddedEvent, self.offerOwnSegmentations)
        self.sections = [SectionPanel(self, spec) for spec in self.panel.sections]
        self.setupWidgets()
        self.initializeParameterNode()

    @staticmethod
    def pollTimer(poll: Callable[[], None]) -> Any:
        """A QTimer calling ``poll`` every `POLL_MS` while started (Qt imported here: the module imports headless)."""
        import qt

        timer = qt.QTimer()
        timer.setInterval(POLL_MS)
        timer.timeout.connect(poll)
        return timer

    def selectModel(self, label: Optional[str], option_name: str = "model") -> None:
        """After a section installed a model: offer it in the model choices at once, and choose it in the option
        ``option_name`` (``label``: its label there; None leaves the choice as it is)."""
        if self._parameterNode is None:
            return
        self.initializeParameterNode()      # the choices read again and the combo boxes rebuilt
        option = next((o for o in self.panel.options if o.name == option_name), None)
        if label is None or option is None or option.choices is None:
            return
        if label in option.choices():
            setattr(self._parameterNode, option.parameter, label)

    # ------------------------------------------------------------------ the panel's options
    def optionValues(self) -> dict[str, Any]:
        """The panel's option values by name (``logic.start``'s keywords), read from the parameter node; a form
        as ``{field: text}``."""
        p = self._parameterNode
        values: dict[str, Any] = {}
        for o in self.panel.all_options():
            value = getattr(p, o.parameter)
            if o.kind == "form":
                assert o.form is not None
                value = {name: value.getValue(name) for name, _label, _tip in o.form()}
            values[o.name] = value
        return values

    def inputNode(self) -> Any:
        p = self._parameterNode
        return getattr(p, self.panel.input_parameter) if p is not None else None

    def jobInputs(self) -> tuple[Any, dict[str, Any]]:
        """(input node, options for ``logic.start``) read from the parameter node."""
        return self.inputNode(), self.panel.start_options(self.optionValues())

    def showResults(self, outputs: Any, inputNode: Any) -> None:
        """Show the outputs of a finished job over the node it started on (with the display choice, if any)."""
        values = self.optionValues()
        if self.panel.display is not None:
            self.jobController.shownChoice = values[self.panel.display.name]
        self.panel.show(self.logic, outputs, inputNode, values)
        self.offerOwnSegmentations()          # the results now refer to their scan

    def setupWidgets(self) -> None:
        """Called once the ``.ui`` is loaded (``self.ui``) and before the parameter node is connected:
        add widgets built in code (e.g. a form with ``SlicerPackParameterName`` children) and connect
        buttons that are not parameters. Nothing by default."""

    def whyNotReady(self) -> str:
        """Why Apply cannot run now ("" when it can): the panel's rule (`PanelSpec.why_not_ready`)."""
        node = self.inputNode()
        values = self.optionValues() if node is not None else {}
        return self.panel.why_not_ready(node, values, self.modelsInstalled)

    def parameterChanged(self) -> None:
        """After any parameter-node change: when the display choice (e.g. which heat map) changed, show the last
        results again over the input they belong to (nothing else re-shows them)."""
        if self.panel.display is None:
            return
        node = self.inputNode()
        outputs = self.jobController.outputsToReshow(getattr(self._parameterNode, self.panel.display.parameter), node)
        if outputs is not None:
            self.showResults(outputs, node)

    # ------------------------------------------------------------------ widget life cycle
    def onApplyButton(self, checked: bool = False) -> None:
        self.jobController.apply()

    def allControllers(self) -> list[JobController]:
        return [self.jobController, *(s.controller for s in getattr(self, "sections", []))]

    def cleanup(self) -> None:
        for controller in self.allControllers():
            controller.cancel()
        self.removeObservers()

    def enter(self) -> None:
        """The module is shown: read the installed models again, connect the parameter node, show results that
        arrived meanwhile. No worker starts here: the first Apply starts it (`JobLogic.start`)."""
        self.modelsInstalled = self.logic.modelsAvailable()     # installed, or offered at the first Apply
        self.initializeParameterNode()
        for controller in self.allControllers():
            controller.moduleShown()

    def exit(self) -> None:
        for controller in self.allControllers():
            controller.moduleHidden()
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event) -> None:
        for controller in self.allControllers():
            controller.sceneClosing()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

        holder = ScriptedLoadableModuleLogic()
        holder.moduleName = self.moduleName
        node = holder.getParameterNode()
        refreshChoices(self.parameterNodeClass, self.refreshedChoices)
        resetUnknownChoices(node, parameterChoices(self.parameterNodeClass))
        self.setParameterNode(self.parameterNodeClass(node))
        if not self.inputNode():
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                setattr(self._parameterNode, self.panel.input_parameter, first)

    def setParameterNode(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterModified)
        self._parameterNode = node
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectParametersToGui(parameterWidgets(self.ui))
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterModified)
            self._onParameterModified()

    def _onParameterModified(self, caller=None, event=None) -> None:
        self.offerOwnSegmentations()
        for controller in self.allControllers():
            controller.refresh()
        self.parameterChanged()

    def offerOwnSegmentations(self, caller=None, event=None) -> None:
        """Each segmentation selector of the panel and its sections offers only the input scan's own segmentations and
        those of no scan (`orbitai.mrml.results.segmentations_of`): the others' IDs go into the selector's
        ``sortFilterProxyModel().hiddenNodeIDs`` (``qMRMLSortFilterProxyModel``, as Slicer's own selectors hide
        nodes); a chosen segmentation of another scan is unchosen. The Logics refuse one all the same."""
        p = self._parameterNode
        if p is None:
            return
        scene = slicer.mrmlScene
        scan = self.inputNode()
        offered = {n.GetID() for n in segmentations_of(scene, scan)}
        hidden = [n.GetID() for n in (scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
                                      for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")))
                  if n.GetID() not in offered]
        widgets = parameterWidgets(self.ui)
        options = [*self.panel.all_options(), *(o for sec in self.panel.sections for o in sec.all_options())]
        for o in options:
            if o.kind != "segmentation":
                continue
            widget = widgets.get(o.parameter)
            if widget is not None and hasattr(widget, "sortFilterProxyModel"):
                proxy = widget.sortFilterProxyModel()
                if list(proxy.hiddenNodeIDs) != hidden:
                    proxy.hiddenNodeIDs = hidden
            chosen = getattr(p, o.parameter, None)
            if chosen is not None and chosen.GetID() not in offered:
                setattr(p, o.parameter, None)

    # ------------------------------------------------------------------ JobView on the .ui widgets
    def setInputsEnabled(self, enabled: bool) -> None:
        for name in self.inputWidgets:
            getattr(self.ui, name).enabled = enabled

    def setApplyButton(self, text: str, enabled: bool, toolTip: str) -> None:
        self.ui.applyButton.text = text
        self.ui.applyButton.enabled = enabled
        self.ui.applyButton.toolTip = toolTip

    def setProgress(self, done: int, total: int, visible: bool) -> None:
        self.ui.progressBar.maximum = max(int(total), 1)
        self.ui.progressBar.value = int(done)
        self.ui.progressBar.visible = visible

    def setStatus(self, text: str) -> None:
        self.ui.statusLabel.text = text

    def showError(self, message: str) -> None:
        slicer.util.errorDisplay(message)

    def setPolling(self, on: bool) -> None:
        if on:
            self._jobTimer.start()
        else:
            self._jobTimer.stop()

    def offerModel(self, offer: ModelOffer, answer: Callable[[Optional[str]], None]) -> None:
        """The first Apply without its model (`JobController.offerModel`): a dialog naming the model, its size and
        source, with Download, Choose file... (an archive downloaded already, installed offline) and Cancel."""
        import qt

        box = qt.QMessageBox()
        box.setWindowTitle("Download the model?")
        box.setText(offer.question())
        download = box.addButton("Download", qt.QMessageBox.AcceptRole)
        choose = box.addButton("Choose file...", qt.QMessageBox.ActionRole)
        box.addButton(qt.QMessageBox.Cancel)
        box.setDefaultButton(download)
        box.exec_()
        clicked = box.clickedButton()
        if clicked == download:
            answer("download")
        elif clicked == choose:
            path = qt.QFileDialog.getOpenFileName(None, f"The archive of {offer.entry.name}", "",
                                                  "Model archives (*.tar.gz *.tgz *.tar)")
            answer(str(path) if path else None)
        else:
            answer(None)

    def modelInstalled(self, name: str) -> None:
        """A model was installed by the panel's download job: listed in the model choices at once."""
        self.modelsInstalled = True
        if self._parameterNode is not None:
            self.initializeParameterNode()
