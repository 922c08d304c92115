"""Fuzz target: a DICOM series read from a folder (`orbitai.io.files.read_scan` on the folder): the input's parts
(split at `fuzzlib.PART_SEPARATOR`) are the folder's files ``slice0.dcm``, ``slice1.dcm``, ..."""
from __future__ import annotations

from fuzzlib import MAX_BYTES, check, main, parts, scratch

MODULES = ("orbitai.io.files", "orbitai.io.dicom", "orbitai.io.dicom_folder", "orbitai.io.dicom_geometry",
           "orbitai.io.dicom_tags", "orbitai.io.regrid", "orbitai.io.values")


def read(data: bytes) -> object:
    from orbitai.io.files import read_scan

    with scratch() as folder:
        series = folder / "series"
        series.mkdir()
        for n, content in enumerate(parts(data)):
            (series / f"slice{n}.dcm").write_bytes(content)
        return read_scan(series, MAX_BYTES)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_dicom")
