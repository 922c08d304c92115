"""The extension's description passes the Extensions Index's checks (scripts/check_extension_description.py, the
offline equivalent of the index's scripts/check_description_files.py): an accepted category, a licence file that is
pyproject.toml's licence, no address nothing confirms, icon and screenshots that exist, a release snapshot under the
index's 100 MB. Each check is also shown to fail on the description as it was before."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import check_extension_description as ced  # noqa: E402

REPOSITORY = "https://github.com/example/SlicerOrbitAI"
RAW = "https://raw.githubusercontent.com/example/SlicerOrbitAI/v1.0"


def test_this_tree_passes_every_check_with_the_release_address():
    assert ced.check(REPO, REPOSITORY, RAW) == []


@pytest.fixture()
def tree(tmp_path):
    """A copy of the files the checks read."""
    for name in ("CMakeLists.txt", "pyproject.toml", "LICENSE"):
        shutil.copy(REPO / name, tmp_path / name)
    for f in ced.icon_and_screenshots((REPO / "CMakeLists.txt").read_text()):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / f, tmp_path / f)
    return tmp_path


@pytest.mark.parametrize("change, expected", [
    (lambda t: t.replace('"Segmentation"', '"OrbitAI"'), "category 'OrbitAI'"),
    (lambda t: t.replace('set(EXTENSION_HOMEPAGE "${ORBITAI_REPOSITORY_URL}")',
                         'set(EXTENSION_HOMEPAGE "https://github.com/orbitai/SlicerOrbitAI")'), "nothing confirms"),
    (lambda t: t.replace("docs/segmentation_demo.png", "docs/no_such_screenshot.png"), "not a PNG in the tree"),
    (lambda t: t.replace("project(OrbitAI)", "project(Orbit)"), "project() is 'Orbit'"),
])
def test_each_check_fails_on_a_bad_description(tree, change, expected):
    cmake = tree / "CMakeLists.txt"
    cmake.write_text(change(cmake.read_text()))
    errors = ced.check(tree, REPOSITORY, RAW, size=False)
    assert any(expected in e for e in errors), errors


def test_a_missing_or_other_licence_and_a_bad_repository_name_fail(tree):
    (tree / "LICENSE").write_text("MIT License\n")
    assert any("not the BSD-3-Clause licence" in e for e in ced.check(tree, REPOSITORY, RAW, size=False))
    (tree / "LICENSE").unlink()
    errors = ced.check(tree, "https://github.com/example/OrbitAI", RAW, size=False)
    assert any("no licence file" in e for e in errors) and any("should contain 'Slicer'" in e for e in errors)
