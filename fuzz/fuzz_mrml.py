"""Fuzz target: a Slicer scene file (``.mrml``, XML): the input is the scene, packed as Slicer packs it into a scene
bundle (``scene/scene.mrml`` in a zip) and loaded with `orbitai.mrml.mrb.load_mrb` (OrbitAI reads scenes only so)."""
from __future__ import annotations

import zipfile

from fuzz_mrb import load
from fuzzlib import check, main, scratch

MODULES = ("orbitai.mrml.mrb", "orbitai.mrml.results", "orbitai.mrml.scene")


def read(data: bytes) -> object:
    with scratch() as folder:
        path = folder / "scene.mrb"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("scene/scene.mrml", data)
        return load(path)


def TestOneInput(data: bytes) -> None:  # the name Atheris gives a target's entry
    check(read, data)


if __name__ == "__main__":
    main("fuzz_mrml")
