"""OrbitSegmentation: eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.

Thin Slicer module: the parameter node (every user choice, saved with the scene), the two panel
hooks and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`) runs
`OrbitSegmentationLib.OrbitSegmentationLogic` in a child process and writes results into the scene.
The Segment Editor effects (SmartPencil, SmartFill, AutoCorrection) are registered at start-up.
"""
from typing import Annotated  # (no postponed annotations: parameterNodeWrapper reads the Annotated choices)

import slicer
from OrbitSegmentationLib import AUTOMATIC_MODEL, WINDOW_CHOICES, OrbitSegmentationLogic
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, Default, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.device import DEVICE_CHOICES
from orbitai.mrml.panel import JobPanelMixin, describeModule


class OrbitSegmentation(ScriptedLoadableModule):
    """Segments eyeballs, optic nerves and the four rectus muscles of both orbits on CT or MRI (SV-net
    / SEQ-UNET), reports structure volumes, and compares with a reference segmentation. Annotation
    effects SmartPencil, SmartFill and AutoCorrection are added to the Segment Editor. Bundled
    models are trained on synthetic phantoms: research use only, not for clinical use.

    Reproduces SV-net (semantic V-Net for orbital CT) and SEQ-UNET (sequential U-Net with
    bidirectional ConvLSTMs). Phantoms use the SPL/NAC head-and-neck atlas.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "Orbit Segmentation")
        slicer.app.connect("startupCompleted()", registerEditorEffects)


def registerEditorEffects() -> None:
    """Register the OrbitAI annotation effects with the Segment Editor (after start-up); a scene close cancels
    their model work."""
    from OrbitSegmentationLib.effect_registration import cancel_model_work_on_scene_close, register_annotation_effects

    register_annotation_effects()
    cancel_model_work_on_scene_close(slicer.mrmlScene)


@parameterNodeWrapper
class OrbitSegmentationParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    referenceSegmentation: vtkMRMLSegmentationNode
    model: Annotated[str, Choice(OrbitSegmentationLogic.modelLabels()), Default(AUTOMATIC_MODEL)]
    device: Annotated[str, Choice(list(DEVICE_CHOICES)), Default(DEVICE_CHOICES[0])]
    window: Annotated[str, Choice(list(WINDOW_CHOICES)), Default(WINDOW_CHOICES[0])]


class OrbitSegmentationWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    parameterNodeClass = OrbitSegmentationParameterNode
    refreshedChoices = {"model": OrbitSegmentationLogic.modelLabels}
    inputWidgets = ("inputSelector", "modelSelector", "deviceSelector", "windowSelector", "referenceSelector")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel(OrbitSegmentationLogic(), "UI/OrbitSegmentation.ui", "Segment the orbits")

    def jobInputs(self):
        p = self._parameterNode
        return p.inputVolume, {"model": p.model, "device": p.device, "window": p.window,
                               "reference_node": p.referenceSegmentation}

    def showResults(self, outputs, inputNode) -> None:
        self.logic.show(outputs, inputNode)


class OrbitSegmentationTest(ScriptedLoadableModuleTest):
    """Runs the module's self-test steps (`orbitai.testing.orbit_segmentation.SELF_TEST`, the functions pytest runs
    headless): everything that needs no model stack always; the rest when torch and MONAI are installed
    (offered from the GUI); the summary names what was skipped and why."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from orbitai.mrml.selftest import run_in_slicer
        from orbitai.testing import orbit_segmentation as t

        self.setUp()
        run_in_slicer("OrbitSegmentation", t.SELF_TEST, OrbitSegmentationLogic, self.delayDisplay)
