"""Shared GUI of the OrbitAI scripted effects (Slicer only; the logic is `AnnotationLogic`).

Each effect declares its name, help text and actions; its options are built here from
``effect_options.EFFECT_OPTIONS`` and kept as effect parameters on the segment editor node
(defaults in ``setMRMLDefaults``, widgets set in ``updateGUIFromMRML``, written back in
``updateMRMLFromGUI``; the last two through the Qt-free ``widget_states`` / ``values_from_widgets``).
Registered by ``OrbitSegmentationLib.effect_registration.register_annotation_effects``.

Slicer loads each effect file as a module named after this folder (``OrbitSegmentationEffects``: a name
of its own, never Slicer's ``SegmentEditorEffects``, which the loader would replace or overwrite; see
docs/slicer.md). The files import this base as the top-level module ``OrbitEffectBase`` (the folder is
put on ``sys.path`` at registration), so nothing depends on the loader's module object.
"""
import os
import sys

import ctk
import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

_MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _MODULE_DIR not in sys.path:
    sys.path.insert(0, _MODULE_DIR)

from OrbitSegmentationLib.effect_registration import effect_icon_path  # noqa: E402

from orbitai.app.annotation import options  # noqa: E402
from orbitai.mrml.editors import ScriptedEffectEditor  # noqa: E402
from orbitai.app.annotation.editing import OperationResult  # noqa: E402
from orbitai.app.annotation.logic import AnnotationLogic  # noqa: E402


class OrbitEffectBase(AbstractScriptedSegmentEditorEffect):
    """Options from `EFFECT_OPTIONS`, a status line, action buttons and the `AnnotationLogic`."""

    EFFECT = ""  #: effect name (a key of EFFECT_OPTIONS and EFFECT_HELP)
    USES_PRIOR = False        #: the effect reads the model prior: computed in the background on activation
    START_FROM_MODEL = False  #: the effect offers "Start from the model"

    def __init__(self, scriptedEffect):
        scriptedEffect.name = self.EFFECT
        scriptedEffect.perSegment = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.logic = AnnotationLogic(editor=ScriptedEffectEditor(scriptedEffect))
        self.optionWidgets = {}

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        # The effect files are named after their classes and lie beside this file.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{type(self).__name__}.py")
        cloned.setPythonSource(path.replace("\\", "/"))
        return cloned

    def icon(self):
        """The module's Resources/Icons/<effect name>.png, or no icon."""
        return qt.QIcon(effect_icon_path(self.EFFECT) or "")

    def helpText(self):
        return options.EFFECT_HELP[self.EFFECT]

    # ------------------------------------------------------------------ options
    def parameters(self):
        return options.EffectParameters(self.scriptedEffect.parameterSetNode(), self.EFFECT, self.scriptedEffect)

    def setupOptionsFrame(self):
        for option in options.EFFECT_OPTIONS[self.EFFECT]:
            widget = self._makeWidget(option)
            widget.toolTip = option.tooltip
            if option.kind == "bool":
                self.scriptedEffect.addOptionsWidget(widget)
            else:
                self.scriptedEffect.addLabeledOptionsWidget(option.label, widget)
            self.optionWidgets[option.name] = widget
        self.setupActions()
        if self.START_FROM_MODEL:
            (self.startFromModelButton,) = self.addButtons(("Start from the model", self.onStartFromModel))
            self.startFromModelButton.toolTip = ("Replace the selected segment by the segmentation network's mask of "
                                                 "its structure (segment named e.g. superior_rectus_muscle_left); "
                                                 "then correct it. Undo restores.")
        if self.USES_PRIOR or self.START_FROM_MODEL:
            self.priorLabel = qt.QLabel("")
            self.priorLabel.wordWrap = True
            self.scriptedEffect.addOptionsWidget(self.priorLabel)
            self.priorTimer = qt.QTimer()
            self.priorTimer.setInterval(options.PRIOR_POLL_MS)
            self.priorTimer.connect("timeout()", self.onPriorTimer)
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)

    def _makeWidget(self, option):
        if option.kind == "float":
            w = ctk.ctkSliderWidget()
            w.minimum, w.maximum, w.singleStep, w.suffix = option.minimum, option.maximum, option.step, option.suffix
            w.connect("valueChanged(double)", self.updateMRMLFromGUI)
        elif option.kind == "bool":
            w = qt.QCheckBox(option.label)
            w.connect("toggled(bool)", self.updateMRMLFromGUI)
        else:  # int, choice, segment: a combo box (segments are listed in updateGUIFromMRML)
            w = qt.QComboBox()
            for text in option.choices:
                w.addItem(text, text)
            w.connect("currentIndexChanged(int)", self.updateMRMLFromGUI)
        return w

    def setMRMLDefaults(self):
        self.parameters().setDefaults()

    def updateGUIFromMRML(self):
        node = self.scriptedEffect.parameterSetNode()
        if node is None or not self.optionWidgets:
            return
        params = self.parameters()
        states = options.widget_states(params)
        for name, w in self.optionWidgets.items():
            kind, state = params.option(name).kind, states[name]
            w.blockSignals(True)
            if kind == "float":
                w.value = state
            elif kind == "bool":
                w.checked = state
            elif kind == "segment":
                choices, index = state
                w.clear()
                for sid, text in choices:
                    w.addItem(text, sid)
                w.currentIndex = index
            else:
                w.currentIndex = max(0, w.findData(state))
            w.blockSignals(False)
        self.updateActions()

    def updateMRMLFromGUI(self, *args):
        node = self.scriptedEffect.parameterSetNode()
        if node is None:
            return
        params = self.parameters()
        shown = {}
        for name, w in self.optionWidgets.items():
            kind = params.option(name).kind
            shown[name] = w.value if kind == "float" else w.checked if kind == "bool" else w.currentData
        params.update(options.values_from_widgets(params, shown))

    # ------------------------------------------------------------------ model prior
    def activate(self):
        """Start the model prior only when the effect will read it (its prior weight above 0): it then computes
        while the user paints. "Start from the model" starts it when pressed."""
        if self.USES_PRIOR and self.logic.priorWanted(self.EFFECT):
            self.logic.startPrior()   # returns at once: the network runs in the warm worker / a child process
        if self.USES_PRIOR or self.START_FROM_MODEL:
            self.showPriorStatus()

    def deactivate(self):
        """Another effect was chosen: an action still waiting for the prior is dropped (it would otherwise
        replace what the user paints next). The timer goes on while the prior is prepared or computed (it writes
        the image for the child) and stops by itself once it is there."""
        dropped = self.logic.cancelPending()
        if dropped is not None:
            slicer.util.showStatusMessage(dropped.message, 5000)

    def showPriorStatus(self):
        """Show the prior's state; while it is being computed (or an action waits for it) the timer looks
        again every POLL_MS. The prior arrives here, never by blocking Slicer's main thread."""
        if not hasattr(self, "priorLabel"):
            return
        text = self.logic.priorStatus()
        self.priorLabel.text = text
        if text.endswith("computing...") or self.logic.pending:
            self.priorTimer.start()
        else:
            self.priorTimer.stop()

    def onPriorTimer(self):
        if self.logic.pending:
            qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
            try:
                result = self.logic.pollPrior()   # runs the action that waited, once the prior is there
            finally:
                qt.QApplication.restoreOverrideCursor()
            if result is not None:
                self.say(result.message)
                self.updateActions()
        self.showPriorStatus()

    def onStartFromModel(self):
        return self.run(self.logic.startFromModel)

    # ------------------------------------------------------------------ actions
    def setupActions(self):
        """Add the effect's buttons (override)."""

    def updateActions(self):
        """Enable or disable the effect's buttons after a GUI update (override)."""

    def addButtons(self, *labelsAndSlots):
        """A row of push buttons; returns them in order."""
        row = qt.QHBoxLayout()
        buttons = []
        for label, slot in labelsAndSlots:
            b = qt.QPushButton(label)
            b.connect("clicked()", slot)
            row.addWidget(b)
            buttons.append(b)
        self.scriptedEffect.addOptionsWidget(row)
        return buttons

    def run(self, action, *args, **kwargs):
        """Run a logic action with a wait cursor; show its message; return its OperationResult.
        The first action offers to install the packages the algorithms need (scipy, scikit-image)."""
        missing = options.missing_dependencies()
        if missing:
            self.say(missing)
            return OperationResult(False, missing)
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            result = action(*args, **kwargs)
        finally:
            qt.QApplication.restoreOverrideCursor()
        self.say(result.message)
        self.updateActions()
        if result.details.get("pending"):
            self.showPriorStatus()     # the timer runs the action when the prior arrives
        return result

    def say(self, text):
        if hasattr(self, "statusLabel"):
            self.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)
