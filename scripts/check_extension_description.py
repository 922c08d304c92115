"""Check the extension's description the way Slicer's Extensions Index does, offline.

The index runs ``scripts/check_description_files.py`` of Slicer/ExtensionsIndex on a description file (read at
commit 08798e5): it clones the repository, then checks the category against its accepted list, the repository's
name (it should contain "Slicer"), the ``scm_url`` scheme, the top-level ``CMakeLists.txt`` (``project()`` name
equal to the extension's, ``EXTENSION_ICONURL`` and ``EXTENSION_SCREENSHOTURLS`` set to images) and a licence file
at the root. This script checks the same on this tree, without the network, and adds what the index states
elsewhere: the repository must clone in under 100 MB. The public address is not known until a release is built, so
no address is written in ``CMakeLists.txt``: it is given here (``--repository``, ``--raw``) the way it is given to
CMake, and every file an address names must exist in the tree.

Usage: ``python scripts/check_extension_description.py [--repository URL --raw URL]`` (exit 1 on a failed check).
"""
from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
#: The index's accepted categories: ACCEPTED_EXTENSION_CATEGORIES of Slicer/ExtensionsIndex
#: scripts/check_description_files.py at commit 08798e5 (the names only).
ACCEPTED_CATEGORIES = frozenset((
    "Active Learning", "Analysis", "Auto3dgm", "BigImage", "Cardiac", "Chest Imaging Platform", "Conda",
    "Converters", "DICOM", "DSCI", "Developer Tools", "Diffusion", "Examples", "Exporter", "FTV Segmentation",
    "Filtering", "Filtering.Morphology", "Filtering.Vesselness", "Holographic Display", "IGT", "Informatics",
    "Netstim", "Neuroimaging", "Nuclear Medicine", "Orthodontics", "Osteotomy Planning", "Otolaryngology",
    "Photogrammetry", "Pipelines", "Planning", "Printing", "Quantification", "Radiotherapy", "Registration",
    "Remote", "Rendering", "SPHARM", "Segmentation", "Sequences", "Shape Analysis", "Shape Regression",
    "Shape Visualization", "Simulation", "SlicerCMF", "SlicerMorph", "Spectral Imaging", "Supervisely",
    "Surface Models", "SurfaceLearner", "Tomographic Reconstruction", "Tracking", "Tractography", "Training",
    "Ultrasound", "Utilities", "Vascular Modeling Toolkit", "Virtual Reality", "VisSimTools", "Web System Tools",
    "Wizards"))
LICENSE_FILES = ("LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt")
#: The index's limit on a repository's clone.
CLONE_LIMIT_BYTES = 100 * 1024 * 1024
#: What the licence text must say for each SPDX identifier ``pyproject.toml`` may give.
LICENSE_TEXT = {"BSD-3-Clause": "BSD 3-Clause License", "MIT": "MIT License", "Apache-2.0": "Apache License"}


def cmake_settings(text: str) -> dict[str, str]:
    """``set(NAME "value")`` lines of a CMakeLists.txt (the last one wins), plus ``project`` for ``project(NAME)``."""
    out = {name: value for name, value in re.findall(r'^\s*set\(\s*(\w+)\s+"([^"]*)"', text, flags=re.M)}
    project = re.search(r"^\s*project\s*\(\s*([^\s)]+)", text, flags=re.M | re.I)
    out["project"] = project.group(1) if project else ""
    return out


def icon_and_screenshots(text: str) -> list[str]:
    """The repository-relative files the icon and screenshot addresses name (``${ORBITAI_REPOSITORY_RAW_URL}/...``)."""
    return re.findall(r"\$\{ORBITAI_REPOSITORY_RAW_URL\}/([^\s\"]+)", text)


def release_size(root: Path) -> int:
    """Bytes of the release snapshot (``git archive HEAD``, gzip-compressed): what a clone of a release repository
    whose history starts at the release fetches (docs/slicer.md)."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=root, capture_output=True, check=True)
    return len(gzip.compress(archive.stdout, compresslevel=6))


def check(root: Path = REPO, repository: Optional[str] = None, raw: Optional[str] = None,
          size: bool = True) -> list[str]:
    """The failed checks (empty when the description would pass the index's checks)."""
    errors: list[str] = []
    text = (root / "CMakeLists.txt").read_text()
    s = cmake_settings(text)
    if s["project"] != "OrbitAI":
        errors.append(f"project() is '{s['project']}', not the extension's name OrbitAI")
    category = s.get("EXTENSION_CATEGORY", "")
    if category not in ACCEPTED_CATEGORIES:
        errors.append(f"category '{category}' is not one the Extensions Index accepts")
    if not s.get("EXTENSION_CONTRIBUTORS", "").strip():
        errors.append("EXTENSION_CONTRIBUTORS is empty")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())   # comments may show an example
    literal = sorted(set(re.findall(r"https?://[^\s\"]+", code)))
    if literal:
        errors.append(f"CMakeLists.txt names addresses nothing confirms: {', '.join(literal)}; give the repository "
                      "address when the release is built (-DORBITAI_REPOSITORY_URL, -DORBITAI_REPOSITORY_RAW_URL)")
    files = icon_and_screenshots(text)
    if not any(f.startswith("Resources/Icons/") for f in files) or len(files) < 2:
        errors.append("no icon and screenshot under ${ORBITAI_REPOSITORY_RAW_URL}")
    for f in files:
        path = root / f
        if not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            errors.append(f"{f} (named by the icon or a screenshot address) is not a PNG in the tree")
    licence = next((root / n for n in LICENSE_FILES if (root / n).is_file()), None)
    spdx = re.search(r'^license\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(), flags=re.M)
    if licence is None:
        errors.append("no licence file at the repository root")
    elif spdx and LICENSE_TEXT.get(spdx.group(1), spdx.group(1)) not in licence.read_text():
        errors.append(f"{licence.name} is not the {spdx.group(1)} licence pyproject.toml gives")
    if repository is not None:
        if not re.match(r"^(https|git)://[^/]+/.+", repository):
            errors.append(f"repository address '{repository}' is not https:// or git://")
        name = repository.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        if "slicer" not in name.lower():
            errors.append(f"repository name '{name}' should contain 'Slicer' (e.g. Slicer{name})")
        if not raw or not raw.startswith("https://"):
            errors.append("give the raw-file address of the repository at the release tag (--raw https://...)")
    if size and (root / ".git").exists():
        n = release_size(root)
        if n >= CLONE_LIMIT_BYTES:
            errors.append(f"the release snapshot is {n / 2**20:.0f} MiB, over the index's 100 MB")
    return errors


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repository", help="the public repository address (EXTENSION_HOMEPAGE, scm_url)")
    parser.add_argument("--raw", help="its raw-file address at the release tag (icon and screenshots)")
    args = parser.parse_args(argv)
    errors = check(REPO, args.repository, args.raw)
    for e in errors:
        print(f"check_extension_description: {e}")
    if not errors:
        print(f"check_extension_description: passed (release snapshot {release_size(REPO) / 2**20:.1f} MiB)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
