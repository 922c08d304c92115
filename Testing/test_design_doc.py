"""docs/design.md stays true: every file and folder it names exists, every task and module folder of the
repository is named there, and no shared stage imports a task folder."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DESIGN = REPO / "docs" / "design.md"
#: A backquoted repository path: it names a folder (ends with /) or a file with a suffix.
PATH = re.compile(r"`((?:[A-Za-z_][\w.-]*/)+(?:[\w.-]+\.(?:py|md|json|txt|ui|png))?)`")
PLACEHOLDER = re.compile(r"<\w+>")
#: Above the tasks (they dispatch to, preload or self-test a task): may import task folders.
ABOVE_TASKS = ("cli.py", "__main__.py", "worker.py", "commands", "testing", "web")
#: A string that is exactly a dotted module name of the package: an import by name.
MODULE_NAME = re.compile(r"orbitai(?:\.\w+)+")


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


def _task_folders() -> set[str]:
    return {p.name for p in (REPO / "orbitai").iterdir() if (p / "cli.py").is_file() and p.name != "phantoms"}


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, at module level or inside a function; relative ones resolved;
    and of every string that is exactly a module name (``"orbitai.x.y"``: imported by name)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{a.name}" if base == "orbitai" else base) for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAME.fullmatch(node.value):
            found.append((node.lineno, node.value))      # a module named by string (importlib.import_module)
    return found


def test_no_shared_stage_imports_a_task_folder():
    """docs/design.md: "nothing shared imports a task folder" (orbitai/<task>/ builds on the shared stages, never
    the other way round). Only the entry points above the tasks (ABOVE_TASKS) may import them."""
    tasks = _task_folders()
    assert {"orbit", "tao", "ivgc", "neuro"} <= tasks
    arrows = []
    for path in sorted((REPO / "orbitai").rglob("*.py")):
        first = path.relative_to(REPO / "orbitai").parts[0]
        if first in tasks or first in ABOVE_TASKS:
            continue
        for line, module in _imported_modules(path):
            parts = module.split(".")
            if parts[0] == "orbitai" and len(parts) > 1 and parts[1] in tasks:
                arrows.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not arrows, "shared stages import task folders (move the shared part down, or let the task register " \
                       f"itself): {arrows}"
