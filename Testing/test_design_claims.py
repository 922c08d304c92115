"""Issue 82, point 6: every concrete claim of docs/design.md, listed with the check that makes it true.

`CLAIMS` is the checked table: one row per claim, in the order of the design, each either checked here against the
code (a function of this module) or by the named test of Testing/test_design_doc.py that already checks it. A claim
the code stops keeping fails here by its number; fix the code or the design, never the row alone. The claims the
review of issue 82 found false or partly false were fixed in the design (the row says how)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Union

import pytest

import test_design_doc as design

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "orbitai"
DESIGN = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
MODULES = re.findall(r"^add_subdirectory\((\w+)\)", (REPO / "CMakeLists.txt").read_text(encoding="utf-8"), re.M)
TASK_FOLDERS = ("orbit", "tao", "ivgc", "neuro")


def _snake(module: str) -> str:
    """OrbitSegmentation -> orbit_segmentation, IVGCResponse -> ivgc_response, TAOActivity -> tao_activity."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", module).lower()


def _kebab(module: str) -> str:
    return _snake(module).replace("_", "-")


def _tree(relative: str) -> ast.Module:
    return ast.parse((REPO / relative).read_text(encoding="utf-8"))


def _defines(relative: str, *names: str) -> None:
    """``relative`` defines (a class, function or module-level name) each of ``names``; ``A.b`` is a method or
    class attribute ``b`` of class ``A``."""
    tree = _tree(relative)
    top = {n.name: n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
    top.update({t.id: n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)})
    for name in names:
        owner, _, member = name.partition(".")
        assert owner in top, f"{relative} does not define {owner}"
        if member:
            body = top[owner].body
            members = {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))} | \
                {t.target.id for t in body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
            assert member in members, f"{relative}: {owner} has no {member}"


def _modules_loaded(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


# ------------------------------------------------------------------------------------------------------ checks
def every_named_path_exists() -> None:
    missing = [p for p in design._named_paths() if not design.PLACEHOLDER.search(p) and not (REPO / p).exists()]
    assert not missing, missing


def every_package_is_placed() -> None:
    """The layers' picture places every package of orbitai/ (a task folder, a shared stage or a named folder)."""
    packages = sorted(p.parent.name for p in PKG.glob("*/__init__.py")) + \
        sorted(p.name for p in PKG.iterdir() if p.is_dir() and not (p / "__init__.py").exists()
               and not p.name.startswith((".", "_")))
    layers = DESIGN.split("```")[1]
    shared = re.search(r"shared stages:(.*?)```", DESIGN.split("## Layers")[1] + "```", re.S).group(1)
    unplaced = [p for p in packages if f"orbitai/{p}/" not in layers and not re.search(rf"\b{p}\b", shared)]
    assert not unplaced, f"packages of orbitai/ the layers do not place: {unplaced}"


def entry_points_above_the_tasks() -> None:
    """The design's list of the entry points above the tasks is the design test's `ABOVE_TASKS`."""
    rule = re.search(r"only the entry points above the tasks\s+\((.*?)\) do", DESIGN, re.S).group(1)
    named = {p.removeprefix("orbitai/").rstrip("/") for p in re.findall(r"`([^`]+)`", rule)}
    assert named == set(design.ABOVE_TASKS), (named, design.ABOVE_TASKS)


def the_cli_imports_only_the_command_that_runs() -> None:
    from orbitai.cli import COMMANDS

    commands = {module for module, _ in COMMANDS.values()}
    assert not commands & _modules_loaded("import orbitai.cli; orbitai.cli.build_parser('scan')") - \
        {"orbitai.commands.scan"}
    assert not commands & _modules_loaded("import orbitai.cli")


def the_cli_files_import_the_work_inside_each_command() -> None:
    """Importing a task's cli.py (its parser) imports no torch: the work is imported when the command runs."""
    loaded = _modules_loaded("; ".join(f"import orbitai.{t}.cli" for t in TASK_FOLDERS))
    assert "torch" not in loaded


def one_predictor_per_task_in_the_task_table() -> None:
    from orbitai.predictor import Predictor
    from orbitai.tasks import TASKS, predictor_for

    for folder, (name, row) in zip(TASK_FOLDERS, TASKS.items()):
        classes = [n.name for n in _tree(f"orbitai/{folder}/predictor.py").body if isinstance(n, ast.ClassDef)
                   and any(isinstance(b, ast.Name) and b.id == "Predictor" for b in
                           (b.value if isinstance(b, ast.Subscript) else b for b in n.bases))]   # Predictor[...]
        assert len(classes) == 1 and row.predictor == f"orbitai.{folder}.predictor:{classes[0]}", (name, classes)
    assert issubclass(TASKS["seg"].predictor_class(), Predictor)
    assert list(__import__("inspect").signature(predictor_for).parameters)[:3] == ["name", "model", "device"]


def one_file_per_module_in_app() -> None:
    for module in MODULES:
        relative = f"orbitai/app/{_snake(module)}.py"
        _defines(relative, "PANEL")
        bases = [b.id for n in _tree(relative).body if isinstance(n, ast.ClassDef) for b in n.bases
                 if isinstance(b, ast.Name)]
        assert "JobLogic" in bases, f"{relative} has no JobLogic subclass"
        assert (PKG / "app" / "requirements" / f"{module}.txt").is_file()


def panel_sections_and_actions() -> None:
    _defines("orbitai/app/panel_spec.py", "PanelSpec.sections", "Action")
    _defines("orbitai/mrml/panel.py", "SectionPanel", "JobPanelMixin")
    text = "".join(p.read_text(encoding="utf-8") for p in (PKG / "app").glob("*.py"))
    assert "Learn from my corrections" in text and "Which scan next" in text


def the_mrml_job_machinery() -> None:
    _defines("orbitai/mrml/jobs.py", "JobLogic.jobArguments", "JobLogic.importResults", "JobLogic.finish")
    _defines("orbitai/mrml/controller.py", "JobController.apply")
    _defines("orbitai/mrml/editors.py", "Editor")
    for both in ("orbitai/mrml/panel.py", "orbitai/web/panel.py"):     # shared by both front ends
        assert "JobController" in (REPO / both).read_text(encoding="utf-8"), both


def every_logic_is_tested_on_a_real_scene() -> None:
    """Each module's Logic runs in tests on a headless MRML scene: Testing/<Module>/ runs the self-test steps of
    orbitai/testing/<module>.py, which take the scene's context (``ctx``) and make the module's Logic."""
    for module in MODULES:
        tests = "".join(p.read_text(encoding="utf-8") for p in (REPO / "Testing" / module).glob("test_*.py"))
        steps = REPO / "orbitai" / "testing" / f"{_snake(module)}.py"
        on_scene = [n.name for n in ast.walk(ast.parse(steps.read_text(encoding="utf-8")))
                    if isinstance(n, ast.FunctionDef) and n.name.startswith("test_") and n.args.args
                    and n.args.args[0].arg == "ctx"]
        assert f"orbitai.testing import {_snake(module)}" in tests and on_scene, module
        assert f"{module}Logic(" in steps.read_text(encoding="utf-8"), module


def module_folders_are_thin_shells() -> None:
    for module in MODULES:
        folder = REPO / module
        shell = folder / f"{module}.py"
        assert len(shell.read_text(encoding="utf-8").splitlines()) <= 100, f"{shell} is no thin shell"
        assert (folder / "Resources" / "UI" / f"{module}.ui").is_file() and (folder / "CMakeLists.txt").is_file()
        assert (folder / "Resources" / "Icons" / f"{module}.png").is_file()


def the_browser_rooms() -> None:
    _defines("orbitai/mrml/scene.py", "adopt_context")
    _defines("orbitai/web/module_panel.py", "ModulePanel.invalid_option")
    app = (PKG / "web" / "app.py").read_text(encoding="utf-8")
    missing = [room for room in ("loading", "segments", "module_panel", "annotate", "viewer", "client_slices")
               if not re.search(rf"orbitai\.web(\.{room}\b| import .*\b{room}\b)", app)]
    assert not missing, f"orbitai/web/app.py does not put these rooms together: {missing}"
    panels = (PKG / "web" / "modules.py").read_text(encoding="utf-8")
    assert all(f"{_snake(m)}.PANEL" in panels for m in MODULES)


def core_is_snake_case() -> None:
    """camelCase methods only where Slicer, trame or the job panel's view interface call them: orbitai/mrml/,
    orbitai/app/ (Logics, effects) and orbitai/web/ (the same view interface, the segment editor's, wslink's)."""
    camel = [f"{p.relative_to(REPO)}:{n.lineno} {n.name}" for p in sorted(PKG.rglob("*.py"))
             if p.relative_to(PKG).parts[0] not in ("mrml", "app", "web", "testing")
             for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and re.fullmatch(r"_?[a-z]+[A-Z]\w*", n.name)]
    assert not camel, camel


def the_job_flow() -> None:
    _defines("orbitai/jobs/inputs.py", "JobInputs")
    _defines("orbitai/mrml/label_slabs.py", "LabelSlabs")
    assert "orbitai.worker" in (PKG / "jobs" / "warm.py").read_text(encoding="utf-8")
    logic = next(n for n in _tree("orbitai/mrml/jobs.py").body if isinstance(n, ast.ClassDef) and n.name == "JobLogic")
    method = {n.name: n for n in logic.body if isinstance(n, ast.FunctionDef)}
    assert "self.loadResults(" in ast.unparse(method["finish"])
    guarded = [w for w in ast.walk(method["loadResults"]) if isinstance(w, ast.With)
               and "rollback_on_error" in ast.unparse(w.items[0]) and "self.importResults(" in ast.unparse(w)]
    assert guarded, "JobLogic.finish -> loadResults imports the results outside rollback_on_error"
    result = (PKG / "result.py").read_text(encoding="utf-8")
    assert "staged_folder" in result, "TaskResult.write does not write through orbitai/staging.py"


def no_model_on_slicers_main_thread() -> None:
    """orbitai/mrml/, orbitai/app/ and orbitai/web/ load no network: no torch, no call of the prior's network,
    a predictor or a bundle's model; the prior is asked of ``orbitai seg prior`` in the worker or a child."""
    bad = []
    for folder in ("mrml", "app", "web"):
        for path in sorted((PKG / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            bad += [f"{path.relative_to(REPO)}:{line} imports {m}" for line, m in design._imported_modules(path, False)
                    if m.split(".")[0] == "torch"]
            bad += [f"{path.relative_to(REPO)}:{n.lineno} calls {ast.unparse(n.func)}" for n in ast.walk(tree)
                    if isinstance(n, ast.Call) and re.search(r"compute_prior|predictor_for|load_\w*model|\.predict$",
                                                             ast.unparse(n.func))]
    assert not bad, bad
    assert '["seg", "prior"' in (PKG / "app" / "annotation" / "priors.py").read_text(encoding="utf-8")


def the_shared_options() -> None:
    text = (PKG / "arguments.py").read_text(encoding="utf-8")
    assert all(f'"{o}"' in text for o in ("--device", "--nproc", "--out")) and "RESAMPLE_OPTION" in text
    _defines("orbitai/staging.py", "training_work_folder", "finetune_work_folder")


def bundles_and_networks_by_task() -> None:
    for folder in TASK_FOLDERS:
        text = (PKG / folder / "models.py").read_text(encoding="utf-8")
        assert "TaskModels" in text, f"orbitai/{folder}/models.py has no TaskModels"
    shared = design._module_level_strings(_tree("orbitai/models/__init__.py"), "ARCHITECTURES")
    assert shared and all(not m.startswith("orbitai.") or m.startswith("orbitai.models.") for m in shared), shared
    loaded = _modules_loaded("import orbitai.models as m, orbitai.orbit, orbitai.tao, orbitai.ivgc, orbitai.neuro\n"
                             "print(' '.join(sorted(set(v.split('.')[1] for v in m.ARCHITECTURES.values()))))")
    assert set(TASK_FOLDERS) <= loaded, "each task registers its networks from its folder"
    assert "register_rule" in (PKG / "tao" / "__init__.py").read_text(encoding="utf-8")
    schemas = {p.name.split(".")[0] for p in (PKG / "bundle" / "schemas").glob("*.schema.json")}
    assert {"segmentation", "tao_activity", "ivgc_response", "neuro_differential"} <= schemas


def engine_soft_volumes() -> None:
    _defines("orbitai/engine/result.py", "EngineResult.soft_volumes")


def scan_is_the_only_judge() -> None:
    """The image checks the design once named as outside orbitai/scan (the noise warning, the FLAIR's checks) are
    in it; the brain extraction stays with the neuro task; the test that no module outside judges a scan exists."""
    _defines("orbitai/scan/noise.py", "noise_warning")
    _defines("orbitai/scan/flair.py", "check_flair", "check_intracranial_volume")
    _defines("orbitai/neuro/anatomy.py", "extract_brain")
    judge = (REPO / "Testing" / "scan" / "test_one_judge.py").read_text(encoding="utf-8")
    assert "def test_no_module_outside_orbitai_scan_decides_a_scan_question_from_its_values" in judge


def training_caches_and_cpu() -> None:
    import os

    from orbitai.training.checkpoint import CACHE_ENV, cache_folder

    if not os.environ.get(CACHE_ENV, "").strip():
        assert cache_folder("x") == Path.home() / ".orbitai" / "cache" / "x"
    assert all((PKG / "training" / f).is_file() for f in ("speed.py", "prefetch.py"))


def trust_by_task() -> None:
    assert all((PKG / t / "trust.py").is_file() for t in ("tao", "ivgc", "neuro"))
    assert all((PKG / "classify" / f).is_file() for f in ("trust.py", "trust_features.py", "calibration.py",
                                                            "trust_command.py"))


def scopes() -> None:
    _defines("orbitai/tao/spec.py", "SCOPE")
    _defines("orbitai/ivgc/predict.py", "SCOPE")
    assert (PKG / "neuro" / "scope.py").is_file()


def modality_without_the_classifier() -> None:
    assert not {m for m in _modules_loaded("import orbitai.modality") if m.startswith("orbitai.scan")}


def finetune_commands() -> None:
    from orbitai.cli import build_parser

    for argv in (["seg", "finetune", "--help"], ["seg", "rank", "--help"], ["neuro", "finetune-lesions", "--help"]):
        with pytest.raises(SystemExit) as done:
            build_parser(argv[0]).parse_args(argv)
        assert done.value.code == 0, argv
    _defines("orbitai/app/neuro_differential.py", "LesionFinetuneLogic")
    _defines("orbitai/orbit/locate.py", "orbit_focus")


def mindgrab_bundle() -> None:
    import json

    entry = json.loads((PKG / "resources" / "registry.json").read_text(encoding="utf-8"))
    entry = next(v for k, v in (entry.get("entries") or entry).items() if k == "mindgrab_meshnet")
    assert entry["task"] == "brain_extraction" and entry["licence"] == "MIT"


def orthanc_on_localhost() -> None:
    assert "127.0.0.1" in (REPO / "Testing" / "dicom" / "orthanc_fixture.py").read_text(encoding="utf-8")


def a_fifth_module() -> None:
    """The steps of "How to add a fifth module" name what the four modules have."""
    tao_shell = (REPO / "TAOActivity" / "TAOActivity.py").read_text(encoding="utf-8")
    assert "parameter_node_class(PANEL)" in tao_shell and "JobPanelMixin" in tao_shell
    assert "orbitai.tasks.TASKS" in DESIGN.split("## How to add a fifth module")[1]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for module in MODULES:
        assert (REPO / "Testing" / module).is_dir() and (PKG / "testing" / f"{_snake(module)}.py").is_file()
        assert f"### {module}" in readme and (REPO / "docs" / "modules" / f"{_kebab(module)}.md").is_file(), module
    assert (REPO / "Testing" / "test_slicer_modules.py").is_file()


class Claim(NamedTuple):
    number: int
    claim: str                       # as the design says it (shortened)
    check: Union[Callable[[], None], str]   # a check here, or the test of test_design_doc.py that checks it
    history: str = ""                # how issue 82's review found it, when not true, and what was fixed


#: The checked table. Figures (issue 82): of 34 claims, 23 were true, 11 were false or partly false and are fixed
#: (3 false, 8 partly false): claims 5, 7 and 12 by changing the code (the task table above the tasks), 21 too (the
#: in-process prior removed), the others in the design.
CLAIMS = [
    Claim(1, "every path named here exists", every_named_path_exists),
    Claim(2, "the layers place every package of orbitai/", every_package_is_placed,
          "partly false: scan, data, resources, commands and testing were placed nowhere; added to the picture"),
    Claim(3, "slicer and qt are imported only in orbitai/mrml/",
          "test_slicer_and_qt_are_imported_only_in_the_mrml_bridge"),
    Claim(4, "the package never imports a module folder", "test_the_package_never_reaches_into_the_module_folders"),
    Claim(5, "nothing shared imports a task folder", "test_no_shared_stage_imports_a_task_folder",
          "false by name: orbitai/predictor.py named the four task folders (PREDICTORS); the table moved to "
          "orbitai/tasks.py"),
    Claim(6, "only the entry points listed (above the tasks) import task folders", entry_points_above_the_tasks,
          "partly false: the list lacked orbitai/__main__.py; now also orbitai/tasks.py"),
    Claim(7, "no import circle between files or packages, imports by name included",
          "test_no_import_circles_between_files_or_packages",
          "false: \"module:Class\" strings were not read; predictor.py and the task predictors closed a circle"),
    Claim(8, "fewer than 80 imports inside functions outside the cli.py files (and orbitai/testing/)",
          "test_imports_sit_at_the_top_of_files", "partly false: the test also leaves orbitai/testing/ out; said"),
    Claim(9, "orbitai.cli imports only the command that runs", the_cli_imports_only_the_command_that_runs),
    Claim(10, "the cli.py files import the work inside each command", the_cli_files_import_the_work_inside_each_command),
    Claim(11, "each task folder has cli, configs, data, train, predict, evaluate, result, models and predictor.py",
          "test_each_task_folder_holds_the_files_the_design_lists_and_its_predictor"),
    Claim(12, "one Predictor class per task in orbitai/<task>/predictor.py, named in the task table; "
              "predictor_for(task, model, device)", one_predictor_per_task_in_the_task_table,
          "partly false: the table was PREDICTORS in orbitai/predictor.py, and predictor_for could not give neuro's "
          "lesion model nor keep one per worker"),
    Claim(13, "per module one file in orbitai/app/ with its JobLogic subclass and PANEL; its requirements file",
          one_file_per_module_in_app),
    Claim(14, "panels have sections (SectionPanel) and actions (Action): Learn from my corrections, Which scan next",
          panel_sections_and_actions),
    Claim(15, "JobLogic, JobController (both front ends), JobPanelMixin, the segment editor in mrml/",
          the_mrml_job_machinery),
    Claim(16, "every Logic is tested on a real MRML scene", every_logic_is_tested_on_a_real_scene),
    Claim(17, "a module folder is Slicer's shell: a thin <Module>.py, its .ui, icons and CMake",
          module_folders_are_thin_shells),
    Claim(18, "the browser: adopt_context, the rooms put together in web/app.py, ModulePanel.invalid_option, "
              "the PANELs in web/modules.py", the_browser_rooms),
    Claim(19, "the core is snake_case; camelCase only where Slicer calls (Logics, effects) and the browser's side of "
              "the same interfaces", core_is_snake_case,
          "partly false: orbitai/web/ has 23 camelCase methods (the job panel's view, the segment editor's calls, "
          "wslink's); the design now says so"),
    Claim(20, "the job flow: JobInputs, LabelSlabs, the warm worker, all-or-nothing output, import "
              "(JobLogic.finish -> loadResults -> importResults) inside rollback_on_error", the_job_flow,
          "partly false: finish reaches importResults through loadResults, which the design skipped"),
    Claim(21, "no model runs on Slicer's main thread: the prior is orbitai seg prior in the child",
          no_model_on_slicers_main_thread,
          "partly false: PriorCache.compute (orbitai/app/annotation/priors.py, unused) ran the prior's network "
          "in-process; removed"),
    Claim(22, "the commands' shared options in orbitai/arguments.py; the work folders' names", the_shared_options),
    Claim(23, "a task's bundled models as one TaskModels; each task registers its networks in its folder; "
              "bundle rules registered as orbitai/tao/__init__.py does", bundles_and_networks_by_task),
    Claim(24, "EngineResult.soft_volumes", engine_soft_volumes),
    Claim(25, "no image check outside orbitai/scan: the noise warning and the FLAIR's checks included",
          scan_is_the_only_judge,
          "false: io/values.py:noise_warning and neuro/anatomy.py:check_flair judged images outside orbitai/scan; "
          "issue 82's point 3 moved them into orbitai/scan/noise.py and orbitai/scan/flair.py"),
    Claim(26, "training caches in ~/.orbitai/cache; speed.py, prefetch.py", training_caches_and_cpu),
    Claim(27, "each classifier task's trust command and the shared trust modules", trust_by_task),
    Claim(28, "SCOPE in tao/spec.py and ivgc/predict.py; neuro/scope.py", scopes),
    Claim(29, "orbitai/modality.py is read without the scan classifier", modality_without_the_classifier),
    Claim(30, "seg finetune, seg rank, neuro finetune-lesions; LesionFinetuneLogic; orbit_focus", finetune_commands),
    Claim(31, "MindGrab: bundle mindgrab_meshnet, task brain_extraction, MIT", mindgrab_bundle),
    Claim(32, "a real PACS for the tests: Orthanc on 127.0.0.1", orthanc_on_localhost),
    Claim(33, "a fifth module: the task table's row, TAOActivity/ as the shell, Testing/<Module>/ over "
              "orbitai/testing/<module>.py, README and docs/modules/<module>.md", a_fifth_module,
          "partly false: the command was named in orbitai.cli.COMMANDS (now the task table), and the docs are "
          "docs/modules/<module>.md, not docs/<task>.md"),
    Claim(34, "no file of orbitai/ over 500 lines (issue 82's bar)", "test_no_file_of_the_package_is_over_500_lines"),
]


def test_the_table_numbers_its_claims_once():
    assert [c.number for c in CLAIMS] == list(range(1, len(CLAIMS) + 1))
    fixed = [c for c in CLAIMS if c.history]
    assert f"of {len(CLAIMS)} claims, {len(CLAIMS) - len(fixed)} were true, {len(fixed)} were" in \
        (Path(__file__).read_text(encoding="utf-8"))


@pytest.mark.parametrize("claim", CLAIMS, ids=[f"claim{c.number}" for c in CLAIMS])
def test_the_design_claim_holds(claim):
    if isinstance(claim.check, str):
        assert callable(getattr(design, claim.check, None)), f"claim {claim.number}: no test {claim.check}"
    else:
        claim.check()
