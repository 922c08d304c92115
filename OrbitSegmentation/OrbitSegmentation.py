"""OrbitSegmentation: eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.

Thin Slicer module: the panel wires widgets to `OrbitSegmentationLib.OrbitSegmentationLogic`,
which runs the model in a child process and writes results into the scene. The Segment
Editor effects (SmartPencil, SmartFill, AutoCorrection) are registered at start-up.
"""
from __future__ import annotations

import os

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

MODULE_DIR = os.path.dirname(os.path.abspath(__file__))


class OrbitSegmentation(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Orbit Segmentation"
        self.parent.categories = ["OrbitAI"]
        self.parent.dependencies = []
        self.parent.contributors = ["OrbitAI developers"]
        self.parent.helpText = (
            "Segments eyeballs, optic nerves and the four rectus muscles of both orbits on CT or MRI "
            "(SV-net / SEQ-UNET), reports structure volumes, and compares with a reference segmentation. "
            "Annotation effects SmartPencil, SmartFill and AutoCorrection are added to the Segment Editor. "
            "Bundled models are trained on synthetic phantoms: research use only, not for clinical use.")
        self.parent.acknowledgementText = (
            "Reproduces SV-net (semantic V-Net for orbital CT) and SEQ-UNET (sequential U-Net with "
            "bidirectional ConvLSTMs). Phantoms use the SPL/NAC head-and-neck atlas.")
        slicer.app.connect("startupCompleted()", registerEditorEffects)


def registerEditorEffects() -> None:
    """Register the OrbitAI annotation effects with the Segment Editor (after start-up)."""
    from OrbitSegmentationLib.annotation_logic import register_annotation_effects

    register_annotation_effects()


@parameterNodeWrapper
class OrbitSegmentationParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    referenceSegmentation: vtkMRMLSegmentationNode


class OrbitSegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.onPoll)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/OrbitSegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from OrbitSegmentationLib import OrbitSegmentationLogic

        self.logic = OrbitSegmentationLogic()
        self.ui.modelSelector.addItem("Automatic (by modality)", "")
        for name in self.logic.availableModels():
            self.ui.modelSelector.addItem(name, name)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelJob()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(OrbitSegmentationParameterNode(self._parameterLogic().getParameterNode()))
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume = first

    @staticmethod
    def _parameterLogic():
        from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

        logic = ScriptedLoadableModuleLogic()
        logic.moduleName = "OrbitSegmentation"
        return logic

    def setParameterNode(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = node
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        if self._job is not None:
            return
        ok = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = ok
        self.ui.applyButton.toolTip = "Segment the orbits" if ok else "Select an input volume"

    # ------------------------------------------------------------------ run / cancel
    def onApplyButton(self) -> None:
        if self._job is not None:
            self.cancelJob()
            return
        if not self.logic.ensureDependencies():
            return
        p = self._parameterNode
        try:
            self._job = self.logic.start(p.inputVolume, model=self.ui.modelSelector.currentData or None,
                                         device=self.ui.deviceSelector.currentText,
                                         window=self.ui.windowSelector.currentText)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            slicer.util.errorDisplay(f"Could not start the segmentation: {exc}")
            self._job = None
            return
        self.ui.applyButton.text = "Cancel"
        self.ui.progressBar.value = 0
        self.ui.progressBar.visible = True
        self.ui.statusLabel.text = "Starting..."
        self._timer.start()

    def onPoll(self) -> None:
        if self._job is None:
            return
        for done, total, message in self._job.poll():
            self.ui.progressBar.maximum = total
            self.ui.progressBar.value = done
            self.ui.statusLabel.text = message
        if not self._job.finished:
            return
        self._timer.stop()
        job, self._job = self._job, None
        try:
            p = self._parameterNode
            outputs = self.logic.finish(job, p.inputVolume, p.referenceSegmentation)
            self.ui.statusLabel.text = outputs.summary()
            self.logic.show(outputs, p.inputVolume)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the scene is unchanged
            self.ui.statusLabel.text = "Failed; the scene was not changed."
            slicer.util.errorDisplay(str(exc))
        finally:
            self._resetButton()

    def cancelJob(self) -> None:
        if self._job is not None:
            self._timer.stop()
            self._job.cancel()
            self._job.cleanup()
            self._job = None
            self.ui.statusLabel.text = "Cancelled; the scene was not changed."
            self._resetButton()

    def _resetButton(self) -> None:
        self.ui.applyButton.text = "Apply"
        self.ui.progressBar.visible = False
        self._checkCanApply()


class OrbitSegmentationTest(ScriptedLoadableModuleTest):
    """Runs the same test functions as the headless pytest suite, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        import tempfile
        from pathlib import Path

        self.setUp()
        import sys

        sys.path.insert(0, os.path.join(MODULE_DIR, "..", "Testing", "OrbitSegmentation"))
        import test_orbit_segmentation_logic as t

        with tempfile.TemporaryDirectory() as tmp:
            t.test_logic_segments_phantom_into_scene(t.slicer_context(), Path(tmp))
            t.test_logic_cancel_leaves_scene_unchanged(t.slicer_context(), Path(tmp))
            t.test_logic_refuses_2d_input(t.slicer_context())
        self.delayDisplay("OrbitSegmentation self-test passed")
