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
ABOVE_TASKS = ("cli.py", "__main__.py", "worker.py", "tasks.py", "commands", "testing", "web", "app")
#: A string that is exactly a dotted module name of the package, or ``"module:name"`` (an object of it, as the
#: task table writes a class): an import by name.
MODULE_NAME = re.compile(r"(orbitai(?:\.\w+)+)(?::\w+)?")
#: The files that import a module whose name is a variable (``importlib.import_module(name)``), and the table whose
#: strings, counted as imports by name of that file, say which: a new one is read here before it counts.
IMPORTS_BY_VARIABLE = {
    "orbitai/cli.py": "COMMANDS",
    "orbitai/worker.py": "PRELOAD",
    "orbitai/models/__init__.py": "ARCHITECTURES (the shared ones; each task registers its own from its folder)",
    "orbitai/tasks.py": "TASKS",
}


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


def test_each_task_folder_holds_the_files_the_design_lists_and_its_predictor():
    """The design's "Each has cli.py, configs.py, ..." and "one Predictor class in orbitai/<task>/predictor.py",
    read from the design itself; the task table (`orbitai.tasks.TASKS`) has one row per task folder, whose strings
    name that folder's command, predictor, result, case files and options."""
    from orbitai.tasks import TASKS

    text = DESIGN.read_text(encoding="utf-8")
    bullet = re.search(r"\*\*Task folders\*\*(.*?)\n- ", text, re.S)
    listed = re.search(r"Each has ((?:`\w+\.py`(?:, | and )?)+)", bullet.group(1) if bullet else "")
    assert bullet and listed, "docs/design.md no longer names the task folders and their files"
    tasks = re.findall(r"`orbitai/(\w+)/`", bullet.group(1))
    files = re.findall(r"`(\w+\.py)`", listed.group(1)) + ["predictor.py"]
    missing = [f"orbitai/{t}/{f}" for t in tasks for f in files if not (REPO / "orbitai" / t / f).is_file()]
    assert len(tasks) == 4 and not missing, f"docs/design.md says every task folder has these files: {missing}"
    folders = {}
    for name, row in TASKS.items():
        parts = {part: getattr(row, part) for part in ("command", "predictor", "result", "case_files", "options")}
        named = {part: MODULE_NAME.fullmatch(value or "") for part, value in parts.items()}
        assert all(named.values()) or (row.options is None and all(v for k, v in named.items() if k != "options")), \
            f"the task table's row {name} names its parts as 'module:name': {parts}"
        folders[name] = {m.group(1).split(".")[1] for m in named.values() if m}
    assert sorted(f for fs in folders.values() for f in fs) == sorted(tasks), \
        f"one row per task folder, each naming only its folder: {folders}"
    assert (REPO / "orbitai" / "tasks.py").is_file() and "tasks.py" in ABOVE_TASKS


def _is_module(name: str) -> bool:
    """Whether ``orbitai.x.y`` names a file or package of the checkout."""
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _task_folders() -> set[str]:
    return {p.name for p in (REPO / "orbitai").iterdir() if (p / "cli.py").is_file() and p.name != "phantoms"}


def _names_that_are_not_imports(tree: ast.AST) -> set[int]:
    """The string constants of ``tree`` that name a module without importing it here: a logger's name
    (``getLogger``), a resource package (``resources.files``), and the module a child process runs (the word after
    ``"-m"`` in a command line)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, (ast.Attribute, ast.Name)):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("getLogger", "files"):
                skip.add(id(node.args[0]))
        elif isinstance(node, (ast.List, ast.Tuple)):
            for before, after in zip(node.elts, node.elts[1:]):
                if isinstance(before, ast.Constant) and before.value == "-m":
                    skip.add(id(after))
    return skip


def _is_import_module(node: ast.AST) -> bool:
    """Whether ``node`` is a call of ``importlib.import_module`` (or ``import_module``)."""
    return isinstance(node, ast.Call) and (
        isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
        or isinstance(node.func, ast.Name) and node.func.id == "import_module")


def _module_level_strings(tree: ast.Module, name: str) -> list[str]:
    """The string constants of the module-level assignment to ``name`` (a table such as ``_WHERE``)."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) \
            else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return []


def _imported_by_call(call: ast.Call, tree: ast.Module, where: str) -> list[str]:
    """The modules an ``importlib.import_module(...)`` call may import: a string; an f-string ``"orbitai.x.{...}"``,
    whose part is a module-level table's value (``_WHERE[name]``: each value of the table) or else any module right
    under ``orbitai.x``; a variable only in the files of `IMPORTS_BY_VARIABLE`, whose tables' strings are counted as
    they are (MODULE_NAME)."""
    arg = call.args[0] if call.args else None
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [arg.value]
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        prefix = str(arg.values[0].value)
        rest = arg.values[1:]
        table = (rest[0].value.value.id if len(rest) == 1 and isinstance(rest[0], ast.FormattedValue)
                 and isinstance(rest[0].value, ast.Subscript) and isinstance(rest[0].value.value, ast.Name) else None)
        names = [f"{prefix}{v}" for v in _module_level_strings(tree, table)] if table else []
        names = [n for n in names if _is_module(n)]
        if names:
            return names
        folder = REPO.joinpath(*prefix.rstrip(".").split("."))
        return [f"{prefix}{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"] + \
               [f"{prefix}{p.parent.name}" for p in sorted(folder.glob("*/__init__.py"))]
    assert where in IMPORTS_BY_VARIABLE, (
        f"{where}:{call.lineno} imports a module named by a variable: name its candidates as strings in a table "
        "and add the file to IMPORTS_BY_VARIABLE")
    return []


def _imported_modules(path: Path, by_name: bool = True) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, at module level or inside a function; relative ones resolved;
    and, ``by_name``, of every import by name: a string that is exactly a module name (``"orbitai.x.y"``) or names
    an object of one (``"orbitai.x.y:Class"``), and the modules an ``importlib.import_module`` call may import
    (`_imported_by_call`)."""
    where = str(path.relative_to(REPO))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    not_imports = _names_that_are_not_imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{a.name}" if base == "orbitai" or _is_module(f"{base}.{a.name}") else base)
                      for a in node.names]
        elif by_name and _is_import_module(node):
            found += [(node.lineno, m) for m in _imported_by_call(node, tree, where) if m.startswith("orbitai.")]
        elif (by_name and isinstance(node, ast.Constant) and isinstance(node.value, str)
              and (named := MODULE_NAME.fullmatch(node.value)) and id(node) not in not_imports):
            found.append((node.lineno, named.group(1)))     # a module named by string (importlib.import_module)
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


def test_the_package_never_reaches_into_the_module_folders():
    """Both front ends run from the wheel: nothing under orbitai/ imports a module folder's package (``<Module>Lib``,
    the effects' folder) or edits ``sys.path`` to find one; the Logics and panel declarations are in orbitai/app/."""
    folders = re.findall(r"^add_subdirectory\((\w+)\)", (REPO / "CMakeLists.txt").read_text(encoding="utf-8"), re.M)
    shells = {f"{m}Lib" for m in folders} | {f"{m}Effects" for m in folders} | set(folders)
    bad = []
    for path in sorted((REPO / "orbitai").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for line, module in _imported_modules(path):
            if module.split(".")[0] in shells:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
        for n, row in enumerate(text.splitlines(), 1):
            if re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*\+=|syspath_prepend", row):
                bad.append(f"{path.relative_to(REPO)}:{n} edits sys.path")
            if any(f'"{s}' in row or f"'{s}" in row for s in shells if s.endswith("Lib")):
                bad.append(f"{path.relative_to(REPO)}:{n} names a module Lib")
    assert not bad, bad


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """The circles of a directed graph: its strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles_between_files_or_packages():
    """Every import statement of orbitai (at the top of a file or inside a function, TYPE_CHECKING included) goes one
    way: no circle between two files, nor between two packages (``orbitai.<package>``). ``from a import b`` counts
    as importing ``a.b`` when that is a module, else ``a``. Imports by name count too (a string naming a module:
    the CLI's command table, the warm worker's preloads, the networks' table), except names that import nothing
    here (`_names_that_are_not_imports`)."""
    files = {}
    for path in sorted((REPO / "orbitai").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    file_edges: dict[str, set[str]] = {}
    package_edges: dict[str, set[str]] = {}
    for name, path in files.items():
        for _line, module in _imported_modules(path, by_name=True):
            while module not in files and "." in module:
                module = module.rpartition(".")[0]
            if module in files and module != name and module != "orbitai":
                file_edges.setdefault(name, set()).add(module)
                a, b = ".".join(name.split(".")[:2]), ".".join(module.split(".")[:2])
                if a != b:
                    package_edges.setdefault(a, set()).add(b)
    assert not _strongly_connected(file_edges), f"files import each other: {_strongly_connected(file_edges)}"
    assert not _strongly_connected(package_edges), f"packages import each other: {_strongly_connected(package_edges)}"


def test_slicer_and_qt_are_imported_only_in_the_mrml_bridge():
    """docs/design.md: ``orbitai/mrml/`` is the only bridge to MRML and Qt; nothing else in the package imports
    ``slicer``, ``qt`` or ``ctk`` (at the top or inside a function), so the rest runs without Slicer."""
    bad = [f"{path.relative_to(REPO)}:{line} imports {module}"
           for path in sorted((REPO / "orbitai").rglob("*.py")) if path.relative_to(REPO / "orbitai").parts[0] != "mrml"
           for line, module in _imported_modules(path, by_name=False)
           if module.split(".")[0] in ("slicer", "qt", "ctk", "qSlicerSegmentationsEditorEffectsPythonQt")]
    assert not bad, bad


def _imports_inside_functions(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    count = 0

    def walk(node: ast.AST, in_function: bool) -> None:
        nonlocal count
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                count += 1
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))
    walk(tree, False)
    return count


def test_imports_sit_at_the_top_of_files():
    """Issues 45 and 82: fewer than 80 imports inside functions outside the command modules (``cli.py``, which import
    the work when their command runs) and ``orbitai/testing``. The ones left load an optional or heavy package on a
    path that must stay light (Slicer starting a module without torch, ``orbitai --help``), or are guarded."""
    counts = {str(p.relative_to(REPO)): _imports_inside_functions(p) for p in sorted((REPO / "orbitai").rglob("*.py"))
              if p.name != "cli.py" and "testing" not in p.relative_to(REPO).parts}
    total = sum(counts.values())
    worst = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    assert total < 80, f"{total} imports inside functions; most in {worst}"


#: Issue 82's bar (600 in issue 63): a file longer than this is split by concern into rooms of its own.
MAX_FILE_LINES = 500


def test_no_file_of_the_package_is_over_500_lines():
    """Issues 63 and 82 (crowded rooms): no file in ``orbitai/`` has more than `MAX_FILE_LINES` lines."""
    long = sorted((n, str(p.relative_to(REPO))) for p in (REPO / "orbitai").rglob("*.py")
                  if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES)
    assert not long, f"files over {MAX_FILE_LINES} lines (split them by concern): {long[::-1]}"


#: Issue 82's bar (at most 20) lowered to where the code is: the browser's rooms reach the app only through
#: `orbitai.web.host.WebHost` and signals, no ``self.app.`` use left in orbitai/web/.
MAX_APP_REACH_BACKS = 0
#: The rooms of orbitai/web/ and the module each is in: each is built on the host Protocol.
WEB_ROOMS = {"ScanLoader": "loading", "ShownResults": "segments", "ModulePanel": "module_panel",
             "AnnotationPanel": "annotate", "WindowLevel": "viewer", "Layouts": "viewer", "ClientSlices": "client_slices"}
#: The scene's query calls, which the rooms make through `orbitai/mrml/queries.py` and `orbitai/mrml/results.py`.
SCENE_QUERIES = re.compile(r"\.(GetNodeByID|GetNthNodeByClass|GetNumberOfNodesByClass|GetFirstNodeByClass|GetNthNode|"
                           r"GetNumberOfNodes)\(")


def _first_parameter_annotation(module: str, cls: str) -> str:
    tree = ast.parse((REPO / "orbitai" / "web" / f"{module}.py").read_text(encoding="utf-8"))
    klass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    init = next(n for n in klass.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    annotation = init.args.args[1].annotation
    return ast.unparse(annotation) if annotation is not None else ""


def test_the_browser_rooms_reach_the_app_through_the_host_protocol():
    """Issue 82, point 4: no ``app: Any`` in orbitai/web/; every room is built on `WebHost` (the composition root,
    ``OrbitWebApp``, provides each of its members and connects the rooms' signals); at most `MAX_APP_REACH_BACKS`
    ``self.app.`` uses; no scene query called on the scene itself (`orbitai/mrml/queries.py` answers them)."""
    web = {p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "orbitai" / "web").glob("*.py"))}
    untyped = [f"{name}:{n}" for name, text in web.items() for n, line in enumerate(text.splitlines(), 1)
               if re.search(r"\bapp\s*:\s*Any\b", line)]
    assert not untyped, f"rooms that take the app as Any (type them against orbitai.web.host.WebHost): {untyped}"
    reach = {name: text.count("self.app.") for name, text in web.items() if "self.app." in text}
    assert sum(reach.values()) <= MAX_APP_REACH_BACKS, f"{sum(reach.values())} self.app. uses: {reach}"
    loose = {room: a for room, module in WEB_ROOMS.items() if (a := _first_parameter_annotation(module, room)) != "WebHost"}
    assert not loose, f"rooms not built on the host Protocol: {loose}"
    host = ast.parse(web["host.py"])
    protocol = next(n for n in host.body if isinstance(n, ast.ClassDef) and n.name == "WebHost")
    members = {n.name for n in protocol.body if isinstance(n, ast.FunctionDef)}
    app = web["app.py"]
    provided = {"state", "server"}      # trame's TrameApp
    missing = [m for m in sorted(members - provided) if not re.search(rf"(self\.{m}\s*=|def {m}\()", app)]
    assert not missing, f"OrbitWebApp does not provide these WebHost members: {missing}"
    assert "def _wire_rooms" in app and "self._wire_rooms()" in app, "the rooms' signals are connected in one place"
    shadowed = [f"{name}: {signal}" for name, text in web.items()
                for signal in re.findall(r"^    (\w+) = Signal\(", text, re.M)
                if re.search(rf"\b_{signal}\b", text)]       # undo_stack keeps signal x in the instance's _x
    assert not shadowed, f"signals whose instance attribute _<name> is taken: {shadowed}"
    queries = [f"{name}:{n}" for name, text in web.items() for n, line in enumerate(text.splitlines(), 1)
               if SCENE_QUERIES.search(line)]
    assert not queries, f"scene queries in orbitai/web/ (use orbitai.mrml.queries): {queries}"
