"""Fuzz target: a detached NRRD header (``.nhdr``) with its data file(s) beside it, read as a scan.

The input is the header, then (after `fuzzlib.PART_SEPARATOR`) the data files: ``image.raw``, then ``image0.raw``,
``image1.raw``, ... (what a header's ``data file:`` may name, alone, as a ``LIST`` or a ``%d`` pattern).
"""
from __future__ import annotations

from fuzzlib import MAX_BYTES, check, main, parts, scratch

MODULES = ("orbitai.io.files", "orbitai.io.headers", "orbitai.io.integrity")


def read(data: bytes) -> object:
    from orbitai.io.files import read_scan

    header, *files = parts(data)
    with scratch() as folder:
        path = folder / "image.nhdr"
        path.write_bytes(header)
        for n, content in enumerate(files):
            (folder / ("image.raw" if n == 0 else f"image{n - 1}.raw")).write_bytes(content)
        return read_scan(path, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_nhdr")
