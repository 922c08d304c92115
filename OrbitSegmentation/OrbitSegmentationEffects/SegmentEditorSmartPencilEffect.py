"""SmartPencil effect: click adds the superpixel under the cursor, shift-click removes it."""
import vtk
from OrbitEffectBase import OrbitEffectBase, options


class SegmentEditorSmartPencilEffect(OrbitEffectBase):
    EFFECT = options.SMARTPENCIL
    START_FROM_MODEL = True

    def updateActions(self):
        if not self.parameters().get("ShowBoundaries"):
            self.logic.removeBoundaries()

    def deactivate(self):
        OrbitEffectBase.deactivate(self)   # a pending model action is dropped
        self.logic.removeBoundaries()

    def processInteractionEvents(self, callerInteractor, eventId, viewWidget):
        if eventId != vtk.vtkCommand.LeftButtonPressEvent or viewWidget.className() != "qMRMLSliceWidget":
            return False
        ras = self.xyToRas(callerInteractor.GetEventPosition(), viewWidget)
        sliceToRas = viewWidget.sliceLogic().GetSliceNode().GetSliceToRAS()
        self.click(ras, remove=bool(callerInteractor.GetShiftKey()), sliceToRas=sliceToRas)
        return True

    def click(self, ras, remove=False, sliceToRas=None):
        """Add (remove) the superpixel at a RAS point; ``sliceToRas`` of the clicked view (2D mode)."""
        return self.run(self.logic.smartPencilClick, ras=ras, remove=remove, slice_to_ras=sliceToRas)
