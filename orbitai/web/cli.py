"""``orbitai web``: serve the browser front end (`orbitai.web.app`)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import socket
from typing import Optional

from orbitai.web.guard import listen_error
from orbitai.web.launch import mark, print_address

__all__ = ["add_parser", "listen_error", "valid_token", "TOKEN_ENV"]

#: The environment variable that gives the server's secret (else a random one per start).
TOKEN_ENV = "ORBITAI_WEB_TOKEN"
#: Connections a socket bound at the launch's start holds while the app is built (aiohttp's backlog).
LISTEN_BACKLOG = 128
#: Said when the server listens beyond this machine.
OTHERS_WARNING = ("warning: orbitai web listens on {host}: anyone who can reach it and has the address printed below "
                  "(its secret) can see and change the loaded scans, and over plain http the secret can be read on "
                  "the network. Put it behind an HTTPS reverse proxy (see docs/web.md) or keep --host 127.0.0.1.")


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("web", help=help_text,
                       description="Serve OrbitAI in the browser (trame-slicer: Slicer's scene, slice views and segment "
                                   "editor on the server; the page shows them). Needs the extra: pip install "
                                   "'orbitai[web]'. Views render off-screen (EGL, or OSMesa with "
                                   "VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow).")
    p.add_argument("data", metavar="DATA", nargs="?",
                   help="a scan to open (NRRD/NIfTI file, DICOM folder or DICOMweb series URL), or a folder whose "
                        "scans the page lists")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else is reachable by "
                        "others, who then need the printed address with its secret)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--max-upload-mb", type=int, default=None, metavar="MB",
                   help="the most one upload from the page may hold, in MB (default 512; 1 to 4000); a websocket "
                        "message may hold this plus 1 MB")
    p.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                   help="another origin whose pages may connect, e.g. https://orbitai.example.org for a reverse "
                        "proxy's public address (repeatable; by default only the page's own address)")
    p.add_argument("--dicomweb", action="append", default=[], metavar="URL",
                   help="a DICOMweb server (its service root, e.g. http://pacs.example.org:8042/dicom-web) the page may "
                        "fetch series from (repeatable). By default the page fetches from none but the DICOMweb URL "
                        "given as DATA: no other server, and none on this machine (loopback) unless named here")
    p.add_argument("--encoder", choices=("turbo-jpeg", "jpeg", "png", "webp"), default="turbo-jpeg",
                   help="how view images are sent (default turbo-jpeg; png is lossless and larger)")
    p.add_argument("--prepare", choices=("show", "annotate"), default="show",
                   help="when SmartPencil's regions and SmartFill's model prior are computed for a scan: as soon as it "
                        "is shown (default: the first click waits for nothing) or only once the Annotate tab is open "
                        "(a shared server spends no core on scans nobody edits)")
    p.set_defaults(func=run_web)


def valid_token(token: str) -> bool:
    """Whether ``token`` can be the server's secret: at least `MIN_TOKEN_CHARS` letters, digits, ``-`` and ``_``
    (what an address carries as it is), with a letter (trame's page turns a number-like ``?secret=`` into a number,
    which is then never the secret)."""
    from orbitai.web.guard import MIN_TOKEN_CHARS

    return bool(re.fullmatch(r"[A-Za-z0-9_-]{%d,}" % MIN_TOKEN_CHARS, token)) and bool(re.search(r"[A-Za-z]", token))


def check_listen(host: str, port: int) -> Optional[socket.socket]:
    """Bind ``host``:``port`` as the server will (every address the name resolves to), so that a busy port or a wrong
    host is one line naming the option before anything is built. Where the name is one address (127.0.0.1, 0.0.0.0:
    the usual case) the bound socket is kept listening and returned: the server serves on it (the page's address can
    be printed at once, and a browser that opens it waits in its queue until the page is served); else each is let
    go and None returned (the server binds again; a port taken in between is also one line)."""
    from orbitai.errors import UserError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise UserError(listen_error(host, port, exc if isinstance(exc, OSError) else socket.gaierror())) from None
    for family, kind, proto, _name, address in infos:
        s = socket.socket(family, kind, proto)
        try:
            if os.name != "nt":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as aiohttp does: TIME_WAIT is not busy
            s.bind(address)
            if len(infos) == 1:
                s.listen(LISTEN_BACKLOG)
                return s
        except OSError as exc:
            s.close()
            raise UserError(listen_error(host, port, exc)) from None
        s.close()
    return None


def run_web(args: argparse.Namespace) -> int:
    mark("cli")
    from orbitai.errors import OrbitAIError, UserError
    from orbitai.web.guard import DEFAULT_UPLOAD_MB, MIN_TOKEN_CHARS, is_loopback, new_token

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}.")
    upload_mb = DEFAULT_UPLOAD_MB if args.max_upload_mb is None else args.max_upload_mb
    if not 1 <= upload_mb <= 4000:
        raise UserError(f"--max-upload-mb must be between 1 and 4000, got {upload_mb}.")
    for origin in args.allow_origin:
        from orbitai.web.names import web_url

        if not web_url(origin) or origin.rstrip("/").count("/") != 2:
            raise UserError(f"--allow-origin takes an origin such as https://orbitai.example.org, got {origin[:80]!r}.")
    from orbitai.web.names import DicomWebAllowList

    try:
        DicomWebAllowList(args.dicomweb)
    except OrbitAIError as exc:
        raise UserError(str(exc)) from None
    token = os.environ.get(TOKEN_ENV) or None
    if token is not None and not valid_token(token):
        raise UserError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters of letters, digits, - and _, "
                        "with at least one letter; unset it for a random secret.")
    if args.data and "://" not in args.data and not os.path.exists(args.data):
        raise UserError(f"{args.data} does not exist; give a scan, a DICOM folder, a folder of scans or a DICOMweb URL.")
    missing = next((name for name in ("trame", "trame_slicer") if importlib.util.find_spec(name) is None), None)
    if missing:         # said before an address is printed (found, not imported: the import comes after it)
        raise UserError(f"orbitai web needs the web extra ({missing} is missing): pip install 'orbitai[web]'.")
    sock = check_listen(args.host, args.port)
    if not is_loopback(args.host):
        print(OTHERS_WARNING.format(host=args.host), flush=True)
    if sock is not None:            # the address at once, before the server's modules are imported (issue 81)
        token = token or new_token()
        print_address(args.host, sock.getsockname()[1], token)
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        from orbitai.web.app import serve
        mark("imports")
    except ImportError as exc:
        raise UserError(f"orbitai web needs the web extra ({exc.name} is missing): pip install 'orbitai[web]'.") from None
    serve(data=args.data, host=args.host, port=args.port, rca_encoder=args.encoder, token=token, upload_mb=upload_mb,
          allowed_origins=tuple(args.allow_origin), dicomweb=tuple(args.dicomweb), prepare_on=args.prepare, sock=sock)
    return 0
