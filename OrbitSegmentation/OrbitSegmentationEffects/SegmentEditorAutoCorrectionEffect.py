"""AutoCorrection effect: fill holes, remove islands, snap the border to image edges."""
from OrbitEffectBase import OrbitEffectBase, options


class SegmentEditorAutoCorrectionEffect(OrbitEffectBase):
    EFFECT = options.AUTOCORRECTION
    USES_PRIOR = True

    def setupActions(self):
        (self.applyButton,) = self.addButtons(("Apply", self.onApply))

    def onApply(self):
        return self.run(self.logic.autocorrect)
