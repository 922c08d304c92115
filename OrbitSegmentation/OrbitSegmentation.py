"""OrbitSegmentation: eyeballs, optic nerves and extraocular muscles on orbital CT/MRI.

Thin Slicer module: the parameter node (made from the panel's one declaration,
`orbitai.app.orbit_segmentation.PANEL`) and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`) runs
`orbitai.app.orbit_segmentation.OrbitSegmentationLogic` in a child process and writes results into the scene.
The Segment Editor effects (SmartPencil, SmartFill, AutoCorrection) are registered at start-up.
"""
import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.app.orbit_segmentation import PANEL
from orbitai.mrml.module_info import describeModule
from orbitai.mrml.panel import JobPanelMixin
from orbitai.mrml.parameter_nodes import parameter_node_class


class OrbitSegmentation(ScriptedLoadableModule):
    """Segments eyeballs, optic nerves and the four rectus muscles of both orbits on CT or MRI (SV-net
    / SEQ-UNET), reports structure volumes, and compares with a reference segmentation. Annotation
    effects SmartPencil, SmartFill and AutoCorrection are added to the Segment Editor. Bundled
    models are trained on synthetic phantoms: research use only, not for clinical use.

    SV-net: Zhu F, Gao Z, Zhao C, et al. Semantic segmentation using deep learning to extract total
    extraocular muscles and optic nerve from orbital computed tomography images. arXiv:2007.02091 (2020).
    SEQ-UNET and the annotation tools: Chung YW, Kang DG, Lee YO, Cho WK. Application of deep
    learning-based medical image segmentation via orbital computed tomography. J Vis Exp 2022;(189):e64500,
    doi:10.3791/64500. Phantoms use the SPL/NAC head-and-neck atlas.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "Orbit Segmentation")
        slicer.app.connect("startupCompleted()", registerEditorEffects)


def registerEditorEffects() -> None:
    """Register the OrbitAI annotation effects with the Segment Editor (after start-up); a scene close cancels
    their model work."""
    from OrbitSegmentationLib.effect_registration import register_annotation_effects

    from orbitai.app.annotation.model_prior import cancel_model_work_on_scene_close

    register_annotation_effects()
    cancel_model_work_on_scene_close(slicer.mrmlScene)


#: Every user choice, saved with the scene: inputVolume, model, window, device, referenceSegmentation.
OrbitSegmentationParameterNode = parameter_node_class(PANEL)


class OrbitSegmentationWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    panel = PANEL
    parameterNodeClass = OrbitSegmentationParameterNode
    inputWidgets = ("inputSelector", "modelSelector", "deviceSelector", "windowSelector", "referenceSelector")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel()


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
        run_in_slicer("OrbitSegmentation", t.SELF_TEST, PANEL.logic, self.delayDisplay)
