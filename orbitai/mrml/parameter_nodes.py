"""A module panel's Slicer parameter node: its ``@parameterNodeWrapper`` class made from the panel's declaration
(`parameter_node_class`), its ``Choice`` fields read (`parameterChoices`), re-read in place (`refreshChoices`) and
reset when no longer offered (`resetUnknownChoices`), and the ``.ui`` widgets ``connectGui`` connects
(`parameterWidgets`)."""
from __future__ import annotations

from typing import Annotated, Any, Callable, get_args, get_type_hints

from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

__all__ = ["parameter_node_class", "parameterChoices", "parameterWidgets", "refreshChoices", "resetUnknownChoices"]


def parameterChoices(parameterNodeClass: Any) -> dict[str, tuple[list[Any], Any]]:
    """``{field: (choices, default)}`` of the ``Choice`` fields of a ``@parameterNodeWrapper`` class
    (its ``Annotated[..., Choice(...), Default(...)]`` fields; the first choice when no default)."""
    out: dict[str, tuple[list[Any], Any]] = {}
    for name, hint in get_type_hints(parameterNodeClass, include_extras=True).items():
        extras = get_args(hint)[1:]
        choices = next((list(x.choices) for x in extras if hasattr(x, "choices")), None)
        if choices:
            default = next((x.value for x in extras if type(x).__name__ == "Default"), choices[0])
            out[name] = (choices, default)
    return out


def refreshChoices(parameterNodeClass: Any, sources: dict[str, Callable[[], list[Any]]]) -> list[str]:
    """Re-read the offered values of ``Choice`` fields (e.g. the installed models) in place, so that a bundle
    installed after Slicer started is offered without a restart. Slicer's ``Choice`` keeps the list it was
    given and its combo-box connector reads ``choice.choices`` on every ``connectGui`` (parameterNodeWrapper
    validators.py / guiConnectors.py, v5.8.1 and v5.10.0). Returns the names whose values changed."""
    changed = []
    for name, hint in get_type_hints(parameterNodeClass, include_extras=True).items():
        if name not in sources:
            continue
        choice = next(x for x in get_args(hint)[1:] if hasattr(x, "choices"))
        fresh = list(sources[name]())
        if fresh != list(choice.choices):
            if not isinstance(choice.choices, list):
                raise TypeError(f"The Choice of '{name}' must be given a list to be refreshed.")
            choice.choices[:] = fresh
            changed.append(name)
    return changed


def parameterWidgets(ui: Any) -> dict[str, Any]:
    """``{parameter name: widget}`` of the ``.ui`` widgets with a ``SlicerParameterName`` property: what
    ``connectGui`` connects. A panel connects them with ``connectParametersToGui``, whose tag it keeps to
    disconnect them: Slicer 5.8's ``connectGui`` does not return its tag (parameterNodeWrapper/wrapper.py at
    v5.8.1; fixed in v5.10.0 by Slicer commit b5a65a49a0), so disconnecting by it left every old connector
    attached, and the next combo-box rebuild wrote the last and then the first choice into the parameter node.
    ``connectParametersToGui`` returns its tag at both tags."""
    widgets = {}
    for widget in vars(ui).values():
        name = widget.property("SlicerParameterName") if hasattr(widget, "property") else None
        if name:
            widgets[str(name)] = widget
    return widgets


def resetUnknownChoices(node: Any, choices: dict[str, tuple[list[Any], Any]]) -> list[str]:
    """Set every stored choice that is no longer offered (a scene saved with a model that is not
    installed here) back to its default, on the raw ``vtkMRMLScriptedModuleNode`` before a
    ``@parameterNodeWrapper`` reads it (``connectGui`` raises on an unknown choice). Returns the
    names that were reset."""
    reset = []
    for name, (offered, default) in choices.items():
        stored = node.GetParameter(name)
        if stored and stored not in {str(c) for c in offered}:
            node.SetParameter(name, str(default))
            reset.append(name)
    return reset


def parameter_node_class(spec: Any) -> type:
    """The Slicer ``@parameterNodeWrapper`` class of a panel (`orbitai.app.panel_spec.PanelSpec`): the input volume, then each option (choices and
    defaults as the panel declares them; a form is a ``parameterPack`` of text fields). Inside Slicer (or its
    replay in the tests): ``slicer.parameterNodeWrapper`` is imported when the class is made."""
    from slicer.parameterNodeWrapper import Choice, Default, parameterNodeWrapper, parameterPack

    fields: dict[str, Any] = {spec.input_parameter: vtkMRMLScalarVolumeNode}
    for o in [*spec.all_options(), *(o for section in spec.sections for o in section.all_options())]:
        if o.kind == "choice":
            assert o.choices is not None
            choices = list(o.choices())   # a list: refreshed in place when the panel is shown
            fields[o.parameter] = Annotated[str, Choice(choices), Default(o.default_value())]
        elif o.kind == "flag":
            fields[o.parameter] = Annotated[bool, Default(bool(o.default_value()))]
        elif o.kind == "text":
            fields[o.parameter] = Annotated[str, Default(str(o.default_value() or ""))]
        elif o.kind == "segmentation":
            fields[o.parameter] = vtkMRMLSegmentationNode
        else:
            assert o.form is not None
            members = {name: str for name, _label, _tip in o.form()}
            fields[o.parameter] = parameterPack(type(f"{spec.module}{o.parameter.title()}Values", (),
                                                     {"__annotations__": members}))
    return parameterNodeWrapper(type(f"{spec.module}ParameterNode", (), {"__annotations__": fields}))
