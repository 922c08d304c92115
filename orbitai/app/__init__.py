"""The four modules' Logics and panel descriptions: what the Slicer panels and the browser app both run.

Each module is one file here (`orbit_segmentation`, `tao_activity`, `ivgc_response`, `neuro_differential`): its
`JobLogic` subclass (MRML in, MRML out, the model in a child process) and its `PANEL`, the one declaration of the
panel's input, options (choices, defaults), readiness rule and result table, from which the Slicer parameter node
(`orbitai.mrml.parameter_nodes.parameter_node_class`) and the web panel (`orbitai.web.modules`) are made. The annotation
effects' logic is `annotation/`. The module folders keep only Slicer's shell (module file, ``.ui``, icons, CMake,
the effects' Qt glue). Each module's third-party requirements are ``requirements/<Module>.txt``.
"""
from __future__ import annotations

from pathlib import Path

#: ``requirements/<Module>.txt``: the packages a module needs inside Slicer (ranges in sync with pyproject.toml).
REQUIREMENTS = Path(__file__).with_name("requirements")


def requirements_file(module: str) -> Path:
    """The requirements file of a Slicer module (e.g. ``"TAOActivity"``)."""
    return REQUIREMENTS / f"{module}.txt"
