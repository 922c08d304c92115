"""Issue 82.1, "The predictor is a name, not a skeleton": `orbitai.predictor.Predictor.predict` is the one per-case
skeleton of every task (output check, scan read with its tags, judge, device fallback, result, stamp, DICOM, write),
the tasks fill its hooks, and printing is the command line's.

Read from the code (the AST), not from a run: no task's predictor module, nor any function of a task's ``cli`` module
that calls a predictor, calls one of the skeleton's steps; no task's predictor overrides ``predict``; and no module on
the predict paths (the modules the four predictors import, in the task folders, ``orbitai/scan``, ``orbitai/io``,
``orbitai/dicom`` and the skeleton's own) calls ``print``."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASKS = {"seg": "orbit", "tao": "tao", "ivgc": "ivgc", "neuro": "neuro"}
#: The skeleton's steps, as the functions or methods that do them: the output check, the scan read (with its tags),
#: the judge, the device fallback, the stamp, the DICOM step and the write of the result folder.
STEPS = {"check_outputs", "check_out_dir", "check_own_result", "read_scan", "read_volume", "read_case_image",
         "read_flair", "scan_facts", "run_with_fallback", "stamp", "dicom_extra", "write",
         "write_neuro_result", "staged_folder"}
#: Where the predict paths may print: nowhere but the command line.
PATH_ROOTS = ("orbitai/predictor.py", "orbitai/result.py", "orbitai/scan/", "orbitai/io/", "orbitai/dicom/",
              *(f"orbitai/{folder}/" for folder in TASKS.values()))


def _called(node: ast.AST) -> set[str]:
    """The names of the functions and methods ``node`` calls."""
    out = set()
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        f = call.func
        out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out - {""}


def _tree(relative: str) -> ast.Module:
    return ast.parse((REPO / relative).read_text(encoding="utf-8"))


@pytest.mark.parametrize("task", TASKS)
def test_no_tasks_predictor_does_a_step_of_the_skeleton(task):
    tree = _tree(f"orbitai/{TASKS[task]}/predictor.py")
    assert not _called(tree) & STEPS, f"{task}'s predictor does the skeleton's {sorted(_called(tree) & STEPS)}"
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.endswith("Predictor")):
        assert "predict" not in {f.name for f in cls.body if isinstance(f, ast.FunctionDef)}, cls.name
        assert {f.name for f in cls.body if isinstance(f, ast.FunctionDef)} >= {"read_inputs", "run", "result"}


@pytest.mark.parametrize("task", TASKS)
def test_no_tasks_command_line_does_a_step_of_the_skeleton_where_it_predicts(task):
    """Each function of the task's cli module that reaches its predictor (``predictor_for``, the class, ``predict``)
    leaves the steps to the predictor: it makes the options, calls ``predict`` and says what the result holds."""
    tree = _tree(f"orbitai/{TASKS[task]}/cli.py")
    predicting = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  and _called(f) & {"predict", "predictor_for", "IvgcPredictor", "NeuroPredictor", "_predict"}]
    assert predicting, f"{task}'s command line calls no predictor"
    for f in predicting:
        assert not _called(f) & STEPS, f"{task} cli {f.name} does the skeleton's {sorted(_called(f) & STEPS)}"


def test_a_predictor_cannot_override_the_skeleton():
    from orbitai.predictor import Predictor

    with pytest.raises(TypeError, match="overrides Predictor.predict"):
        type("Own", (Predictor,), {"predict": lambda self, *a, **k: None})


def _module_file(name: str) -> Path | None:
    p = REPO / (name.replace(".", "/") + ".py")
    if p.is_file():
        return p
    p = REPO / name.replace(".", "/") / "__init__.py"
    return p if p.is_file() else None


def _imported(path: Path) -> set[str]:
    """The orbitai modules ``path`` imports at its top level (not under ``if TYPE_CHECKING``)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return {m for m in out if m.startswith("orbitai") and _module_file(m) is not None}


def test_nothing_on_the_predict_paths_prints_but_the_command_line():
    todo = [f"orbitai.{folder}.predictor" for folder in TASKS.values()]
    seen: dict[str, Path] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = path = _module_file(name)
        todo += _imported(path) | {".".join(name.split(".")[:i]) for i in range(2, name.count(".") + 1)}
    on_path = {n: p for n, p in seen.items() if p.relative_to(REPO).as_posix().startswith(PATH_ROOTS)
               and not p.stem == "cli"}
    assert len(on_path) > 40        # the task folders' predict modules, the judge, reading, DICOM, the results
    printing = {n: sum(1 for c in ast.walk(ast.parse(p.read_text(encoding="utf-8"))) if isinstance(c, ast.Call)
                       and isinstance(c.func, ast.Name) and c.func.id == "print") for n, p in on_path.items()}
    assert {n: k for n, k in printing.items() if k} == {}


class _Ran(Exception):
    """Raised by the spy in place of a model run: the test needs to know who ran it, not what it made."""


def _spy(monkeypatch, cls) -> list:
    ran: list = []

    def run(self, case, options, device, progress=None, **kwargs):
        ran.append((type(self), options))
        raise _Ran

    monkeypatch.setattr(cls, "run", run)
    return ran


def test_evaluate_prior_and_rank_run_their_models_through_the_predictor(tmp_path, monkeypatch):
    """``seg evaluate``, ``seg rank``, the annotation tools' model prior (``seg prior``) and ``tao evaluate`` run their
    networks by the task's predictor's ``run`` hook (the one the skeleton calls), with its typed options."""
    from orbitai.io import write_volume
    from orbitai.orbit.evaluate import evaluate
    from orbitai.orbit.predict import SegOptions
    from orbitai.orbit.predictor import OrbitPredictor
    from orbitai.orbit.prior import compute_prior
    from orbitai.orbit.rank import rank_scans
    from orbitai.phantoms import orbit_case
    from orbitai.tao.evaluate import evaluate_tao
    from orbitai.tao.predictor import TaoOptions, TaoPredictor

    case = orbit_case(777005, "t2", tao="active", orientation="axial")
    image, labels = write_volume(case.image, tmp_path / "t2.nrrd"), write_volume(case.labels, tmp_path / "t2_seg.nrrd")
    (tmp_path / "seg.csv").write_text(f"case_id,image,segmentation\na,{image},{labels}\n")
    (tmp_path / "tao.csv").write_text(f"case_id,image,segmentation,label\na,{image},{labels},1\nb,{image},{labels},0\n")
    seg = _spy(monkeypatch, OrbitPredictor)
    with pytest.raises(_Ran):
        evaluate(tmp_path / "seg.csv", "orbit_svnet_mri_demo", tmp_path / "evaluation", device="cpu", progress=lambda *a: None)
    with pytest.raises(_Ran):
        rank_scans([("a", image)], judge=False, cache=False)
    with pytest.raises(_Ran):
        compute_prior(case.image, "orbit_svnet_mri_demo", mirror=False)
    assert [(cls, type(options)) for cls, options in seg] == [(OrbitPredictor, SegOptions)] * 3
    assert [options.prior for _, options in seg] == [False, False, True]
    tao = _spy(monkeypatch, TaoPredictor)
    with pytest.raises(_Ran):
        evaluate_tao(tmp_path / "tao.csv", "B", tmp_path / "tao_evaluation", maps=False)
    assert [(cls, type(options)) for cls, options in tao] == [(TaoPredictor, TaoOptions)]
