"""Everything 3D Slicer imports or runs works on the oldest supported Slicer's Python (issue 28).

The supported Slicer releases and their Pythons are stated once, in ``orbitai/slicer_versions.py``
(Slicer 5.8 ships Python 3.9.10, 5.10 ships 3.12). "Slicer-side" is every Python file of the module
folders (the extension's ``add_subdirectory`` list) and the whole ``orbitai`` package: the top
CMakeLists installs all of ``orbitai/*.py`` next to the modules (``CMake/OrbitAICore.cmake``, which also
byte-compiles them with Slicer's Python at build time) and the job panels run ``PythonSlicer -m orbitai``.
``Testing/`` and ``benchmarks/`` never run inside Slicer and may use the development Python (3.10+).

Three checks, each for what the others cannot see:
* ``vermin`` (in the Makefile's lint target, repeated here): the standard library (modules, members,
  keyword arguments such as ``zip(strict=)`` or ``dataclass(slots=)``) and syntax (``match``, PEP 701
  f-strings) newer than the target, with annotations counted as evaluated;
* the parser with ``feature_version`` = the oldest Python: syntax (and, where a real interpreter of that
  version is on the machine, e.g. pyenv's, that interpreter compiles every file); ruff's
  ``target-version`` (pyproject.toml) rejects newer syntax in ``make lint`` as well;
* run-time ``X | Y`` type unions (``TypeError`` on Python 3.9), which vermin finds only by a heuristic
  that also flags postponed annotations: found here on the syntax tree, outside annotations that
  ``from __future__ import annotations`` leaves unevaluated. The module files have no postponed
  annotations on purpose (Slicer's ``parameterNodeWrapper`` and ``orbitai.mrml.panel`` evaluate them with
  ``typing.get_type_hints``), so their annotations are checked too.

Checked once by hand on a real CPython 3.9.18 with Slicer 5.8's numpy 1.26.4 and the newest scipy,
scikit-learn and scikit-image releases for 3.9 (not needed by this test): every Slicer-side file compiles
and imports (torch, MONAI, captum, pyradiomics and Slicer's own modules replaced by stand-ins whose
attributes are classes, so a run-time union fails as it would), and the torch-free suites (annotation
algorithms, io, cohort, metrics, phantoms, runner) pass, but for one: scikit-learn before 1.8 (1.6.1 is
the last for Python 3.9) does not stratify ``StratifiedGroupKFold(shuffle=True)`` (its PR #32540), so
``orbitai.cohort.splits.grouped_kfold``'s class balance check fails there.
"""
from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from orbitai import slicer_versions as sv

REPO = Path(__file__).resolve().parent.parent
MODULES = re.findall(r"^add_subdirectory\((\w+)\)", (REPO / "CMakeLists.txt").read_text(encoding="utf-8"), flags=re.M)
SLICER_SIDE = ("orbitai", *MODULES)
MIN = sv.MIN_PYTHON


def slicer_side_files() -> list[Path]:
    return sorted(p for root in SLICER_SIDE for p in (REPO / root).rglob("*.py") if "__pycache__" not in p.parts)


def makefile_vermin() -> list[str]:
    """The Makefile's vermin command, variables expanded (one level)."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^(\w+)\s*:?=\s*(.*?)\s*$", text, flags=re.M))
    line = next(ln.strip() for ln in text.splitlines() if "/bin/vermin " in ln)
    line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), line)
    return shlex.split(line.split("/bin/vermin ", 1)[1])


# --- versions stated in one place and everywhere else in agreement ---------------------------------------

def test_supported_versions_are_the_current_release_and_the_one_before():
    assert sv.SUPPORTED_SLICER == ("5.8", "5.10")
    assert sv.MIN_PYTHON == (3, 9) and sv.MAX_PYTHON == (3, 12)
    assert sv.supported_text() == "3D Slicer 5.8 (Python 3.9) and 5.10 (Python 3.12)"


def test_readme_and_extension_metadata_state_the_supported_versions():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert sv.supported_text() in readme, f"README.md does not say {sv.supported_text()!r}"
    cmake = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    description = re.search(r'set\(EXTENSION_DESCRIPTION "([^"]*)"\)', cmake)
    assert description and sv.supported_text() in description.group(1), \
        "EXTENSION_DESCRIPTION (what the Extensions Manager shows) does not state the supported Slicer versions"
    listed = re.search(r'set\(ORBITAI_SUPPORTED_SLICER "([^"]*)"\)', cmake)
    assert listed and listed.group(1).split(";") == list(sv.SUPPORTED_SLICER)


def test_pyproject_and_checkers_target_the_oldest_supported_python():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == sv.requires_python()
    assert any(d.startswith("vermin") for d in pyproject["project"]["optional-dependencies"]["dev"])
    assert pyproject["tool"]["ruff"]["target-version"] == "py{}{}".format(*MIN)
    args = makefile_vermin()
    assert f"-t={MIN[0]}.{MIN[1]}-" in args and "--eval-annotations" in args
    assert sorted(a for a in args if (REPO / a).is_dir()) == sorted(SLICER_SIDE), "vermin does not check all Slicer-side code"


def test_extension_category_is_accepted_and_the_modules_keep_their_group():
    """The Extensions Manager lists the extension under EXTENSION_CATEGORY, "Segmentation", which the Extensions Index
    accepts (its own check runs on the release in Testing/test_release.py); the module selector groups the four modules
    under the panel's CATEGORY."""
    from orbitai.mrml.module_info import CATEGORY

    cmake = (REPO / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r'set\(EXTENSION_CATEGORY "([^"]*)"\)', cmake).group(1) == "Segmentation"
    assert CATEGORY == "OrbitAI"


# --- the checks -------------------------------------------------------------------------------------------

def test_vermin_finds_nothing_newer_than_the_oldest_python():
    pytest.importorskip("vermin", reason="vermin is a dev dependency (pip install -e '.[dev]')")
    run_vermin = "import sys; from vermin import main; sys.argv[0] = 'vermin'; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", run_vermin, *makefile_vermin()], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_parses_with_the_oldest_python_grammar():
    bad = []
    for path in slicer_side_files():
        try:
            ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=MIN)
        except SyntaxError as exc:
            bad.append(f"{path.relative_to(REPO)}:{exc.lineno}: {exc.msg}")
    assert not bad, "\n".join(bad)


def _oldest_python() -> str | None:
    """A real interpreter of the oldest supported Python, if this machine has one (PATH or pyenv)."""
    import glob
    import shutil

    name = "python{}.{}".format(*MIN)
    candidates = sorted(glob.glob(str(Path.home() / f".pyenv/versions/{MIN[0]}.{MIN[1]}.*/bin/{name}")))
    candidates += [p for p in [shutil.which(name)] if p]
    for python in candidates:       # (a pyenv shim on PATH fails when that version is not selected)
        probe = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(MIN):
            return python
    return None


def test_the_oldest_python_compiles_every_file():
    python = _oldest_python()
    if python is None:
        pytest.skip("no Python {}.{} interpreter on this machine".format(*MIN))
    code = ("import sys\nfor p in sys.argv[1:]:\n"
            "    compile(open(p, encoding='utf-8').read(), p, 'exec', dont_inherit=True)\n"
            "print(sys.version_info[:2])")
    proc = subprocess.run([python, "-c", code, *map(str, slicer_side_files())], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == str(MIN), proc.stdout


BUILTIN_TYPES = {"int", "float", "complex", "str", "bytes", "bytearray", "bool", "list", "dict", "set",
                 "frozenset", "tuple", "type", "object", "range", "slice", "memoryview"}
LOWERCASE_TYPES = {"ndarray", "dtype", "generic", "device"}     # np.ndarray, torch.device, ...


def _postponed(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
               for n in tree.body)


def _annotations(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = n.args
            out |= {id(x.annotation) for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                    if x is not None and x.annotation is not None}
            if n.returns is not None:
                out.add(id(n.returns))
        elif isinstance(n, ast.AnnAssign):
            out.add(id(n.annotation))
    return out


def _is_type(node: ast.AST, classes: set[str]) -> bool:
    """Whether an operand of ``|`` is a type (so ``|`` builds a union, new in 3.10), by name: None, a builtin
    or this file's class, a CamelCase name or attribute (not Qt's flag enums), np.ndarray-like, a generic."""
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, str)       # None, a forward reference
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_type(node.left, classes) or _is_type(node.right, classes)
    if isinstance(node, ast.Subscript):
        return _is_type(node.value, classes)
    if isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Attribute):
        name = node.attr
        if isinstance(node.value, ast.Attribute) and node.value.attr == "Qt" or \
                isinstance(node.value, ast.Name) and node.value.id == "Qt":
            return False                                               # qt.Qt.AlignLeft | qt.Qt.AlignTop
        if name in LOWERCASE_TYPES:
            return True
    else:
        return False
    camel = name[:1].isupper() and not name.isupper()
    return name in BUILTIN_TYPES or name in classes or camel


def runtime_unions(source: str, annotations_evaluated: bool = False) -> list[tuple[int, str]]:
    """``X | Y`` of types in code Python runs (so not in postponed annotations): (line, expression)."""
    tree = ast.parse(source)
    skip = set() if annotations_evaluated or not _postponed(tree) else _annotations(tree)
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if id(node) in skip:
            return
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if _is_type(node.left, classes) or _is_type(node.right, classes):
                found.append((node.lineno, ast.unparse(node)))
                return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("isinstance", "issubclass") and len(node.args) == 2 and \
                isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr):
            found.append((node.lineno, ast.unparse(node)))
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_union_finder_on_examples():
    runtime = ("Alias = Mapping[str, Sequence[int] | np.ndarray]", "x = int | None", "isinstance(v, a | b)",
               "def f(a: int | None): pass", "T = TypeVar('T', bound='Foo | None')\nU = 'Foo' | None",
               "class A: pass\nB = A | None", "cast(Path | None, p)")
    for src in runtime:
        assert runtime_unions(src), src
    fine = ("from __future__ import annotations\ndef f(a: int | None = None) -> str | None: pass",
            "from __future__ import annotations\nclass C:\n    x: np.ndarray | None = None",
            "m = (a > 1) | ~b", "flags = os.W_OK | os.X_OK", "s = {1} | {2}", "d = zlib.MAX_WBITS | 32",
            "qt.Qt.AlignLeft | qt.Qt.AlignTop", "def f(a: 'int | None'): pass", "known | {n: n for n in names}")
    for src in fine:
        assert not runtime_unions(src), src
    # annotations that something evaluates (parameterNodeWrapper) count even when postponed
    assert runtime_unions("from __future__ import annotations\nclass P:\n    x: int | None", annotations_evaluated=True)


def test_no_runtime_type_unions():
    """``X | Y`` of types raises TypeError on Python 3.9 wherever it is evaluated: use ``Optional``/``Union``
    there. In orbitai postponed annotations are never evaluated (no get_type_hints on orbitai's classes);
    the module folders' annotations are (parameter nodes), so they are checked even if postponed."""
    bad = []
    for path in slicer_side_files():
        rel = path.relative_to(REPO).as_posix()
        evaluated = not rel.startswith("orbitai/")
        bad += [f"{rel}:{line}: {expr}" for line, expr in runtime_unions(path.read_text(encoding="utf-8"), evaluated)]
    assert not bad, "run-time `X | Y` type unions fail on Python {}.{}:\n".format(*MIN) + "\n".join(bad)


def test_orbitai_evaluates_annotations_only_of_the_module_files():
    """Evaluating postponed annotations (``get_type_hints``, ``eval`` of ``__annotations__``) would run
    their ``X | Y`` on 3.9. In orbitai only the shared panel does, on the modules' parameter node classes,
    whose annotations ``test_no_runtime_type_unions`` checks; `orbitai.app.panel_spec` writes those classes'
    ``__annotations__`` as objects (``Annotated[str, Choice(...)]``, node classes), never as text to evaluate."""
    pattern = re.compile(r"get_type_hints|get_annotations|__annotations__")
    users = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "orbitai").rglob("*.py")
                   if pattern.search(p.read_text(encoding="utf-8")))
    assert set(users) <= {"orbitai/mrml/parameter_nodes.py", "orbitai/app/panel_spec.py"}, f"{users}: check the annotations these evaluate on Python 3.9"
