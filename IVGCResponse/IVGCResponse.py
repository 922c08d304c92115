"""IVGCResponse: will this thyroid eye disease patient respond to intravenous glucocorticoids?

Thin Slicer module: the parameter node (every user choice, the clinical values included, saved with
the scene), the panel hooks and the self-test. The shared job panel (`orbitai.mrml.panel.JobPanelMixin`)
runs `IVGCResponseLib.IVGCResponseLogic` -- ``orbitai ivgc predict`` in a child process -- which writes
the result table, the selected radiomics features and the Grad-CAM overlay into the scene.
"""
from typing import Annotated  # (no postponed annotations: parameterNodeWrapper reads the Annotated choices)

import slicer
from IVGCResponseLib import DEFAULT_STRATEGY, IVGCResponseLogic, clinical_form
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
    model: Annotated[str, Choice(MODEL_LABELS), Default(IVGCResponseLogic.defaultModelLabel(MODEL_LABELS))]
    clinical: IVGCClinicalValues
    device: Annotated[str, Choice(list(DEVICE_CHOICES)), Default(DEVICE_CHOICES[0])]
    gradcam: Annotated[bool, Default(True)]


class IVGCResponseWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    parameterNodeClass = IVGCResponseParameterNode
    refreshedChoices = {"model": IVGCResponseLogic.modelLabels}
    inputWidgets = ("inputSelector", "segmentationSelector", "orbitSegmentationButton", "strategySelector",
                    "modelSelector", "clinicalCollapsibleButton", "deviceSelector", "gradcamCheckBox")
    missingInputText = "Select a coronal orbital T2 MRI volume."

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
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
            return (f"No IVGC model is installed (bundles {', '.join(IVGCResponseLogic.models.bundled)}); "
                    "see the README to train or install one.")
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
    """Runs the module's self-test steps (`orbitai.testing.ivgc_response.SELF_TEST`, the functions pytest runs
    headless): everything that needs no model stack always; the rest when torch and MONAI are installed
    (offered from the GUI); the summary names what was skipped and why."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from orbitai.mrml.selftest import run_in_slicer
        from orbitai.testing import ivgc_response as t

        self.setUp()
        run_in_slicer("IVGCResponse", t.SELF_TEST, IVGCResponseLogic, self.delayDisplay)
