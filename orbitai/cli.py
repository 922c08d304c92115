"""The ``orbitai`` command line: ``orbitai <command> ...`` (also ``python -m orbitai``).

Each command lives in its own module exposing ``add_parser(subparsers)``, which registers
an ``argparse`` sub-parser whose ``func(args) -> int`` does the work. Modules import their
heavy dependencies inside ``func`` so that ``orbitai --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from orbitai import __version__

#: Modules that contribute sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES = [
    "orbitai.commands.info",
    "orbitai.commands.demo",
    "orbitai.phantoms.cli",
    "orbitai.seg.cli",
    "orbitai.tao.cli",
]


class UserError(Exception):
    """An error caused by the user's input: printed as one clear line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orbitai",
        description=(
            "OrbitAI: AI for orbital and neuro-ophthalmic imaging (the engine of the OrbitAI "
            "3D Slicer extension). Run 'orbitai <command> --help' for a command's options."
        ),
        epilog="Example: orbitai info   |   orbitai demo --out demo_output",
    )
    parser.add_argument("--version", action="version", version=f"orbitai {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a module still being written is skipped
            if not (exc.name and (name == exc.name or name.startswith(exc.name + "."))):
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from orbitai.io import VolumeError
    from orbitai.bundle import BundleError
    from orbitai.runner import JobError

    try:
        return int(args.func(args) or 0)
    except (UserError, VolumeError, BundleError, JobError, FileNotFoundError) as exc:
        print(f"orbitai {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"orbitai {args.command}: cancelled", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
