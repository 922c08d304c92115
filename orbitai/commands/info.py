"""``orbitai info``: versions, compute device and the model bundles that were found."""
from __future__ import annotations

import argparse
import platform

import SimpleITK as sitk
import torch

from orbitai import __version__
from orbitai.arguments import add_device_option
from orbitai.bundle import iter_bundles, search_paths
from orbitai.device import describe, select_device


def add_parser(sub: argparse._SubParsersAction, help_text: str) -> None:
    p = sub.add_parser("info", help=help_text,
                       description="Print library versions, the device 'auto' would use and the model bundles found.")
    add_device_option(p, "device to report on")
    p.set_defaults(func=run)


def _version(module: str) -> str:
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", getattr(mod, "Version", lambda: "?")))
    except Exception:  # noqa: BLE001 - an optional package may be absent or broken
        return "not installed"


def run(args: argparse.Namespace) -> int:
    device = select_device(args.device)   # an unknown or absent device is an error, before any output
    print(f"orbitai      {__version__}")
    print(f"python       {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"torch        {torch.__version__}")
    print(f"SimpleITK    {sitk.Version_VersionString()}")
    for mod in ("monai", "numpy", "sklearn", "skimage", "radiomics"):
        print(f"{mod:<12} {_version(mod)}")
    print(f"slicer-core  {'available' if _version('slicer') != 'not installed' else 'not installed'}")
    print(f"device       {describe(device)}")
    bundles = list(iter_bundles())
    print(f"bundles      {len(bundles)} found in: {', '.join(str(p) for p in search_paths())}")
    for b in bundles:
        kind = b.architecture or ", ".join(sorted(b.metadata.get("files") or {}))
        print(f"  - {b.name} v{b.metadata.get('version')} [{b.metadata.get('task')}, {kind}] {b.path}")
    return 0
