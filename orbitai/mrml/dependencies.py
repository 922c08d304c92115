"""Check (and inside Slicer, offer to install) the Python packages a module needs.

Each module lists its third-party packages in one requirements file (``<Module>Lib/requirements.txt``:
version ranges in sync with ``pyproject.toml``, the same specifiers); `ensure_requirements` reads those lines. Inside Slicer,
missing packages are pip-installed after a confirmation (never while testing), torch through Slicer's
PyTorch extension (``PyTorchUtils``), and SimpleITK never (Slicer ships it). Headless, an ImportError
says what to install.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shlex
from pathlib import Path
from typing import Iterable

__all__ = ["missing_modules", "ensure_requirements", "unmet_requirements",
           "read_requirements", "requirement_name", "import_name", "IMPORT_NAMES"]

#: distribution name -> import name, where they differ.
IMPORT_NAMES = {"scikit-image": "skimage", "scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL",
                "pyradiomics-bhklab": "radiomics", "pyradiomics": "radiomics"}
TORCH_MISSING = ("PyTorch is not installed: install the PyTorch extension from the Extensions Manager, "
                 "restart Slicer and press Apply again.")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def read_requirements(path: str | Path) -> list[str]:
    """The requirement lines of a requirements file (comments and blank lines dropped)."""
    lines = (ln.split("#", 1)[0].strip() for ln in Path(path).read_text().splitlines())
    return [ln for ln in lines if ln]


def requirement_name(requirement: str) -> str:
    """The distribution name of a requirement specifier (``"monai>=1.4,<1.7"`` -> ``"monai"``)."""
    m = _NAME.match(requirement)
    if not m:
        raise ValueError(f"Not a requirement specifier: {requirement!r}.")
    return m.group(1)


def import_name(requirement: str) -> str:
    """The module a requirement provides (``"scikit-image>=0.22"`` -> ``"skimage"``)."""
    name = requirement_name(requirement)
    return IMPORT_NAMES.get(name.lower(), name.replace("-", "_"))


def missing_modules(modules: Iterable[str]) -> list[str]:
    """Import names from ``modules`` that cannot be imported."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _version_ok(requirement: str) -> bool:
    spec = requirement[len(requirement_name(requirement)):].split(";", 1)[0].strip()
    if not spec:
        return True
    try:
        from packaging.specifiers import SpecifierSet

        installed = importlib.metadata.version(requirement_name(requirement))
    except (ImportError, importlib.metadata.PackageNotFoundError):  # cannot tell: importable is enough
        return True
    return SpecifierSet(spec).contains(installed, prereleases=True)


def unmet_requirements(requirements: Iterable[str]) -> list[str]:
    """Requirements whose package does not import or whose installed version is outside the specifier."""
    return [r for r in requirements if missing_modules([import_name(r)]) or not _version_ok(r)]


def _install_torch(requirement: str, ask: bool) -> bool:
    """Install torch through Slicer's PyTorch extension; False if the user declined."""
    try:
        import PyTorchUtils  # the PyTorch extension's module
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    spec = requirement[len(requirement_name(requirement)):].strip()
    return PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=ask, torchVersionRequirement=spec) is not None


def ensure_requirements(requirements: Iterable[str], ask: bool = True) -> bool:
    """True when every requirement is met. Inside Slicer, unmet ones are installed after a
    confirmation (False if the user declines, or while testing); headless, or where they cannot be
    installed, an ImportError says in one line what to do."""
    requirements = list(requirements)
    unmet = unmet_requirements(requirements)
    if not unmet:
        return True
    if any(requirement_name(r) == "SimpleITK" for r in unmet):
        raise ImportError("SimpleITK is missing or too old; it ships with 3D Slicer: reinstall Slicer.")
    from orbitai.mrml.scene import in_slicer_app

    if not in_slicer_app():
        raise ImportError(f"Missing Python packages: {', '.join(requirement_name(r) for r in unmet)}. "
                          f"Install them with: pip install {' '.join(shlex.quote(r) for r in unmet)}")
    import slicer

    if bool(getattr(slicer.app, "testingEnabled", lambda: False)()):
        return False  # never prompt or install while testing
    torch_reqs = [r for r in unmet if requirement_name(r) == "torch"]
    if torch_reqs and not _install_torch(torch_reqs[0], ask):
        return False
    reqs = [r for r in unmet if requirement_name(r) != "torch"]
    if reqs:
        try:
            from slicer import packaging
        except ImportError:  # Slicer < 5.12
            packaging = None
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            try:
                packaging.pip_ensure(reqs, prompt_install=ask, requester="OrbitAI")
            except RuntimeError:  # the user declined
                return False
        else:
            if ask and not slicer.util.confirmOkCancelDisplay(
                    f"OrbitAI needs these Python packages: {', '.join(reqs)}. Install them now?"):
                return False
            slicer.util.pip_install(reqs)
    importlib.invalidate_caches()
    return not unmet_requirements(requirements)
