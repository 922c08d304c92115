"""What runs at Slicer module load must work before the first run installs OrbitAI's dependencies.

Slicer ships numpy, SimpleITK and VTK but not torch, MONAI, jsonschema or skops; the modules list
the installed models when they load (parameter-node choices). Each check runs in a fresh Python
whose import system refuses those packages."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "jsonschema", "referencing", "monai", "skops", "captum")

BLOCKER = f"""
import importlib.abc, sys
BLOCKED = {{blocked!r}}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{{{name!r}}}} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Blocker())
sys.path[:0] = [{str(ROOT)!r}]
"""


def run_blocked(code: str, blocked: tuple[str, ...] = BLOCKED) -> str:
    """Run ``code`` with ``blocked`` packages refused; return its stdout (fails on a non-zero exit)."""
    proc = subprocess.run([sys.executable, "-c", BLOCKER.format(blocked=blocked) + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_bundles_are_listed_without_jsonschema_or_torch():
    out = run_blocked("""
        import sys
        import orbitai.bundle, orbitai.device
        from orbitai.bundle import iter_bundles
        print(sorted(b.name for b in iter_bundles()))
        print(sorted(m for m in BLOCKED if m in sys.modules))
    """).splitlines()
    assert out[0] == str(sorted(["orbit_sequnet_ct_demo", "orbit_sunet_ct_demo", "orbit_svnet_ct_demo",
                                 "orbit_svnet_dr_demo", "orbit_svnet_mri_demo", "tao_network_a_demo", "tao_network_b_demo",
                                 "ivgc_svm_demo", "ivgc_resnet50_demo", "ivgc_rdinet_demo",
                                 "ivgc_rdinet_clinical_demo", "neuro_twoview18_demo", "neuro_resnet3d18_demo",
                                 "neuro_lesion_unet_demo", "mindgrab_meshnet"]))
    assert out[1] == "[]"


def test_loading_a_model_without_jsonschema_says_what_to_install():
    out = run_blocked("""
        from orbitai.bundle import BundleError, find_bundle
        b = find_bundle("tao_network_b_demo")
        try:
            b.load_model()
        except BundleError as exc:
            print(exc)
    """, blocked=("jsonschema",))
    assert "cannot be checked: the Python package 'jsonschema' is missing" in out
    assert len(out.strip().splitlines()) == 1


def test_module_logics_list_models_without_dependencies():
    out = run_blocked("""
        import sys
        from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
        from orbitai.app.tao_activity import TAOActivityLogic
        from orbitai.app.ivgc_response import IVGCResponseLogic
        from orbitai.app.neuro_differential import NeuroDifferentialLogic
        print(OrbitSegmentationLogic.modelChoices())
        print(TAOActivityLogic.modelLabels())
        print(IVGCResponseLogic.modelLabels())
        print(NeuroDifferentialLogic.modelLabels())
        print(sorted(m for m in BLOCKED if m in sys.modules))
    """).splitlines()
    seg, tao, ivgc, neuro, loaded = out[-5:]
    assert "Lesions only" in neuro, neuro
    assert "ivgc_svm_demo" in ivgc or "SVM" in ivgc, ivgc
    assert "orbit_svnet_ct_demo" in seg and "orbit_svnet_mri_demo" in seg
    assert tao.count("Network") == 2, tao
    assert loaded == "[]"


def _imported_while_running(folders: tuple[str, ...]) -> list[str]:
    """The orbitai modules that the files under ``folders`` import inside their functions: what the Slicer side
    loads while it runs (reading a prior, scoring a segmentation), after it started without the model stack."""
    import ast

    found: set[str] = set()
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orbitai"):
                        found.add(node.module)
                    elif isinstance(node, ast.Import):
                        found.update(a.name for a in node.names if a.name.startswith("orbitai"))
    return sorted(found)


def test_what_the_slicer_side_imports_while_it_runs_needs_no_model_stack():
    """Issue 45: imports moved to the top of files must not pull torch (or matplotlib, scikit-learn) into a module
    that Slicer's modules import lazily; the task's work itself runs in the child, where they are installed."""
    modules = [m for m in _imported_while_running(("orbitai/app", "orbitai/mrml"))
               if not m.startswith(("orbitai.testing", "orbitai.web"))]
    assert "orbitai.scan" in modules and "orbitai.orbit.evaluate" in modules
    out = run_blocked(f"""
        import importlib
        for name in {modules!r}:
            importlib.import_module(name)
        print("ok")
    """, blocked=(*BLOCKED, "matplotlib", "sklearn"))
    assert out.strip() == "ok"
