"""A module Widget driven as Slicer drives it, without the Slicer application: the parts of Qt, of Slicer's
``ScriptedLoadableModule`` and of its ``parameterNodeWrapper`` that a module panel meets, emulated with the
semantics of Slicer's own code, over a real MRML scene (``slicer-core``).

What is emulated, and from where (read at the tags v5.8.1 and v5.10.0 of Slicer/Slicer; no code copied):

* ``Base/Python/slicer/parameterNodeWrapper/wrapper.py``: a wrapper instance writes each parameter's default when
  it is absent; str/bool values are cached and re-read on the node's ModifiedEvent; ``connectParametersToGui``
  makes one connector per widget, writes the current value into it, connects the widget's change signal to a
  callback that sets the parameter (skipped while that same wrapper updates its GUI), adds a ModifiedEvent
  observer that writes every connected GUI of that wrapper, and returns a tag; ``disconnectGui(tag)``
  disconnects that tag's connectors and ignores an unknown tag (``None`` included). ``connectGui`` finds the
  widgets with a ``SlicerParameterName`` property and calls ``connectParametersToGui``: **at v5.8.1 it returns
  None** (the tag is dropped), from v5.10.0 on it returns the tag (Slicer commit b5a65a49a0). This is the one
  difference between the two versions here.
* ``guiConnectors.py`` (same at both tags): the combo-box connector of a ``Choice`` field clears the combo box
  and adds the choices in its constructor and reads ``choices[currentIndex]`` (index -1: the last choice); the
  check box, line edit and ``qMRMLNodeComboBox`` connectors read and write the obvious property.
* ``parameterPack.py``: a pack's fields are stored as ``<field>.<member>``; its widget's children with a
  ``SlicerPackParameterName`` property are connected to the members.
* Qt (as PythonQt exposes it): ``QComboBox.clear()`` on a non-empty box emits ``currentIndexChanged(-1)``, the
  first ``addItem`` into an empty box emits ``currentIndexChanged(0)``, setting ``currentIndex`` emits when it
  changes; a slot is called with as many signal arguments as it takes.
* ``Base/Python/slicer/ScriptedLoadableModule.py``: ``getParameterNode`` is the scene's singleton
  ``vtkMRMLScriptedModuleNode`` tagged with the module name; Slicer's module panel calls the Widget's
  ``setup()`` once, then ``enter()`` each time the module is shown and ``exit()`` when the user leaves it
  (``Base/QTGUI/qSlicerScriptedLoadableModuleWidget.cxx``).
"""
from __future__ import annotations

import importlib
import inspect
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Callable, Optional, get_args, get_origin, get_type_hints

import slicer
import vtk

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("5.8.1", "5.10.0")


# ---------------------------------------------------------------------------------------------------- Qt
class Signal:
    def __init__(self) -> None:
        self.slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        self.slots.append(slot)

    def disconnect(self, slot: Callable[..., Any]) -> None:
        self.slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self.slots):
            try:
                n = len([p for p in inspect.signature(slot).parameters.values()
                         if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty])
                has_var = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(slot).parameters.values())
            except (TypeError, ValueError):
                n, has_var = len(args), True
            slot(*(args if has_var else args[:n]))


class QWidget:
    SIGNALS: tuple[str, ...] = ()

    def __init__(self, *args: Any) -> None:
        self._properties: dict[str, Any] = {}
        self._children: list[QWidget] = []
        self.enabled = True
        self.visible = True
        self.toolTip = ""
        self.text = ""
        self.objectName = ""
        for name in self.SIGNALS:
            setattr(self, name, Signal())

    def property(self, name: str) -> Any:
        return self._properties.get(name)

    def setProperty(self, name: str, value: Any) -> None:
        self._properties[name] = value

    def findChildren(self, _cls: Any = None) -> list["QWidget"]:
        out: list[QWidget] = []
        for c in self._children:
            out += [c, *c.findChildren()]
        return out

    def connect(self, signature: str, slot: Callable[..., Any]) -> None:
        getattr(self, signature.split("(")[0]).connect(slot)

    def isWidgetType(self) -> bool:
        return True

    def setMRMLScene(self, scene: Any) -> None:
        for w in [self, *self.findChildren()]:
            if isinstance(w, qMRMLNodeComboBox):
                w.mrmlScene = scene


class QComboBox(QWidget):
    SIGNALS = ("currentIndexChanged",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.items: list[str] = []
        self._index = -1

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        if index != self._index:
            self._index = index
            self.currentIndexChanged.emit(index)

    @property
    def currentText(self) -> str:
        return self.items[self._index] if self._index >= 0 else ""

    def clear(self) -> None:
        had = bool(self.items)
        self.items = []
        self._index = -1
        if had:
            self.currentIndexChanged.emit(-1)

    def addItem(self, text: str, *_: Any) -> None:
        self.items.append(str(text))
        if self._index == -1:
            self._index = 0
            self.currentIndexChanged.emit(0)


class QCheckBox(QWidget):
    SIGNALS = ("stateChanged", "toggled")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._checked = False

    @property
    def checked(self) -> bool:
        return self._checked

    @checked.setter
    def checked(self, value: bool) -> None:
        if bool(value) != self._checked:
            self._checked = bool(value)
            self.stateChanged.emit(2 if value else 0)
            self.toggled.emit(bool(value))


class QLineEdit(QWidget):
    SIGNALS = ("textChanged",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._text = ""
        self.placeholderText = ""

    @property  # type: ignore[override]
    def text(self) -> str:
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        if value != getattr(self, "_text", None):
            self._text = value
            if hasattr(self, "textChanged"):
                self.textChanged.emit(value)


class QPushButton(QWidget):
    SIGNALS = ("clicked", "toggled")


class QProgressBar(QWidget):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.maximum, self.value = 100, 0


class QFormLayout:
    def __init__(self, owner: QWidget) -> None:
        self.owner = owner

    def addRow(self, _label: Any, widget: QWidget) -> None:
        self.owner._children.append(widget)


class ctkCollapsibleButton(QWidget):
    SIGNALS = ("clicked",)

    def layout(self) -> QFormLayout:
        return QFormLayout(self)


class qMRMLSortFilterProxyModel:
    """``Libs/MRML/Widgets/qMRMLSortFilterProxyModel.h`` (same at v5.8.1 and v5.10.0): the ``hiddenNodeIDs`` property
    hides those nodes from the combo box's list."""

    def __init__(self) -> None:
        self.hiddenNodeIDs: list[str] = []


class qMRMLNodeComboBox(QWidget):
    SIGNALS = ("currentNodeChanged",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._node: Any = None
        self.mrmlScene: Any = None
        self._proxy = qMRMLSortFilterProxyModel()

    def sortFilterProxyModel(self) -> qMRMLSortFilterProxyModel:
        return self._proxy

    def nodes(self) -> list[Any]:
        """The nodes the list offers (of the widget's ``nodeTypes``, less the proxy's hidden IDs; the replay's
        reading of ``qMRMLNodeComboBox::nodeCount``/``nodeFromIndex``)."""
        scene = self.mrmlScene
        if scene is None:
            return []
        types = self.property("nodeTypes") or []
        out = []
        for cls in types:
            for i in range(scene.GetNumberOfNodesByClass(cls)):
                n = scene.GetNthNodeByClass(i, cls)
                if not n.GetHideFromEditors() and n.GetID() not in self._proxy.hiddenNodeIDs:
                    out.append(n)
        return out

    def currentNode(self) -> Any:
        return self._node

    def setCurrentNode(self, node: Any) -> None:
        if node is not self._node:
            self._node = node
            self.currentNodeChanged.emit(node)


class QTimer:
    def __init__(self) -> None:
        self.timeout = Signal()
        self.active = False
        self.interval = 0

    def setInterval(self, ms: int) -> None:
        self.interval = ms

    def start(self) -> None:
        self.active = True

    def stop(self) -> None:
        self.active = False

    def isActive(self) -> bool:
        return self.active


WIDGET_CLASSES = {c.__name__: c for c in (QWidget, QComboBox, QCheckBox, QLineEdit, QPushButton, QProgressBar,
                                          ctkCollapsibleButton, qMRMLNodeComboBox)}


def qt_module() -> types.ModuleType:
    qt = types.ModuleType("qt")
    for name, cls in WIDGET_CLASSES.items():
        setattr(qt, name, cls)
    qt.QTimer = QTimer  # type: ignore[attr-defined]
    qt.QLabel = QWidget  # type: ignore[attr-defined]
    return qt


def load_ui(path: str) -> QWidget:
    """The ``.ui`` file's widgets (class by name, a plain widget for the rest) with their dynamic properties."""
    root = ET.parse(path).getroot()
    top = QWidget()
    for w in root.iter("widget"):
        widget = WIDGET_CLASSES.get(w.get("class") or "", QWidget)()
        widget.objectName = w.get("name") or ""
        for p in w.findall("property"):
            if p.get("name") in ("SlicerParameterName", "SlicerPackParameterName"):
                widget.setProperty(p.get("name") or "", p.find("string").text)  # type: ignore[union-attr]
            elif p.get("name") == "nodeTypes":
                widget.setProperty("nodeTypes", [e.text for e in p.iter("string")])
        top._children.append(widget)
    return top


def child_widget_variables(top: QWidget) -> types.SimpleNamespace:
    return types.SimpleNamespace(**{w.objectName: w for w in top.findChildren() if w.objectName})


# ---------------------------------------------------------------------------------------------------- wrapper
class Choice:
    def __init__(self, choices: Any) -> None:
        self.choices = choices


class Default:
    def __init__(self, value: Any) -> None:
        self.value = value


def _split(hint: Any) -> tuple[Any, list[Any]]:
    if get_origin(hint) is not None and hasattr(hint, "__metadata__"):
        args = get_args(hint)
        return args[0], list(args[1:])
    return hint, []


def _is_node_type(t: Any) -> bool:
    return isinstance(t, type) and t.__name__.startswith("vtkMRML")


class _Param:
    """One stored parameter: str / bool / node reference (the serializers the modules use)."""

    def __init__(self, name: str, kind: Any, default: Any, choice: Optional[Choice]) -> None:
        self.name, self.kind, self.default, self.choice = name, kind, default, choice

    def is_in(self, node: Any) -> bool:
        if _is_node_type(self.kind):
            return bool(node.GetNodeReferenceID(self.name)) or node.GetParameter(self.name + "_isNone") == "True"
        return node.GetParameter(self.name) != ""

    def write(self, node: Any, value: Any) -> None:
        if _is_node_type(self.kind):
            node.SetNodeReferenceID(self.name, value.GetID() if value is not None else None)
            return
        if self.choice is not None and value not in self.choice.choices:
            raise ValueError(f"Value '{value}' is not in the choices {self.choice.choices}")
        node.SetParameter(self.name, str(value))

    def read(self, node: Any) -> Any:
        if _is_node_type(self.kind):
            return node.GetNodeReference(self.name)
        text = node.GetParameter(self.name)
        return text == "True" if self.kind is bool else text


class _Connector:
    def __init__(self, widget: Any, signal: str, read: Callable[[], Any], write: Callable[[Any], None]) -> None:
        self.widget, self.signal, self.read, self.write = widget, signal, read, write
        self.callback: Optional[Callable[[], None]] = None

    def changed(self, *_: Any) -> None:
        if self.callback:
            self.callback()

    def on_changed(self, callback: Optional[Callable[[], None]]) -> None:
        self.callback = callback
        sig = getattr(self.widget, self.signal)
        if callback is None:
            sig.disconnect(self.changed)
        else:
            sig.connect(self.changed)


def _connector(widget: Any, param: _Param) -> _Connector:
    if isinstance(widget, QComboBox):
        choices = param.choice.choices  # type: ignore[union-attr]
        widget.clear()
        for c in choices:
            widget.addItem(str(c))

        def write(value: Any) -> None:
            if value not in choices:
                raise ValueError(f"Unable to find value {value} in choices {choices}")
            widget.currentIndex = choices.index(value)
        return _Connector(widget, "currentIndexChanged", lambda: choices[widget.currentIndex], write)
    if isinstance(widget, QCheckBox):
        return _Connector(widget, "stateChanged", lambda: widget.checked, lambda v: setattr(widget, "checked", v))
    if isinstance(widget, QLineEdit):
        return _Connector(widget, "textChanged", lambda: widget.text, lambda v: setattr(widget, "text", v))
    if isinstance(widget, qMRMLNodeComboBox):
        return _Connector(widget, "currentNodeChanged", widget.currentNode, widget.setCurrentNode)
    raise RuntimeError(f"No GUI connector for {type(widget).__name__} and {param.kind}")


class _Pack:
    """A ``parameterPack`` instance bound to a parameter node (members stored as ``<field>.<member>``)."""

    def __init__(self, node: Any, prefix: str, members: dict[str, _Param]) -> None:
        self._node, self._prefix, self._members = node, prefix, members
        for p in members.values():
            if not p.is_in(node):
                p.write(node, p.default)

    def getValue(self, name: str) -> Any:
        return self._members[name].read(self._node)

    def setValue(self, name: str, value: Any) -> None:
        self._members[name].write(self._node, value)


def parameterPack(cls: Any) -> Any:
    cls._pack_members = {name: hint for name, hint in get_type_hints(cls).items()}
    return cls


def make_parameter_node_wrapper(version: str) -> Callable[[Any], Any]:
    """``slicer.parameterNodeWrapper.parameterNodeWrapper`` with the semantics of Slicer ``version``."""

    def decorate(cls: Any) -> Any:
        params: dict[str, Any] = {}
        for name, hint in get_type_hints(cls, include_extras=True).items():
            kind, extras = _split(hint)
            if hasattr(kind, "_pack_members"):
                params[name] = {m: _Param(f"{name}.{m}", t, "", None) for m, t in kind._pack_members.items()}
                continue
            choice = next((x for x in extras if isinstance(x, Choice)), None)
            default = next((x.value for x in extras if isinstance(x, Default)), None)
            if default is None and not _is_node_type(kind):
                default = choice.choices[0] if choice is not None else (False if kind is bool else "")
            params[name] = _Param(name, kind, default, choice)

        def __init__(self: Any, node: Any) -> None:
            self.parameterNode = node
            self._guis: dict[int, dict[str, _Connector]] = {}
            self._next_tag = 0
            self._updating = False
            self._cache: dict[str, Any] = {}
            self._writing = False
            for name, p in params.items():
                if isinstance(p, dict):
                    continue
                if not p.is_in(node):
                    p.write(node, p.default)
                if not _is_node_type(p.kind):
                    self._cache[name] = p.read(node)
            self._packs = {name: _Pack(node, name, p) for name, p in params.items() if isinstance(p, dict)}

            def on_modified(caller: Any, event: Any) -> None:
                if not self._writing:
                    for n in self._cache:
                        self._cache[n] = params[n].read(node)
            node.AddObserver(vtk.vtkCommand.ModifiedEvent, on_modified)

        def getValue(self: Any, name: str) -> Any:
            top, _, sub = name.partition(".")
            if sub:
                return self._packs[top].getValue(sub)
            if top in self._packs:
                return self._packs[top]
            return self._cache[top] if top in self._cache else params[top].read(self.parameterNode)

        def setValue(self: Any, name: str, value: Any) -> None:
            top, _, sub = name.partition(".")
            if sub:
                self._packs[top].setValue(sub, value)
                return
            p = params[top]
            self._writing = True
            try:
                wasModifying = self.parameterNode.StartModify()
                p.write(self.parameterNode, value)
                if top in self._cache:
                    self._cache[top] = p.read(self.parameterNode)
                self.parameterNode.EndModify(wasModifying)
            finally:
                self._writing = False

        def update_gui(self: Any) -> None:
            if self._updating:
                return
            self._updating = True
            try:
                wasModifying = self.parameterNode.StartModify()
                for mapping in list(self._guis.values()):
                    for name, connector in mapping.items():
                        connector.write(self.getValue(name))
                self.parameterNode.EndModify(wasModifying)
            finally:
                self._updating = False

        def connectParametersToGui(self: Any, mapping: dict[str, Any]) -> int:
            connectors: dict[str, _Connector] = {}
            for name, widget in mapping.items():
                p = params[name]
                if isinstance(p, dict):   # a pack: its widget's children, one per member
                    for child in widget.findChildren():
                        member = child.property("SlicerPackParameterName")
                        if member:
                            connectors[f"{name}.{member}"] = _connector(child, p[member])
                else:
                    connectors[name] = _connector(widget, p)
            tag = self._next_tag
            self._next_tag += 1
            self._guis[tag] = connectors
            for name, connector in connectors.items():
                connector.write(self.getValue(name))

                def callback(name: str = name, connector: _Connector = connector) -> None:
                    wasModifying = self.parameterNode.StartModify()
                    if not self._updating:
                        self.setValue(name, connector.read())
                    self.parameterNode.EndModify(wasModifying)
                connector.on_changed(callback)
            self.parameterNode.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda caller, event: update_gui(self))
            return tag

        def connectGui(self: Any, gui: Any) -> Optional[int]:
            widgets = gui.findChildren() if getattr(gui, "isWidgetType", lambda: False)() else vars(gui).values()
            mapping = {w.property("SlicerParameterName"): w for w in widgets
                       if hasattr(w, "property") and w.property("SlicerParameterName")}
            tag = connectParametersToGui(self, mapping)
            return None if version == "5.8.1" else tag

        def disconnectGui(self: Any, tag: Any) -> None:
            if tag in self._guis:
                for connector in self._guis.pop(tag).values():
                    connector.on_changed(None)

        attrs: dict[str, Any] = {
            "__init__": __init__, "getValue": getValue, "setValue": setValue, "connectGui": connectGui,
            "connectParametersToGui": connectParametersToGui, "disconnectGui": disconnectGui,
            "allParameters": params,
            "AddObserver": lambda self, e, cb, priority=0.0: self.parameterNode.AddObserver(e, cb, priority),
            "RemoveObserver": lambda self, tag: self.parameterNode.RemoveObserver(tag),
            "StartModify": lambda self: self.parameterNode.StartModify(),
            "EndModify": lambda self, was: self.parameterNode.EndModify(was),
            "Modified": lambda self: self.parameterNode.Modified(),
        }
        for name in params:
            attrs[name] = property(lambda self, n=name: self.getValue(n),
                                   lambda self, value, n=name: self.setValue(n, value))
        for key, value in attrs.items():
            setattr(cls, key, value)
        return cls

    return decorate


# ---------------------------------------------------------------------------------------------------- modules
class _Layout:
    def addWidget(self, _w: Any) -> None:
        pass


class _Parent:
    def __init__(self) -> None:
        self.isEntered = False


def scripted_module(module_dir: Path) -> types.ModuleType:
    """``slicer.ScriptedLoadableModule``: the base classes a module file derives from."""
    m = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent: Any) -> None:
            self.parent = parent

    class ScriptedLoadableModuleTest:
        pass

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent: Any = None) -> None:
            self.parent = _Parent()
            self.layout = _Layout()
            self.moduleName = module_dir.name

        def setup(self) -> None:
            pass

        def resourcePath(self, filename: str) -> str:
            return str(module_dir / "Resources" / filename)

    class ScriptedLoadableModuleLogic:
        moduleName = ""

        def getParameterNode(self) -> Any:
            scene = slicer.mrmlScene
            node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
            if node is None:
                node = slicer.vtkMRMLScriptedModuleNode()
                node.SetSingletonTag(self.moduleName)
                node.SetName(self.moduleName)
                node = scene.AddNode(node)
            return node

    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleTest, ScriptedLoadableModuleWidget,
                ScriptedLoadableModuleLogic):
        setattr(m, cls.__name__, cls)
    return m


class ModulePanel:
    """One module's Widget as Slicer's module panel drives it: `show` (setup the first time, then enter) and
    `leave` (exit)."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.set_up = False

    def show(self) -> None:
        if not self.set_up:
            self.widget.setup()
            self.set_up = True
        self.widget.parent.isEntered = True
        self.widget.enter()

    def leave(self) -> None:
        self.widget.exit()
        self.widget.parent.isEntered = False

    @property
    def ui(self) -> Any:
        return self.widget.ui

    @property
    def node(self) -> Any:
        return self.widget._parameterNode.parameterNode


def load_module_widget(monkeypatch: Any, module: str, version: str) -> ModulePanel:
    """Import ``<module>/<module>.py`` with the stand-ins above (Slicer ``version``'s wrapper) and make its Widget."""
    module_dir = REPO / module
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper = make_parameter_node_wrapper(version)  # type: ignore[attr-defined]
    pnw.parameterPack = parameterPack  # type: ignore[attr-defined]
    pnw.Choice = Choice  # type: ignore[attr-defined]
    pnw.Default = Default  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", pnw)
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", scripted_module(module_dir))
    monkeypatch.setitem(sys.modules, "qt", qt_module())
    monkeypatch.setattr(slicer, "parameterNodeWrapper", pnw, raising=False)
    monkeypatch.setattr(slicer.util, "loadUI", load_ui)
    monkeypatch.setattr(slicer.util, "childWidgetVariables", child_widget_variables)
    monkeypatch.setattr(slicer.util, "errorDisplay", lambda *a, **k: None, raising=False)
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.delitem(sys.modules, module, raising=False)
    mod = importlib.import_module(module)
    return ModulePanel(getattr(mod, f"{module}Widget")())
