"""The MRML scene and the module logics the bridge needs, in Slicer or headless (slicer-core).

Inside the Slicer application the app's scene and logics are used. Headless, a scene is set up
the way the application does it (see DESIGN.md, "Headless MRML notes"): application logic with
colour logic and default colour nodes, data I/O and cache managers (needed by ``ReadFromMRB``),
and the Segmentations (its constructor registers the converter rules), Volumes, Tables, Plots
and Subject hierarchy module logics. ``slicer.mrmlScene`` is set so ``slicer.util`` helpers work.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

try:
    import slicer
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "orbitai.mrml needs 3D Slicer's Python or the PyPI package slicer-core "
        "(pip install slicer-core)."
    ) from exc

from orbitai.mrml.results import watch_imports

__all__ = ["MRMLContext", "new_scene", "get_context", "in_slicer_app", "adopt_context"]

_current: Optional["MRMLContext"] = None
_home: Optional[str] = None


def in_slicer_app() -> bool:
    """True inside the 3D Slicer application (``slicer.app`` exists)."""
    return hasattr(slicer, "app") and slicer.app is not None


@dataclass(eq=False)
class MRMLContext:
    """A scene with its application logic and module logics; pass this one object around.

    Unpacks as ``scene, app_logic, logics = ctx`` (the form older callers use).
    """

    scene: Any
    app_logic: Any
    colors: Any = None
    segmentations: Any = None
    volumes: Any = None
    tables: Any = None
    plots: Any = None
    subject_hierarchy: Any = None
    terminologies: Any = None
    headless: bool = True
    _keep: list = field(default_factory=list, repr=False)

    def logics(self) -> list:
        """The module logics that exist in this context."""
        names = ("colors", "segmentations", "volumes", "tables", "plots", "subject_hierarchy", "terminologies")
        return [getattr(self, n) for n in names if getattr(self, n) is not None]

    def __iter__(self) -> Iterator:
        return iter((self.scene, self.app_logic, self.logics()))

    def close(self) -> None:
        """Release a headless scene (clears it and detaches its logics); no-op in Slicer."""
        global _current
        if not self.headless:
            return
        self.scene.Clear(1)
        for logic in self.logics() + self._keep:
            # The Segmentations logic warns when detached; it is released with the context.
            if hasattr(logic, "SetMRMLScene") and logic is not self.segmentations:
                logic.SetMRMLScene(None)
        if getattr(slicer, "mrmlScene", None) is self.scene:
            slicer.mrmlScene = None
        if _current is self:
            _current = None


def _share_home() -> str:
    """A private home folder with an empty ColorFiles folder, so the colour logic does not
    complain that Slicer's share directory is missing (slicer-core ships no colour files)."""
    global _home
    if _home is None:
        _home = tempfile.mkdtemp(prefix="orbitai-mrml-")
        os.makedirs(os.path.join(_home, "share", "OrbitAI", "ColorFiles"))
        os.makedirs(os.path.join(_home, "cache"))
        atexit.register(shutil.rmtree, _home, True)
    return _home


def _app_context() -> MRMLContext:
    app_logic = slicer.app.applicationLogic()
    watch_imports(slicer.mrmlScene)     # old ID links of a scene loaded from now on become references

    def logic(name: str):
        found = app_logic.GetModuleLogic(name)
        if found is None and hasattr(slicer, "modules") and hasattr(slicer.modules, name.lower()):
            found = getattr(slicer.modules, name.lower()).logic()
        return found

    return MRMLContext(
        scene=slicer.mrmlScene, app_logic=app_logic, colors=logic("Colors"),
        segmentations=logic("Segmentations"), volumes=logic("Volumes"), tables=logic("Tables"),
        plots=logic("Plots"), subject_hierarchy=logic("SubjectHierarchy"),
        terminologies=logic("Terminologies"), headless=False,
    )


def new_scene() -> MRMLContext:
    """A fresh headless scene with its logics; inside Slicer, the application's scene."""
    global _current
    if in_slicer_app():
        _current = _app_context()
        return _current
    home = _share_home()
    scene = slicer.vtkMRMLScene()
    watch_imports(scene)                # old ID links of a loaded scene become references (orbitai.mrml.results)
    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(os.path.join(home, "cache"))
    data_io = slicer.vtkDataIOManager()
    data_io.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(data_io)

    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetHomeDirectory(home)
    app_logic.SetShareDirectory(os.path.join("share", "OrbitAI"))
    app_logic.SetMRMLScene(scene)
    io_logic = slicer.vtkDataIOManagerLogic()
    io_logic.SetMRMLApplicationLogic(app_logic)
    io_logic.SetMRMLScene(scene)
    io_logic.SetAndObserveDataIOManager(data_io)

    def add(name: str, cls):
        lg = cls()
        lg.SetMRMLApplicationLogic(app_logic)
        lg.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, lg)
        return lg

    ctx = MRMLContext(
        scene=scene, app_logic=app_logic,
        colors=add("Colors", slicer.vtkSlicerColorLogic),  # adds the default colour nodes
        subject_hierarchy=add("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
        segmentations=add("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
        volumes=add("Volumes", slicer.vtkSlicerVolumesLogic),
        tables=add("Tables", slicer.vtkSlicerTablesLogic),
        plots=add("Plots", slicer.vtkSlicerPlotsLogic),
        # The Terminologies logic needs Slicer's terminology JSON files, which slicer-core does not
        # ship; segment terminology is a plain tag, so it is not needed headless.
        terminologies=None,
        headless=True,
        _keep=[cache, data_io, io_logic],
    )
    slicer.mrmlScene = scene
    _current = ctx
    return ctx


def get_context() -> MRMLContext:
    """The context for ``slicer.mrmlScene``: Slicer's, the last headless one made, or a new one."""
    global _current
    if in_slicer_app():
        if _current is None or _current.scene is not slicer.mrmlScene:
            _current = _app_context()
        return _current
    if _current is not None and getattr(slicer, "mrmlScene", None) is _current.scene:
        return _current
    return new_scene()


def adopt_context(scene: Any, app_logic: Any, register_logic: Callable[[Any], Any], **logics: Any) -> MRMLContext:
    """Make a scene another front end built (the web app's trame-slicer scene) the current context: `get_context()`
    returns it and ``slicer.mrmlScene`` is its scene. ``logics`` are its module logics by `MRMLContext` field; the
    Tables and Plots logics it lacks are made and registered with ``register_logic`` (the front end's way of giving a
    logic its scene, application logic and share folder). Its owner closes the scene: `MRMLContext.close` leaves it."""
    global _current
    if in_slicer_app():
        raise RuntimeError("Inside the Slicer application the application's scene is the context.")
    for name, cls in (("tables", slicer.vtkSlicerTablesLogic), ("plots", slicer.vtkSlicerPlotsLogic)):
        if logics.get(name) is None:
            logics[name] = register_logic(cls())
    ctx = MRMLContext(scene=scene, app_logic=app_logic, headless=False, **logics)
    watch_imports(scene)
    slicer.mrmlScene = scene
    _current = ctx
    return ctx
