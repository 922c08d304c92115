"""How every OrbitAI module describes itself to Slicer (`describeModule`): its Modules-menu category and
contributors, its help text with the sections of its panel and a link to its page of the documentation site
(`DOCS_URL`, `DOCS_PAGES`), and its acknowledgement."""
from __future__ import annotations

import inspect
from typing import Any

import slicer

from orbitai.mrml.results import watch_imports

__all__ = ["describeModule", "moduleHelp", "DOCS_URL", "DOCS_PAGES"]

#: The Modules-menu category and contributors of every OrbitAI module.
CATEGORY = "OrbitAI"
CONTRIBUTORS = ["OrbitAI developers"]
#: The documentation site (mkdocs.yml's ``site_url``; Testing/test_docs.py keeps the two equal).
DOCS_URL = "https://orbitai.github.io/SlicerOrbitAI/"
#: Each module's docs page (under DOCS_URL) and the panel sections its help text names.
DOCS_PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "OrbitSegmentation": ("modules/orbit-segmentation/", ("Scan", "Learn from my corrections", "Which scan next")),
    "TAOActivity": ("modules/tao-activity/", ("Scan", "how far to trust each call")),
    "IVGCResponse": ("modules/ivgc-response/", ("Scan", "how far to trust each call")),
    "NeuroDifferential": ("modules/neuro-differential/", ("Scan", "Learn from my corrections",
                                                          "how far to trust each call")),
}


def moduleHelp(moduleName: str, text: str) -> str:
    """A module's help text: its own paragraph, the sections of its panel and a link to its docs page."""
    page, sections = DOCS_PAGES.get(moduleName, ("", ()))
    named = f" Sections: {', '.join(sections)}." if sections else ""
    return f'{text}{named} Documentation: <a href="{DOCS_URL}{page}">{DOCS_URL}{page}</a>'


def describeModule(module: Any, title: str) -> None:
    """Fill a ``ScriptedLoadableModule``'s ``parent`` the same way for every OrbitAI module. The class
    docstring holds the help text (first paragraph) and the acknowledgement (second paragraph)."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(type(module).__doc__ or "").split("\n\n")]
    parent = module.parent
    parent.title = title
    parent.categories = [CATEGORY]
    parent.dependencies = []
    parent.contributors = list(CONTRIBUTORS)
    parent.helpText = moduleHelp(type(module).__name__, paragraphs[0])
    parent.acknowledgementText = paragraphs[1] if len(paragraphs) > 1 else ""
    # from Slicer's start: a scene loaded before any OrbitAI panel opens converts its old ID links too (#61)
    watch_imports(getattr(slicer, "mrmlScene", None))
