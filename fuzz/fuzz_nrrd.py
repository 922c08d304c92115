"""Fuzz target: an attached NRRD (``.nrrd``) read as a scan (`orbitai.io.files.read_scan`).

Run: ``.venv/bin/python fuzz/fuzz_nrrd.py build/fuzz/nrrd fuzz/corpus/nrrd -max_total_time=60`` (see docs/reliability.md).
"""
from __future__ import annotations

from fuzzlib import MAX_BYTES, check, main, scratch

MODULES = ("orbitai.io.files", "orbitai.io.headers", "orbitai.io.integrity")


def read(data: bytes) -> object:
    from orbitai.io.files import read_scan

    with scratch() as folder:
        path = folder / "scan.nrrd"
        path.write_bytes(data)
        return read_scan(path, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_nrrd")
