"""The seam between the browser app and its rooms (issue 82), as trame-slicer's ``BaseLogic`` and
``MedicalViewerLogic``: each room is built on a `WebHost`, what it may use of the app, and tells the other rooms what
happened through its own signals (`Signal`: trame-slicer's, from ``undo_stack``), which one composition root,
`orbitai.web.app.OrbitWebApp`, connects where it builds the rooms. No room holds the app.

The signals:

- a scan loaded (``ScanLoader.scan_loaded``: the new volume node, its volume and the resolution steps already packed
  for the page): the page's copy adopts them (`orbitai.web.client_slices.ClientSlices.adopt`) and the node lists are
  read again, before the scan is selected;
- results imported (``ScanLoader.results_imported`` for a ``.seg.nrrd``, ``ModulePanel.results_imported`` for a job's
  outputs, with the scan they belong to or None, and whether the views go to them): the lists are read again and the
  shown scan's results shown;
- a segmentation created (``AnnotationPanel.segmentation_created``): the lists are read again;
- a model installed (``ModulePanel.model_installed``): every panel reads its choices again;
- a scan shown (``OrbitWebApp.scan_shown``, the shown scan's node or None): each room follows, in the order the root
  connects them;
- the layout changed (``Layouts.layout_changed``) and a ruler placed (``Layouts.ruler_placed``): the views fit, the
  mouse mode comes back.

A signal ``x`` keeps its connections in the instance's ``_x`` (``undo_stack.Signal``): a room has no other ``_x``.

The annotation panel's tools (its basic edits, `orbitai.web.edit_tools.EditTools`, and its preparation of the shown
scan, `orbitai.web.annotate_prepare.Preparer`) are built on the panel as an `orbitai.web.annotate_seam.AnnotationTools`.

Scene queries go through `orbitai.mrml` helpers (`orbitai.mrml.queries`, `orbitai.mrml.results`), not
``vtkMRMLScene`` calls.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from undo_stack import Signal

from orbitai.mrml.scene import MRMLContext

__all__ = ["WebHost", "Signal"]


class WebHost(Protocol):
    """What a room uses of the app (`orbitai.web.app.OrbitWebApp`): nothing else."""

    @property
    def state(self) -> Any:
        """trame's shared state."""

    @property
    def server(self) -> Any:
        """trame's server: triggers, controller callbacks, attachments."""

    @property
    def mrml(self) -> MRMLContext:
        """The scene, adopted as OrbitAI's MRML context (`orbitai.mrml.scene.adopt_context`)."""

    @property
    def slicer_app(self) -> Any:
        """trame-slicer's ``SlicerApp``: its view manager, segment editor and markups logic."""

    @property
    def layout_manager(self) -> Any:
        """trame-slicer's ``LayoutManager``."""

    @property
    def prepare_on(self) -> str:
        """When a scan's annotation is prepared: "show" or "annotate" (`orbitai.web.annotate_prepare`)."""

    @property
    def launched(self) -> asyncio.Event:
        """Set once the page has drawn the launch's scan: what its first frame does not need waits for it."""

    def launch_done(self) -> None:
        """The page has drawn the launch's scan (or the wait for it is over)."""

    def input_node(self) -> Any:
        """The shown scan's volume node, or None."""
