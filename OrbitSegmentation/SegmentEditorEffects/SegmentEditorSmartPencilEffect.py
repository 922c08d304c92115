"""SmartPencil effect: click adds the superpixel under the cursor, shift-click removes it."""
import os
import sys

import ctk
import numpy as np
import qt
import slicer
import vtk

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from OrbitEffectBase import OrbitEffectBase, alogic  # noqa: E402

from orbitai import annotate  # noqa: E402


class SegmentEditorSmartPencilEffect(OrbitEffectBase):
    def __init__(self, scriptedEffect):
        scriptedEffect.name = "SmartPencil"
        scriptedEffect.perSegment = True
        OrbitEffectBase.__init__(self, scriptedEffect)
        self.cache = annotate.SuperpixelCache()
        self.overlayNode = None

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects
        cloned = effects.qSlicerSegmentEditorScriptedEffect(None)
        cloned.setPythonSource(__file__.replace("\\", "/"))
        return cloned

    def helpText(self):
        return ("<html>Click a superpixel to add it to the selected segment; shift-click removes it.<br>"
                "Superpixels (100-2000 over the working region, 2D on the slice or 3D supervoxels) are "
                "computed once per image and region and cached.</html>")

    def setupOptionsFrame(self):
        self.resolutionCombo = qt.QComboBox()
        for n in annotate.RESOLUTIONS:
            self.resolutionCombo.addItem(str(n))
        self.scriptedEffect.addLabeledOptionsWidget("Superpixels:", self.resolutionCombo)
        self.modeCombo = qt.QComboBox()
        self.modeCombo.addItems(["3D", "2D"])
        self.scriptedEffect.addLabeledOptionsWidget("Mode:", self.modeCombo)
        self.regionSlider = ctk.ctkSliderWidget()
        self.regionSlider.minimum, self.regionSlider.maximum, self.regionSlider.singleStep = 0, 200, 5
        self.regionSlider.suffix = " mm"
        self.regionSlider.toolTip = "Working region: a box of this size around the first click (0 = whole volume)."
        self.scriptedEffect.addLabeledOptionsWidget("Working region:", self.regionSlider)
        self.overlayCheck = qt.QCheckBox("Show superpixel boundaries")
        self.scriptedEffect.addOptionsWidget(self.overlayCheck)
        self.addStatusLabel()
        for w, sig in ((self.resolutionCombo, "currentIndexChanged(int)"), (self.modeCombo, "currentIndexChanged(int)"),
                       (self.regionSlider, "valueChanged(double)"), (self.overlayCheck, "toggled(bool)")):
            w.connect(sig, self.updateMRMLFromGUI)
        self.region = None

    def setMRMLDefaults(self):
        self.scriptedEffect.setParameterDefault("Superpixels", 1000)
        self.scriptedEffect.setParameterDefault("Mode", "3D")
        self.scriptedEffect.setParameterDefault("RegionMm", 0.0)
        self.scriptedEffect.setParameterDefault("ShowBoundaries", 0)

    def updateGUIFromMRML(self):
        for w in (self.resolutionCombo, self.modeCombo, self.regionSlider, self.overlayCheck):
            w.blockSignals(True)
        self.resolutionCombo.currentText = str(self.scriptedEffect.integerParameter("Superpixels"))
        self.modeCombo.currentText = self.scriptedEffect.parameter("Mode")
        self.regionSlider.value = self.scriptedEffect.doubleParameter("RegionMm")
        self.overlayCheck.checked = bool(self.scriptedEffect.integerParameter("ShowBoundaries"))
        for w in (self.resolutionCombo, self.modeCombo, self.regionSlider, self.overlayCheck):
            w.blockSignals(False)

    def updateMRMLFromGUI(self, *args):
        self.scriptedEffect.setParameter("Superpixels", int(self.resolutionCombo.currentText))
        self.scriptedEffect.setParameter("Mode", self.modeCombo.currentText)
        self.scriptedEffect.setParameter("RegionMm", self.regionSlider.value)
        self.scriptedEffect.setParameter("ShowBoundaries", int(self.overlayCheck.checked))
        self.region = None
        if not self.overlayCheck.checked:
            self.removeOverlay()

    def deactivate(self):
        self.removeOverlay()

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if eventId != vtk.vtkCommand.LeftButtonPressEvent or viewWidget.className() != "qMRMLSliceWidget":
            return False
        why = self.ready()
        if why:
            self.say(why)
            return True
        remove = bool(callerInteractor.GetShiftKey())
        ras = self.scriptedEffect.xyToRas(callerInteractor.GetEventPosition(), viewWidget)
        source = self.sourceImage()
        src, spacing = alogic.oriented_image_to_array(source)
        try:
            point = annotate._common.check_point(alogic.ras_to_ijk(source, ras), src.shape)
            size = self.scriptedEffect.doubleParameter("RegionMm")
            if size > 0 and (self.region is None or not all(s.start <= v < s.stop for v, s in zip(point, self.region))):
                self.region = annotate.region_around(point, size, spacing, src.shape)
            region = self.region if size > 0 else None
            mode = self.scriptedEffect.parameter("Mode").lower()
            axis = self._sliceAxis(viewWidget, source)
            result = annotate.smartpencil_click(
                src, spacing, self.selectedSegmentMask(), point, remove=remove,
                n_superpixels=self.scriptedEffect.integerParameter("Superpixels"), region=region, mode=mode,
                axis=axis, cache=self.cache, key_extra=source.GetMTime())
        except annotate.AnnotationError as exc:
            self.say(str(exc))
            return True
        if result.changed:
            self.applyMask(result.modifier, alogic.MODE_REMOVE if remove else alogic.MODE_ADD)
        self.say(result.message)
        if self.scriptedEffect.integerParameter("ShowBoundaries"):
            self.showOverlay(result.superpixels, src.shape, source)
        return True

    def _sliceAxis(self, viewWidget, image):
        """Array axis (0 = k, 1 = j, 2 = i) most aligned with the slice view's normal."""
        sliceToRas = viewWidget.sliceLogic().GetSliceNode().GetSliceToRAS()
        normal = np.array([sliceToRas.GetElement(r, 2) for r in range(3)])
        m = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(m)
        axes = np.array([[m.GetElement(r, c) for r in range(3)] for c in range(3)])  # i, j, k directions
        best = int(np.argmax(np.abs(axes @ normal) / np.linalg.norm(axes, axis=1)))
        return 2 - best

    def showOverlay(self, spx, shape, source):
        """Superpixel boundaries as a label layer over the slice views."""
        b = np.zeros(shape, np.uint8)
        lab = spx.labels
        edge = np.zeros(lab.shape, bool)
        for ax in range(3):
            if lab.shape[ax] > 1:
                d = np.diff(lab, axis=ax) != 0
                sl = [slice(None)] * 3
                sl[ax] = slice(0, -1)
                edge[tuple(sl)] |= d
        b[spx.region] = edge
        if self.overlayNode is None or self.overlayNode.GetScene() is None:
            self.overlayNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "SmartPencil boundaries")
            self.overlayNode.SetHideFromEditors(True)
        m = vtk.vtkMatrix4x4()
        source.GetImageToWorldMatrix(m)
        self.overlayNode.SetIJKToRASMatrix(m)
        slicer.util.updateVolumeFromArray(self.overlayNode, b)
        slicer.util.setSliceViewerLayers(label=self.overlayNode, labelOpacity=0.6)

    def removeOverlay(self):
        if self.overlayNode is not None and self.overlayNode.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(self.overlayNode)
        self.overlayNode = None
