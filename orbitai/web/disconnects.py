"""A page that goes away while the server answers it is one log line, not a traceback per message (issue 69 item 13).

wslink answers a page, and sends every state change to every page, with aiohttp's ``WebSocketResponse.send_bytes``.
When a page's connection is gone (a closed tab or laptop lid, a network drop) before its answer, the write raises
``ClientConnectionResetError`` ("Cannot write to closing transport"): wslink then logs "Exception raised" with the
traceback, tries to send the error to the same gone page (a second traceback from aiohttp's request handler), and a
state change sent to all pages stops at the gone one ("Task exception was never retrieved"), so the other pages miss
it. `install` makes a write to a gone connection a no-op, said once per connection in one line; the connection's own
close then ends it as usual. aiohttp is the server's alone in this process (``orbitai web``).

`on_close` calls a function with a connection's id when that connection closes (a page closed, reloaded or gone),
for what the server keeps per page: a pending upload is dropped with its page (issue 80 item 14).
"""
from __future__ import annotations

import logging
import weakref
from typing import Any, Callable

__all__ = ["install", "on_close", "GONE"]

log = logging.getLogger("orbitai.web")
#: The log line of a page that went away before its answer (one per connection).
GONE = "orbitai web: a page disconnected before the server's answer reached it; the answer was dropped"
_said: "weakref.WeakSet[Any]" = weakref.WeakSet()


def install() -> bool:
    """Patch ``aiohttp.web.WebSocketResponse.send_bytes`` (once per process). Returns True when it is in place."""
    from aiohttp import web

    original = web.WebSocketResponse.send_bytes
    if getattr(original, "_orbitai_disconnects", False):
        return True

    async def send_bytes(self: Any, data: bytes, *args: Any, **kwargs: Any) -> None:
        try:
            await original(self, data, *args, **kwargs)
        except ConnectionResetError:            # aiohttp's ClientConnectionResetError is one
            if self not in _said:
                _said.add(self)
                log.warning(GONE)

    send_bytes._orbitai_disconnects = True      # type: ignore[attr-defined]
    web.WebSocketResponse.send_bytes = send_bytes   # type: ignore[method-assign]
    return True


def on_close(web_server: Any, closed: Callable[[Any], None]) -> None:
    """Call ``closed(client_id)`` when a connection of wslink's server ``web_server`` (trame's ``on_server_bind``)
    closes, whether its page said goodbye or not, before wslink's own close."""
    for handler in getattr(web_server, "_ws_handlers", None) or []:
        original = handler.onClose

        async def onClose(client_id: str, original: Any = original) -> None:
            try:
                closed(client_id)
            finally:
                await original(client_id)
        handler.onClose = onClose
