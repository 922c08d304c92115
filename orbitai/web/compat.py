"""Work-arounds for defects of the pinned trame-slicer, each limited to the version that has it.

trame-slicer 2.0.0, Paint and Erase: a brush pipeline made while its view was still being built has no view
(``SegmentationEditor._try_create_effect_pipeline`` calls ``pipeline.SetView(view_manager.get_view(...))`` before the
view factory has stored the view), so ``SegmentationPaintPipeline.SetActive`` finds no widget and raises
``AttributeError: 'NoneType' object has no attribute 'paint_interaction_stopped'``. The web app builds its views before
any effect, and `install` also makes ``SetActive`` look the view up when the brush is activated. Testing/web checks
that painting strokes works (the SmartFill test), so a trame-slicer upgrade that fixes or changes this is noticed.
"""
from __future__ import annotations

from importlib.metadata import version
from typing import Any

__all__ = ["install", "AFFECTED_VERSIONS"]

#: trame-slicer versions whose brush pipelines can miss their view (1.12.0 to 2.0.0, from the source).
AFFECTED_VERSIONS = ("1.12.0", "1.12.1", "1.12.2", "1.12.3", "2.0.0")
_installed = False


def install(view_manager: Any) -> bool:
    """Patch the brush pipelines of an affected trame-slicer to find their view from ``view_manager`` on activation
    (once per process; the app has one view manager). Returns True when the patch is in place."""
    global _installed
    if version("trame-slicer") not in AFFECTED_VERSIONS:
        return False
    if _installed:
        return True
    from trame_slicer.segmentation.segmentation_paint_pipeline import SegmentationPaintPipeline

    original = SegmentationPaintPipeline.SetActive

    def SetActive(self: Any, isActive: bool) -> None:
        if isActive and getattr(self, "_view", None) is None:
            view = view_manager.get_view(self.GetViewNode())
            if view is not None:
                self.SetView(view)
        if isActive and not self.widget and getattr(self, "_view", None) is None:
            # Still no view (it is not one of this app's views): nothing to paint in, so no widget.
            super(SegmentationPaintPipeline, self).SetActive(isActive)
            return
        original(self, isActive)

    SegmentationPaintPipeline.SetActive = SetActive
    _installed = True
    return True
