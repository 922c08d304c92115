"""TAOActivity: active vs inactive thyroid-associated ophthalmopathy per eye on orbital T2 MRI.

Thin Slicer module: the panel wires widgets to `TAOActivityLib.TAOActivityLogic`, which runs the
classifier (Network A or B of Lin et al. 2021) in a child process and writes a table, the crop
boxes and occlusion / Grad-CAM heat maps into the scene.
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


class TAOActivity(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "TAO Activity"
        self.parent.categories = ["OrbitAI"]
        self.parent.dependencies = []
        self.parent.contributors = ["OrbitAI developers"]
        self.parent.helpText = (
            "Classifies each eye of an axial orbital T2 MRI as active or inactive thyroid-associated "
            "ophthalmopathy (Network A: VGG-like, Network B: ResNet-like), finds the orbit itself (or uses "
            "an orbit segmentation), and shows occlusion and Grad-CAM heat maps over the MRI. Bundled "
            "models are trained on synthetic phantoms: research use only, not for clinical use.")
        self.parent.acknowledgementText = (
            "Reproduces Lin et al., BMC Ophthalmology 2021: deep convolutional networks detect active "
            "TAO on orbital MRI, with occlusion heat maps.")


@parameterNodeWrapper
class TAOActivityParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    orbitSegmentation: vtkMRMLSegmentationNode


class TAOActivityWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._jobInput = None   # the MRI the running job was started on
        self._outputs = None
        self._outputsInput = None
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.onPoll)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TAOActivity.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        from TAOActivityLib import TAOActivityLogic

        self.logic = TAOActivityLogic()
        for label, model in self.logic.modelChoices():   # only installed bundles (find_bundle)
            self.ui.modelSelector.addItem(label, model)
        index = self.ui.modelSelector.findData("B")
        if index >= 0:
            self.ui.modelSelector.currentIndex = index

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.mapSelector.connect("currentIndexChanged(int)", self.onMapChanged)
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
        self._outputs = None
        self._outputsInput = None
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

        logic = ScriptedLoadableModuleLogic()
        logic.moduleName = "TAOActivity"
        self.setParameterNode(TAOActivityParameterNode(logic.getParameterNode()))
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume = first

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
        reason = ""
        if self.ui.modelSelector.count == 0:
            reason = ("No TAO model is installed (bundles tao_network_a_demo / tao_network_b_demo); "
                      "see the README to train or install one.")
        elif not (self._parameterNode and self._parameterNode.inputVolume):
            reason = "Select an axial orbital T2 MRI volume."
        self.ui.applyButton.enabled = not reason
        self.ui.applyButton.toolTip = reason or "Classify both eyes"
        if reason:
            self.ui.statusLabel.text = reason

    # ------------------------------------------------------------------ run / cancel
    def onApplyButton(self) -> None:
        if self._job is not None:
            self.cancelJob()
            return
        if not self.logic.ensureDependencies():
            return
        p = self._parameterNode
        try:
            self._job = self.logic.start(p.inputVolume, p.orbitSegmentation,
                                         model=self.ui.modelSelector.currentData,
                                         device=self.ui.deviceSelector.currentText,
                                         maps=self.ui.mapsCheckBox.checked)
        except Exception as exc:  # noqa: BLE001 - shown to the user; nothing was added to the scene
            self._job = None
            self.ui.statusLabel.text = f"Not started: {exc}"
            slicer.util.errorDisplay(f"Could not start: {exc}")
            return
        self._jobInput = p.inputVolume
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
        inputVolume, self._jobInput = self._jobInput, None
        try:
            if inputVolume is None or inputVolume.GetScene() is None:
                job.cleanup()
                raise RuntimeError("The input volume was removed from the scene while the model ran.")
            self._outputs = self.logic.finish(job, inputVolume)
            self._outputsInput = inputVolume
            self.ui.statusLabel.text = self._outputs.summary()
            self.onMapChanged()
        except Exception as exc:  # noqa: BLE001 - shown to the user; the scene is unchanged
            self.ui.statusLabel.text = f"Failed; the scene was not changed. {exc}"
            slicer.util.errorDisplay(str(exc))
        finally:
            self._resetButton()

    def onMapChanged(self, index=None) -> None:
        if self._outputs is not None:
            kind = ("occlusion", "gradcam", "none")[max(0, min(self.ui.mapSelector.currentIndex, 2))]
            self.logic.show(self._outputs, self._outputsInput, kind)

    def cancelJob(self) -> None:
        if self._job is not None:
            self._timer.stop()
            self._job.cancel()
            self._job.cleanup()
            self._job = None
            self._jobInput = None
            self.ui.statusLabel.text = "Cancelled; the scene was not changed."
            self._resetButton()

    def _resetButton(self) -> None:
        self.ui.applyButton.text = "Apply"
        self.ui.progressBar.visible = False
        self._checkCanApply()


class TAOActivityTest(ScriptedLoadableModuleTest):
    """Runs the same test functions as the headless pytest suite, inside Slicer."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        import sys
        import tempfile
        from pathlib import Path

        self.setUp()
        sys.path.insert(0, os.path.join(MODULE_DIR, "..", "Testing", "TAOActivity"))
        import test_tao_activity_logic as t

        with tempfile.TemporaryDirectory() as tmp:
            t.test_load_results_writes_table_rois_and_overlays(t.slicer_context(), Path(tmp) / "a")
            t.test_load_results_without_maps(t.slicer_context(), Path(tmp) / "b")
            t.test_load_results_refuses_broken_folders_scene_unchanged(t.slicer_context(), Path(tmp) / "c")
        t.test_logic_refuses_bad_choices_before_starting(t.slicer_context())
        from TAOActivityLib import TAOActivityLogic

        if "B" in TAOActivityLogic.availableModels():
            t.test_logic_heat_maps_on_phantom(t.slicer_context())
            t.test_logic_cancel_leaves_scene_unchanged(t.slicer_context())
            t.test_logic_refuses_ct_and_2d_input(t.slicer_context())
        else:
            self.delayDisplay("TAO Network B bundle not installed: end-to-end tests skipped")
        self.delayDisplay("TAOActivity self-test passed")
