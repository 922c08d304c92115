"""Shared GUI of the OrbitAI scripted effects (Slicer only; the logic is `AnnotationLogic`).

Each effect declares its name, help text and actions; its options are built here from
``annotation_logic.EFFECT_OPTIONS`` and kept as effect parameters on the segment editor node
(defaults in ``setMRMLDefaults``, widgets set in ``updateGUIFromMRML``, written back in
``updateMRMLFromGUI``). Registered by ``OrbitSegmentationLib.annotation_logic.register_annotation_effects``.
This folder has no __init__.py on purpose, so it never shadows Slicer's own SegmentEditorEffects package.
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

from OrbitSegmentationLib import annotation_logic as alogic  # noqa: E402


class OrbitEffectBase(AbstractScriptedSegmentEditorEffect):
    """Options from `EFFECT_OPTIONS`, a status line, action buttons and the `AnnotationLogic`."""

    EFFECT = ""  #: effect name (a key of EFFECT_OPTIONS and EFFECT_HELP)

    def __init__(self, scriptedEffect):
        scriptedEffect.name = self.EFFECT
        scriptedEffect.perSegment = True
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)
        self.logic = alogic.AnnotationLogic(editor=alogic.ScriptedEffectEditor(scriptedEffect))
        self.optionWidgets = {}

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        # The effect files are named after their classes and lie beside this file.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{type(self).__name__}.py")
        cloned.setPythonSource(path.replace("\\", "/"))
        return cloned

    def icon(self):
        """Resources/<effect name>.png beside the effect files, or no icon."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", f"{self.EFFECT}.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def helpText(self):
        return alogic.EFFECT_HELP[self.EFFECT]

    # ------------------------------------------------------------------ options
    def parameters(self):
        return alogic.EffectParameters(self.scriptedEffect.parameterSetNode(), self.EFFECT)

    def setupOptionsFrame(self):
        for option in alogic.EFFECT_OPTIONS[self.EFFECT]:
            widget = self._makeWidget(option)
            widget.toolTip = option.tooltip
            if option.kind == "bool":
                self.scriptedEffect.addOptionsWidget(widget)
            else:
                self.scriptedEffect.addLabeledOptionsWidget(option.label, widget)
            self.optionWidgets[option.name] = widget
        self.setupActions()
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
        self.parameters().set_defaults()

    def updateGUIFromMRML(self):
        node = self.scriptedEffect.parameterSetNode()
        if node is None or not self.optionWidgets:
            return
        params = self.parameters()
        for name, w in self.optionWidgets.items():
            option, value = params.option(name), params.get(name)
            w.blockSignals(True)
            if option.kind == "float":
                w.value = value
            elif option.kind == "bool":
                w.checked = bool(value)
            elif option.kind == "segment":
                choices = alogic.segment_choices(node.GetSegmentationNode(), node.GetSelectedSegmentID())
                w.clear()
                for sid, text in choices:
                    w.addItem(text, sid)
                w.currentIndex = alogic.choice_index(choices, value)
            else:
                w.currentIndex = max(0, w.findData(str(value)))
            w.blockSignals(False)
        self.updateActions()

    def updateMRMLFromGUI(self, *args):
        node = self.scriptedEffect.parameterSetNode()
        if node is None:
            return
        params = self.parameters()
        values = {}
        for name, w in self.optionWidgets.items():
            kind = params.option(name).kind
            if kind == "float":
                values[name] = w.value
            elif kind == "bool":
                values[name] = w.checked
            elif kind == "segment":
                choices = alogic.segment_choices(node.GetSegmentationNode(), node.GetSelectedSegmentID())
                values[name] = alogic.chosen_segment(choices, params.get(name), w.currentData)
            else:
                values[name] = w.currentData
        params.update(values)

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
        """Run a logic action with a wait cursor; show its message; return its OperationResult."""
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            result = action(*args, **kwargs)
        finally:
            qt.QApplication.restoreOverrideCursor()
        self.say(result.message)
        self.updateActions()
        return result

    def say(self, text):
        if hasattr(self, "statusLabel"):
            self.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)
