"""NeuroDifferential: white-matter lesions on a brain FLAIR and the probability of NMOSD vs multiple sclerosis.

Thin Slicer module: the parameter node (every user choice, saved with the scene), the panel hooks and
the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`) runs
`NeuroDifferentialLib.NeuroDifferentialLogic` -- ``orbitai neuro predict`` (or ``neuro lesions``) in a
child process -- which writes the lesion segmentation, the lesion tables, the NMOSD/MS probability table
and the heat-map overlay into the scene.
"""
from typing import Annotated  # (no postponed annotations: parameterNodeWrapper reads the Annotated choices)

import slicer
from NeuroDifferentialLib import NeuroDifferentialLogic
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, Default, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.device import DEVICE_CHOICES
from orbitai.mrml.panel import JobPanelMixin, describeModule


class NeuroDifferential(ScriptedLoadableModule):
    """Finds the white-matter lesions of a brain FLAIR (3D 1 mm or clinical 3-5 mm slices, whole head,
    any orientation) and gives the lesion table (count, volume in mL and % of the intracranial volume,
    location class per lesion), the probability of NMOSD vs multiple sclerosis from a two-view
    compression network or a 3D ResNet, and a heat map of where the call came from. Bundled models are
    trained on synthetic phantoms: research use only, not for clinical use.

    Reproduces paper 003 (NMOSD vs MS from brain FLAIR lesions: 3D ResNet baselines and a two-view
    compression network).
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "NMOSD vs MS (FLAIR lesions)")


@parameterNodeWrapper
class NeuroDifferentialParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    lesionSegmentation: vtkMRMLSegmentationNode
    model: Annotated[str, Choice(NeuroDifferentialLogic.modelLabels()), Default(NeuroDifferentialLogic.defaultModelLabel())]
    device: Annotated[str, Choice(list(DEVICE_CHOICES)), Default(DEVICE_CHOICES[0])]
    heatmap: Annotated[bool, Default(True)]


class NeuroDifferentialWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    parameterNodeClass = NeuroDifferentialParameterNode
    inputWidgets = ("inputSelector", "lesionSelector", "modelSelector", "deviceSelector", "heatmapCheckBox")
    missingInputText = "Select a brain FLAIR volume."

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel(NeuroDifferentialLogic(), "UI/NeuroDifferential.ui",
                           "Find the lesions and predict NMOSD vs MS")

    def whyNotReady(self) -> str:
        p = self._parameterNode
        return super().whyNotReady() or NeuroDifferentialLogic.whyNotReady(p.model)

    def jobInputs(self):
        p = self._parameterNode
        return p.inputVolume, {"lesion_segmentation": p.lesionSegmentation, "model": p.model, "device": p.device,
                               "heatmap": p.heatmap}

    def showResults(self, outputs, inputNode) -> None:
        self.logic.show(outputs, inputNode)


class NeuroDifferentialTest(ScriptedLoadableModuleTest):
    """Runs the shared test functions of `orbitai.testing` (the same ones pytest runs headless)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        import tempfile
        from pathlib import Path

        from orbitai.testing import neuro_differential as t

        self.setUp()
        with tempfile.TemporaryDirectory() as tmp:
            t.test_load_results_adds_lesions_tables_and_heat_map(t.slicer_context(), Path(tmp) / "a")
            t.test_load_results_classifier_does_not_apply(t.slicer_context(), Path(tmp) / "b")
            t.test_load_results_lesions_only(t.slicer_context(), Path(tmp) / "c")
            t.test_load_results_refuses_broken_folders_scene_unchanged(t.slicer_context(), Path(tmp) / "d")
            t.test_load_results_rolls_back_when_a_node_fails(t.slicer_context(), Path(tmp) / "e")
            t.test_job_arguments_write_inputs_and_name_the_command(t.slicer_context(), Path(tmp) / "f")
        t.test_logic_refuses_bad_inputs_before_starting(t.slicer_context())
        t.test_lesion_segmentation_elsewhere_is_refused(t.slicer_context())
        t.test_lesion_segmentation_every_segment_counts(t.slicer_context())
        t.test_model_choices()
        t.test_panel_apply_disabled_without_flair_or_model(t.slicer_context())
        t.test_panel_refuses_lesions_of_another_geometry(t.slicer_context())
        if not t.cli_missing("lesions") and t.lesion_model_installed():
            t.test_logic_finds_lesions_of_phantom(t.slicer_context())
        if t.cli_missing("predict") or not t.installed():
            self.delayDisplay("orbitai neuro predict or an NMOSD/MS model is missing: the end-to-end test skipped")
        else:
            t.test_logic_predicts_phantom_into_scene(t.slicer_context())
        self.delayDisplay("NeuroDifferential self-test passed")
