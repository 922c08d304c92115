"""The four module panels in the browser, in the order of the page's tabs: the same declarations the Slicer panels
are made from (`orbitai.app.panel_spec.PanelSpec`, one per module in `orbitai.app`). Everything else -- Apply/Cancel,
progress, errors, the job itself -- is shared (`orbitai.web.panel.WebJobPanel` over `orbitai.mrml.panel.JobController`).
"""
from __future__ import annotations

from orbitai.app import ivgc_response, neuro_differential, orbit_segmentation, tao_activity
from orbitai.app.panel_spec import PanelSpec

__all__ = ["modules"]


def modules() -> list[PanelSpec]:
    """The module panels, in the order of the page's tabs."""
    return [orbit_segmentation.PANEL, tao_activity.PANEL, ivgc_response.PANEL, neuro_differential.PANEL]
