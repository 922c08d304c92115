"""A local HTTP server on 127.0.0.1 that serves bundle archives (`asset_server`), for the download tests.

It honours ``Range: bytes=N-`` (206 with Content-Range) and has switches, each for the next requests:
``truncate`` (send half the file, then close the connection; once), ``stall`` (send the headers and 1000 bytes,
then nothing until the test ends), ``missing`` (404 for everything), ``wrong`` (the right length, other bytes),
``ignore_range`` (the whole file, 200, whatever the Range), ``cut`` (send that many bytes, then close; every time),
``length`` (the Content-Length header says this instead), ``extra`` (these bytes after the file, sent without a
Content-Length, then close), ``drip`` ((bytes, seconds): send that many bytes at a time, waiting between).
``requests`` records each request's path and Range header."""
from __future__ import annotations

import http.server
import threading
from typing import Any, Iterator, Optional

import pytest


class AssetServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate = False
        self.stall = False
        self.missing = False
        self.wrong = False
        self.ignore_range = False
        self.cut: Optional[int] = None
        self.length: Optional[int] = None
        self.extra = b""
        self.drip: Optional[tuple[int, float]] = None
        self.requests: list[tuple[str, str]] = []
        self.stalled = threading.Event()          # set when a stalled response has sent its first bytes
        self.closing = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:   # quiet
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range", "")
                server.requests.append((self.path, rng))
                name = self.path.rsplit("/", 1)[-1]
                data = server.files.get(name)
                if server.missing or data is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.wrong:
                    data = bytes(b ^ 0x5A for b in data)
                if server.ignore_range:
                    rng = ""
                start = int(rng[len("bytes="):].split("-")[0]) if rng.startswith("bytes=") else 0
                if start >= len(data) and rng:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                if server.extra:
                    self.close_connection = True          # the end of the connection is the end of the body
                else:
                    self.send_header("Content-Length", str(server.length or len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if server.extra or server.cut is not None or server.drip is not None:
                    self._send_shaped(body)
                    return
                if server.stall:
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    server.stalled.set()
                    server.closing.wait(30)
                    return
                if server.truncate:
                    server.truncate = False
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _send_shaped(self, body: bytes) -> None:
                self.close_connection = True
                try:
                    if server.drip is not None:
                        step, pause = server.drip
                        for i in range(0, len(body), step):
                            if server.closing.wait(pause):
                                return
                            self.wfile.write(body[i:i + step])
                            self.wfile.flush()
                        return
                    self.wfile.write(body[:server.cut] if server.cut is not None else body + server.extra)
                    self.wfile.flush()
                except OSError:              # the client stopped reading
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def ranges(self) -> list[str]:
        return [r for _, r in self.requests if r]


@pytest.fixture()
def asset_server() -> Iterator[AssetServer]:
    server = AssetServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.httpd.shutdown()
        server.httpd.server_close()
