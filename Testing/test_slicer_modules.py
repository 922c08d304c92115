"""Static checks of the Slicer modules, which cannot run without the Slicer application here.

For every module folder listed in the extension's CMakeLists.txt:
* every Python file compiles;
* the module's CMakeLists lists every Python file of the module (so nothing is left out of
  the build) and registers the self-test;
* every widget the module code uses as ``self.ui.<name>`` exists in its ``.ui`` with a
  plausible Qt/CTK/Slicer class;
* the module's ``ScriptedLoadableModuleTest`` calls test functions that exist in Testing/.
"""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_CMAKE = (REPO / "CMakeLists.txt").read_text()
MODULES = re.findall(r"^add_subdirectory\((\w+)\)", TOP_CMAKE, flags=re.M)
WIDGET_CLASS = re.compile(r"^(Q\w+|ctk\w+|qMRML\w+|qSlicer\w+)$")


def test_top_level_layout():
    for name in ("CMakeLists.txt", "README.md", "pyproject.toml", "Makefile", "orbitai", "Resources",
                 "Testing", "benchmarks", ".ci/run"):
        assert (REPO / name).exists(), f"{name} missing from the repository top level"
    for mod in MODULES:
        assert (REPO / mod).is_dir(), f"CMakeLists.txt adds module {mod} but the folder is missing"


def module_python_files(mod: str) -> list[Path]:
    return sorted(p for p in (REPO / mod).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("mod", MODULES)
def test_module_files_compile_and_are_listed(mod):
    cmake = (REPO / mod / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", mod)
    assert "slicerMacroBuildScriptedModule" in cmake and "WITH_GENERIC_TESTS" in cmake
    for path in module_python_files(mod):
        compile(path.read_text(), str(path), "exec")
        rel = path.relative_to(REPO / mod).as_posix()
        if rel.startswith("Testing/"):
            continue
        assert rel in cmake or rel.removesuffix(".py") in cmake, f"{mod}/CMakeLists.txt does not list {rel}"
    tests_cmake = REPO / mod / "Testing" / "Python" / "CMakeLists.txt"
    assert tests_cmake.exists() and "slicer_add_python_unittest" in tests_cmake.read_text()
    listed = re.findall(r"^\s+(\S+\.py)\s*$", cmake, flags=re.M)
    for rel in listed:
        assert (REPO / mod / rel).exists(), f"{mod}/CMakeLists.txt lists {rel}, which does not exist"


def ui_widgets(ui_path: Path) -> dict[str, str]:
    root = ET.parse(ui_path).getroot()
    return {w.get("name"): w.get("class") for w in root.iter("widget")}


@pytest.mark.parametrize("mod", MODULES)
def test_ui_has_every_widget_the_code_uses(mod):
    ui_path = REPO / mod / "Resources" / "UI" / f"{mod}.ui"
    assert ui_path.exists(), f"{ui_path} missing"
    widgets = ui_widgets(ui_path)
    for name, cls in widgets.items():
        assert WIDGET_CLASS.match(cls or ""), f"{mod}.ui: widget {name} has an unexpected class {cls}"
    code = (REPO / mod / f"{mod}.py").read_text()
    used = set(re.findall(r"self\.ui\.(\w+)", code))
    missing = sorted(used - set(widgets))
    assert not missing, f"{mod}.py uses widgets missing from {mod}.ui: {missing}"
    assert (REPO / mod / "Resources" / "Icons" / f"{mod}.png").exists()


@pytest.mark.parametrize("mod", MODULES)
def test_self_test_calls_shared_test_functions(mod):
    """The module's Test class runs functions from Testing/ (one body of tests for both)."""
    tree = ast.parse((REPO / mod / f"{mod}.py").read_text())
    test_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)
                    and any(getattr(b, "id", "") == "ScriptedLoadableModuleTest" for b in n.bases)]
    assert test_classes, f"{mod}.py has no ScriptedLoadableModuleTest"
    src = ast.unparse(test_classes[0])
    called = set(re.findall(r"\b(test_\w+)\(", src))
    assert called, f"{mod} self-test calls no shared test function"
    shared = "\n".join(p.read_text() for p in (REPO / "Testing").rglob("test_*.py"))
    for fn in called:
        if f"def {fn}(" not in src:
            assert f"def {fn}(" in shared, f"{mod} self-test calls {fn}, which is not in Testing/"


def _parameter_node_fields(tree: ast.Module) -> set[str]:
    """Annotated fields of the module's ``@parameterNodeWrapper`` class(es)."""
    fields = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        if any("parameterNodeWrapper" in ast.unparse(d) for d in cls.decorator_list):
            fields |= {s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)}
    return fields


@pytest.mark.parametrize("mod", MODULES)
def test_ui_parameter_bindings_match_the_parameter_node(mod):
    """Every ``SlicerParameterName`` in the .ui is a parameter-node field and every field is bound
    (``connectGui`` silently ignores a misspelt name)."""
    root = ET.parse(REPO / mod / "Resources" / "UI" / f"{mod}.ui").getroot()
    bound = {p.findtext("string") for p in root.iter("property") if p.get("name") == "SlicerParameterName"}
    fields = _parameter_node_fields(ast.parse((REPO / mod / f"{mod}.py").read_text()))
    assert not bound - fields, f"{mod}.ui binds {sorted(bound - fields)}, not fields of the parameter node {sorted(fields)}"
    assert not fields - bound, f"{mod} parameter-node fields {sorted(fields - bound)} have no widget in {mod}.ui"


@pytest.mark.parametrize("mod", MODULES)
def test_self_test_passes_every_argument(mod):
    """The module's self-test calls each shared test function with as many arguments as it takes
    (pytest fixtures are not there to fill the gaps inside Slicer)."""
    tree = ast.parse((REPO / mod / f"{mod}.py").read_text())
    test_class = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                      and any(getattr(b, "id", "") == "ScriptedLoadableModuleTest" for b in n.bases))
    defs = {}
    for path in (REPO / "Testing").rglob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                defs.setdefault(node.name, []).append(node)
    for call in (n for n in ast.walk(test_class) if isinstance(n, ast.Call)):
        name = getattr(call.func, "attr", getattr(call.func, "id", ""))
        if not name.startswith("test_") or name not in defs:
            continue
        wanted = {len(d.args.args) - len(d.args.defaults) for d in defs[name]}
        assert len(call.args) + len(call.keywords) in wanted, (
            f"{mod} self-test calls {name} with {len(call.args) + len(call.keywords)} argument(s); it takes {wanted}")


@pytest.mark.parametrize("mod", MODULES)
def test_logic_imports_no_qt(mod):
    """The Logic (``<Module>Lib``) runs headless: no qt or ctk imports at module level."""
    for path in sorted((REPO / mod / f"{mod}Lib").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in ("qt", "ctk")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad} at module level; the Logic must run headless"
