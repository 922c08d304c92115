"""Static checks of the Slicer modules, which cannot run without the Slicer application here.

For every module folder listed in the extension's CMakeLists.txt:
* every Python file compiles;
* the module's CMakeLists lists every Python file of the module (so nothing is left out of
  the build) and registers the self-test;
* every widget the module code uses as ``self.ui.<name>`` exists in its ``.ui`` with a
  plausible Qt/CTK/Slicer class;
* the module's ``ScriptedLoadableModuleTest`` calls shared test functions of ``orbitai/testing``
  (importable from an installed extension, no pytest), never anything under ``Testing/``;
* the module's requirements file holds the version ranges of ``pyproject.toml``, in sync;
* the module's main file stays thin: the job panel is the shared one.
"""
from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_TESTS = REPO / "orbitai" / "testing"
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


def _shared_sources() -> dict[str, str]:
    return {p.stem: p.read_text() for p in SHARED_TESTS.glob("*.py")}


SHARED_MODULE = {"OrbitSegmentation": "orbit_segmentation", "TAOActivity": "tao_activity",
                 "IVGCResponse": "ivgc_response", "NeuroDifferential": "neuro_differential"}


@pytest.mark.parametrize("mod", MODULES)
def test_self_test_runs_the_shared_steps(mod):
    """The module's Test class runs its steps from orbitai.testing (one body of tests for both runners, which
    an installed extension has) through `orbitai.mrml.selftest.run_in_slicer`; it never reaches into
    Testing/, and the shared functions need no pytest."""
    tree = ast.parse((REPO / mod / f"{mod}.py").read_text())
    test_classes = [n for n in tree.body if isinstance(n, ast.ClassDef)
                    and any(getattr(b, "id", "") == "ScriptedLoadableModuleTest" for b in n.bases)]
    assert test_classes, f"{mod}.py has no ScriptedLoadableModuleTest"
    src = ast.unparse(test_classes[0])
    assert "Testing" not in src and "sys.path" not in src, f"{mod} self-test reaches into Testing/"
    shared = SHARED_MODULE[mod]
    assert f"from orbitai.testing import {shared} as t" in src, f"{mod} self-test does not import orbitai.testing.{shared}"
    assert f"run_in_slicer('{mod}', t.SELF_TEST" in src and "from orbitai.mrml.selftest import run_in_slicer" in src, f"{mod} self-test does not run t.SELF_TEST"
    for name, text in _shared_sources().items():
        assert not re.search(r"^\s*(import pytest|from pytest)", text, re.M), f"orbitai/testing/{name}.py imports pytest"


def _panel(mod: str):
    """The module's panel declaration (`orbitai.app.<module>.PANEL`)."""
    import importlib

    return importlib.import_module(f"orbitai.app.{SHARED_MODULE[mod]}").PANEL


def _parameter_node_fields(mod: str) -> set[str]:
    """The fields of the module's parameter node: made from its panel declaration (input, options, display, and the
    options of its sections)."""
    panel = _panel(mod)
    return {panel.input_parameter, *(o.parameter for s in (panel, *panel.sections) for o in s.all_options())}


@pytest.mark.parametrize("mod", MODULES)
def test_every_section_and_action_has_its_widgets(mod):
    """A section's Apply, progress and status, and each action's button, are in the .ui under the names the panel
    looks them up by (`orbitai.mrml.panel.SectionPanel`)."""
    root = ET.parse(REPO / mod / "Resources" / "UI" / f"{mod}.ui").getroot()
    names = {w.get("name") for w in root.iter("widget")}
    panel = _panel(mod)
    for section in panel.sections:
        assert section.prefix and {f"{section.prefix}{w}" for w in ("ApplyButton", "ProgressBar", "StatusLabel")} <= names
        assert {f"{a.name}Button" for a in section.actions} <= names


@pytest.mark.parametrize("mod", MODULES)
def test_ui_parameter_bindings_match_the_parameter_node(mod):
    """Every ``SlicerParameterName`` in the .ui is a parameter-node field and every field is bound
    (``connectGui`` silently ignores a misspelt name)."""
    root = ET.parse(REPO / mod / "Resources" / "UI" / f"{mod}.ui").getroot()
    bound = {p.findtext("string") for p in root.iter("property") if p.get("name") == "SlicerParameterName"}
    fields = _parameter_node_fields(mod)
    assert not bound - fields, f"{mod}.ui binds {sorted(bound - fields)}, not fields of the parameter node {sorted(fields)}"
    assert not fields - bound, f"{mod} parameter-node fields {sorted(fields - bound)} have no widget in {mod}.ui"
    choosers = {w.get("name") for w in root.iter("widget")
                if w.get("class") in ("QComboBox", "QCheckBox", "QSpinBox", "QDoubleSpinBox", "qMRMLNodeComboBox")}
    unbound = sorted(w.get("name") for w in root.iter("widget") if w.get("name") in choosers
                     and not any(p.get("name") == "SlicerParameterName" for p in w.findall("property")))
    assert not unbound, f"{mod}.ui choices {unbound} are not in the parameter node (not saved with the scene)"
    items = [w.get("name") for w in root.iter("widget") if w.get("class") == "QComboBox" and w.findall("item")]
    assert not items, f"{mod}.ui lists choices in {items}; they come from the parameter node's Choice lists"


@pytest.mark.parametrize("mod", MODULES)
def test_self_test_steps_pass_every_argument(mod, monkeypatch):
    """Each step of the module's SELF_TEST gives its function exactly the arguments it takes, by name (pytest
    fixtures are not there to fill the gaps inside Slicer): ``ctx`` and ``tmp`` (the function's tmp_path)."""
    import importlib
    import inspect

    shared = importlib.import_module(f"orbitai.testing.{SHARED_MODULE[mod]}")
    assert shared.SELF_TEST, f"orbitai.testing.{SHARED_MODULE[mod]}.SELF_TEST is empty"
    from orbitai.mrml.dependencies import import_name, read_requirements

    from orbitai.app import requirements_file

    required = [import_name(r) for r in read_requirements(requirements_file(mod))]
    for step in shared.SELF_TEST:
        params = [p for p in inspect.signature(step.test).parameters.values() if p.default is p.empty]
        wanted = ["tmp" if p.name == "tmp_path" else p.name for p in params]
        assert list(step.args) == wanted, f"{mod}: step {step.name} passes {step.args}, the function takes {wanted}"
        # needs: "model" (torch and MONAI) and packages of the module's requirements, by import name
        assert set(step.needs) <= {"model"} | set(required), (step.name, step.needs)
    # a step that runs a model needs all of them: Apply checks the whole requirements file before a job starts
    assert {m for s in shared.SELF_TEST if "model" in s.needs for m in s.modules} == set(required)


def test_logic_imports_no_qt():
    """The Logics and panel declarations (``orbitai/app/``) run headless: no qt or ctk imports at module level."""
    for path in sorted((REPO / "orbitai" / "app").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in ("qt", "ctk")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad} at module level; the Logic must run headless"


def _pyproject_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = set(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps |= {d for d in extra if not d.startswith("orbitai")}
    return deps


@pytest.mark.parametrize("mod", MODULES)
def test_requirements_file_agrees_with_pyproject(mod):
    """One requirements file per module (``orbitai/app/requirements/<Module>.txt``, read by the
    Logic's ensureDependencies, installed with the package by CMake/OrbitAICore.cmake): version ranges in sync with pyproject.toml (each line exactly one of its
    specifiers)."""
    from orbitai.mrml.dependencies import read_requirements, requirement_name

    from orbitai.app import requirements_file

    path = requirements_file(mod)
    assert path.is_file(), f"{mod} has no {path.relative_to(REPO)}"
    lines = read_requirements(path)
    assert lines and "torch" in [requirement_name(r) for r in lines]
    unknown = sorted(set(lines) - _pyproject_dependencies())
    assert not unknown, f"{path.relative_to(REPO)} lines {unknown} differ from pyproject.toml's specifiers"
    assert len({requirement_name(r) for r in lines}) == len(lines), f"{path.name} names a package twice"
    assert "orbitai/app/requirements/*.txt" in (REPO / "CMake" / "OrbitAICore.cmake").read_text()
    assert _panel(mod).logic.requirements == path, f"{mod}'s Logic does not read its requirements file"


@pytest.mark.parametrize("mod", MODULES)
def test_module_main_file_is_thin(mod):
    """The module file declares the Module, the parameter node, the panel hooks and the self-test; the
    Apply/Cancel/poll/finish machinery is the shared `orbitai.mrml.panel` one (no copies)."""
    src = (REPO / mod / f"{mod}.py").read_text()
    assert "JobPanelMixin" in src and "setupJobPanel(" in src
    for copied in ("QTimer", "def onPoll", "def cancelJob", "def onApplyButton", "errorDisplay", "ensureDependencies"):
        assert copied not in src, f"{mod}.py has its own {copied}: use orbitai.mrml.panel"
    assert len(src.splitlines()) < 160, f"{mod}.py has {len(src.splitlines())} lines; keep the module file thin"
    assert not re.search(r'"cuda"|"mps"', src), f"{mod}.py repeats the device list; use orbitai.device.DEVICE_CHOICES"

