"""Fuzz target: a cohort manifest (CSV; `orbitai.cohort.manifest.read_manifest`), its cases' labels
(`binary_label`) and patient groups read as the cohort commands read them."""
from __future__ import annotations

from fuzzlib import check, main, scratch

MODULES = ("orbitai.cohort.manifest",)


def read(data: bytes) -> object:
    from orbitai.cohort.manifest import binary_label, patient_groups, read_manifest

    with scratch() as folder:
        path = folder / "manifest.csv"
        path.write_bytes(data)
        cases = read_manifest(path, need_segmentation=not data[-1:] == b"\n")
        patient_groups(cases)
        return [binary_label(case, "healthy", "disease") for case in cases]


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_manifest")
