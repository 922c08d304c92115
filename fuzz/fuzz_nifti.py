"""Fuzz target: a NIfTI read as a scan: ``scan.nii`` (``scan.nii.gz`` when the input is gzip), or, when the input
holds `fuzzlib.PART_SEPARATOR`, the Analyze / NIfTI pair ``scan.hdr`` and ``scan.img``."""
from __future__ import annotations

from fuzzlib import MAX_BYTES, PART_SEPARATOR, check, main, parts, scratch

MODULES = ("orbitai.io.files", "orbitai.io.headers", "orbitai.io.integrity")


def read(data: bytes) -> object:
    from orbitai.io.files import read_scan

    with scratch() as folder:
        if PART_SEPARATOR in data:
            header, image = parts(data, 2)
            path = folder / "scan.hdr"
            path.write_bytes(header)
            (folder / "scan.img").write_bytes(image)
        else:
            path = folder / ("scan.nii.gz" if data[:2] == b"\x1f\x8b" else "scan.nii")
            path.write_bytes(data)
        return read_scan(path, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_nifti")
