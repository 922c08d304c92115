"""AutoCorrection effect: fill holes, remove islands, snap the border to image edges."""
import os
import sys

import ctk
import qt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from OrbitEffectBase import OrbitEffectBase, alogic  # noqa: E402

from orbitai import annotate  # noqa: E402


class SegmentEditorAutoCorrectionEffect(OrbitEffectBase):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "AutoCorrection"
        scriptedEffect.perSegment = True
        OrbitEffectBase.__init__(self, scriptedEffect)

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects
        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        cloned.setPythonSource(__file__.replace("\\", "/"))
        return cloned

    def helpText(self):
        return ("<html>Cleans the selected segment: fills holes, removes islands and moves its border onto "
                "the image edges (graph cut in a thin band), never farther than the maximum shift.</html>")

    def setupOptionsFrame(self):
        self.distanceSlider = ctk.ctkSliderWidget()
        self.distanceSlider.minimum, self.distanceSlider.maximum, self.distanceSlider.singleStep = 0.0, 10.0, 0.1
        self.distanceSlider.suffix = " mm"
        self.scriptedEffect.addLabeledOptionsWidget("Maximum border shift:", self.distanceSlider)
        self.stiffnessSlider = ctk.ctkSliderWidget()
        self.stiffnessSlider.minimum, self.stiffnessSlider.maximum, self.stiffnessSlider.singleStep = 0.0, 10.0, 0.1
        self.stiffnessSlider.toolTip = "Evidence needed to move a border voxel (higher = keeps the mask more)."
        self.scriptedEffect.addLabeledOptionsWidget("Border stiffness:", self.stiffnessSlider)
        self.holesCheck = qt.QCheckBox("Fill holes and remove islands")
        self.scriptedEffect.addOptionsWidget(self.holesCheck)
        self.largestCheck = qt.QCheckBox("Keep only the largest island")
        self.scriptedEffect.addOptionsWidget(self.largestCheck)
        self.shiftCheck = qt.QCheckBox("Move the border also where no edge is visible")
        self.shiftCheck.toolTip = ("Where the segment touches tissue of its own intensity, move its border as far as "
                                   "it moved at the visible edges around it (a second cut).")
        self.scriptedEffect.addOptionsWidget(self.shiftCheck)
        self.applyButton = qt.QPushButton("Apply")
        self.scriptedEffect.addOptionsWidget(self.applyButton)
        self.addStatusLabel()
        self.applyButton.connect("clicked()", self.onApply)
        for s in (self.distanceSlider, self.stiffnessSlider):
            s.connect("valueChanged(double)", self.updateMRMLFromGUI)
        for c in (self.holesCheck, self.largestCheck, self.shiftCheck):
            c.connect("toggled(bool)", self.updateMRMLFromGUI)

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault("MaxDistanceMm", 1.0)
        self.scriptedEffect.setParameterDefault("Stiffness", 3.0)
        self.scriptedEffect.setParameterDefault("FillHoles", 1)
        self.scriptedEffect.setParameterDefault("KeepLargest", 0)
        self.scriptedEffect.setParameterDefault("ConsistentShift", 1)

    def updateGUIFromMRML(self):
        widgets = (self.distanceSlider, self.stiffnessSlider, self.holesCheck, self.largestCheck, self.shiftCheck)
        for w in widgets:
            w.blockSignals(True)
        self.distanceSlider.value = self.scriptedEffect.doubleParameter("MaxDistanceMm")
        self.stiffnessSlider.value = self.scriptedEffect.doubleParameter("Stiffness")
        self.holesCheck.checked = bool(self.scriptedEffect.integerParameter("FillHoles"))
        self.largestCheck.checked = bool(self.scriptedEffect.integerParameter("KeepLargest"))
        self.shiftCheck.checked = bool(self.scriptedEffect.integerParameter("ConsistentShift"))
        for w in widgets:
            w.blockSignals(False)

    def updateMRMLFromGUI(self, *args):
        self.scriptedEffect.setParameter("MaxDistanceMm", self.distanceSlider.value)
        self.scriptedEffect.setParameter("Stiffness", self.stiffnessSlider.value)
        self.scriptedEffect.setParameter("FillHoles", int(self.holesCheck.checked))
        self.scriptedEffect.setParameter("KeepLargest", int(self.largestCheck.checked))
        self.scriptedEffect.setParameter("ConsistentShift", int(self.shiftCheck.checked))

    def onApply(self):
        why = self.ready()
        if why:
            self.say(why)
            return
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            src, spacing = self.sourceArray()
            result = annotate.autocorrect(
                src, spacing, self.selectedSegmentMask(),
                max_distance_mm=self.scriptedEffect.doubleParameter("MaxDistanceMm"),
                stay_cost=self.scriptedEffect.doubleParameter("Stiffness"),
                fill_holes=bool(self.scriptedEffect.integerParameter("FillHoles")),
                keep_largest=bool(self.scriptedEffect.integerParameter("KeepLargest")),
                shift_sigma_mm=3.0 if self.scriptedEffect.integerParameter("ConsistentShift") else None)
        except annotate.AnnotationError as exc:
            self.say(str(exc))
            return
        finally:
            qt.QApplication.restoreOverrideCursor()
        self.applyMask(result.mask, alogic.MODE_SET)
        self.say(result.message)
