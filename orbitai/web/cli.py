"""``orbitai web``: serve the browser front end (`orbitai.web.app`)."""
from __future__ import annotations

import argparse
import ipaddress
import os

__all__ = ["add_parser"]

#: Said when the server listens beyond this machine: the app has no log-in of its own.
NO_AUTH_WARNING = ("warning: orbitai web has no authentication: anyone who can reach {host}:{port} can see and change "
                   "the loaded scans. Put it behind an authenticating reverse proxy (see the README) or keep "
                   "--host 127.0.0.1.")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("web", help="the four modules and the annotation tools in a web browser",
                       description="Serve OrbitAI in the browser (trame-slicer: Slicer's scene, slice views and segment "
                                   "editor on the server; the page shows them). Needs the extra: pip install "
                                   "'orbitai[web]'. Views render off-screen (EGL, or OSMesa with "
                                   "VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow).")
    p.add_argument("data", metavar="DATA", nargs="?",
                   help="a scan to open (NRRD/NIfTI file, DICOM folder or DICOMweb series URL), or a folder whose "
                        "scans the page lists")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else is reachable by "
                        "others and has no authentication)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--encoder", choices=("turbo-jpeg", "jpeg", "png", "webp"), default="turbo-jpeg",
                   help="how view images are sent (default turbo-jpeg; png is lossless and larger)")
    p.set_defaults(func=run_web)


def run_web(args: argparse.Namespace) -> int:
    from orbitai.errors import UserError

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}.")
    if args.data and "://" not in args.data and not os.path.exists(args.data):
        raise UserError(f"{args.data} does not exist; give a scan, a DICOM folder, a folder of scans or a DICOMweb URL.")
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print(NO_AUTH_WARNING.format(host=args.host, port=args.port), flush=True)
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        from orbitai.web.app import serve
    except ImportError as exc:
        raise UserError(f"orbitai web needs the web extra ({exc.name} is missing): pip install 'orbitai[web]'.") from None
    serve(data=args.data, host=args.host, port=args.port, rca_encoder=args.encoder)
    return 0
