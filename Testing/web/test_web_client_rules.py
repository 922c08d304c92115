"""The web server's rules for what a client names and where it connects from, on their own (no server): a file name is
a name, never a path; a path resolves under DATA or is refused alike; Host and Origin; the bounded message
reassembly."""
from __future__ import annotations

import asyncio
import os

import msgpack
import pytest

from orbitai.errors import InputError
from orbitai.web.guard import BoundedUnChunker, is_loopback, refusal
from orbitai.web.names import PATH_REFUSED, client_file_name, client_path, web_url
from ws_client import frame


@pytest.mark.parametrize("name, base", [
    ("scan.nrrd", "scan.nrrd"), ("../../../etc/cron.d/x", "x"), ("/abs/dir/x.seg.nrrd", "x.seg.nrrd"),
    ("C:\\Users\\me\\x.nii.gz", "x.nii.gz"), ("C:x.nrrd", "x.nrrd"), ("sub/../../IM0001", "IM0001"),
    (".hidden", ".hidden"), ("眼窩.nrrd", "眼窩.nrrd")])
def test_an_uploaded_file_name_is_reduced_to_its_name(name, base):
    assert client_file_name(name) == base


@pytest.mark.parametrize("name", ["", ".", "..", "../..", "dir/", "/", "a\x00b", "a\nb.nrrd", None, 7, "x" * 256])
def test_an_uploaded_file_name_with_no_name_left_is_refused_in_one_line(name):
    with pytest.raises(InputError) as exc:
        client_file_name(name)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 300


def test_a_client_path_resolves_under_data_or_is_refused_alike(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "sub").mkdir(parents=True)
    outside.mkdir()
    (data / "sub" / "a.nrrd").write_bytes(b"")
    (outside / "b.nrrd").write_bytes(b"")
    os.symlink(outside / "b.nrrd", data / "link.nrrd")
    os.symlink(outside, data / "linkdir")
    assert client_path("sub/a.nrrd", data) == (data / "sub" / "a.nrrd").resolve()
    assert client_path(str(data / "sub" / "a.nrrd"), data) == (data / "sub" / "a.nrrd").resolve()
    assert client_path("sub/missing.nrrd", data) == (data / "sub" / "missing.nrrd").resolve()   # inside: its error
    for text in (str(outside / "b.nrrd"), str(outside / "missing.nrrd"), "../outside/b.nrrd", "link.nrrd",
                 "linkdir/b.nrrd", "", ".", "sub/../..", f"file://{outside}/b.nrrd", "a\x00b"):
        with pytest.raises(InputError) as exc:
            client_path(text, data)
        assert str(exc.value) == PATH_REFUSED, text
    with pytest.raises(InputError):
        client_path("sub/a.nrrd", None)          # no DATA folder: no client path at all


def test_only_http_urls_are_web_urls():
    assert web_url("https://pacs/dicom-web/studies/1/series/2") and web_url("http://127.0.0.1:8042/x")
    assert not any(web_url(t) for t in ("file:///etc/passwd", "/etc/passwd", "ftp://x/y", "http://", "http:/x"))


H = {"Host": "127.0.0.1:8080", "Upgrade": "websocket"}


@pytest.mark.parametrize("headers, loopback, allowed, refused", [
    (H, True, (), False),                                                         # a program: no Origin
    ({**H, "Origin": "http://127.0.0.1:8080"}, True, (), False),                  # the page itself
    ({**H, "Origin": "http://localhost:8080"}, True, (), False),                  # the page under another loopback name
    ({**H, "Origin": "http://evil.example"}, True, (), True),                     # another site's page
    ({**H, "Origin": "http://localhost:9999"}, True, (), True),                   # another local server's page
    ({**H, "Origin": "null"}, True, (), True),                                    # a sandboxed or file: page
    ({"Host": "evil.example:8080", "Upgrade": "websocket", "Origin": "http://evil.example:8080"}, True, (), True),
    ({"Host": "evil.example:8080"}, True, (), True),                              # DNS rebinding, the page itself
    ({"Host": "scanner.lan:8080", "Upgrade": "websocket", "Origin": "http://scanner.lan:8080"}, False, (), False),
    ({"Host": "scanner.lan:8080", "Upgrade": "websocket", "Origin": "http://evil.example"}, False, (), True),
    ({"Host": "orbitai.example.org", "Upgrade": "websocket", "Origin": "https://orbitai.example.org"}, True,
     ("https://orbitai.example.org",), False),                                    # behind a reverse proxy
    ({}, True, (), True),                                                         # no Host
])
def test_host_and_origin(headers, loopback, allowed, refused):
    assert (refusal(headers, loopback, allowed) is not None) == refused


def test_loopback_names():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "example.org", "::"))


class _Ws:
    def __init__(self) -> None:
        self.closed_with = None

    async def close(self, code: int, message: bytes) -> None:
        self.closed_with = code


def test_a_message_claiming_more_than_the_limit_is_refused_without_allocating():
    async def go() -> tuple:
        ws = _Ws()
        u = BoundedUnChunker(ws, limit=1 << 20)
        packed = msgpack.packb({"id": "system:c0:0", "method": "wslink.hello", "args": [{"secret": "s"}]})
        assert u.process_chunk(frame(1, 0, len(packed), packed))["method"] == "wslink.hello"   # before auth: 512 B
        assert u.process_chunk(frame(2, 0, 600, b"x" * 10)) is None and u.refused             # over 512 B
        await asyncio.sleep(0)
        refused_before_auth = ws.closed_with
        ws = _Ws()
        u = BoundedUnChunker(ws, limit=1 << 20)
        u.set_max_message_size(4 << 30)                     # what wslink asks once authenticated
        assert u.max_message_size == 1 << 20
        big = msgpack.packb({"id": "rpc:1", "args": [b"y" * 3000]})
        assert u.process_chunk(frame(3, 0, len(big), big[:1000])) is None
        assert len(u.pending[3][1]) == 1000                 # memory grows with what arrived, not with what is claimed
        assert u.process_chunk(frame(3, 1000, len(big), big[1000:]))["id"] == "rpc:1"
        assert u.process_chunk(frame(4, 0, 1_000_000_000, b"z" * 16)) is None and u.refused
        await asyncio.sleep(0)
        return refused_before_auth, ws.closed_with, u.pending

    before_auth, after_auth, pending = asyncio.run(go())
    assert before_auth == 1009 and after_auth == 1009 and pending == {}


def test_frames_out_of_order_or_beyond_their_message_are_refused():
    async def go() -> list:
        codes = []
        for chunks in ([frame(1, 5, 20, b"x" * 5)], [frame(1, 0, 20, b"x" * 15), frame(1, 15, 20, b"x" * 10)],
                       [frame(1, 0, 20, b"x" * 5), frame(1, 5, 30, b"x" * 5)], [b"short"]):
            ws = _Ws()
            u = BoundedUnChunker(ws, limit=1 << 20)
            u.set_max_message_size(1 << 30)
            for c in chunks:
                u.process_chunk(c)
            await asyncio.sleep(0)
            codes.append(ws.closed_with)
        return codes

    assert asyncio.run(go()) == [1009] * 4


@pytest.mark.parametrize("text", ["\\\\host\\share\\x.nrrd", "//host/share/x.nrrd", "C:\\data\\x.nrrd", "c:x.nrrd",
                                  "sub\\..\\..\\x.nrrd", "/net/automount/x.nrrd", "../../net/x.nrrd", "sub/../../x"])
def test_a_client_path_outside_data_is_refused_from_its_text_without_asking_the_file_system(tmp_path, monkeypatch,
                                                                                           text):
    asked: list = []
    real = os.path.realpath

    def realpath(path, *args, **kwargs):
        asked.append(str(path))
        return real(path, *args, **kwargs)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(os.path, "realpath", realpath)
    with pytest.raises(InputError) as exc:
        client_path(text, data)
    assert str(exc.value) == PATH_REFUSED
    assert asked == [], asked


def test_an_upper_case_scheme_is_a_url_for_resolve_image_too(tmp_path):
    from orbitai.dicom.inputs import resolve_image
    from orbitai.errors import UserError

    for text in ("HTTP://x/../../etc/passwd", "Https://x/../../etc/passwd"):
        with pytest.raises(UserError) as exc:          # a URL (not a DICOMweb one), never a local path
            resolve_image(text, None, tmp_path)
        assert "DICOMweb" in str(exc.value)


@pytest.mark.parametrize("token, ok", [("a" * 16, True), ("Ab-_0123456789xyz", True), ("1" * 20, False),
                                       ("1234567890-123456_", False), ("a" * 15, False), ("abcdefghijklmnop!", False),
                                       ("abcdefghijklmnop/", False), ("abcdéfghijklmnopq", False)])
def test_the_secret_rule_wants_url_safe_characters_and_a_letter(token, ok):
    from orbitai.web.cli import valid_token

    assert valid_token(token) == ok
