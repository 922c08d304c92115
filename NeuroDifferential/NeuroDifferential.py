"""NeuroDifferential: white-matter lesions on a brain FLAIR and the probability of NMOSD vs multiple sclerosis.

Thin Slicer module: the parameter node (made from the panel's one declaration,
`orbitai.app.neuro_differential.PANEL`) and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`)
runs `orbitai.app.neuro_differential.NeuroDifferentialLogic` -- ``orbitai neuro predict`` (or ``neuro lesions``) in a
child process -- which writes the lesion segmentation, the lesion tables, the NMOSD/MS probability table
and the heat-map overlay into the scene.
"""
import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.app.neuro_differential import PANEL
from orbitai.mrml.module_info import describeModule
from orbitai.mrml.panel import JobPanelMixin
from orbitai.mrml.parameter_nodes import parameter_node_class


class NeuroDifferential(ScriptedLoadableModule):
    """Finds the white-matter lesions of a brain FLAIR (3D 1 mm or clinical 3-5 mm slices, whole head,
    any orientation) and gives the lesion table (count, volume in mL and % of the intracranial volume,
    location class per lesion), the probability of NMOSD vs multiple sclerosis from a two-view
    compression network or a 3D ResNet, and a heat map of where the call came from. Bundled models are
    trained on synthetic phantoms: research use only, not for clinical use.

    Wang Z, Yu Z, Wang Y, et al. 3D compressed convolutional neural network differentiates neuromyelitis
    optical spectrum disorders from multiple sclerosis using automated white matter hyperintensities
    segmentations. Front Physiol 2020;11:612928, doi:10.3389/fphys.2020.612928.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "NMOSD vs MS (FLAIR lesions)")


#: Every user choice, saved with the scene: inputVolume, lesionSegmentation, model, heatmap, device.
NeuroDifferentialParameterNode = parameter_node_class(PANEL)


class NeuroDifferentialWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    panel = PANEL
    parameterNodeClass = NeuroDifferentialParameterNode
    inputWidgets = ("inputSelector", "lesionSelector", "modelSelector", "deviceSelector", "heatmapCheckBox")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel()


class NeuroDifferentialTest(ScriptedLoadableModuleTest):
    """Runs the module's self-test steps (`orbitai.testing.neuro_differential.SELF_TEST`, the functions pytest runs
    headless): everything that needs no model stack always; the rest when torch and MONAI are installed
    (offered from the GUI); the summary names what was skipped and why."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from orbitai.mrml.selftest import run_in_slicer
        from orbitai.testing import neuro_differential as t

        self.setUp()
        run_in_slicer("NeuroDifferential", t.SELF_TEST, PANEL.logic, self.delayDisplay)
