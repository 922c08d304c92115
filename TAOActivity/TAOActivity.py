"""TAOActivity: active vs inactive thyroid-associated ophthalmopathy per eye on orbital T2 MRI.

Thin Slicer module: the parameter node (made from the panel's one declaration, `orbitai.app.tao_activity.PANEL`)
and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`) runs
`orbitai.app.tao_activity.TAOActivityLogic` -- the classifier (Network A or B of Lin et al. 2021) in a child
process -- which writes a table, the crop boxes and occlusion / Grad-CAM heat maps into the scene.
"""
import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.app.tao_activity import PANEL
from orbitai.mrml.module_info import describeModule
from orbitai.mrml.panel import JobPanelMixin
from orbitai.mrml.parameter_nodes import parameter_node_class


class TAOActivity(ScriptedLoadableModule):
    """Classifies each eye of an axial orbital T2 MRI as active or inactive thyroid-associated
    ophthalmopathy (Network A: VGG-like, Network B: ResNet-like), finds the orbit itself (or uses an
    orbit segmentation), and shows occlusion and Grad-CAM heat maps over the MRI. Bundled models are
    trained on synthetic phantoms: research use only, not for clinical use.

    Lin C, Song X, Li L, et al. Detection of active and inactive phases of thyroid-associated
    ophthalmopathy using deep convolutional neural network. BMC Ophthalmol 2021;21:39,
    doi:10.1186/s12886-020-01783-5.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "TAO Activity")


#: Every user choice, saved with the scene: inputVolume, orbitSegmentation, model, maps, device, shownMap.
TAOActivityParameterNode = parameter_node_class(PANEL)


class TAOActivityWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    panel = PANEL
    parameterNodeClass = TAOActivityParameterNode
    inputWidgets = ("inputSelector", "segmentationSelector", "modelSelector", "deviceSelector", "mapsCheckBox")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel()


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
        run_in_slicer("TAOActivity", t.SELF_TEST, PANEL.logic, self.delayDisplay)
