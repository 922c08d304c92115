"""Fuzz target: a Slicer segmentation (``.seg.nrrd``) read with its segments' table
(`orbitai.io.segfile.read_segmentation`: the cohort's ground truth, the page's segmentation upload)."""
from __future__ import annotations

from fuzzlib import MAX_BYTES, check, main, scratch

MODULES = ("orbitai.io.segfile", "orbitai.io.headers", "orbitai.io.volume")


def read(data: bytes) -> object:
    from orbitai.io.segfile import read_segmentation

    with scratch() as folder:
        path = folder / "labels.seg.nrrd"
        path.write_bytes(data)
        return read_segmentation(path, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_segnrrd")
