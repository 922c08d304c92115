"""The release step (issue #64): ``make release OUT=DIR`` (scripts/make_release.py) writes the extension's release
repository from the committed tree, and the Extensions Index's own ``check_description_files.py`` passes on it.

The index's script is not kept in this repository (it is third-party code): the test that runs it needs a git
repository of Slicer/ExtensionsIndex holding `INDEX_COMMIT` (``ORBITAI_EXTENSIONS_INDEX``), the description's JSON
schema from Slicer's source (``ORBITAI_EXTENSION_SCHEMA``, Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json)
and a Python >= 3.12 with the index's requirements (``ORBITAI_INDEX_PYTHON``, default ``.venv/index-check/bin/python``,
``make index-check-env``); without them it is skipped and says so. The other tests check the release tree with no
network and nothing from outside: one commit, no download-only weights or data, https addresses at the tag naming
PNGs in the tree, the registry at that repository's release assets, the size measured as the index measures it.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import make_release  # noqa: E402

from orbitai.bundle import registry  # noqa: E402
from orbitai.io.checksums import sha256_file  # noqa: E402

REPOSITORY = "https://github.com/example-owner/SlicerOrbitAI"
#: Slicer/ExtensionsIndex at which its check was read and run (scripts/check_description_files.py last changed in
#: 43753a55, "Added repository size check").
INDEX_COMMIT = "07f1d1b2781c7dd9f6e2a9f5521b3ed43631724c"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The release of HEAD for `REPOSITORY`, with its release assets (~10 s on 2 cores)."""
    root = tmp_path_factory.mktemp("release")
    return make_release.make_release(root / "SlicerOrbitAI", REPOSITORY, assets=root / "SlicerOrbitAI-assets")


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def release_registry(out):
    return json.loads((out / registry.REGISTRY_PATH.relative_to(REPO)).read_text())


def test_release_is_one_commit_at_its_tag_without_weights_or_download_only_data(release):
    out = release["out"]
    assert git("rev-list", "--count", "HEAD", cwd=out) == "1"
    assert git("branch", "--show-current", cwd=out) == "main"
    assert git("rev-parse", f"{release['tag']}^{{commit}}", cwd=out) == git("rev-parse", "HEAD", cwd=out)
    assert git("status", "--porcelain", cwd=out) == ""
    assert not list(out.rglob("model.pt")), "bundled weights left in the release"
    reg = release_registry(out)
    for name, e in reg["entries"].items():
        folder = make_release.entry_folder(out, name, e["kind"])
        assert folder.is_dir() == bool(e["in_package"]), folder
    assert (out / "orbitai/data/spl_nac_atlas").is_dir()           # the demo and the self-tests' atlas stays
    assert not (out / "orbitai/data/synthseg_label_maps").exists()
    committed = set(git("ls-tree", "-r", "--name-only", release["source"], cwd=REPO).splitlines())
    released = set(git("ls-files", cwd=out).splitlines())
    assert released <= committed, sorted(released - committed)[:5]


def test_cmakelists_addresses_are_https_at_the_tag_and_name_pngs_in_the_release_tree(release):
    out, tag = release["out"], release["tag"]
    cmake = (out / "CMakeLists.txt").read_text()
    # the index reads these lines with these patterns (check_cmakelists_content)
    icon = re.findall(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+)"[ ]*\)', cmake)[0]
    shots = re.findall(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', cmake)[0].split()
    raw = "https://raw.githubusercontent.com/example-owner/SlicerOrbitAI/" + tag + "/"
    for url in [icon] + shots:
        assert url.startswith(raw), url
        f = out / url[len(raw):]
        assert f.is_file() and f.read_bytes()[:8] == make_release.PNG, url
    assert icon == raw + "Resources/Icons/OrbitAI.png"
    assert make_release.cmake_value(cmake, "EXTENSION_HOMEPAGE") == REPOSITORY
    assert "${" not in icon + " ".join(shots)


def test_an_icon_or_screenshot_missing_from_the_tree_is_refused(tmp_path):
    cmake = make_release.with_addresses((REPO / "CMakeLists.txt").read_text(), REPOSITORY, "v1")
    paths = make_release.image_paths(cmake)
    for rel in paths:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((REPO / rel).read_bytes())
    make_release.check_images(tmp_path, cmake)
    (tmp_path / paths[1]).unlink()
    with pytest.raises(make_release.InputError, match="no such PNG"):
        make_release.check_images(tmp_path, cmake)
    (tmp_path / paths[1]).write_bytes(b"not a png")
    with pytest.raises(make_release.InputError, match=re.escape(paths[1])):
        make_release.check_images(tmp_path, cmake)


def test_the_development_cmakelists_names_the_one_repository_address():
    """CMakeLists.txt's addresses are the release step's, from registry.REPOSITORY_URL at the development branch."""
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert make_release.with_addresses(cmake, registry.REPOSITORY_URL, make_release.DEVELOPMENT_REF) == cmake
    assert json.loads(registry.REGISTRY_PATH.read_text())["repository"] == registry.REPOSITORY_URL


def test_registry_points_at_the_release_assets_of_that_repository_written_beside_it(release):
    reg = release_registry(release["out"])
    assert reg["repository"] == REPOSITORY
    dev = json.loads(registry.REGISTRY_PATH.read_text())["entries"]
    assert sorted(reg["entries"]) == sorted(dev)
    assets = release["assets"]
    assert sorted(p.name for p in assets.iterdir()) == sorted(e["asset"] for e in reg["entries"].values())
    for name, e in reg["entries"].items():
        assert e["urls"] == [f"{REPOSITORY}/releases/download/{name}-v{e['version']}/{e['asset']}"]
        assert e["files"] == dev[name]["files"]
        asset = assets / e["asset"]
        assert (asset.stat().st_size, sha256_file(asset)) == (e["size"], e["sha256"]), name


def test_description_file_is_made_from_cmakelists_and_agrees_with_the_tree(release):
    """The index's description (JSON) from CMakeLists.txt; what the index's check does not look at is held here:
    contributors named, the licence file is the one pyproject.toml declares."""
    out = release["out"]
    d = json.loads(release["index"].read_text())
    assert release["index"].name == "OrbitAI.json"
    assert d["scm_url"] == REPOSITORY and d["scm_revision"] == release["tag"]
    assert d["category"] == "Segmentation" and d["build_dependencies"] == ["PyTorch", "QuantitativeReporting"]
    assert d["$schema"] == make_release.SCHEMA_URL
    cmake = (out / "CMakeLists.txt").read_text()
    assert re.search(r"^\s*project\s*\(\s*OrbitAI\s*\)", cmake, flags=re.M)
    assert (make_release.cmake_value(cmake, "EXTENSION_CONTRIBUTORS") or "").strip()
    assert re.search(r'^license\s*=\s*"BSD-3-Clause"', (out / "pyproject.toml").read_text(), flags=re.M)
    assert (out / "LICENSE").read_text().startswith("BSD 3-Clause License")


def test_a_clone_measures_under_100_mb_as_the_index_measures_it(release, tmp_path):
    """The index's check_repository_size: every file of the cloned folder, .git included, in MiB, at most 100."""
    sizes = make_release.clone_size(release["out"], tmp_path / "clone")
    assert abs(sizes["clone"] - release["sizes"]["clone"]) < 0.1 * MIB      # the clone's .git/config names its origin
    assert sizes["clone"] / MIB < make_release.SIZE_LIMIT_MB, sizes
    print(f"clone {sizes['clone'] / MIB:.1f} MiB (.git {sizes['git'] / MIB:.1f}, work tree "
          f"{sizes['work_tree'] / MIB:.1f})")


def test_a_release_without_its_model_says_how_to_install_it(release, tmp_path):
    """The release tree's package finds no bundled model and names its install (size, the release asset)."""
    out = release["out"]
    code = ("import orbitai, sys\n"
            "from orbitai.bundle.install import find_model\n"
            "assert orbitai.__file__.startswith(sys.argv[1]), orbitai.__file__\n"
            "find_model('orbit_svnet_ct_demo')\n")
    env = {**os.environ, "PYTHONPATH": str(out), "ORBITAI_USER_MODELS": str(tmp_path / "models"),
           "HOME": str(tmp_path)}
    env.pop("ORBITAI_MODELS_URL", None)
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "orbitai models install orbit_svnet_ct_demo" in last, proc.stderr[-2000:]
    assert f"{REPOSITORY}/releases/download/orbit_svnet_ct_demo-v" in last


@pytest.mark.parametrize("args, expected", [
    (["--repository", "http://github.com/example-owner/SlicerOrbitAI"], "is not a GitHub repository address"),
    (["--repository", "https://github.com/example-owner/OrbitAI"], "start with 'Slicer'"),
    (["--ref", "no-such-ref-xyz"], "git rev-parse failed"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, expected):
    out = tmp_path / "rel"
    assert make_release.main(["--out", str(out), "--no-assets", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "rel"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert make_release.main(["--out", str(out), "--no-assets"]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_dangling_link_as_the_output_is_refused_before_any_work(tmp_path, capsys):
    """Issue 80: OUT a link to nothing ran the whole release, then ended in a traceback placing it."""
    out = tmp_path / "rel"
    out.symlink_to(tmp_path / "gone")
    assert make_release.main(["--out", str(out), "--no-assets"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "which does not exist" in err, err
    assert out.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["rel"]


# --------------------------------------------------------------------------------- the Extensions Index's own check

def index_setup():
    """(python, index git repository, schema), or a skip naming what is missing."""
    python = Path(os.environ.get("ORBITAI_INDEX_PYTHON", REPO / ".venv" / "index-check" / "bin" / "python"))
    index = os.environ.get("ORBITAI_EXTENSIONS_INDEX")
    schema = os.environ.get("ORBITAI_EXTENSION_SCHEMA")
    if not index or not schema:
        pytest.skip("the Extensions Index's check is third-party code, not kept here: set ORBITAI_EXTENSIONS_INDEX "
                    f"(a git repository of Slicer/ExtensionsIndex with commit {INDEX_COMMIT}) and "
                    "ORBITAI_EXTENSION_SCHEMA (Slicer's Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json)")
    ok = python.is_file() and subprocess.run(
        [str(python), "-c", "import sys, requests, jsonschema; assert sys.version_info >= (3, 12)"],
        capture_output=True).returncode == 0
    if not ok:
        pytest.skip(f"{python} is not a Python >= 3.12 with requests and jsonschema (make index-check-env)")
    return python, Path(index), Path(schema)


def run_index_check(release, tmp_path, topics=make_release.GITHUB_TOPICS):
    python, index, schema = index_setup()
    checkout = tmp_path / "ExtensionsIndex"
    checkout.mkdir()
    archive = subprocess.run(["git", f"--git-dir={index / '.git' if (index / '.git').exists() else index}",
                              "archive", INDEX_COMMIT], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
    (checkout / "OrbitAI.json").write_bytes(release["index"].read_bytes())
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run([str(python), str(REPO / "Testing" / "release_index_offline.py"),
                           "--release", str(release["out"]), "--repository", release["repository"],
                           "--schema", str(schema), "--topics", *topics, "--", "OrbitAI.json"],
                          cwd=checkout, env=env, capture_output=True, text=True, timeout=300)


def test_the_extensions_index_check_passes_on_the_release(release, tmp_path):
    proc = run_index_check(release, tmp_path)
    failed = [line for line in proc.stdout.splitlines() if ":x:" in line]
    assert proc.returncode == 0 and not failed, "\n".join(failed) + proc.stderr[-3000:]
    size = re.search(r"Repository size: ([\d.]+) MB \(limit: 100 MB\)", proc.stdout)
    assert size and float(size.group(1)) < 100
    assert round(release["sizes"]["clone"] / MIB, 1) == float(size.group(1))
    for check in ("Clone repository", "Check repository size", "Check JSON schema", "Check category",
                  "Check git repository name", "Check SCM URL syntax", "Check CMakeLists.txt content",
                  "Check license file"):
        assert f":white_check_mark: {check} completed successfully" in proc.stdout, check
    assert "Dependency check completed successfully" in proc.stdout


def test_the_extensions_index_check_fails_without_the_repository_topic(release, tmp_path):
    """The same run with the repository's topic not set fails: the check's verdict is its own."""
    proc = run_index_check(release, tmp_path, topics=())
    assert proc.returncode == 1
    assert ":x: Check git repository topics failed" in proc.stdout
