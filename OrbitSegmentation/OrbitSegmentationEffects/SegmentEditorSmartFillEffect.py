"""SmartFill effect: strokes painted in the selected segment -> 3D graph-cut fill, shown in a
preview segmentation node, then accepted into the segment (with undo) or cancelled. Optional
background strokes come from another segment (an effect parameter)."""
from OrbitEffectBase import OrbitEffectBase, options


class SegmentEditorSmartFillEffect(OrbitEffectBase):
    EFFECT = options.SMARTFILL
    USES_PRIOR = True
    START_FROM_MODEL = True

    def setupActions(self):
        self.previewButton, self.acceptButton, self.cancelButton = self.addButtons(
            ("Preview", self.onPreview), ("Accept", self.onAccept), ("Cancel", self.onCancel))

    def updateActions(self):
        if hasattr(self, "acceptButton"):
            self.acceptButton.enabled = self.cancelButton.enabled = self.logic.previewNode is not None

    def deactivate(self):
        OrbitEffectBase.deactivate(self)   # a pending model action is dropped
        self.logic.smartFillCancel()

    def onPreview(self):
        return self.run(self.logic.smartFillPreview)

    def onAccept(self):
        return self.run(self.logic.smartFillAccept)

    def onCancel(self):
        return self.run(self.logic.smartFillCancel)
