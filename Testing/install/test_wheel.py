"""The package as a user gets it: a wheel installed (not editable) into a fresh venv without pytest.

* the modules' self-test functions (`orbitai.testing`) import and run there with the module Lib
  folders copied beside them and no ``Testing/`` folder;
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
LIBS = [REPO / "OrbitSegmentation" / "OrbitSegmentationLib", REPO / "TAOActivity" / "TAOActivityLib",
        REPO / "IVGCResponse" / "IVGCResponseLib", REPO / "NeuroDifferential" / "NeuroDifferentialLib"]
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


SELF_TEST = textwrap.dedent("""
    import sys
    from pathlib import Path
    import orbitai
    from orbitai.mrml import new_scene
    from orbitai.testing import orbit_segmentation as seg, tao_activity as tao
    assert "pytest" not in sys.modules and "Testing" not in "".join(sys.path)
    tmp = Path(sys.argv[1])
    runs = [
        (seg.test_parameter_choices, ()), (seg.test_logic_refuses_2d_input, ("ctx",)),
        (seg.test_load_results_all_or_nothing, ("ctx", "tmp")), (seg.test_failing_job_leaves_scene_unchanged, ("ctx",)),
        (seg.test_panel_missing_dependency_reaches_dialog, ("ctx", "tmp")),
        (seg.test_logic_segments_phantom_into_scene, ("ctx", "tmp")),
        (tao.test_parameter_choices, ()), (tao.test_load_results_writes_table_rois_and_overlays, ("ctx", "tmp")),
        (tao.test_load_results_refuses_broken_folders_scene_unchanged, ("ctx", "tmp")),
        (tao.test_load_results_rolls_back_when_a_node_fails, ("ctx", "tmp")),
        (tao.test_logic_refuses_bad_choices_before_starting, ("ctx",)),
        (tao.test_logic_classifies_phantom_into_scene, ("ctx",)),
    ]
    for n, (fn, wanted) in enumerate(runs):
        ctx = new_scene()
        args = {"ctx": ctx, "tmp": tmp / str(n)}
        fn(*[args[a] for a in wanted])
        ctx.close()
        print("passed", fn.__module__, fn.__name__, flush=True)
    print("pytest" in sys.modules, orbitai.__file__)
""")


def test_self_tests_run_from_the_installed_package(fresh):
    """The self-test functions run with the module Libs copied beside them, no Testing/ and no pytest."""
    python, work = fresh
    modules = work / "modules"
    for lib in LIBS:
        shutil.copytree(lib, modules / lib.name, ignore=shutil.ignore_patterns("__pycache__"))
    (modules / "self_test.py").write_text(SELF_TEST)
    (work / "tmp").mkdir()
    res = _run([python, modules / "self_test.py", work / "tmp"], cwd=modules, env=_env(), timeout=1200)
    assert res.stdout.count("passed ") == 12, res.stdout
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("False ") and str(REPO) not in last, last


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


SELF_TEST_WITHOUT_MODEL_STACK = textwrap.dedent("""
    import importlib, sys
    from orbitai.mrml import new_scene
    from orbitai.testing import selftest
    assert "pytest" not in sys.modules and "Testing" not in "".join(sys.path)
    assert selftest.model_stack_missing() == ["torch", "monai"], selftest.model_stack_missing()
    module, shared = sys.argv[1], sys.argv[2]
    steps = importlib.import_module("orbitai.testing." + shared).SELF_TEST
    contexts = []
    def fresh():
        contexts.append(new_scene())
        return contexts[-1]
    report = selftest.run(module, steps, fresh)
    for ctx in contexts:
        ctx.close()
    assert "torch" not in sys.modules and "monai" not in sys.modules, "a torch-free step imported torch"
    print("SUMMARY " + report.summary())
""")


@pytest.mark.parametrize("module, shared", [("OrbitSegmentation", "orbit_segmentation"), ("TAOActivity", "tao_activity"),
                                            ("IVGCResponse", "ivgc_response"),
                                            ("NeuroDifferential", "neuro_differential")])
def test_self_test_without_the_model_stack_passes_its_part_and_names_the_rest(fresh_without_model_stack, module, shared):
    """Issue #28: the module's self-test in an installed-wheel environment without torch and MONAI runs every
    step that needs no model and names each skipped one with the reason."""
    python, work = fresh_without_model_stack
    modules = work / "modules"
    if not modules.exists():
        for lib in LIBS:
            shutil.copytree(lib, modules / lib.name, ignore=shutil.ignore_patterns("__pycache__"))
        (modules / "self_test_no_torch.py").write_text(SELF_TEST_WITHOUT_MODEL_STACK)
    res = _run([python, modules / "self_test_no_torch.py", module, shared], cwd=modules, env=_env(), timeout=1200)
    summary = next(ln for ln in res.stdout.splitlines() if ln.startswith("SUMMARY "))
    import importlib

    sys.path.insert(0, str(REPO / module))
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
