"""Shared plumbing of the OrbitAI scripted effects (Slicer only; the logic lives elsewhere).

Registered by `OrbitSegmentationLib.annotation_logic.register_annotation_effects`. This folder has no
__init__.py on purpose, so it never shadows Slicer's own SegmentEditorEffects package.
"""
import os
import sys

import qt
import slicer
from SegmentEditorEffects import AbstractScriptedSegmentEditorEffect

_MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _MODULE_DIR not in sys.path:
    sys.path.insert(0, _MODULE_DIR)

from OrbitSegmentationLib import annotation_logic as alogic  # noqa: E402


class OrbitEffectBase(AbstractScriptedSegmentEditorEffect):
    """Common helpers: images from the editor, status messages, applying a mask with undo."""

    def icon(self):
        """Resources/<effect name>.png beside the effect files, or no icon."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Resources", f"{self.scriptedEffect.name}.png")
        return qt.QIcon(path) if os.path.exists(path) else qt.QIcon()

    def sourceImage(self):
        get = getattr(self.scriptedEffect, "sourceVolumeImageData", None) or self.scriptedEffect.masterVolumeImageData
        return get()

    def sourceArray(self):
        """(array [k, j, i], spacing) of the source volume aligned with the modifier labelmap."""
        return alogic.oriented_image_to_array(self.sourceImage())

    def selectedSegmentMask(self):
        modifier = self.scriptedEffect.defaultModifierLabelmap()
        return alogic.segment_extent_mask(self.scriptedEffect.selectedSegmentLabelmap(), modifier)

    def ready(self):
        """None when an edit can run, else the reason (shown to the user)."""
        node = self.scriptedEffect.parameterSetNode()
        if node is None or node.GetSegmentationNode() is None:
            return "Select a segmentation first."
        if self.sourceImage() is None:
            return "Select a source volume first."
        if not node.GetSelectedSegmentID():
            return "The segment list is empty or no segment is selected: add and select a segment."
        return None

    def say(self, text):
        if hasattr(self, "statusLabel"):
            self.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)

    def applyMask(self, mask, mode):
        """Save an undo state and modify the selected segment through the editor (which applies
        the masking settings: editable area, intensity range, overwrite)."""
        self.scriptedEffect.saveStateForUndo()
        modifier = self.scriptedEffect.defaultModifierLabelmap()
        alogic.fill_oriented_image(modifier, mask)
        effect = slicer.qSlicerSegmentEditorAbstractEffect
        m = {alogic.MODE_ADD: effect.ModificationModeAdd, alogic.MODE_REMOVE: effect.ModificationModeRemove,
             alogic.MODE_SET: effect.ModificationModeSet}[mode]
        self.scriptedEffect.modifySelectedSegmentByLabelmap(modifier, m)

    def addStatusLabel(self):
        self.statusLabel = qt.QLabel("")
        self.statusLabel.wordWrap = True
        self.scriptedEffect.addOptionsWidget(self.statusLabel)
