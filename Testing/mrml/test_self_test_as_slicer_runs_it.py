"""Each module's self-test run as Slicer runs it: the module's ``runTest`` (``SELF_TEST`` through
`orbitai.mrml.selftest.run_in_slicer`) with ``slicer.app`` present, under ``--testing`` and from the GUI,
with only the Python packages Slicer bundles importable and an install that fails as it does offline.

What is replayed from Slicer's source:

* The packages Slicer bundles: ``SuperBuild/External_python-*.cmake`` (v5.8.1 and v5.10.0): numpy, scipy,
  pillow, pydicom, dicomweb-client, requests, packaging (plus SimpleITK, ``External_SimpleITK.cmake``, and VTK,
  CTK, Qt). Every other dependency of orbitai (torch, MONAI, scikit-image, scikit-learn, matplotlib, captum,
  jsonschema, skops, pyradiomics, highdicom) is hidden: ``sys.modules[name] = None`` makes its import fail and
  ``importlib.util.find_spec`` say it is absent, in a child process so that this one is untouched.
* ``slicer.app.testingEnabled()``: True under ``--testing`` (what CTest runs), False from the GUI.
* An install offline: ``slicer.util.pip_install`` runs ``PythonSlicer -m pip install ...`` and
  ``logProcessOutput`` raises ``subprocess.CalledProcessError`` on its non-zero exit
  (``Base/Python/slicer/util.py``, ``_executePythonModule``/``logProcessOutput``, v5.8.1 and v5.10.0); so does
  the PyTorch extension's ``PyTorchUtilsLogic.installTorch`` (it calls ``slicer.util._executePythonModule``,
  SlicerPyTorch ``PyTorchUtils/PyTorchUtils.py``). The user accepts every install offer
  (``confirmOkCancelDisplay`` returns True), which is what reaches the failing install.

Each run must end without a traceback, every step passed or skipped with its reason, nothing offered under
``--testing``, and no offer ever naming the self-test's fake package.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("slicer")

REPO = Path(__file__).resolve().parents[2]
MODULES = {"OrbitSegmentation": "orbit_segmentation", "TAOActivity": "tao_activity",
           "IVGCResponse": "ivgc_response", "NeuroDifferential": "neuro_differential"}
#: Import names of the packages Slicer 5.8.1 / 5.10.0 bundle (see the module docstring) that orbitai uses.
SLICER_BUNDLES = ("numpy", "scipy", "SimpleITK", "PIL", "pydicom", "dicomweb_client", "requests", "packaging")
#: Imported by torch-related code without being a requirement of their own.
TORCH_FAMILY = ("functorch", "torchvision", "torchgen", "triton")

SCRIPT = textwrap.dedent('''
    import json, subprocess, sys, types
    module, shared, mode, hidden = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    for name in hidden:
        sys.modules[name] = None                   # not installed: import fails, find_spec says None
    import slicer
    from orbitai.mrml import new_scene
    seen = {"confirm": [], "pip": [], "torch": [], "shown": []}
    ctx = new_scene()

    class CommandOptions:
        testingEnabled = mode == "testing"

    class App:                                     # slicer.app, as much of it as the self-test touches
        applicationName = "Slicer"
        def testingEnabled(self): return mode == "testing"
        def commandOptions(self): return CommandOptions()
        def applicationLogic(self): return ctx.app_logic
        def layoutManager(self): return None
        def processEvents(self): pass

    def offline(args):                             # slicer.util.logProcessOutput on pip's exit code 1
        raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", *args])

    def pip_install(requirements):
        seen["pip"].append(list(requirements))
        offline(["pip", "install", *requirements])

    def confirm(text, *args, **kwargs):
        seen["confirm"].append(text)
        return True

    class PyTorchUtilsLogic:
        def installTorch(self, askConfirmation=False, torchVersionRequirement=None, **kw):
            seen["torch"].append(torchVersionRequirement)
            offline(["light_the_torch", "install", "torch" + (torchVersionRequirement or "")])

    slicer.app = App()
    slicer.util.pip_install = pip_install
    slicer.util.confirmOkCancelDisplay = confirm
    sys.modules["PyTorchUtils"] = types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic)
    import importlib
    logic_class = getattr(importlib.import_module("orbitai.app." + shared), module + "Logic")
    t = importlib.import_module("orbitai.testing." + shared)
    from orbitai.mrml.selftest import run_in_slicer
    report = run_in_slicer(module, t.SELF_TEST, logic_class, seen["shown"].append)
    still_hidden = [n for n in hidden if n in sys.modules and sys.modules[n] is None]
    print("RESULT " + json.dumps({"passed": report.passed, "skipped": report.skipped, "summary": report.summary(),
                                  "still_hidden": still_hidden, **seen}))
''')


def _hidden(keep: tuple[str, ...] = ()) -> list[str]:
    """Import names of orbitai's dependencies (pyproject, extras included) that Slicer does not bundle."""
    import tomllib

    from orbitai.mrml.dependencies import import_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in ("radiomics", "dicom"):
        reqs += project["optional-dependencies"][extra]
    names = dict.fromkeys([import_name(r) for r in reqs] + list(TORCH_FAMILY))
    return [n for n in names if n not in SLICER_BUNDLES and n not in keep]


def _run(module: str, mode: str, hidden: list[str], tmp_path: Path) -> dict:
    script = tmp_path / "run_self_test.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ORBITAI_WARM_WORKER")}
    res = subprocess.run([sys.executable, str(script), module, MODULES[module], mode, json.dumps(hidden)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"{module} self-test ({mode}) ended with {res.returncode}:\n{res.stderr[-4000:]}"
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out["still_hidden"] == hidden, "a hidden package became importable during the run"
    return out


def _steps(module: str):
    import importlib

    return importlib.import_module(f"orbitai.testing.{MODULES[module]}").SELF_TEST


def _check_steps(module: str, out: dict, hidden: list[str]) -> None:
    """Every step passed, or was skipped because it needs a hidden package (named in the reason)."""
    from orbitai.selftest import MODEL

    steps = _steps(module)
    assert set(out["passed"]) | set(out["skipped"]) == {s.name for s in steps}, out["summary"]
    for step in steps:
        needs_hidden = [m for m in step.modules if m in hidden]
        if needs_hidden:
            why = out["skipped"].get(step.name, "")
            assert why.startswith("needs ") and why.endswith(", not installed"), (step.name, why)
        else:   # nothing it needs is hidden: it ran (a demo bundle it needs is installed here)
            assert step.name in out["passed"], (step.name, out["skipped"].get(step.name))
    model_steps = [s.name for s in steps if MODEL in s.needs]
    assert model_steps and all(name in out["skipped"] for name in model_steps if "torch" in hidden)
    assert len(out["passed"]) >= 6, out["summary"]
    assert out["summary"] == out["shown"][-1]


def _modules(default: str) -> list:
    """Every module; all but ``default`` marked slow (each run is a fresh child, 13-22 s on 2 cores)."""
    return [m if m == default else pytest.param(m, marks=pytest.mark.slow) for m in MODULES]


@pytest.mark.parametrize("module", _modules("OrbitSegmentation"))
def test_self_test_under_testing_mode_offers_nothing_and_skips_what_slicer_lacks(module, tmp_path):
    """``Slicer --testing`` (CTest's ``py_<Module>``): the steps that need no package beyond Slicer's pass, the
    others are skipped with their reason; no install is offered or attempted."""
    hidden = _hidden()
    out = _run(module, "testing", hidden, tmp_path)
    _check_steps(module, out, hidden)
    assert out["confirm"] == [] and out["pip"] == [] and out["torch"] == [], out


@pytest.mark.parametrize("module", _modules("TAOActivity"))
def test_self_test_from_the_gui_offline_skips_with_the_reason(module, tmp_path):
    """From the GUI, offline, with the PyTorch extension installed: the install is offered (the user accepts),
    PyTorchUtils' installer fails as it does offline, the failure is shown in one line that names the network,
    and the steps are run or skipped as under ``--testing``: no traceback."""
    hidden = _hidden()
    out = _run(module, "gui", hidden, tmp_path)
    _check_steps(module, out, hidden)
    assert len(out["torch"]) == 1, out["torch"]
    failure = [m for m in out["shown"] if m.startswith("Could not install")]
    assert len(failure) == 1 and "may be unreachable" in failure[0] and "\n" not in failure[0], out["shown"]
    assert not any("orbitai-no-such-package" in " ".join(p) for p in out["pip"]), out["pip"]
    assert not any("orbitai-no-such-package" in c for c in out["confirm"]), out["confirm"]


@pytest.mark.slow   # installs into a fresh environment; the offline self-tests stay by default
def test_self_test_with_torch_present_offers_scikit_image_and_keeps_torch(tmp_path):
    """torch and MONAI installed (by the PyTorch extension) but not scikit-image & co: the GUI self-test still
    offers the install, with scikit-image in it and torch pinned to its installed version; offline it fails in
    one line, the annotation step and the model steps are skipped naming what they need."""
    from importlib.metadata import version

    hidden = _hidden(keep=("torch", "monai") + TORCH_FAMILY)
    out = _run("OrbitSegmentation", "gui", hidden, tmp_path)
    _check_steps("OrbitSegmentation", out, hidden)
    assert out["torch"] == [], "torch is installed: PyTorchUtils must not be called"
    assert len(out["confirm"]) == 1 and "scikit-image" in out["confirm"][0], out["confirm"]
    assert len(out["pip"]) == 1, out["pip"]
    assert "scikit-image>=0.22" in out["pip"][0] and f"torch=={version('torch')}" in out["pip"][0], out["pip"]
    assert out["skipped"]["test_annotation_effects"] == "needs scikit-image, not installed", out["skipped"]
    assert "torch" not in out["skipped"]["test_logic_segments_phantom_into_scene"]
    assert any(m.startswith("Could not install") and "may be unreachable" in m for m in out["shown"]), out["shown"]
