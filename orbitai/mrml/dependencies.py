"""Check (and inside Slicer, offer to install) the Python packages a module needs.

Each module lists its third-party packages in one requirements file (``<Module>Lib/requirements.txt``:
version ranges in sync with ``pyproject.toml``, the same specifiers); `ensure_requirements` reads those lines. Inside Slicer,
missing packages are pip-installed after a confirmation (never while testing), torch through Slicer's
PyTorch extension (``PyTorchUtils``), and SimpleITK never (Slicer ships it). Headless, an ImportError
says what to install.

The pip install keeps the torch (and torchvision) that PyTorchUtils installed for the machine's driver: they are
passed to pip pinned to their installed versions, so a MONAI release that wants a newer torch is not chosen.
An install that fails (offline: pip and PyTorchUtils raise ``CalledProcessError``) raises `InstallError`, an
ImportError whose one line says what could not be installed and that the network or the package index may be
unreachable. The confirmation and the pip call go through `_confirm` and `_pip_install`, which a self-test step
replaces to walk the path without offering anything to the user.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import shlex
import subprocess
from pathlib import Path
from typing import Iterable, Optional

import slicer

from orbitai.errors import one_line
from orbitai.mrml.scene import in_slicer_app

__all__ = ["missing_modules", "ensure_requirements", "unmet_requirements", "pip_arguments", "install_mode",
           "read_requirements", "requirement_name", "import_name", "IMPORT_NAMES", "InstallError"]

#: distribution name -> import name, where they differ.
IMPORT_NAMES = {"scikit-image": "skimage", "scikit-learn": "sklearn", "pyyaml": "yaml", "pillow": "PIL",
                "pyradiomics-bhklab": "radiomics", "pyradiomics": "radiomics"}
TORCH_MISSING = ("PyTorch is not installed: install the PyTorch extension from the Extensions Manager, "
                 "restart Slicer and press Apply again.")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
#: Installed by Slicer's PyTorch extension for the machine's GPU driver: kept as they are by a pip install.
TORCH_PACKAGES = ("torch", "torchvision")
#: What an install that fails raises (Slicer's pip_install: CalledProcessError; PythonSlicer not found:
#: RuntimeError; the executable cannot start: OSError).
_INSTALL_FAILURES = (subprocess.CalledProcessError, RuntimeError, OSError)


class InstallError(ImportError):
    """Installing the missing packages failed (one line: what, and what to check)."""


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


def _installed_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_arguments(requirements: Iterable[str]) -> list[str]:
    """The requirements handed to pip: ``requirements`` plus, for each of `TORCH_PACKAGES` installed and not
    among them, ``name==installed version``, so that pip keeps the driver-matched torch PyTorchUtils installed
    and picks versions of MONAI (captum, ...) that work with it instead of replacing torch."""
    reqs = list(requirements)
    names = {requirement_name(r).lower() for r in reqs}
    for name in TORCH_PACKAGES:
        version = _installed_version(name) if name not in names and not missing_modules([name]) else None
        if version:
            reqs.append(f"{name}=={version}")
    return reqs


def install_mode() -> str:
    """Where dependencies are checked: ``"headless"`` (no Slicer application: an ImportError says what to
    install), ``"testing"`` (Slicer under ``--testing``: nothing is offered or installed) or ``"gui"``."""
    if not in_slicer_app():
        return "headless"

    return "testing" if bool(getattr(slicer.app, "testingEnabled", lambda: False)()) else "gui"


def _confirm(text: str) -> bool:
    """Ask the user (Slicer's OK/Cancel dialog)."""
    return bool(slicer.util.confirmOkCancelDisplay(text))


def _pip_install(requirements: list[str]) -> None:
    """pip-install ``requirements`` into Slicer's Python (the user already agreed)."""
    try:
        from slicer import packaging
    except ImportError:  # Slicer < 5.12
        packaging = None
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(requirements, prompt_install=False, requester="OrbitAI")
    else:
        slicer.util.pip_install(requirements)


def _failure(what: str, exc: BaseException, tool: str = "pip") -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        how = f"{tool} ended with exit code {exc.returncode}"
    else:
        how = one_line(exc)
    return (f"Could not install {what} ({how}). The network or the Python package index (pypi.org) may be "
            "unreachable: check the connection (and proxy settings) and try again; the application log has the installer's output.")


def _install_torch(requirement: str, ask: bool) -> bool:
    """Install torch through Slicer's PyTorch extension; False if the user declined; `InstallError` if it failed."""
    try:
        import PyTorchUtils  # the PyTorch extension's module
    except ImportError:
        raise ImportError(TORCH_MISSING) from None
    spec = requirement[len(requirement_name(requirement)):].strip()
    try:
        return PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=ask, torchVersionRequirement=spec) is not None
    except _INSTALL_FAILURES as exc:
        raise InstallError(_failure(f"PyTorch ({requirement})", exc, "PyTorchUtils' installer")) from None


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
    mode = install_mode()
    if mode == "headless":
        raise ImportError(f"Missing Python packages: {', '.join(requirement_name(r) for r in unmet)}. "
                          f"Install them with: pip install {' '.join(shlex.quote(r) for r in unmet)}")
    if mode == "testing":
        return False  # never prompt or install while testing
    torch_reqs = [r for r in unmet if requirement_name(r) == "torch"]
    if torch_reqs and not _install_torch(torch_reqs[0], ask):
        return False
    importlib.invalidate_caches()
    reqs = [r for r in unmet if requirement_name(r) != "torch"]
    if reqs:
        if ask and not _confirm(f"OrbitAI needs these Python packages: {', '.join(reqs)}. Install them now?"):
            return False
        try:
            _pip_install(pip_arguments(reqs))
        except _INSTALL_FAILURES as exc:
            raise InstallError(_failure(", ".join(reqs), exc)) from None
    importlib.invalidate_caches()
    return not unmet_requirements(requirements)
