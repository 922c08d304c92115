"""IVGCResponse: will this thyroid eye disease patient respond to intravenous glucocorticoids?

Thin Slicer module: the parameter node (every user choice, the clinical values included, saved with
the scene), the panel hooks and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`)
runs `IVGCResponseLib.IVGCResponseLogic` -- ``orbitai ivgc predict`` in a child process -- which writes
the result table, the selected radiomics features and the Grad-CAM overlay into the scene.
"""
from typing import Annotated  # (no postponed annotations: parameterNodeWrapper reads the Annotated choices)

import slicer
from IVGCResponseLib import DEFAULT_MODEL, DEFAULT_STRATEGY, MODELS, IVGCResponseLogic, clinical_form
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, Default, parameterNodeWrapper, parameterPack
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.cohort.clinical import IVGC_CLINICAL
from orbitai.device import DEVICE_CHOICES
from orbitai.ivgc.rois import STRATEGY_NAMES
from orbitai.mrml.panel import JobPanelMixin, describeModule

MODEL_LABELS = IVGCResponseLogic.modelLabels()
#: The clinical form's values: one text field per feature of IVGC_CLINICAL (empty = not given),
#: stored in the parameter node as ``clinical.<feature>``; the Logic parses and checks them.
IVGCClinicalValues = parameterPack(type("IVGCClinicalValues", (), {"__annotations__": dict.fromkeys(IVGC_CLINICAL.names, str)}))


class IVGCResponse(ScriptedLoadableModule):
    """Predicts whether a patient with thyroid eye disease responds to intravenous glucocorticoids
    (IVGC) from a coronal orbital T2 MRI, a segmentation of the recti of both orbits and, for the
    clinical model, 16 clinical values: radiomics SVM, ResNet-50 or RDINet (with or without clinical
    features), with the selected radiomics features and a Grad-CAM map over the MRI. Bundled models
    are trained on synthetic phantoms: research use only, not for clinical use.

    Reproduces paper 001 (radiomics and RDINet for IVGC response prediction from orbital T2 MRI).
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "IVGC Response")


@parameterNodeWrapper
class IVGCResponseParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    rectiSegmentation: vtkMRMLSegmentationNode
    strategy: Annotated[str, Choice(list(STRATEGY_NAMES)), Default(DEFAULT_STRATEGY)]
    model: Annotated[str, Choice(MODEL_LABELS),
                     Default(MODELS[DEFAULT_MODEL] if MODELS[DEFAULT_MODEL] in MODEL_LABELS else MODEL_LABELS[0])]
    clinical: IVGCClinicalValues
    device: Annotated[str, Choice(list(DEVICE_CHOICES)), Default(DEVICE_CHOICES[0])]
    gradcam: Annotated[bool, Default(True)]


class IVGCResponseWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    parameterNodeClass = IVGCResponseParameterNode
    inputWidgets = ("inputSelector", "segmentationSelector", "orbitSegmentationButton", "strategySelector",
                    "modelSelector", "clinicalCollapsibleButton", "deviceSelector", "gradcamCheckBox")
    missingInputText = "Select a coronal orbital T2 MRI volume."

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.modelsInstalled = bool(IVGCResponseLogic.modelChoices())
        self.setupJobPanel(IVGCResponseLogic(), "UI/IVGCResponse.ui", "Predict the response to IVGC")

    def setupWidgets(self) -> None:
        """The clinical form, built from IVGC_CLINICAL (name, unit, plausible range in the tool tip)."""
        import qt

        form = self.ui.clinicalCollapsibleButton.layout()
        for name, label, tip in clinical_form():
            edit = qt.QLineEdit()
            edit.setProperty("SlicerPackParameterName", name)
            edit.placeholderText = "empty: not given"
            edit.toolTip = tip
            form.addRow(f"{label}:", edit)
        self.ui.orbitSegmentationButton.connect("clicked(bool)", lambda _: slicer.util.selectModule("OrbitSegmentation"))

    def clinicalValues(self) -> dict:
        return {name: self._parameterNode.clinical.getValue(name) for name in IVGC_CLINICAL.names}

    def whyNotReady(self) -> str:
        p = self._parameterNode
        if not self.modelsInstalled:
            return ("No IVGC model is installed (bundles ivgc_svm_demo, ivgc_resnet50_demo, ivgc_rdinet_demo, "
                    "ivgc_rdinet_clinical_demo); see the README to train or install one.")
        if p is not None and p.inputVolume is not None and p.rectiSegmentation is None:
            return "Select the segmentation of the recti of both orbits (or create one with Orbit Segmentation)."
        return super().whyNotReady() or IVGCResponseLogic.whyNotReady(p.model, p.strategy, self.clinicalValues())

    def jobInputs(self):
        p = self._parameterNode
        return p.inputVolume, {"segmentation_node": p.rectiSegmentation, "strategy": p.strategy, "model": p.model,
                               "clinical": self.clinicalValues(), "device": p.device, "gradcam": p.gradcam}

    def showResults(self, outputs, inputNode) -> None:
        self.logic.show(outputs, inputNode)


class IVGCResponseTest(ScriptedLoadableModuleTest):
    """Runs the shared test functions of `orbitai.testing` (the same ones pytest runs headless)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        import tempfile
        from pathlib import Path

        from orbitai.testing import ivgc_response as t

        self.setUp()
        with tempfile.TemporaryDirectory() as tmp:
            t.test_load_results_writes_tables_and_overlay(t.slicer_context(), Path(tmp) / "a")
            t.test_load_results_refuses_broken_folders_scene_unchanged(t.slicer_context(), Path(tmp) / "b")
        t.test_clinical_values_checked_with_the_schema()
        t.test_logic_refuses_bad_inputs_before_starting(t.slicer_context())
        t.test_logic_refuses_missing_rectus_scene_unchanged(t.slicer_context())
        t.test_logic_refuses_unusable_segmentations(t.slicer_context())
        if t.installed(t.SVM):
            t.test_logic_predicts_phantom_into_scene(t.slicer_context())
            t.test_logic_refuses_strategy_the_model_was_not_trained_on(t.slicer_context())
            t.test_panel_binds_results_to_starting_input(t.slicer_context())
        if t.installed(t.CLINICAL):
            t.test_clinical_model_refuses_missing_and_out_of_range(t.slicer_context())
            t.test_logic_clinical_model_on_phantom(t.slicer_context())
        if not (t.installed(t.SVM) and t.installed(t.CLINICAL)):
            self.delayDisplay("IVGC demo bundles not installed: some end-to-end tests skipped")
        self.delayDisplay("IVGCResponse self-test passed")
