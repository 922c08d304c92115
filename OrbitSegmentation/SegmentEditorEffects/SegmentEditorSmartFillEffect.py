"""SmartFill effect: strokes painted in the selected segment -> 3D graph-cut fill (preview, then
accept or cancel). Optional background strokes come from another segment."""
import os
import sys

import ctk
import numpy as np
import qt
import slicer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from OrbitEffectBase import OrbitEffectBase, alogic  # noqa: E402

from orbitai import annotate  # noqa: E402


class SegmentEditorSmartFillEffect(OrbitEffectBase):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "SmartFill"
        scriptedEffect.perSegment = True
        OrbitEffectBase.__init__(self, scriptedEffect)
        self.previewMask = None
        self.previewNode = None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects
        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        cloned.setPythonSource(__file__.replace("\\", "/"))
        return cloned

    def helpText(self):
        return ("<html>Paint a few strokes inside the structure into the selected segment (Paint effect), "
                "optionally strokes outside it into a background segment, then Preview: a graph cut fills the "
                "structure in 3D around the strokes. Accept or Cancel the preview.</html>")

    def setupOptionsFrame(self):
        self.backgroundCombo = qt.QComboBox()
        self.backgroundCombo.toolTip = "Segment holding background strokes (optional)."
        self.scriptedEffect.addLabeledOptionsWidget("Background strokes:", self.backgroundCombo)
        self.smoothSlider = ctk.ctkSliderWidget()
        self.smoothSlider.minimum, self.smoothSlider.maximum, self.smoothSlider.singleStep = 0.0, 10.0, 0.1
        self.scriptedEffect.addLabeledOptionsWidget("Smoothness:", self.smoothSlider)
        self.marginSlider = ctk.ctkSliderWidget()
        self.marginSlider.minimum, self.marginSlider.maximum, self.marginSlider.singleStep = 2, 60, 1
        self.marginSlider.suffix = " mm"
        self.scriptedEffect.addLabeledOptionsWidget("Region margin:", self.marginSlider)
        self.localitySlider = ctk.ctkSliderWidget()
        self.localitySlider.minimum, self.localitySlider.maximum, self.localitySlider.singleStep = 0, 100, 1
        self.localitySlider.suffix = " mm"
        self.localitySlider.toolTip = "Stroke locality: distance that costs one unit of evidence (0 = off)."
        self.scriptedEffect.addLabeledOptionsWidget("Locality:", self.localitySlider)
        row = qt.QHBoxLayout()
        self.previewButton = qt.QPushButton("Preview")
        self.acceptButton = qt.QPushButton("Accept")
        self.cancelButton = qt.QPushButton("Cancel")
        for b in (self.previewButton, self.acceptButton, self.cancelButton):
            row.addWidget(b)
        self.scriptedEffect.addOptionsWidget(row)
        self.addStatusLabel()
        self.previewButton.connect("clicked()", self.onPreview)
        self.acceptButton.connect("clicked()", self.onAccept)
        self.cancelButton.connect("clicked()", self.onCancel)
        for s in (self.smoothSlider, self.marginSlider, self.localitySlider):
            s.connect("valueChanged(double)", self.updateMRMLFromGUI)

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault("Smoothness", 2.0)
        self.scriptedEffect.setParameterDefault("MarginMm", 10.0)
        self.scriptedEffect.setParameterDefault("LocalityMm", 8.0)

    def updateGUIFromMRML(self):
        for s, p in ((self.smoothSlider, "Smoothness"), (self.marginSlider, "MarginMm"), (self.localitySlider, "LocalityMm")):
            s.blockSignals(True)
            s.value = self.scriptedEffect.doubleParameter(p)
            s.blockSignals(False)
        node = self.scriptedEffect.parameterSetNode()
        self.backgroundCombo.clear()
        self.backgroundCombo.addItem("(none)", "")
        if node is not None and node.GetSegmentationNode() is not None:
            seg = node.GetSegmentationNode().GetSegmentation()
            for i in range(seg.GetNumberOfSegments()):
                sid = seg.GetNthSegmentID(i)
                if sid != node.GetSelectedSegmentID():
                    self.backgroundCombo.addItem(seg.GetSegment(sid).GetName(), sid)
        self.acceptButton.enabled = self.cancelButton.enabled = self.previewMask is not None

    def updateMRMLFromGUI(self, *args):
        self.scriptedEffect.setParameter("Smoothness", self.smoothSlider.value)
        self.scriptedEffect.setParameter("MarginMm", self.marginSlider.value)
        self.scriptedEffect.setParameter("LocalityMm", self.localitySlider.value)

    def deactivate(self):
        self.onCancel()

    def _backgroundStrokes(self):
        sid = self.backgroundCombo.currentData
        if not sid:
            return None
        seg_node = self.scriptedEffect.parameterSetNode().GetSegmentationNode()
        lm = slicer.vtkOrientedImageData()
        slicer.vtkSlicerSegmentationsModuleLogic.GetSegmentBinaryLabelmapRepresentation(seg_node, sid, lm, False)
        value = seg_node.GetSegmentation().GetSegment(sid).GetLabelValue()
        return alogic.segment_extent_mask(lm, self.scriptedEffect.defaultModifierLabelmap(), value)

    def onPreview(self):
        why = self.ready()
        if why:
            self.say(why)
            return
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            src, spacing = self.sourceArray()
            locality = self.scriptedEffect.doubleParameter("LocalityMm")
            result = annotate.smartfill(src, spacing, self.selectedSegmentMask(), self._backgroundStrokes(),
                                       smoothness=self.scriptedEffect.doubleParameter("Smoothness"),
                                       margin_mm=self.scriptedEffect.doubleParameter("MarginMm"),
                                       locality_mm=locality if locality > 0 else None)
        except annotate.AnnotationError as exc:
            self.say(str(exc))
            return
        finally:
            qt.QApplication.restoreOverrideCursor()
        self.previewMask = result.mask
        self.showPreview(result.mask)
        self.say(result.message + " Accept or Cancel.")
        self.updateGUIFromMRML()

    def showPreview(self, mask):
        """The preview as a label layer over the slice views (the segment is not touched)."""
        if self.previewNode is None or self.previewNode.GetScene() is None:
            self.previewNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "SmartFill preview")
            self.previewNode.SetHideFromEditors(True)
        import vtk
        m = vtk.vtkMatrix4x4()
        self.sourceImage().GetImageToWorldMatrix(m)
        self.previewNode.SetIJKToRASMatrix(m)
        slicer.util.updateVolumeFromArray(self.previewNode, mask.astype(np.uint8))
        slicer.util.setSliceViewerLayers(label=self.previewNode, labelOpacity=0.5)

    def onAccept(self):
        if self.previewMask is None:
            self.say("No preview to accept: paint strokes and press Preview.")
            return
        self.applyMask(self.previewMask, alogic.MODE_ADD)
        self.onCancel()
        self.say("SmartFill accepted.")

    def onCancel(self):
        self.previewMask = None
        if self.previewNode is not None and self.previewNode.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(self.previewNode)
        self.previewNode = None
        if hasattr(self, "acceptButton"):
            self.acceptButton.enabled = self.cancelButton.enabled = False
