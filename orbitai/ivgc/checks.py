"""The input rules of an IVGC-response prediction, one implementation each: the IVGCResponse Logic checks
them before a child starts, ``orbitai ivgc predict`` (:mod:`orbitai.ivgc.predict`) checks them again.

* :func:`check_clinical`: the clinical values against :data:`~orbitai.cohort.clinical.IVGC_CLINICAL`
  (names, numbers in their plausible ranges, the missing ones and those a bundle fills in);
* :func:`check_strategy`: an ROI strategy by name; :func:`bundle_strategy`: the one a bundle was trained on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

from orbitai.cohort.clinical import IVGC_CLINICAL, MISSING_TOKENS
from orbitai.errors import InputError
from orbitai.ivgc.rois import parse_strategies

if TYPE_CHECKING:  # pragma: no cover
    from orbitai.bundle.core import Bundle

#: The paper's best ROI strategy (medial + lateral recti of both orbits).
DEFAULT_STRATEGY = "mrlr"


def _sentence(source: Optional[str], text: str) -> str:
    """``text`` after its source ("--clinical x.json: unknown ..."), or as a sentence without one."""
    return f"{source}: {text}" if source else text[:1].upper() + text[1:]


def check_clinical_names(values: Mapping[str, Any], source: Optional[str] = None) -> None:
    """Refuse names that are not features of IVGC_CLINICAL (``source``: where the values come from, for messages)."""
    unknown = sorted(set(values) - set(IVGC_CLINICAL.names))
    if unknown:
        raise InputError(_sentence(source, f"unknown clinical feature(s) {', '.join(unknown)}; the features are "
                                           f"{', '.join(IVGC_CLINICAL.names)}."))


def check_clinical(values: Optional[Mapping[str, Any]], fill: Optional[Mapping[str, float]] = None,
                   required: bool = False, source: Optional[str] = None) -> tuple[dict[str, float], list[str]]:
    """(the clinical values given as numbers, the names to take from ``fill``).

    ``values``: ``{name: number or text}``; None, empty text or a missing token is "not given". Unknown names
    are refused, and every value given is checked against IVGC_CLINICAL (a number in its plausible range,
    0/1 or a whole number where the feature says so) whatever the model. A value not given is missing when
    the schema requires it or ``fill`` (the bundle's training-cohort values; None: no bundle yet) has none;
    with ``required`` the missing ones are refused, all of them named. ``source`` names where the values
    come from in messages (``--clinical``; "the manifest ...": a cohort's columns, named in the message; None: the
    panel's form). One-line `InputError`."""
    values = dict(values or {})
    check_clinical_names(values, source)
    given: dict[str, float] = {}
    filled, missing, columns = [], [], []
    for f in IVGC_CLINICAL.features:
        raw = values.get(f.name)
        if raw is None or str(raw).strip().lower() in MISSING_TOKENS:
            if f.missing == "error" or (fill is not None and f.name not in fill):
                missing.append(f"{f.name} ({f.description}, {f.unit})")
                columns.append(f.name)
            elif fill is not None:
                filled.append(f.name)
            continue
        where = f"Case patient, column {f.name!r}"
        try:
            value = f.parse(raw, "patient")   # the schema's own checks and range message
        except InputError as exc:
            raise InputError(_sentence(source, f"clinical feature {f.name!r}{str(exc).removeprefix(where)}")) from None
        if value is not None:             # (never: missing tokens are handled above)
            given[f.name] = value
    if required and missing:
        if source and source.startswith("the manifest"):     # a cohort: its columns, which have no option
            give = f"Add the column{'s' if len(columns) > 1 else ''} {', '.join(columns)} to {source} (a value per case)"
        else:
            give = f"Give them in {source}" if source else "Fill them in"
        raise InputError(f"This model needs the clinical features; missing: {'; '.join(missing)}. {give}, "
                         "or choose a model without clinical features.")
    return given, filled


def check_strategy(strategy: Optional[str]) -> str:
    """The ROI strategy named ``strategy`` (any case; empty: :data:`DEFAULT_STRATEGY`); one line naming the
    strategies for an unknown one."""
    return parse_strategies([strategy or DEFAULT_STRATEGY])[0].name


def bundle_strategy(bundle: "Bundle", strategy: Optional[str], label: Optional[str] = None) -> str:
    """The ROI strategy a prediction with ``bundle`` uses: the one it was trained on (its metadata's); a
    ``strategy`` asked (None: the bundle's) must be that one. A bundle that names none takes the one asked.
    ``label``: the model's name in the message (default "Model <bundle name>")."""
    own = str(bundle.metadata.get("strategy") or "")
    if strategy is None and own:
        return own
    asked = check_strategy(strategy)
    if own and asked != own:
        raise InputError(f"{label or f'Model {bundle.name}'} was trained on ROI strategy {own!r}; choose {own!r} "
                         f"or a model trained on {asked!r}.")
    return asked
