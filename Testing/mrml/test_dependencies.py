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


@pytest.mark.parametrize("lib", ["OrbitSegmentation/OrbitSegmentationLib", "TAOActivity/TAOActivityLib",
                                 "IVGCResponse/IVGCResponseLib", "NeuroDifferential/NeuroDifferentialLib"])
def test_module_requirements_are_met_here(lib):
    """This venv runs the modules' tests, so it meets their requirements (version ranges in sync with pyproject.toml)."""
    assert unmet_requirements(read_requirements(REPO / lib / "requirements.txt")) == []


def test_torch_without_the_pytorch_extension_is_one_clear_line():
    """Inside Slicer torch comes from the PyTorch extension; without it the message says what to do."""
    from orbitai.mrml.dependencies import TORCH_MISSING, _install_torch

    with pytest.raises(ImportError, match="install the PyTorch extension from the Extensions Manager"):
        _install_torch("torch>=2.2,<2.15", ask=False)
    assert "\n" not in TORCH_MISSING
