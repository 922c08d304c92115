"""``orbitai web`` against a hostile client: a raw websocket client (what any program, or a script of another page the
user opens, can send) on a real server on 127.0.0.1, without a browser.

Client-given file names are names, never paths; client-given paths resolve under DATA or are refused alike whether
they exist or not; a cross-origin websocket and trame's public default secret are refused; a frame claiming more than
the message limit is refused without the server's memory growing; an upload over the stated limit is refused in one
line with nothing left on disk."""
from __future__ import annotations

import asyncio
import os
import secrets
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from orbitai.io import Volume, write_volume
from orbitai.testing.web import web_server
from ws_client import click_trigger, connect, frame, upload_trigger, wait_state

UPLOAD_MB = 4
#: The server may grow this much while refusing a frame that claims 1 GB (a Python process's ordinary noise).
RSS_BOUND_MB = 64


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        pytest.skip("reads the server's memory from /proc (Linux)")
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024.0


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """``orbitai web DATA --max-upload-mb 4`` with a scan in DATA, one outside it and a link in DATA to it; the server's
    temporary folder (TMPDIR) is the test's, so that what an upload leaves there is seen."""
    try:
        import trame_slicer  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the web extra is missing ({exc.name}) (CI must have it)")
        pytest.skip(f"the web extra is missing ({exc.name}): pip install -e '.[web,dev]'")
    root = tmp_path_factory.mktemp("web-security")
    data, outside, tmp = root / "data", root / "outside", root / "server-tmp"
    for d in (data, outside, tmp):
        d.mkdir()
    scan = Volume(np.random.default_rng(0).normal(100, 20, (12, 14, 16)).astype(np.float32), spacing=(1.0, 1.0, 2.0))
    write_volume(scan, data / "inside.nrrd")
    write_volume(scan, outside / "secret.nrrd")
    (data / "link.nrrd").symlink_to(outside / "secret.nrrd")
    with web_server(str(data), "--max-upload-mb", str(UPLOAD_MB), env={"TMPDIR": str(tmp)}) as srv:
        yield types.SimpleNamespace(srv=srv, data=data, outside=outside, tmp=tmp, scan=(data / "inside.nrrd"),
                                    origin=srv.url.split("/?")[0].rstrip("/"))


def run(coro: Any) -> Any:
    return asyncio.run(coro)




async def _settled(c: Any, before: list) -> dict:
    """The state once the load the client asked for has ended (an error, or a new volume)."""
    return await wait_state(c, lambda s: not s["load_busy"] and (s["load_error"] or len(s["volumes"]) > len(before)))


async def _upload(c: Any, files: list[tuple[str, bytes]], per_message: int = 1) -> dict:
    """Send files as the page's upload does (groups of files per message, then an empty list), return the state once
    the load ended."""
    await c.set_state(load_error="")
    state = await c.state()
    before, trigger = state["volumes"], upload_trigger(state)
    for i in range(0, len(files), per_message):
        group = [{"name": n, "size": len(b), "type": "", "lastModified": 0, "content": b}
                 for n, b in files[i:i + per_message]]
        await c.trigger(trigger, group)
    await c.trigger(trigger, [])
    return await _settled(c, before)


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# --------------------------------------------------------------------------- names and paths
def test_upload_file_names_are_names_never_paths(raw):
    target = raw.outside / "victim.seg.nrrd"
    target.write_bytes(b"the user's own file")
    outside_before = _files_under(raw.outside)
    hostile = ["../" * 40 + str(target).lstrip("/"),       # relative traversal out of the upload folder
               str(target),                                 # an absolute path
               "..", "a\x00b.nrrd", "C:\\Windows\\x.nrrd", "sub/../../x.nrrd"]

    async def go() -> dict:
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            errors = {}
            for name in hostile:
                state = await _upload(c, [(name, b"not a scan, the attacker's bytes")])
                errors[name] = state["load_error"]
            # a plain name still loads, under its own name
            state = await _upload(c, [("plain.nrrd", raw.scan.read_bytes())])
            assert state["load_error"] == "" and state["volumes"][-1]["title"] == "plain"
            return errors

    errors = run(go())
    assert target.read_bytes() == b"the user's own file"
    assert _files_under(raw.outside) == outside_before, "an upload wrote outside its folder"
    assert all(e and "\n" not in e and "Traceback" not in e for e in errors.values()), errors
    assert not list(raw.tmp.glob("orbitai-upload-*")), "a failed upload left its files behind"


def test_client_paths_outside_data_are_refused_alike(raw):
    outside = str(raw.outside / "secret.nrrd")
    missing = str(raw.outside / "no-such-scan.nrrd")

    async def go() -> tuple[dict, dict, dict]:
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            fetch = click_trigger(await c.state(), "orbitai-load-dicomweb")
            load = click_trigger(await c.state(), "orbitai-load-data")
            by_url = {}
            for text in (outside, missing, str(raw.data / "link.nrrd"), f"file://{outside}",
                         str(raw.data / ".." / "outside" / "secret.nrrd"),
                         "HTTP://x/../../" + os.path.relpath(outside, "/"), "hTtPs://x/../../" + outside):
                await c.set_state(load_error="", dicomweb_url=text)
                before = (await c.state())["volumes"]
                await c.trigger(fetch)
                state = await _settled(c, before)
                assert len(state["volumes"]) == len(before), f"{text} was loaded"
                by_url[text] = state["load_error"]
            by_choice = {}
            for text in ("../outside/secret.nrrd", "../outside/no-such-scan.nrrd", "link.nrrd"):
                await c.set_state(load_error="", data_choice=text)
                before = (await c.state())["volumes"]
                await c.trigger(load)
                state = await _settled(c, before)
                assert len(state["volumes"]) == len(before), f"{text} was loaded"
                by_choice[text] = state["load_error"]
            # a model option naming a server path: refused alike, before any job
            await c.set_state(data_choice="inside.nrrd")
            before = (await c.state())["volumes"]
            await c.trigger(load)
            await _settled(c, before)
            by_model = {}
            for text in ("/", "/no-such-folder-orbitai"):
                await c.set_state(orbit_model=text)
                state = await wait_state(c, lambda s: not s["orbit_apply_enabled"], 20)
                by_model[text] = state["orbit_apply_tip"]
            # the scan inside DATA, named by its path, loads
            await c.set_state(load_error="", dicomweb_url=str(raw.data / "inside.nrrd"))
            before = (await c.state())["volumes"]
            await c.trigger(fetch)
            state = await _settled(c, before)
            assert state["load_error"] == "" and len(state["volumes"]) == len(before) + 1
            return by_url, by_choice, by_model

    by_url, by_choice, by_model = run(go())
    for errors in (by_url, by_choice):
        assert all(e and "\n" not in e for e in errors.values()), errors
        assert len({e.replace(text, "PATH") for text, e in errors.items()}) == 1, \
            f"the refusals differ, so they tell what exists: {errors}"
    assert all(by_model.values()) and len(set(by_model.values())) == 1, by_model


# --------------------------------------------------------------------------- the websocket
def test_cross_origin_websockets_and_the_public_secret_are_refused(raw):
    import aiohttp

    port = raw.origin.rsplit(":", 1)[1]

    async def refused(origin: str, **headers: str) -> int:
        try:
            async with connect(raw.srv.url, origin=origin, headers=headers) as c:
                await c.hello(raw.srv.token)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        return 101

    async def hello(origin: str, secret: str) -> dict:
        async with connect(raw.srv.url, origin=origin) as c:
            return await c.hello(secret)

    assert run(refused("http://evil.example")) == 403
    assert run(refused("null")) == 403
    # DNS rebinding: the page's origin and the Host header agree, but name another host than this machine's
    assert run(refused(f"http://evil.example:{port}", Host=f"evil.example:{port}")) == 403
    assert "result" in run(hello(raw.origin, raw.srv.token))
    assert "result" in run(hello(f"http://localhost:{port}", raw.srv.token))
    assert "error" in run(hello(raw.origin, "wslink-secret")), "trame's public default secret is accepted"
    assert "error" in run(hello(raw.origin, secrets.token_urlsafe(24)))


def test_an_oversize_frame_is_refused_without_growing_memory(raw):
    pid = raw.srv.process.pid

    async def go() -> tuple[float, float, Any]:
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            await c.state()
            before = _rss_mb(pid)
            # 28 bytes: a message header claiming 1 GB, then 16 bytes of it
            await c.ws.send_bytes(frame(7, 0, 1_000_000_000, b"x" * 16))
            try:
                await c.state()          # processed after the frame: the server has dealt with it
            except (ConnectionError, asyncio.TimeoutError):
                pass
            after = _rss_mb(pid)
            return before, after, c.ws.close_code

    before, after, code = run(go())
    assert after - before < RSS_BOUND_MB, f"the server grew by {after - before:.0f} MB"
    assert code == 1009, f"the connection was not closed as too big (close code {code})"
    # the server still serves
    async def alive() -> dict:
        async with connect(raw.srv.url) as c:
            return await c.hello(raw.srv.token)
    assert "result" in run(alive())


def test_an_upload_over_the_limit_is_refused_in_one_line_and_leaves_nothing(raw):
    chunk = 3 * 1024 * 1024                          # two messages of 3 MB: 6 MB > the 4 MB limit

    async def go() -> dict:
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            return await _upload(c, [("a.dcm", b"\0" * chunk), ("b.dcm", b"\0" * chunk)])

    state = run(go())
    error = state["load_error"]
    assert f"{UPLOAD_MB} MB" in error and "\n" not in error, error
    assert not list(raw.tmp.glob("orbitai-upload-*"))


def test_a_closed_connections_upload_is_not_mixed_with_the_next(raw):
    async def go() -> dict:
        async with connect(raw.srv.url) as c:       # a page closed (or reloaded) in the middle of its upload
            await c.hello(raw.srv.token)
            trigger = upload_trigger(await c.state())
            await c.trigger(trigger, [{"name": "other-patient.dcm", "content": b"another patient's slice"}])
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            return await _upload(c, [("mine.nrrd", raw.scan.read_bytes())])

    state = run(go())
    assert state["load_error"] == "" and state["volumes"][-1]["title"] == "mine", state["load_error"]
    assert not list(raw.tmp.glob("orbitai-upload-*"))


def test_a_segmentation_option_takes_only_a_listed_segmentation(raw):
    async def go() -> dict:
        async with connect(raw.srv.url) as c:
            await c.hello(raw.srv.token)
            await c.set_state(load_error="", data_choice="inside.nrrd")
            before = (await c.state())["volumes"]
            await c.trigger(click_trigger(await c.state(), "orbitai-load-data"))
            state = await _settled(c, before)
            tips = {}
            for value in (7, {"id": "x"}, state["input_volume"], "vtkMRMLSegmentationNode999"):
                await c.set_state(tao_segmentation_node=value)
                state = await wait_state(c, lambda s: not s["tao_apply_enabled"], 20)
                tips[repr(value)] = state["tao_apply_tip"]
            await c.set_state(tao_segmentation_node=None)
            return tips

    tips = run(go())
    assert all("listed segmentations" in t for t in tips.values()), tips
    assert "Traceback" not in raw.srv.log_tail(20000)


def test_the_secret_is_kept_in_a_strict_cookie_so_that_a_reload_stays_signed_in(raw):
    import aiohttp

    port = raw.origin.rsplit(":", 1)[1]

    async def go() -> tuple:
        async with aiohttp.ClientSession() as session:
            async with session.get(raw.srv.url) as r:
                set_cookie = r.headers.get("Set-Cookie", "")
                cookie = {m.key: m.value for m in r.cookies.values()}
            async with session.get(raw.origin + "/?secret=" + secrets.token_urlsafe(24)) as r:
                wrong = r.headers.get("Set-Cookie")
        header = "; ".join(f"{k}={v}" for k, v in cookie.items())
        async with connect(raw.srv.url, origin=raw.origin, headers={"Cookie": header}) as c:
            reloaded = await c.hello("wslink-secret")          # what the page sends after F5
        async with connect(raw.srv.url, origin=raw.origin) as c:
            without = await c.hello("wslink-secret")
        async with connect(raw.srv.url, origin=raw.origin, headers={"Cookie": header.replace("=", "=x", 1)}) as c:
            forged = await c.hello("wslink-secret")
        try:
            async with connect(raw.srv.url, origin="http://evil.example", headers={"Cookie": header}) as c:
                cross = await c.hello("wslink-secret")
        except aiohttp.WSServerHandshakeError as exc:
            cross = exc.status
        return set_cookie, cookie, wrong, reloaded, without, forged, cross

    set_cookie, cookie, wrong, reloaded, without, forged, cross = run(go())
    attributes = [a.strip().lower() for a in set_cookie.split(";")]
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes, set_cookie
    assert list(cookie.values()) == [raw.srv.token] and list(cookie)[0].endswith(port)
    assert wrong is None, "a wrong secret got a cookie"
    assert "result" in reloaded, reloaded
    assert "error" in without and "error" in forged
    assert cross == 403


if sys.platform == "win32":      # pragma: no cover - the web server's tests run on Linux (EGL, /proc)
    pytestmark = pytest.mark.skip("Linux only")
