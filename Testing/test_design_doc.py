"""docs/design.md stays true: every file and folder it names exists, and every task and module folder of the
repository is named there."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DESIGN = REPO / "docs" / "design.md"
#: A backquoted repository path: it names a folder (ends with /) or a file with a suffix.
PATH = re.compile(r"`((?:[A-Za-z_][\w.-]*/)+(?:[\w.-]+\.(?:py|md|json|txt|ui|png))?)`")
PLACEHOLDER = re.compile(r"<\w+>")


def _named_paths() -> list[str]:
    return sorted(set(PATH.findall(DESIGN.read_text(encoding="utf-8"))))


def test_design_doc_exists_and_names_paths():
    assert DESIGN.is_file(), "docs/design.md is missing"
    assert len(_named_paths()) >= 20


def test_every_path_the_design_names_exists():
    missing = [p for p in _named_paths() if not PLACEHOLDER.search(p) and not (REPO / p).exists()]
    assert not missing, f"docs/design.md names paths that do not exist: {missing}"


def test_every_task_and_module_folder_is_in_the_design():
    text = DESIGN.read_text(encoding="utf-8")
    modules = re.findall(r"^add_subdirectory\((\w+)\)", (REPO / "CMakeLists.txt").read_text(encoding="utf-8"), re.M)
    tasks = [p.name for p in (REPO / "orbitai").iterdir() if (p / "cli.py").is_file() and p.name != "phantoms"]
    for name in [f"{m}/" for m in modules] + [f"orbitai/{t}/" for t in tasks]:
        assert f"`{name}" in text, f"docs/design.md does not name {name}"
