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
            self.acceptButton.enabled = self.cancelButton.enabled = self.logic.preview_node is not None

    def deactivate(self):
        self.logic.smartfill_cancel()

    def onPreview(self):
        return self.run(self.logic.smartfill_preview)

    def onAccept(self):
        return self.run(self.logic.smartfill_accept)

    def onCancel(self):
        return self.run(self.logic.smartfill_cancel)
