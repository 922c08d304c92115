"""IVGCResponse: will this thyroid eye disease patient respond to intravenous glucocorticoids?

Thin Slicer module: the parameter node (made from the panel's one declaration, `orbitai.app.ivgc_response.PANEL`;
the clinical values included, saved with the scene), the clinical form's widgets and the self-test. The shared job
panel (`orbitai.mrml.panel.JobPanelMixin`) runs `orbitai.app.ivgc_response.IVGCResponseLogic` -- ``orbitai ivgc
predict`` in a child process -- which writes the result table, the selected radiomics features and the Grad-CAM
overlay into the scene.
"""
import slicer
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from orbitai.app.ivgc_response import PANEL, clinical_form
from orbitai.mrml.module_info import describeModule
from orbitai.mrml.panel import JobPanelMixin
from orbitai.mrml.parameter_nodes import parameter_node_class


class IVGCResponse(ScriptedLoadableModule):
    """Predicts whether a patient with thyroid eye disease responds to intravenous glucocorticoids
    (IVGC) from a coronal orbital T2 MRI, a segmentation of the recti of both orbits and, for the
    clinical model, 16 clinical values: radiomics SVM, ResNet-50 or RDINet (with or without clinical
    features), with the selected radiomics features and a Grad-CAM map over the MRI. Bundled models
    are trained on synthetic phantoms: research use only, not for clinical use.

    Zhang et al. Residual Dynamic Integration Network (RDINet): radiomics, ResNet-50 and clinical features
    fused by a dynamic mapping module to predict the response to intravenous glucocorticoids in thyroid eye
    disease. Digital Health, doi:10.1177/20552076261443669.
    """

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        describeModule(self, "IVGC Response")


#: Every user choice, saved with the scene: inputVolume, rectiSegmentation, strategy, model, device, gradcam and
#: the clinical form (a parameter pack: one text per feature of IVGC_CLINICAL, ``clinical.<feature>``, empty = not
#: given; the Logic parses and checks them).
IVGCResponseParameterNode = parameter_node_class(PANEL)


class IVGCResponseWidget(JobPanelMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    panel = PANEL
    parameterNodeClass = IVGCResponseParameterNode
    inputWidgets = ("inputSelector", "segmentationSelector", "orbitSegmentationButton", "strategySelector",
                    "modelSelector", "clinicalCollapsibleButton", "deviceSelector", "gradcamCheckBox")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        self.setupJobPanel()

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
        run_in_slicer("IVGCResponse", t.SELF_TEST, PANEL.logic, self.delayDisplay)
