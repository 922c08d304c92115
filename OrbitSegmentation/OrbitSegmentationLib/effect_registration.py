"""Registering the OrbitAI effects with Slicer's Segment Editor (Slicer only; see docs/slicer.md)."""
from __future__ import annotations

import os
from typing import Optional


#: The folder of the scripted effect files (OrbitSegmentation/OrbitSegmentationEffects/). Slicer's loader
#: (qSlicerSegmentEditorScriptedEffect::setPythonSource) takes the folder's name as the Python module name of
#: every file in it, so it must never be Slicer's own ``SegmentEditorEffects`` (docs/slicer.md).
EFFECTS_FOLDER = "OrbitSegmentationEffects"
EFFECT_FILES = (
    "SegmentEditorSmartPencilEffect.py",
    "SegmentEditorSmartFillEffect.py",
    "SegmentEditorAutoCorrectionEffect.py",
)
#: Slicer's built-in effects package: registration must leave its module object untouched.
SLICER_EFFECTS_PACKAGE = "SegmentEditorEffects"
_MODULE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def effect_paths() -> list[str]:
    here = os.path.join(_MODULE_DIR, EFFECTS_FOLDER)
    return [os.path.join(here, f).replace("\\", "/") for f in EFFECT_FILES]


def effect_icon_path(effect: str) -> Optional[str]:
    """The module's ``Resources/Icons/<effect>.png``, or None when it is missing."""
    path = os.path.join(_MODULE_DIR, "Resources", "Icons", f"{effect}.png")
    return path if os.path.isfile(path) else None


def register_annotation_effects(paths: Optional[list[str]] = None) -> dict[str, str]:
    """Register SmartPencil, SmartFill and AutoCorrection with Slicer's Segment Editor, each on its own:
    an effect that fails to load is logged and skipped, the others still register, and Slicer's
    ``SegmentEditorEffects`` module object is put back if a loader replaced it. Returns ``{file: error}``
    for the effects that failed (empty when all registered); effects already registered are left alone.

    Call inside Slicer once it has started (the OrbitSegmentation module connects it to
    ``startupCompleted()``)."""
    import logging
    import sys

    import qSlicerSegmentationsEditorEffectsPythonQt as effects  # Slicer only

    log = logging.getLogger(__name__)
    paths = list(paths or effect_paths())
    folder = os.path.dirname(paths[0]) if paths else ""
    if folder and folder not in sys.path:  # the effect files import OrbitEffectBase from beside them
        sys.path.insert(0, folder)
    registered = _registered_effect_names()
    failed: dict[str, str] = {}
    for path in paths:
        slicer_package = sys.modules.get(SLICER_EFFECTS_PACKAGE)
        try:
            instance = effects.qSlicerSegmentEditorScriptedEffect(None)
            if not instance.setPythonSource(path) or instance.self() is None:
                raise RuntimeError("Slicer could not load the file (see the Python console)")
            effect = instance.self()
            if getattr(effect, "EFFECT", None) in registered:
                continue
            effect.register()
        except Exception as exc:  # noqa: BLE001 - one effect's failure must not stop the others
            failed[path] = f"{type(exc).__name__}: {exc}"
            log.error("OrbitAI: the Segment Editor effect %s was not registered: %s", os.path.basename(path), exc)
        finally:
            if slicer_package is not None and sys.modules.get(SLICER_EFFECTS_PACKAGE) is not slicer_package:
                sys.modules[SLICER_EFFECTS_PACKAGE] = slicer_package
                log.error("OrbitAI: loading %s replaced Slicer's %s module; restored.", path, SLICER_EFFECTS_PACKAGE)
    return failed


def _registered_effect_names() -> set[str]:
    """Names of the effects Slicer's effect factory holds (empty when it cannot be asked)."""
    try:
        import slicer

        return {e.name for e in slicer.qSlicerSegmentEditorEffectFactory.instance().registeredEffects()}
    except (ImportError, AttributeError):
        return set()
