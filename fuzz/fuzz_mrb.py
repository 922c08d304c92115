"""Fuzz target: a Slicer scene bundle (``.mrb``, a zip with a ``.mrml`` scene and its data files) loaded with
`orbitai.mrml.mrb.load_mrb` into a headless scene."""
from __future__ import annotations

from fuzzlib import check, main, scratch

MODULES = ("orbitai.mrml.mrb", "orbitai.mrml.results", "orbitai.mrml.scene")
_context: list = []


def load(path) -> object:
    """``path`` loaded into the one headless scene of this process (made once: a scene's logics are slow to make)."""
    from orbitai.mrml import load_mrb, new_scene

    if not _context:
        _context.append(new_scene())
    return load_mrb(path, _context[0])


def read(data: bytes) -> object:
    with scratch() as folder:
        path = folder / "scene.mrb"
        path.write_bytes(data)
        return load(path)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_mrb")
