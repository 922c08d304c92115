"""The seam between the annotation panel (`orbitai.web.annotate.AnnotationPanel`) and its tools, as `WebHost` is the
rooms' (`orbitai.web.host`): its basic edits (`orbitai.web.edit_tools.EditTools`) and its preparation of the shown scan
(`orbitai.web.annotate_prepare.Preparer`) are built on an `AnnotationTools`, what they may use of the panel."""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from orbitai.app.annotation.logic import AnnotationLogic
from orbitai.web.module_panel import ModulePanel
from orbitai.web.segments import ShownResults

__all__ = ["AnnotationTools"]


class AnnotationTools(Protocol):
    """What the annotation panel's tools use of it (`orbitai.web.annotate.AnnotationPanel`): nothing else."""

    @property
    def state(self) -> Any:
        """trame's shared state."""

    @property
    def server(self) -> Any:
        """trame's server: triggers."""

    @property
    def logic(self) -> AnnotationLogic:
        """The tools' logic on the panel's editor (`orbitai.app.annotation.logic.AnnotationLogic`)."""

    @property
    def se(self) -> Any:
        """trame-slicer's segmentation editor (its active segmentation node)."""

    @property
    def results(self) -> ShownResults:
        """The shown scan's results and segments (`orbitai.web.segments.ShownResults`)."""

    @property
    def panels(self) -> Sequence[ModulePanel]:
        """The modules' panels, whose results tables follow an edit."""

    def scan(self) -> Any:
        """The shown scan's volume node, or None."""

    def undo(self) -> Any:
        """Undo the last edit; its one-line result."""

    def redo(self) -> Any:
        """Redo the last undone edit; its one-line result."""

    def button_callback(self, operation: Callable[[], Any], what: str) -> Callable[[], Any]:
        """A button's callback: busy, ``what`` said, ``operation`` run on the server loop, its result shown."""
