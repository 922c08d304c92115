"""Every data file of the ``orbitai`` package ships: in the wheel (pyproject package-data) and in the
Slicer extension (the CMake glob), so nothing the code loads exists only in a source checkout."""
from __future__ import annotations

import fnmatch
import glob
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orbitai"


def data_files() -> list[str]:
    """The tracked files under orbitai/ that are not Python sources, relative to the repository."""
    try:
        out = subprocess.run(["git", "ls-files", "orbitai"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [f for f in out.stdout.splitlines() if not f.endswith(".py") and (ROOT / f).is_file()]
    assert files, "no data files found under orbitai/"
    return files


def wheel_patterns() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["tool"]["setuptools"]["package-data"]["orbitai"]


def in_wheel(patterns: list[str]) -> set[str]:
    """Files the package-data patterns select (setuptools: recursive glob relative to the package)."""
    found = set()
    for pattern in patterns:
        for f in glob.glob(str(PACKAGE / pattern), recursive=True):
            if Path(f).is_file():
                found.add(Path(f).relative_to(ROOT).as_posix())
    return found


def cmake_patterns() -> list[str]:
    text = (ROOT / "CMake" / "OrbitAICore.cmake").read_text()
    block = re.search(r"file\(GLOB_RECURSE ORBITAI_CORE_DATA RELATIVE \$\{CMAKE_CURRENT_SOURCE_DIR\}(.*?)\)", text, re.S)
    assert block, "ORBITAI_CORE_DATA glob not found in CMake/OrbitAICore.cmake"
    return block.group(1).split()


def in_cmake(path: str, patterns: list[str]) -> bool:
    """GLOB_RECURSE: the file lies at any depth below the pattern's folder and its name fits the pattern."""
    for pattern in patterns:
        folder, _, name = pattern.rpartition("/")
        if path.startswith(folder + "/") and fnmatch.fnmatch(path.rpartition("/")[2], name):
            return True
    return False


@pytest.mark.parametrize("kind", ["bundle schemas", "radiomics protocols", "bundled models", "atlas data"])
def test_loaded_data_kinds_exist(kind):
    """The data the code loads is among the checked files (so the checks below cover it)."""
    prefix = {"bundle schemas": "orbitai/bundle/schemas/", "radiomics protocols": "orbitai/radiomics/params/",
              "bundled models": "orbitai/resources/models/", "atlas data": "orbitai/data/"}[kind]
    assert any(f.startswith(prefix) for f in data_files())


def test_every_data_file_is_in_the_wheel():
    missing = sorted(set(data_files()) - in_wheel(wheel_patterns()))
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_every_data_file_is_in_the_slicer_extension():
    patterns = cmake_patterns()
    missing = [f for f in data_files() if not in_cmake(f, patterns)]
    assert not missing, f"add to the ORBITAI_CORE_DATA glob in CMake/OrbitAICore.cmake: {missing}"
