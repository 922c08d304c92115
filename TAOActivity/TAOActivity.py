"""TAOActivity: active vs inactive thyroid-associated ophthalmopathy per eye on orbital T2 MRI.

Thin Slicer module: the parameter node (every user choice, saved with the scene), the two panel
hooks and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`) runs
`TAOActivityLib.TAOActivityLogic` -- the classifier (Network A or B of Lin et al. 2021) in a child
process -- which writes a table, the crop boxes and occlusion / Grad-CAM heat maps into the scene.
"""
from typing import Annotated  # (no postponed annotations: parameterNodeWrapper reads the Annotated choices)

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, Default, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin
from TAOActivityLib import SHOWN_MAP_CHOICES, TAOActivityLogic

from orbitai.device import DEVICE_CHOICES
from orbitai.mrml.panel import JobPanelMixin, describeModule

MODEL_LABELS = TAOActivityLogic.modelLabels()


class TAOActivity(ScriptedLoadableModule):
    """Classifies each eye of an axial orbital T2 MRI as active or inactive thyroid-associated
    ophthalmopathy (Network A: VGG-like, Network B: ResNet-like), finds the orbit itself (or uses an
    orbit segmentation), and shows occlusion and Grad-CAM heat maps over the MRI. Bundled models are
    trained on synthetic phantoms: research use only, not for clinical use.

    Reproduces Lin et al., BMC Ophthalmology 2021: deep convolutional networks detect active TAO on
    orbital MRI, with occlusion heat maps.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "TAO Activity")


@parameterNodeWrapper
class TAOActivityParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    orbitSegmentation: vtkMRMLSegmentationNode
    model: Annotated[str, Choice(MODEL_LABELS), Default(TAOActivityLogic.defaultModelLabel(MODEL_LABELS))]
    device: Annotated[str, Choice(list(DEVICE_CHOICES)), Default(DEVICE_CHOICES[0])]
    maps: Annotated[bool, Default(True)]
    shownMap: Annotated[str, Choice(list(SHOWN_MAP_CHOICES)), Default(SHOWN_MAP_CHOICES[0])]


class TAOActivityWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    parameterNodeClass = TAOActivityParameterNode
    refreshedChoices = {"model": TAOActivityLogic.modelLabels}
    inputWidgets = ("inputSelector", "segmentationSelector", "modelSelector", "deviceSelector", "mapsCheckBox")
    missingInputText = "Select an axial orbital T2 MRI volume."

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel(TAOActivityLogic(), "UI/TAOActivity.ui", "Classify both eyes")

    def whyNotReady(self) -> str:
        if not self.modelsInstalled:
            return (f"No TAO model is installed (bundles {' / '.join(TAOActivityLogic.models.bundled)}); "
                    "see the README to train or install one.")
        return super().whyNotReady()

    def jobInputs(self):
        p = self._parameterNode
        return p.inputVolume, {"segmentation_node": p.orbitSegmentation, "model": p.model, "device": p.device,
                               "maps": p.maps}

    def showResults(self, outputs, inputNode) -> None:
        self.jobController.shownChoice = self._parameterNode.shownMap
        self.logic.show(outputs, inputNode, self._parameterNode.shownMap)

    def parameterChanged(self) -> None:
        """Another heat map picked: show it over the input the results belong to (nothing else)."""
        p = self._parameterNode
        outputs = self.jobController.outputsToReshow(p.shownMap, p.inputVolume)
        if outputs is not None:
            self.showResults(outputs, p.inputVolume)


class TAOActivityTest(ScriptedLoadableModuleTest):
    """Runs the module's self-test steps (`orbitai.testing.tao_activity.SELF_TEST`, the functions pytest runs
    headless): everything that needs no model stack always; the rest when torch and MONAI are installed
    (offered from the GUI); the summary names what was skipped and why."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from orbitai.mrml.selftest import run_in_slicer
        from orbitai.testing import tao_activity as t

        self.setUp()
        run_in_slicer("TAOActivity", t.SELF_TEST, TAOActivityLogic, self.delayDisplay)
