"""The annotation effects loaded exactly as Slicer's scripted-effect loader loads them (issue #28).

The Slicer application cannot run here, so its loader is replayed on the real effect files:

* ``qSlicerSegmentEditorScriptedEffect::setPythonSource`` (Modules/Loadable/Segmentations/EditorEffects/
  qSlicerSegmentEditorScriptedEffect.cxx): the module name is the name of the file's folder, the class
  name the file name (plus "Effect"); a class already present on that module is reused, otherwise the
  file is loaded as that module; the instance is then set as ``slicer.<module name>``.
  - v5.6.2 / v5.8.1: ``PyImport_AddModule(name)`` (creates an empty module when none exists), then
    ``qSlicerScriptedUtils::loadSourceAsModule`` (Base/QTCore/qSlicerScriptedUtils.cxx) runs
    ``imp.load_source(name, path)``: the file is executed in the existing ``sys.modules[name]`` object,
    overwriting its ``__file__``, ``__spec__`` and ``__loader__``.
  - v5.10.0: the module is read from ``sys.modules`` (no AddModule); ``loadSourceAsModule`` makes a fresh
    module with ``importlib.util.module_from_spec``, puts it into ``sys.modules[name]`` and executes the
    file in it; the class is then looked up on the re-fetched ``sys.modules[name]``.
* ``AbstractScriptedSegmentEditorEffect.register`` (…/Python/SegmentEditorEffects/
  AbstractScriptedSegmentEditorEffect.py, both tags) hands ``self.scriptedEffect`` to the effect factory.

A stand-in for Slicer's own ``SegmentEditorEffects`` package (a real package on disk with the abstract
base class) is registered in ``sys.modules`` first, as it is in Slicer; Qt and CTK are stand-ins too
(the effects only build widgets after registration). docs/slicer.md lists these sources.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import types
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SEMANTICS = ("5.8", "5.10")
EFFECT_NAMES = {"SmartPencil", "SmartFill", "AutoCorrection"}

STAND_IN_PACKAGE = '''
"""Stand-in for Slicer's built-in SegmentEditorEffects package."""
REGISTERED = []


class AbstractScriptedSegmentEditorEffect:
    def __init__(self, scriptedEffect):
        self.scriptedEffect = scriptedEffect

    def register(self):
        REGISTERED.append(self.scriptedEffect)
'''


def _load_source_imp(name: str, path: str) -> None:
    """``imp.load_source(name, path)`` as Slicer 5.6/5.8 run it (Python 3.9's imp, still in 3.11)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import imp  # the very function Slicer 5.6/5.8 call

        imp.load_source(name, path)
    except ImportError:  # Python >= 3.12 has no imp: its load_source, step by step
        from importlib import _bootstrap, machinery  # type: ignore[attr-defined]

        spec = importlib.util.spec_from_file_location(name, path, loader=machinery.SourceFileLoader(name, path))
        if name in sys.modules:
            _bootstrap._exec(spec, sys.modules[name])
        else:
            _bootstrap._load(spec)


class ScriptedEffect:
    """Stand-in for ``qSlicerSegmentEditorScriptedEffect`` whose ``setPythonSource`` follows one Slicer tag."""

    semantics = "5.10"
    slicer_module: types.ModuleType

    def __init__(self, parent=None) -> None:
        self.name = "UnnamedScriptedEffect"
        self.perSegment = False
        self._self = None

    def setPythonSource(self, path: str) -> bool:
        module_name = os.path.basename(os.path.dirname(path))
        class_name = os.path.splitext(os.path.basename(path))[0]
        if not class_name.endswith("Effect"):
            class_name += "Effect"
        if self.semantics == "5.8":
            module = sys.modules.get(module_name)
            if module is None:                               # PyImport_AddModule
                module = sys.modules[module_name] = types.ModuleType(module_name)
        else:
            module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is None:
            try:
                if self.semantics == "5.8":
                    _load_source_imp(module_name, path)
                else:
                    spec = importlib.util.spec_from_file_location(module_name, path)
                    fresh = importlib.util.module_from_spec(spec)
                    sys.modules[module_name] = fresh
                    spec.loader.exec_module(fresh)
                    module = sys.modules[module_name]       # v5.10 re-fetches the module
            except Exception:  # noqa: BLE001 - PythonQt::handleError: printed, False returned
                return False
            cls = getattr(module, class_name, None)
        if cls is None:
            return False
        self._self = cls(self)
        setattr(self.slicer_module, module_name, self._self)   # qSlicerScriptedUtils::setModuleAttribute
        return True

    def self(self):
        return self._self


@pytest.fixture()
def slicer_like(tmp_path, monkeypatch):
    """sys.modules as inside Slicer: Slicer's SegmentEditorEffects (a stand-in package), qt, ctk and the
    PythonQt effects module; everything the test imports is removed again afterwards."""
    import slicer

    pkg = tmp_path / "lib" / "SegmentEditorEffects"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(STAND_IN_PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    before = set(sys.modules)
    for name in ("SegmentEditorEffects", "qt", "ctk", "qSlicerSegmentationsEditorEffectsPythonQt", "OrbitEffectBase",
                 "OrbitSegmentationEffects"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    package = importlib.import_module("SegmentEditorEffects")
    pythonqt = types.ModuleType("qSlicerSegmentationsEditorEffectsPythonQt")

    class Effect(ScriptedEffect):
        slicer_module = slicer

    pythonqt.qSlicerSegmentEditorScriptedEffect = Effect  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qSlicerSegmentationsEditorEffectsPythonQt", pythonqt)
    monkeypatch.setitem(sys.modules, "qt", types.ModuleType("qt"))
    monkeypatch.setitem(sys.modules, "ctk", types.ModuleType("ctk"))
    for attr in ("OrbitSegmentationEffects", "SegmentEditorEffects"):
        monkeypatch.setattr(slicer, attr, getattr(slicer, attr, None), raising=False)
    monkeypatch.syspath_prepend(str(REPO / "OrbitSegmentation"))
    from OrbitSegmentationLib import effect_registration

    ns = types.SimpleNamespace(package=package, file=package.__file__, spec=package.__spec__, Effect=Effect,
                               logic=effect_registration)
    yield ns
    for name in set(sys.modules) - before:
        if name in ("OrbitEffectBase", "OrbitSegmentationEffects") or name.startswith("SegmentEditorEffects"):
            sys.modules.pop(name, None)
    sys.path[:] = [p for p in sys.path if not p.endswith("OrbitSegmentationEffects")]


def _registered(ns) -> set[str]:
    return {e.name for e in ns.package.REGISTERED}


def _slicer_package_untouched(ns) -> None:
    assert sys.modules["SegmentEditorEffects"] is ns.package, "Slicer's SegmentEditorEffects module was replaced"
    assert ns.package.__file__ == ns.file and ns.package.__spec__ is ns.spec, "Slicer's package was overwritten"
    assert hasattr(ns.package, "AbstractScriptedSegmentEditorEffect")


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_every_effect_registers_and_slicers_package_is_untouched(slicer_like, semantics):
    slicer_like.Effect.semantics = semantics
    failed = slicer_like.logic.register_annotation_effects()
    assert failed == {}
    assert _registered(slicer_like) == EFFECT_NAMES
    _slicer_package_untouched(slicer_like)
    for effect in slicer_like.package.REGISTERED:          # the Segment Editor clones each effect it shows
        clone = effect.self().clone()
        assert type(clone.self()).__name__ == type(effect.self()).__name__
    _slicer_package_untouched(slicer_like)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_one_broken_effect_does_not_stop_the_others(slicer_like, semantics, tmp_path):
    slicer_like.Effect.semantics = semantics
    folder = tmp_path / "copy" / slicer_like.logic.EFFECTS_FOLDER
    shutil.copytree(REPO / "OrbitSegmentation" / slicer_like.logic.EFFECTS_FOLDER, folder)
    broken = folder / "SegmentEditorSmartPencilEffect.py"
    broken.write_text(broken.read_text() + "\nraise RuntimeError('a broken effect file')\n")
    paths = [str(folder / f) for f in slicer_like.logic.EFFECT_FILES]
    failed = slicer_like.logic.register_annotation_effects(paths)
    assert list(failed) == [str(broken)]
    assert _registered(slicer_like) == EFFECT_NAMES - {"SmartPencil"}
    _slicer_package_untouched(slicer_like)


@pytest.mark.parametrize("semantics", SEMANTICS)
def test_the_check_catches_effects_in_a_folder_named_like_slicers(slicer_like, semantics, tmp_path):
    """The old layout (effects in a folder named SegmentEditorEffects) fails these checks under both
    loaders; registration puts Slicer's module object back where a loader replaced it."""
    slicer_like.Effect.semantics = semantics
    folder = tmp_path / "old" / "SegmentEditorEffects"
    shutil.copytree(REPO / "OrbitSegmentation" / slicer_like.logic.EFFECTS_FOLDER, folder)
    paths = [str(folder / f) for f in slicer_like.logic.EFFECT_FILES]
    slicer_like.logic.register_annotation_effects(paths)
    if semantics == "5.8":
        assert slicer_like.package.__file__ != slicer_like.file      # imp.load_source overwrote Slicer's package
    else:
        assert sys.modules["SegmentEditorEffects"] is slicer_like.package   # put back by the registration
        assert _registered(slicer_like) == set()                     # but no effect could import its base class


def test_every_effect_has_an_icon():
    sys.path.insert(0, str(REPO / "OrbitSegmentation"))
    from OrbitSegmentationLib import effect_registration

    for effect in EFFECT_NAMES:
        path = effect_registration.effect_icon_path(effect)
        assert path and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", effect
        rel = Path(path).relative_to(REPO / "OrbitSegmentation").as_posix()
        assert rel in (REPO / "OrbitSegmentation" / "CMakeLists.txt").read_text(), f"{rel} not installed by CMake"
