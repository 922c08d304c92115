"""A local HTTP server on 127.0.0.1 that serves bundle archives (`asset_server`), for the download tests.

It honours ``Range: bytes=N-`` (206 with Content-Range) and has switches, each for the next requests:
``truncate`` (send half the file, then close the connection; once), ``stall`` (send the headers and 1000 bytes,
then nothing until the test ends), ``missing`` (404 for everything), ``wrong`` (the right length, other bytes).
``requests`` records each request's path and Range header."""
from __future__ import annotations

import http.server
import threading
from typing import Any, Iterator

import pytest


class AssetServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate = False
        self.stall = False
        self.missing = False
        self.wrong = False
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
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
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
