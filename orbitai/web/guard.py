"""The web server's gate: who may connect, and how much one message may hold.

trame and wslink, as they come, accept a websocket from any origin with a public default secret (``wslink-secret``),
and an authenticated client's message header makes the server allocate the size it claims (up to 4 GB) before any of
it arrives. `Guard` closes each of these on the server's aiohttp application before it starts (trame's
``on_server_bind``):

* **Host and Origin** (`refusal`): a request whose ``Host`` is not this machine's loopback name is refused while the
  server listens on loopback (DNS rebinding); a websocket whose ``Origin`` is neither the page's own (the ``Host``
  it was served from, or another loopback name of the same port on a loopback server) nor one given with
  ``--allow-origin`` is refused with 403 before the upgrade;
* **the secret**: a random one per start (or ``ORBITAI_WEB_TOKEN``), given to the page in its address
  (``?secret=``), compared in constant time; trame's default is never accepted. The page's first load with the right
  secret also sets it as a cookie (`COOKIE_PREFIX`; HttpOnly, SameSite=Strict, path /), and a websocket whose upgrade
  request carries that cookie is authenticated whatever secret its hello gives: trame's page drops ``?secret=`` from
  its address, so a reload (F5) sends trame's default and would be refused; another site's page cannot send the
  cookie (SameSite=Strict) and its Origin is refused anyway;
* **message size** (`BoundedUnChunker`): a message may claim at most the upload limit plus `MESSAGE_OVERHEAD`
  (512 bytes before the client is authenticated); its memory grows with the bytes that arrive, not the size
  claimed; a message over the limit closes the connection with 1009 (message too big). Frames are bounded by trame's
  ``ws_max_msg_size`` (10 MB), which aiohttp checks from the frame header.

The wslink internals used (the aiohttp backend's ``_ws_handlers``, a handler's ``onConnect``, ``unchunkers`` and
``connections``) are checked when the server binds: another wslink refuses to start in one line rather than run
unguarded. Testing/web/test_web_security.py drives all of it with a raw websocket client.
"""
from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import logging
import secrets
import socket
import struct
from typing import Any, Iterable, Optional
from urllib.parse import urlsplit

__all__ = ["Guard", "BoundedUnChunker", "refusal", "is_loopback", "new_token", "GuardError", "DEFAULT_UPLOAD_MB",
           "MESSAGE_OVERHEAD", "MIN_TOKEN_CHARS", "COOKIE_PREFIX"]

log = logging.getLogger(__name__)

#: The default upload limit (``--max-upload-mb``): a CT series of several hundred slices fits.
DEFAULT_UPLOAD_MB = 512
#: What a message may hold beyond the upload limit (the trigger's framing and the files' other fields).
MESSAGE_OVERHEAD = 1 << 20
#: What a client may send before it is authenticated (wslink's hello; wslink's own pre-authentication limit).
BEFORE_AUTH_BYTES = 512
MIN_TOKEN_CHARS = 16
#: The secret's cookie is named this and the server's port (servers on other ports of one host keep theirs apart).
COOKIE_PREFIX = "orbitai_secret_"
_HEADER = struct.Struct("<III")             # wslink: message id, offset, total size
LOOPBACK_NAMES = ("localhost",)


class GuardError(RuntimeError):
    """The installed wslink does not have what the guard hooks into."""


def new_token() -> str:
    """A fresh random secret (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, with no port) names this machine's loopback only."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(netloc: str, scheme: str = "http") -> Optional[tuple[str, int]]:
    """(host, port) of ``host[:port]`` (the scheme's default port when none); None when it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or (443 if scheme in ("https", "wss") else 80)
    except ValueError:
        return None
    return (parts.hostname or "", port) if parts.hostname else None


def refusal(headers: Any, loopback_only: bool, allowed_origins: Iterable[str] = ()) -> Optional[str]:
    """Why a request is refused (one line), or None. ``headers``: its HTTP headers (a mapping, case-insensitive for
    aiohttp's); ``loopback_only``: the server listens on loopback; ``allowed_origins``: origins (``scheme://host:port``)
    whose pages may also connect (a reverse proxy's public address)."""
    allowed = [o.rstrip("/").lower() for o in allowed_origins]
    host = str(headers.get("Host") or "")
    host_port = _host_port(host)
    allowed_names = [urlsplit(o).hostname for o in allowed]
    if host_port is None:
        return "no valid Host header"
    if loopback_only and not is_loopback(host_port[0]) and host_port[0] not in allowed_names:
        return f"Host {host[:80]!r} is not this machine's loopback address"
    if str(headers.get("Upgrade") or "").lower() != "websocket":
        return None
    origin = headers.get("Origin")
    if origin is None:              # not a browser: no page of another site can be behind it (the secret still is)
        return None
    origin = str(origin).rstrip("/").lower()
    if origin in allowed:
        return None
    parts = urlsplit(origin)
    origin_host_port = _host_port(parts.netloc, parts.scheme) if parts.scheme in ("http", "https") else None
    if origin_host_port is not None and (
            origin_host_port == host_port
            # a page of this server under another loopback name (localhost vs 127.0.0.1): same port, this machine
            or (loopback_only and is_loopback(origin_host_port[0]) and origin_host_port[1] == host_port[1])):
        return None
    return f"websocket from another origin ({origin[:80]!r}) refused"


class BoundedUnChunker:
    """wslink's message reassembly with a bound: a message may claim at most `limit` bytes (512 before the client is
    authenticated); memory grows only with the bytes that arrive, in order; all the messages pending together hold at
    most `limit`. Anything beyond closes the connection with 1009 (message too big)."""

    def __init__(self, ws: Any, limit: int) -> None:
        self.ws, self.limit = ws, int(limit)
        self.max_message_size = BEFORE_AUTH_BYTES
        self.pending: dict[int, tuple[int, bytearray]] = {}
        self.refused = False

    def set_max_message_size(self, size: int) -> None:
        """Called by wslink once the client is authenticated (with 4 GB): never above `limit`."""
        self.max_message_size = min(int(size), self.limit)

    def release_pending_messages(self) -> None:
        self.pending = {}

    def process_chunk(self, chunk: bytes) -> Any:
        import msgpack  # type: ignore[import-untyped]

        if self.refused:
            return None
        if len(chunk) < _HEADER.size:
            return self._refuse("a frame shorter than its header")
        number, offset, total = _HEADER.unpack_from(chunk)
        content = memoryview(chunk)[_HEADER.size:]
        known = self.pending.get(number)
        if known is None:
            if total > self.max_message_size:
                return self._refuse(f"a message of {total} bytes (the limit is {self.max_message_size})")
            known = self.pending[number] = (total, bytearray())
        claimed, buffer = known
        if claimed != total or offset != len(buffer) or offset + len(content) > total:
            return self._refuse("a frame out of its message's order or size")
        if sum(len(b) for _, b in self.pending.values()) + len(content) > self.max_message_size:
            return self._refuse("messages over the limit together")
        buffer += content
        if len(buffer) < total:
            return None
        del self.pending[number]
        return msgpack.unpackb(buffer)

    def _refuse(self, what: str) -> None:
        self.refused = True
        self.pending = {}
        log.warning("%s was refused; the connection is closed (1009).", what)
        asyncio.ensure_future(self.ws.close(code=1009, message=b"message too big"))
        return None


class Guard:
    """Installs the gate on the trame server before it starts (`install`)."""

    def __init__(self, token: str, host: str, upload_limit: int, allowed_origins: Iterable[str] = ()) -> None:
        self.token = token
        self.loopback_only = is_loopback(host)
        self.message_limit = int(upload_limit) + MESSAGE_OVERHEAD
        self.allowed_origins = tuple(allowed_origins)
        #: Connections whose upgrade request carried the secret's cookie.
        self.cookie_clients: set[str] = set()

    def install(self, server: Any) -> None:
        server.controller.on_server_bind.add(lambda web_server: self.bind(server, web_server))

    def bind(self, server: Any, web_server: Any) -> None:
        """trame's ``on_server_bind``: the secret, the gate and the bounded reassembly on wslink's aiohttp server."""
        from aiohttp import web

        handlers = getattr(web_server, "_ws_handlers", None)
        app = getattr(web_server, "app", None)
        if app is None or not handlers or not all(hasattr(h, "unchunkers") and hasattr(h, "connections")
                                                  and hasattr(h, "onConnect") for h in handlers):
            raise GuardError("this wslink version does not have what orbitai web's guard needs; install the "
                             "versions of the web extra (pip install -e '.[web]')")
        protocol = server.protocol
        protocol.updateSecret(self.token)

        async def validateToken(token: Any, client_id: str) -> bool:
            return client_id in self.cookie_clients or self.is_token(token)
        protocol.validateToken = validateToken

        @web.middleware
        async def gate(request: Any, handler: Any) -> Any:
            why = refusal(request.headers, self.loopback_only, self.allowed_origins)
            if why is not None:
                log.warning("%s (%s %s).", why, request.method, request.path[:80])
                return web.Response(status=403, text=f"Forbidden: {why}.\n")
            try:
                response = await handler(request)
            except web.HTTPException as exc:       # wslink answers / with a redirect to /index.html (raised)
                self._cookie(request, exc)
                raise
            self._cookie(request, response)
            return response
        app.middlewares.append(gate)

        for handler in handlers:
            self._bound(handler)

    def _cookie(self, request: Any, response: Any) -> None:
        """The secret's cookie on the answer to the page's address with the right ``?secret=``."""
        if (request.method == "GET" and request.path in ("/", "/index.html")
                and self.is_token(request.query.get("secret"))):
            response.set_cookie(self.cookie_name(request), self.token, path="/", httponly=True, samesite="Strict",
                                secure=request.secure or None)

    def is_token(self, token: Any) -> bool:
        """Whether ``token`` is the secret (constant time)."""
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.token.encode())

    @staticmethod
    def cookie_name(request: Any) -> str:
        """The secret's cookie for the address ``request`` came to (`COOKIE_PREFIX` and its port)."""
        port = _host_port(str(request.headers.get("Host") or ""), "https" if request.secure else "http")
        return f"{COOKIE_PREFIX}{port[1] if port else 0}"

    def _bound(self, handler: Any) -> None:
        original, original_close = handler.onConnect, handler.onClose
        limit = self.message_limit

        async def onConnect(request: Any, client_id: str) -> None:
            await original(request, client_id)
            handler.unchunkers[client_id] = BoundedUnChunker(handler.connections[client_id], limit)
            if self.is_token(request.cookies.get(self.cookie_name(request))):
                self.cookie_clients.add(client_id)

        async def onClose(client_id: str) -> None:
            self.cookie_clients.discard(client_id)
            await original_close(client_id)
        handler.onConnect, handler.onClose = onConnect, onClose


def listen_error(host: str, port: int, exc: OSError) -> str:
    """One line for a server that cannot listen on ``host``:``port``, naming the option to change."""
    if exc.errno == errno.EADDRINUSE:
        return (f"--port {port} is already in use on {host}; stop what listens there or give another --port "
                "(0 picks a free one).")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"--port {port} needs privileges on {host}; give a port above 1023 (or 0 to pick a free one)."
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return (f"--host {host!r} is not an address of this machine; give one of its addresses, 127.0.0.1 (this "
                "machine only) or 0.0.0.0 (every interface).")
    return f"cannot listen on --host {host!r} --port {port}: {exc.strerror or exc}."
