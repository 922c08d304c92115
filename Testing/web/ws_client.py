"""A raw wslink client for the web server's security tests: what any program (or a hostile page's script) can send,
without the page's own checks.

wslink messages are msgpack, cut into binary frames of a 12-byte header (message id, offset, total size, little-endian
uint32) and the content; ``wslink.hello`` with ``{"secret": ...}`` authenticates the connection."""
from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from typing import Any, AsyncIterator, Callable, Optional

import aiohttp
import msgpack

HELLO_ID = "system:c0:0"


def frame(message_id: int, offset: int, total: int, content: bytes) -> bytes:
    """One wslink frame: its header then ``content``."""
    return struct.pack("<III", message_id, offset, total) + content


class WsClient:
    """One websocket connection to ``orbitai web``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.count = 0
        self.closed_code: Optional[int] = None
        self._pending: dict[int, bytearray] = {}

    async def send(self, message_id: str, method: str, args: list) -> None:
        packed = msgpack.packb({"wslink": "1.0", "id": message_id, "method": method, "args": args, "kwargs": {}})
        step = 1 << 20
        number = (hash(message_id) & 0x7FFFFFFF) or 1
        for offset in range(0, len(packed), step):
            await self.ws.send_bytes(frame(number, offset, len(packed), packed[offset:offset + step]))

    async def receive(self, message_id: str, timeout_s: float = 60.0) -> dict:
        """The reply to ``message_id`` (publications to the page in between are skipped)."""
        async def read() -> dict:
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    self.closed_code = self.ws.close_code
                    raise ConnectionError(f"the server closed the connection ({msg.type.name}, {self.ws.close_code})")
                number, offset, total = struct.unpack("<III", msg.data[:12])
                buf = self._pending.setdefault(number, bytearray())
                buf += msg.data[12:]
                if len(buf) >= total:
                    payload = msgpack.unpackb(bytes(self._pending.pop(number)), strict_map_key=False)
                    if isinstance(payload, dict) and payload.get("id") == message_id:
                        return payload
        return await asyncio.wait_for(read(), timeout_s)

    async def hello(self, secret: str) -> dict:
        await self.send(HELLO_ID, "wslink.hello", [{"secret": secret}])
        return await self.receive(HELLO_ID)

    async def call(self, method: str, *args: Any, timeout_s: float = 120.0) -> Any:
        self.count += 1
        message_id = f"rpc:c:{self.count}"
        await self.send(message_id, method, list(args))
        reply = await self.receive(message_id, timeout_s)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result")

    async def state(self) -> dict:
        return (await self.call("trame.state.get"))["state"]

    async def set_state(self, **values: Any) -> None:
        await self.call("trame.state.update", [{"key": k, "value": v} for k, v in values.items()])

    async def trigger(self, name: str, *args: Any, timeout_s: float = 120.0) -> Any:
        return await self.call("trame.trigger", name, list(args), {}, timeout_s=timeout_s)


@contextlib.asynccontextmanager
async def connect(http_url: str, origin: Optional[str] = None, headers: Optional[dict] = None
                  ) -> AsyncIterator[WsClient]:
    """A websocket to the server at ``http_url`` (its ``/ws`` endpoint); ``origin``: the Origin header a page of that
    origin would send (none: a program, which sends none)."""
    ws_url = re.sub(r"^http", "ws", http_url.split("?")[0].rstrip("/")) + "/ws"
    extra = dict(headers or {})
    if origin is not None:
        extra["Origin"] = origin
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url, headers=extra, max_msg_size=0, autoping=True) as ws:
            yield WsClient(ws)


def _template(state: dict) -> str:
    return " ".join(str(v) for k, v in state.items() if k.startswith("trame__template"))


def click_trigger(state: dict, element_id: str) -> str:
    """The trigger a button of the page calls when clicked (found in the page's template, as the browser does)."""
    found = re.search(r"""id="%s"[^>]*?trigger\('([^']+)'[,)]""" % re.escape(element_id), _template(state))
    assert found, f"no button {element_id} in the page"
    return found.group(1)


def upload_trigger(state: dict) -> str:
    """The trigger the page's file upload sends the files to (``load_files_by_chunks``' ``trigger_name``)."""
    found = re.search(r"trigger_name: '([^']+)'", _template(state))
    assert found, "no upload in the page"
    return found.group(1)


#: State keys a timed-out wait names (what the page last said about loads and jobs).
SHOWN_ON_TIMEOUT = ("load_error", "volumes", "orbit_status", "orbit_error")


async def wait_state(c: WsClient, predicate: Callable[[dict], bool], timeout_s: float = 60.0, what: str = "") -> dict:
    """The server's state once ``predicate`` holds for it (read every 0.2 s); a timeout names what it waited for and
    what the page last said (`SHOWN_ON_TIMEOUT`)."""
    deadline = asyncio.get_event_loop().time() + timeout_s
    while True:
        state = await c.state()
        if predicate(state):
            return state
        if asyncio.get_event_loop().time() > deadline:
            said = " ".join(f"{k}={state.get(k)!r}" for k in SHOWN_ON_TIMEOUT if k in state)
            raise TimeoutError(f"{what}: {said}" if what else said)
        await asyncio.sleep(0.2)


async def load_data(c: WsClient, relative: str, done: Callable[[dict], bool] = lambda s: bool(s["volumes"]),
                    timeout_s: float = 120.0) -> dict:
    """Load ``relative`` from the server's data folder as the page's Load button does; the state once the load has
    ended and ``done`` holds for it (or the page says a load error)."""
    await c.set_state(load_error="", data_choice=relative)
    await c.trigger(click_trigger(await c.state(), "orbitai-load-data"))
    return await wait_state(c, lambda s: not s["load_busy"] and (done(s) or s["load_error"]), timeout_s, relative)
