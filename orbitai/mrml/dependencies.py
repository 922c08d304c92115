"""Check (and inside Slicer, offer to install) the Python packages a module needs."""
from __future__ import annotations

import importlib.util
from typing import Iterable

__all__ = ["missing_modules", "ensure_dependencies", "PIP_NAMES"]

#: import name -> pip requirement, where they differ or need a pin.
PIP_NAMES = {
    "skimage": "scikit-image", "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow",
    "radiomics": "pyradiomics-bhklab==3.1.4",
}
#: Never installed by pip here: Slicer ships SimpleITK; torch comes from Slicer's PyTorch extension.
_NOT_PIP = {"SimpleITK": "it ships with Slicer", "torch": "install the PyTorch extension (Extensions Manager)"}


def missing_modules(modules: Iterable[str]) -> list[str]:
    """Import names from ``modules`` that cannot be imported."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def ensure_dependencies(modules: Iterable[str], ask: bool = True) -> bool:
    """True when every module imports. Inside Slicer, missing ones are pip-installed after a
    confirmation (never while testing); headless, an ImportError says what to install."""
    missing = missing_modules(modules)
    if not missing:
        return True
    from orbitai.mrml.scene import in_slicer_app

    blocked = [m for m in missing if m in _NOT_PIP]
    if blocked:
        raise ImportError("Missing " + "; ".join(f"{m}: {_NOT_PIP[m]}" for m in blocked) + ".")
    reqs = [PIP_NAMES.get(m, m) for m in missing]
    if not in_slicer_app():
        raise ImportError(f"Missing Python packages: {', '.join(missing)}. Install them with: "
                          f"pip install {' '.join(reqs)}")
    import slicer

    if bool(getattr(slicer.app, "testingEnabled", lambda: False)()):
        return False  # never prompt or install while testing
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
    return not missing_modules(missing)
