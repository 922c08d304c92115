"""The package as a user gets it: a wheel installed (not editable) into a fresh venv without pytest.

* every module's self-test (`orbitai.testing`, with the Logics of `orbitai.app`) runs there, with no module folder,
  no ``Testing/`` folder and no pytest;
* ``orbitai web --help`` answers and ``orbitai web`` serves its page on a phantom;
* ``orbitai seg predict`` and ``orbitai tao predict`` work with the demo models shipped in the wheel.

Third-party dependencies come from this project's venv through a ``.pth`` file pointing at a folder of
links to its site-packages, minus pytest and minus the editable ``orbitai`` (no network needed).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: Slicer module -> its self-test module in orbitai.testing.
SELF_TESTS = {"OrbitSegmentation": "orbit_segmentation", "TAOActivity": "tao_activity", "IVGCResponse": "ivgc_response",
              "NeuroDifferential": "neuro_differential"}
#: Left out of the fresh venv's dependencies: pytest and its parts, and the editable orbitai.
EXCLUDED = ("pytest", "_pytest", "py.py", "iniconfig", "pluggy", "__editable__", "orbitai", "distutils-precedence")


def _run(argv, cwd: Path, env=None, timeout=900) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, argv))} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


#: The model stack, left out of the second fresh venv (a Slicer without the PyTorch extension).
MODEL_STACK = ("torch", "monai", "captum", "functorch", "torchgen", "nvidia", "triton")


def _fresh_venv(root: Path, excluded: tuple[str, ...]) -> tuple[Path, Path]:
    """(python of a fresh venv with the orbitai wheel installed, a work folder outside the checkout)."""
    src = root / "src"   # built from a copy, so the checkout gets no build/ folder
    shutil.copytree(REPO / "orbitai", src / "orbitai", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", root / "dist", src],
         cwd=root)
    wheel = next((root / "dist").glob("orbitai-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root)
                .stdout.strip())
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel], cwd=root)
    deps = root / "deps"
    deps.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if not entry.name.startswith(excluded) and not entry.name.endswith(".pth"):
            (deps / entry.name).symlink_to(entry)
    (site / "project_deps.pth").write_text(f"{deps}\n")
    work = root / "work"
    work.mkdir()
    return python, work


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh venv with the wheel and every dependency but pytest."""
    return _fresh_venv(tmp_path_factory.mktemp("wheel"), EXCLUDED)


@pytest.fixture(scope="module")
def fresh_without_model_stack(tmp_path_factory):
    """A fresh venv with the wheel and its dependencies except pytest and the model stack (torch, MONAI,
    captum): what a Slicer without the PyTorch extension has."""
    return _fresh_venv(tmp_path_factory.mktemp("wheel-no-torch"), EXCLUDED + MODEL_STACK)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def test_installed_package_has_no_pytest_and_is_the_wheel(fresh):
    python, work = fresh
    res = subprocess.run([str(python), "-c", "import pytest"], cwd=work, env=_env(), capture_output=True, text=True)
    assert res.returncode != 0 and "No module named 'pytest'" in res.stderr
    where = _run([python, "-c", "import orbitai, orbitai.testing; print(orbitai.__file__)"], cwd=work, env=_env())
    assert str(REPO) not in where.stdout and "site-packages" in where.stdout
    models = _run([python, "-c", "from orbitai.bundle import iter_bundles; print(sorted(b.name for b in iter_bundles()))"],
                  cwd=work, env=_env())
    for name in ("orbit_svnet_ct_demo", "orbit_svnet_mri_demo", "orbit_svnet_dr_demo", "tao_network_a_demo", "tao_network_b_demo"):
        assert name in models.stdout, f"the wheel does not ship {name}: {models.stdout}"


#: A module's whole self-test in the fresh venv: ``self_test.py MODULE SHARED [no-model-stack]``; the last argument
#: checks that torch and MONAI are absent and stay unimported.
SELF_TEST = textwrap.dedent("""
    import importlib, sys
    import orbitai
    from orbitai.mrml import new_scene
    from orbitai import selftest
    assert "pytest" not in sys.modules and "Testing" not in "".join(sys.path)
    assert not any(m.endswith("Lib") for m in sys.modules), "a module folder's Lib was imported"
    module, shared, without = sys.argv[1], sys.argv[2], sys.argv[3:] == ["no-model-stack"]
    if without:
        assert selftest.model_stack_missing() == ["torch", "monai"], selftest.model_stack_missing()
    steps = importlib.import_module("orbitai.testing." + shared).SELF_TEST
    contexts = []
    def fresh():
        contexts.append(new_scene())
        return contexts[-1]
    report = selftest.run(module, steps, fresh)
    for ctx in contexts:
        ctx.close()
    if without:
        assert "torch" not in sys.modules and "monai" not in sys.modules, "a torch-free step imported torch"
    print("SUMMARY " + report.summary())
    print("STEPS", len(steps), len(report.passed), "pytest" in sys.modules, orbitai.__file__)
""")


@pytest.mark.parametrize("module", SELF_TESTS)
def test_every_self_test_runs_from_the_installed_package(fresh, module):
    """Each module's whole self-test runs from the wheel: the Logics are in the package, no module folder is there."""
    python, work = fresh
    script = work / "self_test.py"
    script.write_text(SELF_TEST)
    res = _run([python, script, module, SELF_TESTS[module]], cwd=work, env=_env(), timeout=1800)
    summary = next(ln for ln in res.stdout.splitlines() if ln.startswith("SUMMARY "))
    steps, passed, has_pytest, where = next(ln for ln in res.stdout.splitlines() if ln.startswith("STEPS ")).split()[1:]
    assert has_pytest == "False" and str(REPO) not in where, where
    # every step ran, or was skipped for a bundle this wheel does not ship (named in the summary)
    assert int(passed) == int(steps) or ("not installed" in summary and int(passed) >= int(steps) // 2), summary


WEB = textwrap.dedent("""
    import sys, urllib.request
    from orbitai.io import write_volume
    from orbitai.phantoms import orbit_case
    from orbitai.testing.web import web_server
    write_volume(orbit_case(777013, modality="ct", oblique=False).image, sys.argv[1])
    with web_server(sys.argv[1], start_timeout_s=180.0) as server:
        with urllib.request.urlopen(server.url, timeout=60) as page:
            print("PAGE", page.status, len(page.read()))
""")


def test_web_app_runs_from_the_installed_package(fresh):
    """``orbitai web --help`` and the web app serving its page on a phantom, from the wheel alone."""
    pytest.importorskip("trame_slicer", reason="the web app needs orbitai[web]")
    python, work = fresh
    helped = _run([python.parent / "orbitai", "web", "--help"], cwd=work, env=_env())
    assert "DATA" in helped.stdout and "--port" in helped.stdout
    (work / "web.py").write_text(WEB)
    res = _run([python, work / "web.py", work / "web_ct.nrrd"], cwd=work, env=_env(), timeout=600)
    status = next(ln for ln in res.stdout.splitlines() if ln.startswith("PAGE ")).split()
    assert status[1] == "200" and int(status[2]) > 500, res.stdout


def test_predict_commands_with_the_bundled_models(fresh):
    python, work = fresh
    orbitai = python.parent / "orbitai"
    _run([python, "-c", textwrap.dedent(f"""
        from orbitai.io import write_volume
        from orbitai.phantoms import orbit_case
        write_volume(orbit_case(777011, modality="ct", oblique=False).image, "{work}/ct.nrrd")
        write_volume(orbit_case(777012, "t2", tao="active", orientation="axial").image, "{work}/t2.nrrd")
        """)], cwd=work, env=_env())
    _run([orbitai, "seg", "predict", work / "ct.nrrd", "--out", work / "seg", "--device", "cpu"], cwd=work, env=_env())
    seg = json.loads((work / "seg" / "result.json").read_text())
    assert seg["model"] == "orbit_svnet_ct_demo" and len(seg["structures"]) >= 10
    assert (work / "seg" / "segmentation.seg.nrrd").is_file()
    _run([orbitai, "tao", "predict", work / "t2.nrrd", "--out", work / "tao", "--device", "cpu", "--no-maps"],
         cwd=work, env=_env())
    tao = json.loads((work / "tao" / "result.json").read_text())
    assert tao["model"] == "tao_network_b_demo" and sorted(e["side"] for e in tao["eyes"]) == ["left", "right"]


@pytest.mark.parametrize("module, shared", [("OrbitSegmentation", "orbit_segmentation"), ("TAOActivity", "tao_activity"),
                                            ("IVGCResponse", "ivgc_response"),
                                            ("NeuroDifferential", "neuro_differential")])
def test_self_test_without_the_model_stack_passes_its_part_and_names_the_rest(fresh_without_model_stack, module, shared):
    """Issue #28: the module's self-test in an installed-wheel environment without torch and MONAI runs every
    step that needs no model and names each skipped one with the reason."""
    python, work = fresh_without_model_stack
    script = work / "self_test.py"
    script.write_text(SELF_TEST)
    res = _run([python, script, module, shared, "no-model-stack"], cwd=work, env=_env(), timeout=1200)
    summary = next(ln for ln in res.stdout.splitlines() if ln.startswith("SUMMARY "))
    import importlib

    steps = importlib.import_module(f"orbitai.testing.{shared}").SELF_TEST
    model_steps = [s.name for s in steps if "model" in s.needs]
    free_steps = [s.name for s in steps if "model" not in s.needs]
    # the reason names every package the steps need that is missing here: torch and MONAI, captum where they use it
    assert model_steps and re.search(rf"Skipped {len(model_steps)} \(needs torch and monai( and [\w-]+)*, not installed\): ",
                                     summary), summary
    for name in model_steps:
        assert name in summary, f"{name} is not named as skipped: {summary}"
    passed = {ln.split()[1] for ln in res.stdout.splitlines() if ln.startswith("passed ")}
    assert passed <= set(free_steps), passed
    for name in set(free_steps) - passed:       # only a missing bundle may skip a torch-free step
        assert name in summary and "not installed" in summary, f"{name} neither passed nor was named: {summary}"
    assert len(passed) >= 4, summary
