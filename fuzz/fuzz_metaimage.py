"""Fuzz target: a MetaImage read as a scan: ``image.mha`` (data inside), or, when the input holds
`fuzzlib.PART_SEPARATOR`, the header ``image.mhd`` and its data files ``image.raw``, ``image0.raw``, ..."""
from __future__ import annotations

from fuzzlib import MAX_BYTES, PART_SEPARATOR, check, main, parts, scratch

MODULES = ("orbitai.io.files", "orbitai.io.headers", "orbitai.io.integrity")


def read(data: bytes) -> object:
    from orbitai.io.files import read_scan

    with scratch() as folder:
        if PART_SEPARATOR in data:
            header, *files = parts(data)
            path = folder / "image.mhd"
            path.write_bytes(header)
            for n, content in enumerate(files):
                (folder / ("image.raw" if n == 0 else f"image{n - 1}.raw")).write_bytes(content)
        else:
            path = folder / "image.mha"
            path.write_bytes(data)
        return read_scan(path, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_metaimage")
