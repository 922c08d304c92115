"""Write the extension's release repository: what the Extensions Index builds and Slicer users install.

    python scripts/make_release.py --out DIR [--repository URL] [--tag TAG] [--assets DIR-assets | --no-assets]
    make release OUT=DIR [REPOSITORY=https://github.com/<owner>/SlicerOrbitAI]

From a snapshot of the committed tree (``git archive REF``, default HEAD) it writes DIR as a fresh git repository
with one commit on ``main``, tagged TAG (default ``v<version>``):

* no bundled weights and no download-only training data: every registry entry (``orbitai/resources/registry.json``)
  that the package does not keep (``in_package`` false) leaves the tree; its archive is written to the assets folder
  (``DIR-assets``, by the same `orbitai.bundle.registry.make_entry` as ``scripts/write_registry.py --archives``) to
  be uploaded as the release asset its address names. What the demo and the self-tests need (the atlas, the brain
  template) stays. A module without its model then says how to install it ('orbitai models install NAME');
* the registry's addresses are release assets of the ONE repository address given here (``--repository``, default
  `orbitai.bundle.registry.REPOSITORY_URL`);
* ``CMakeLists.txt``'s homepage, icon and screenshot addresses are written from that same address: the repository,
  and raw files at the release tag (``https://raw.githubusercontent.com/<owner>/<name>/<tag>/<path>``), each file
  checked to be a PNG in the release tree;
* the Extensions Index's description file (``DIR-index/OrbitAI.json``, the index's JSON format) made from
  ``CMakeLists.txt``: scm_url the repository, scm_revision the tag.

It prints the release repository's size measured as the Extensions Index measures it (every file of a clone,
``.git`` included; the limit is 100 MB). ``Testing/test_release.py`` runs the index's own
``check_description_files.py`` on the result. Nothing is written unless all of it succeeds.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orbitai.bundle import registry  # noqa: E402
from orbitai.errors import InputError, OrbitAIError  # noqa: E402
from orbitai.staging import strict_json  # noqa: E402

EXTENSION = "OrbitAI"
#: The description file's schema, as the index's description files name it.
SCHEMA_URL = "https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json#"
#: New extensions enter the index at tier 1 (the schema allows 1, 3, 5).
TIER = 1
#: The topic the index's check asks the GitHub repository to carry (a repository setting, not a file).
GITHUB_TOPICS = ("3d-slicer-extension",)
#: The branch the development tree's CMakeLists.txt addresses name (the release names its tag instead).
DEVELOPMENT_REF = "main"
RAW_HOST = "https://raw.githubusercontent.com"
#: The index's limit on a repository (its check_repository_size: every file of a clone, in MiB).
SIZE_LIMIT_MB = 100
#: The index's accepted repository-name prefixes (its check_git_repository_name).
NAME_PREFIXES = ("Slicer", "Slicer-", "Slicer_", "SlicerExtension-", "SlicerExtension_")
_REPOSITORY = re.compile(r"^https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$")
_ADDRESS_LINE = r'^(\s*set\(\s*{name}\s+")([^"]*)("\s*\))'
PNG = b"\x89PNG\r\n\x1a\n"
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "OrbitAI release", "GIT_AUTHOR_EMAIL": "release@orbitai.invalid",
                "GIT_COMMITTER_NAME": "OrbitAI release", "GIT_COMMITTER_EMAIL": "release@orbitai.invalid"}


# ------------------------------------------------------------------------------------------------------ addresses

def parse_repository(url: str) -> tuple[str, str]:
    """(owner, name) of a GitHub repository address; a one-line InputError for anything else."""
    m = _REPOSITORY.match(url.strip())
    if not m:
        raise InputError(f"--repository {url!r} is not a GitHub repository address; give it as "
                         "https://github.com/<owner>/Slicer<Name> (the release's raw files and assets are GitHub's).")
    owner, name = m.group(1), m.group(2)
    if not name.startswith(NAME_PREFIXES):
        raise InputError(f"--repository {url!r}: the Extensions Index wants the repository's name to start with "
                         f"'Slicer' (e.g. Slicer{EXTENSION}); rename the repository and give its address.")
    return owner, name


def repository_url(url: str) -> str:
    owner, name = parse_repository(url)
    return f"https://github.com/{owner}/{name}"


def raw_url(repository: str, ref: str, path: str) -> str:
    owner, name = parse_repository(repository)
    return f"{RAW_HOST}/{owner}/{name}/{ref}/{path}"


def _raw_path(url: str) -> str:
    """The repository path of a raw-file address (``<host>/<owner>/<name>/<ref>/<path>``)."""
    m = re.match(re.escape(RAW_HOST) + r"/[^/]+/[^/]+/[^/]+/(.+)$", url)
    if not m:
        raise InputError(f"CMakeLists.txt: {url!r} is not a raw-file address ({RAW_HOST}/<owner>/<name>/<ref>/<path>)")
    return m.group(1)


def cmake_value(text: str, name: str) -> Optional[str]:
    """The quoted value of ``set(NAME "value")`` in a CMakeLists.txt (the first one), or None."""
    m = re.search(_ADDRESS_LINE.format(name=name), text, flags=re.M)
    return m.group(2) if m else None


def image_paths(cmake_text: str) -> list[str]:
    """The repository paths of the icon and the screenshots that ``CMakeLists.txt`` names (icon first)."""
    icon = cmake_value(cmake_text, "EXTENSION_ICONURL")
    shots = cmake_value(cmake_text, "EXTENSION_SCREENSHOTURLS")
    if not icon or not shots:
        raise InputError("CMakeLists.txt has no set(EXTENSION_ICONURL \"...\") or set(EXTENSION_SCREENSHOTURLS \"...\")")
    return [_raw_path(u) for u in [icon] + shots.split()]


def with_addresses(cmake_text: str, repository: str, ref: str) -> str:
    """``cmake_text`` with its homepage, icon and screenshot addresses written from ``repository`` at ``ref``."""
    paths = image_paths(cmake_text)
    values = {"EXTENSION_HOMEPAGE": repository_url(repository),
              "EXTENSION_ICONURL": raw_url(repository, ref, paths[0]),
              "EXTENSION_SCREENSHOTURLS": " ".join(raw_url(repository, ref, p) for p in paths[1:])}
    for name, value in values.items():
        cmake_text, n = re.subn(_ADDRESS_LINE.format(name=name), lambda m, v=value: m.group(1) + v + m.group(3),
                                cmake_text, count=1, flags=re.M)
        if n != 1:
            raise InputError(f"CMakeLists.txt has no set({name} \"...\") line to write the address into")
    return cmake_text


def check_images(tree: Path, cmake_text: str) -> None:
    """Every icon and screenshot address of ``cmake_text`` names a PNG in ``tree`` (else a one-line InputError)."""
    for rel in image_paths(cmake_text):
        f = tree / rel
        if not f.is_file() or f.read_bytes()[:8] != PNG:
            raise InputError(f"CMakeLists.txt names {rel} as the icon or a screenshot, but the release tree has "
                             "no such PNG")


def description(cmake_text: str, repository: str, tag: str) -> dict[str, Any]:
    """The Extensions Index's description file of the release (its JSON format), made from ``CMakeLists.txt``."""
    depends = (cmake_value(cmake_text, "EXTENSION_DEPENDS") or "").split()
    return {"$schema": SCHEMA_URL, "build_dependencies": depends, "build_subdirectory": ".",
            "category": cmake_value(cmake_text, "EXTENSION_CATEGORY") or "", "scm_revision": tag,
            "scm_url": repository_url(repository), "tier": TIER}


# ------------------------------------------------------------------------------------------------------------ git

def _git(*args: str, cwd: Path, env: Optional[dict[str, str]] = None, stdout: Any = subprocess.PIPE) -> str:
    try:
        proc = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
                               "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, stdout=stdout,
                              stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    except FileNotFoundError as exc:
        raise InputError("git is not installed; the release step needs it (apt-get install git).") from exc
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode(errors="replace").split()) if proc.stderr else ""
        raise InputError(f"git {args[0]} failed in {cwd}: {err}")
    return proc.stdout.decode().strip() if isinstance(proc.stdout, bytes) else ""


def snapshot(ref: str, into: Path) -> None:
    """The committed tree at ``ref`` (``git archive``), extracted into ``into``."""
    _git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=REPO)
    with tempfile.TemporaryFile() as tar:
        _git("archive", "--format=tar", ref, cwd=REPO, stdout=tar)
        tar.seek(0)
        proc = subprocess.run(["tar", "-x", "-C", str(into)], stdin=tar, capture_output=True)
    if proc.returncode != 0:
        raise InputError(f"extracting the snapshot of {ref} failed: {' '.join(proc.stderr.decode().split())}")


def clone_size(repo: Path, into: Path) -> dict[str, int]:
    """Bytes of a clone of ``repo`` measured as the Extensions Index measures it (its check_repository_size: every
    file under the cloned folder, ``.git`` included), with the pack and the work tree apart."""
    _git("clone", "-q", f"file://{repo.resolve()}", str(into), cwd=into.parent)
    files = [p for p in into.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    git = sum(p.stat().st_size for p in files if (into / ".git") in p.parents)
    return {"clone": total, "git": git, "work_tree": total - git}


# -------------------------------------------------------------------------------------------------------- release

def project_version(tree: Path) -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (tree / "pyproject.toml").read_text(), flags=re.M)
    if not m:
        raise InputError(f"{tree / 'pyproject.toml'} gives no version; give --tag")
    return m.group(1)


def entry_folder(tree: Path, name: str, kind: str) -> Path:
    rel = registry.BUILTIN_DIR.relative_to(REPO) if kind == "model" else registry.DATA_DIR.relative_to(REPO)
    return tree / rel / name


def release_registry(tree: Path, repository: str, assets: Optional[Path]) -> tuple[dict[str, Any], list[str]]:
    """The release's registry (addresses at ``repository``'s release assets; with ``assets`` every entry's archive
    is written there from the snapshot's folders) and the folders that leave the tree (entries the package does
    not keep)."""
    path = tree / registry.REGISTRY_PATH.relative_to(REPO)
    old = json.loads(path.read_text())["entries"]
    repo = repository_url(repository)
    drop = []
    if assets is None:
        data = json.loads(path.read_text())
        data["repository"] = repo
        for name, e in data["entries"].items():
            e["urls"] = [registry.url_for(name, e["version"], e["asset"], repo)]
    entries = []
    for name, e in old.items():
        folder = entry_folder(tree, name, e["kind"])
        if not folder.is_dir():
            raise InputError(f"the snapshot has no {folder.relative_to(tree)} for the registry entry {name!r}; "
                             "run scripts/write_registry.py and commit")
        if assets is not None:
            entry = registry.make_entry(folder, e["kind"], repo, assets)
            if entry.files != e["files"]:
                raise InputError(f"the registry's entry {name!r} does not match {folder.relative_to(tree)}; run "
                                 "scripts/write_registry.py and commit")
            entries.append(entry)
        if not e.get("in_package", False):
            drop.append(folder.relative_to(tree).as_posix())
    if assets is not None:
        data = registry.registry_json(entries, repo)
    return data, drop


def _fresh(path: Path, what: str) -> None:
    if path.is_symlink() and not path.exists():     # a dangling link: the release would be placed nowhere at the end
        raise InputError(f"{what} {path} is a link to {os.readlink(path)}, which does not exist; remove the link or "
                         "give another folder.")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{what} {path} already exists and is not empty; remove it or give another folder.")


def make_release(out: Path, repository: str = registry.REPOSITORY_URL, tag: Optional[str] = None,
                 ref: str = "HEAD", assets: Optional[Path] = None, index: Optional[Path] = None) -> dict[str, Any]:
    """Write the release repository ``out`` (module docstring), its assets (``assets``, None: none) and the index's
    description (``index``/OrbitAI.json, default ``out``-index); returns what was written and measured."""
    out = Path(out).absolute()
    repo = repository_url(repository)
    index = Path(index).absolute() if index is not None else out.parent / f"{out.name}-index"
    assets = Path(assets).absolute() if assets is not None else None
    for path, what in ((out, "--out"), (index, "the description folder"), (assets, "--assets")):
        if path is not None:
            _fresh(path, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        tree, asset_dir, index_dir = work / "tree", work / "assets", work / "index"
        tree.mkdir()
        index_dir.mkdir()
        snapshot(ref, tree)
        source = _git("rev-parse", f"{ref}^{{commit}}", cwd=REPO)
        tag = tag or f"v{project_version(tree)}"
        data, drop = release_registry(tree, repo, asset_dir if assets is not None else None)
        for rel in drop:
            shutil.rmtree(tree / rel)
        (tree / registry.REGISTRY_PATH.relative_to(REPO)).write_text(strict_json(data))
        cmake = with_addresses((tree / "CMakeLists.txt").read_text(), repo, tag)
        check_images(tree, cmake)
        (tree / "CMakeLists.txt").write_text(cmake)
        (index_dir / f"{EXTENSION}.json").write_text(json.dumps(description(cmake, repo, tag), indent=2) + "\n")
        date = _git("log", "-1", "--format=%cI", source, cwd=REPO)
        env = {**GIT_IDENTITY, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        _git("init", "-q", "-b", "main", cwd=tree)
        _git("add", "-A", cwd=tree)
        _git("commit", "-q", "-m", f"{EXTENSION} {tag}: release snapshot of {source}", cwd=tree, env=env)
        _git("tag", tag, cwd=tree, env=env)
        measure = work / "measure"
        measure.mkdir()
        sizes = clone_size(tree, measure / "clone")
        shutil.rmtree(measure)
        _place(tree, out)
        _place(index_dir, index)
        if assets is not None:
            _place(asset_dir, assets)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"out": out, "index": index / f"{EXTENSION}.json", "assets": assets, "tag": tag, "source": source,
            "repository": repo, "removed": drop, "sizes": sizes}


def _move_into(src: Path, dest: Path) -> None:
    """Move ``src``'s content into the existing empty folder ``dest``."""
    for p in src.iterdir():
        p.rename(dest / p.name)


def _place(src: Path, dest: Path) -> None:
    if dest.exists():
        _move_into(src, dest)
    else:
        src.rename(dest)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the release repository to write (a new folder)")
    ap.add_argument("--repository", default=registry.REPOSITORY_URL,
                    help="the public repository, https://github.com/<owner>/Slicer<Name> (default %(default)s)")
    ap.add_argument("--tag", help="the release tag (default v<version of pyproject.toml>)")
    ap.add_argument("--ref", default="HEAD", help="the commit to snapshot (default HEAD)")
    ap.add_argument("--assets", type=Path, help="where the release assets are written (default OUT-assets)")
    ap.add_argument("--no-assets", action="store_true", help="write no release assets (the registry still names them)")
    ap.add_argument("--index", type=Path, help="where the index's description file goes (default OUT-index)")
    args = ap.parse_args(argv)
    assets = None if args.no_assets else (args.assets or args.out.parent / f"{args.out.name}-assets")
    try:
        r = make_release(args.out, args.repository, args.tag, args.ref, assets, args.index)
    except OrbitAIError as exc:
        print(f"make_release: {exc}", file=sys.stderr)
        return 2
    s = r["sizes"]
    mib = 1024 * 1024
    print(f"wrote the release repository {r['out']} (one commit on main, tag {r['tag']}, snapshot of {r['source']})")
    print(f"  left out (release assets): {', '.join(r['removed'])}")
    print(f"  a clone measures {s['clone'] / mib:.1f} MB as the Extensions Index measures it (limit {SIZE_LIMIT_MB} "
          f"MB): .git {s['git'] / mib:.1f} MB, work tree {s['work_tree'] / mib:.1f} MB")
    print(f"  the index's description file: {r['index']}")
    if r["assets"] is not None:
        print(f"  release assets: {r['assets']} (upload each as the asset of release <name>-v<version> of "
              f"{r['repository']}, the address the registry names)")
    print(f"next: push it to {r['repository']} (main and the tag {r['tag']}), give the repository the topic "
          f"{', '.join(GITHUB_TOPICS)}, and submit {r['index'].name} to Slicer/ExtensionsIndex")
    return 0 if s["clone"] / mib <= SIZE_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
