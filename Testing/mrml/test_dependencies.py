"""orbitai.mrml.dependencies: requirement files, version checks and the headless error path."""
from __future__ import annotations

from pathlib import Path

import pytest

from orbitai.mrml.dependencies import (ensure_requirements, import_name, read_requirements, requirement_name,
                                       unmet_requirements)

REPO = Path(__file__).resolve().parents[2]


def test_requirement_names_and_import_names():
    assert requirement_name("monai>=1.4,<1.7") == "monai"
    assert requirement_name("pyradiomics-bhklab==3.1.4") == "pyradiomics-bhklab"
    assert import_name("scikit-image>=0.22") == "skimage" and import_name("pillow>=10") == "PIL"
    assert import_name("pyradiomics-bhklab==3.1.4") == "radiomics" and import_name("torch>=2.2,<2.15") == "torch"
    with pytest.raises(ValueError, match="Not a requirement"):
        requirement_name(">=1.0")


def test_read_requirements_drops_comments(tmp_path):
    f = tmp_path / "requirements.txt"
    f.write_text("# comment\n\nmonai>=1.4,<1.7  # inline\n  scipy>=1.10\n")
    assert read_requirements(f) == ["monai>=1.4,<1.7", "scipy>=1.10"]


def test_versions_are_checked_not_only_imports():
    assert unmet_requirements(["numpy>=1.0", "torch>=2.2,<2.15"]) == []
    assert unmet_requirements(["numpy>=999"]) == ["numpy>=999"]
    assert unmet_requirements(["orbitai-no-such-package"]) == ["orbitai-no-such-package"]


def test_headless_missing_package_is_one_clear_line():
    assert ensure_requirements(["numpy>=1.0"]) is True
    with pytest.raises(ImportError, match=r"^Missing Python packages: numpy\. Install them with: pip install 'numpy>=999'$"):
        ensure_requirements(["numpy>=999"])
    with pytest.raises(ImportError, match="ships with 3D Slicer"):
        ensure_requirements(["SimpleITK>=999"])


@pytest.mark.parametrize("module", ["OrbitSegmentation", "TAOActivity", "IVGCResponse", "NeuroDifferential"])
def test_module_requirements_are_met_here(module):
    """This venv runs the modules' tests, so it meets their requirements (version ranges in sync with pyproject.toml)."""
    from orbitai.app import requirements_file

    assert unmet_requirements(read_requirements(requirements_file(module))) == []


def test_torch_without_the_pytorch_extension_is_one_clear_line():
    """Inside Slicer torch comes from the PyTorch extension; without it the message says what to do."""
    from orbitai.mrml.dependencies import TORCH_MISSING, _install_torch

    with pytest.raises(ImportError, match="install the PyTorch extension from the Extensions Manager"):
        _install_torch("torch>=2.2,<2.15", ask=False)
    assert "\n" not in TORCH_MISSING


class _App:
    """``slicer.app`` from the GUI (``testingEnabled()`` False) or under ``--testing``."""

    def __init__(self, testing: bool) -> None:
        self.testing = testing

    def testingEnabled(self) -> bool:
        return self.testing


@pytest.fixture()
def gui(monkeypatch):
    """Inside Slicer, from the GUI: the user accepts the offer; pip calls are recorded (and succeed)."""
    import slicer

    from orbitai.mrml import dependencies

    monkeypatch.setattr(slicer, "app", _App(testing=False), raising=False)
    calls: dict[str, list] = {"confirm": [], "pip": []}
    monkeypatch.setattr(dependencies, "_confirm", lambda text: bool(calls["confirm"].append(text)) or True)
    monkeypatch.setattr(slicer.util, "pip_install", lambda reqs: calls["pip"].append(list(reqs)))
    return calls


def test_pip_install_keeps_the_torch_pytorchutils_installed(gui):
    """MONAI pip-installed after the PyTorch extension must not replace its driver-matched torch: pip gets
    torch pinned to the installed version (MONAI 1.6 wants torch >= 2.8; pip would otherwise upgrade it)."""
    from importlib.metadata import version

    from orbitai.mrml.dependencies import pip_arguments

    torch_pin = f"torch=={version('torch')}"
    assert pip_arguments(["monai>=1.4,<1.7"])[:2] == ["monai>=1.4,<1.7", torch_pin]
    assert pip_arguments(["torch>=2.2"]) == ["torch>=2.2"]          # torch itself asked for: no pin
    ensure_requirements(["monai>=99"])                                # unmet: offered, then pip-installed
    assert len(gui["confirm"]) == 1 and "monai>=99" in gui["confirm"][0] and "torch" not in gui["confirm"][0]
    assert gui["pip"] and gui["pip"][0][:2] == ["monai>=99", torch_pin], gui["pip"]


def test_offline_install_is_one_line_that_names_the_network(gui, monkeypatch):
    """Offline, Slicer's pip_install raises CalledProcessError (logProcessOutput on pip's exit code): Apply and
    the self-test get an ImportError whose one line says the network or the package index may be unreachable."""
    import subprocess

    import slicer

    from orbitai.mrml.dependencies import InstallError

    def offline(reqs):
        raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", "pip", "install", *reqs])

    monkeypatch.setattr(slicer.util, "pip_install", offline)
    with pytest.raises(InstallError, match=r"^Could not install monai>=99 \(pip ended with exit code 1\)\. The network "
                                           r"or the Python package index \(pypi\.org\) may be unreachable") as info:
        ensure_requirements(["monai>=99"])
    assert isinstance(info.value, ImportError) and "\n" not in str(info.value)


def test_offline_pytorch_install_is_one_line_too(gui, monkeypatch):
    import subprocess
    import sys
    import types

    from orbitai.mrml.dependencies import InstallError, _install_torch

    class Logic:
        def installTorch(self, askConfirmation=False, torchVersionRequirement=None):
            raise subprocess.CalledProcessError(1, ["PythonSlicer", "-m", "light_the_torch", "install"])

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=Logic))
    with pytest.raises(InstallError, match=r"^Could not install PyTorch \(torch>=2\.2\) \(PyTorchUtils' installer ended "
                                           r"with exit code 1\)\. The network"):
        _install_torch("torch>=2.2", ask=False)


def test_under_testing_nothing_is_offered_or_installed(gui, monkeypatch):
    import slicer

    from orbitai.mrml.dependencies import install_mode

    monkeypatch.setattr(slicer, "app", _App(testing=True), raising=False)
    assert install_mode() == "testing"
    assert ensure_requirements(["orbitai-no-such-package"]) is False
    assert gui == {"confirm": [], "pip": []}
