"""No long signatures (issue 63, item 3; issue 82): no function or method in ``orbitai/`` takes more than 10 parameters.

Counted as a reader meets them: every positional and keyword parameter, ``*args`` and ``**kwargs`` one each; the
``self`` or ``cls`` of a method (its first parameter, when so named) is not counted. Nested functions are checked
like any other; lambdas are not (one expression, never a public entry point).

Knobs that travel together belong in one recipe or parameters object (e.g. `orbitai.orbit.finetune.Recipe`,
`orbitai.annotate.autocorrect.CorrectionParameters`), not in a longer list.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MOST = 10

#: Functions allowed more than MOST parameters because their only job is argparse plumbing (turning a parsed
#: namespace into a call): ``"path/to/file.py:function"`` -> the reason. Empty: no such function needs it today.
ARGPARSE_PLUMBING: dict[str, str] = {}


def count_parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The parameters of ``fn`` as this test counts them (see the module docstring)."""
    a = fn.args
    positional = [p.arg for p in (*a.posonlyargs, *a.args)]
    n = len(positional) + len(a.kwonlyargs) + (a.vararg is not None) + (a.kwarg is not None)
    if positional and positional[0] in ("self", "cls"):
        n -= 1
    return n


def long_signatures(root: Path) -> list[str]:
    """``file:line function (n parameters)`` for every function under ``root`` with more than MOST parameters."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = count_parameters(node)
                if n > MOST and f"{rel}:{node.name}" not in ARGPARSE_PLUMBING:
                    found.append(f"{rel}:{node.lineno} {node.name} ({n} parameters)")
    return found


def test_the_counter_counts_as_documented():
    tree = ast.parse("class C:\n"
                     "    def m(self, a, b=1, *args, c, d=2, **kw): pass\n"
                     "def f(a, /, b, *, c): pass\n"
                     "def g(cls_, x): pass\n")
    fns = {n.name: count_parameters(n) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert fns == {"m": 6, "f": 3, "g": 2}


def test_no_function_takes_more_than_10_parameters():
    found = long_signatures(REPO / "orbitai")
    assert not found, (f"functions with more than {MOST} parameters (group the knobs that travel together into a "
                       "recipe or parameters dataclass):\n" + "\n".join(found))


def test_the_plumbing_exceptions_name_real_functions():
    """An exception that names no function any more (renamed, split) is dropped, not kept as a hole."""
    for key in ARGPARSE_PLUMBING:
        rel, name = key.split(":")
        tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
        assert any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
                   for n in ast.walk(tree)), key
