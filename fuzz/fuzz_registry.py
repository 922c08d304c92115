"""Fuzz target: the model registry's JSON (`orbitai.bundle.registry.load_registry`, what a package or a mirror
gives), each entry's names checked (`check_entry_names`) and its download addresses made."""
from __future__ import annotations

from fuzzlib import check, main, scratch

MODULES = ("orbitai.bundle.registry",)


def read(data: bytes) -> object:
    from orbitai.bundle import registry

    with scratch() as folder:
        path = folder / "registry.json"
        path.write_bytes(data)
        registry._cache.clear()              # read this file, not the last one of the same size and time
        entries = registry.load_registry(path)
        for entry in entries.values():
            registry.check_entry_names(entry)
            entry.download_urls()
            registry.missing_message(entry)
        return entries


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_registry")
