"""Buttons whose press carries the page's values of the fields they act on.

trame's page holds back state changes while it waits on the server (its client is "busy") but sends a button's
trigger at once, so a handler that read the state could run on the values from before the user's last change (Load
on the previously chosen scan, Apply with the old options). A button made here sends the listed fields' values with
the press, and the handler sees them.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

__all__ = ["sending"]


def sending(state: Any, handler: Callable[[], Any], keys: Iterable[str]) -> tuple[Callable[..., Any], str]:
    """``click=`` for a button that runs ``handler`` on the page's current values of ``keys`` (state variables the
    page already binds, so the press gives the client no field it could not set before)."""
    names = list(keys)

    def pressed(values: Any = None) -> Any:
        if isinstance(values, dict):
            state.update({k: values[k] for k in names if k in values})
        return handler()

    return pressed, "[{" + ", ".join(f"'{k}': {k}" for k in names) + "}]"
