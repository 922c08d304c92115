"""The model and data registry: one checksummed entry per model bundle and per training data set.

``orbitai/resources/registry.json`` is written by ``scripts/write_registry.py`` from the bundles and data sets in
the tree (never by hand; ``Testing/models/test_registry.py`` fails when a bundle changed without it). Each entry
names the thing (name, version, kind ``model`` or ``data``, task, what it was trained on, licence), its archive
(a ``.tar.gz`` of the folder made deterministically by `write_archive`: sorted members, fixed times and owners, so
its SHA-256 is stable), the archive's size and SHA-256, its download addresses (`url_pattern` filled from the one
repository address, `REPOSITORY_URL`) and every file with its size and SHA-256.

Where a name is found (`locate`), in this order:

1. the user's folder: ``~/.orbitai/models`` for models (`orbitai.bundle.core.user_model_folder`,
   ``$ORBITAI_USER_MODELS`` overrides it), ``~/.orbitai/data`` beside it for data sets;
2. the local mirror: the package's own folders (``orbitai/resources/models``, ``orbitai/data``), present in a
   development checkout and in the tests, so ``make demo``, ``make test`` and CI never need the network;
3. a download (`orbitai.bundle.install.resolve`, `orbitai.bundle.install.find_model`), only when the caller allows
   it (``orbitai models install``, ``find_model(name, download=True)``); never on its own.

Slicer-free and light: the standard library only (no torch, no NumPy).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional

from orbitai.bundle.core import BUILTIN_DIR, METADATA, MODEL_NAME, search_paths, user_model_folder
from orbitai.errors import BundleError
from orbitai.io.checksums import sha256_file

#: The one address of the project's public repository: every download address is made from it (`url_pattern`).
#: The release step writes the registry (and CMakeLists.txt's addresses) with the address it is given
#: (``make release OUT=DIR REPOSITORY=URL``, scripts/make_release.py; CMakeLists.txt names this one at ``main``).
REPOSITORY_URL = "https://github.com/orbitai/SlicerOrbitAI"
#: A release asset's address: one release per bundle version, so an asset is never replaced under its address.
URL_PATTERN = "{repository}/releases/download/{name}-v{version}/{asset}"
#: Replaces the repository's release addresses by one folder (a mirror, the tests' local server): ``BASE/{asset}``.
BASE_URL_ENV = "ORBITAI_MODELS_URL"
REGISTRY_PATH = Path(__file__).resolve().parent.parent / "resources" / "registry.json"
#: The package's training data sets (the local mirror of the data entries).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ARCHIVE_SUFFIX = ".tar.gz"
#: A fixed time for every archive member (2020-01-01 UTC), so an archive's bytes depend only on the files.
ARCHIVE_MTIME = 1577836800
PROJECT_LICENCE = "BSD-3-Clause"

#: What the registry says about each data set in ``orbitai/data`` (facts that are not in the files): the version
#: of its content, which commands use it, its licence, and whether the package keeps it (the demo and the tests
#: need the atlas, predictions the brain template; the SynthSeg heads and the lesion masks serve training and
#: phantoms and are downloaded where absent).
DATA_SETS: dict[str, dict[str, Any]] = {
    "spl_nac_atlas": {"version": "1", "task": "phantoms (orbit CT/MRI anatomy; the demo and the tests)",
                      "licence": "3D Slicer License", "in_package": True},
    "synthseg_label_maps": {"version": "1", "task": "training: scan classifier, domain-randomised and MRI heads",
                            "licence": "Apache-2.0", "in_package": False},
    "ms_lesion_masks_lesjak": {"version": "1", "task": "training: brain FLAIR lesion phantoms",
                               "licence": "CC-BY (Lesjak et al. 2017)", "in_package": False},
    "ms_flair_lesjak": {"version": "1", "task": "the brain template of neuro lesions and NMOSD vs MS; brain phantoms",
                        "licence": "CC-BY (Lesjak et al. 2017)", "in_package": True},
}

KINDS = ("model", "data")


@dataclass
class Entry:
    """One registry entry (see the module docstring)."""

    name: str
    kind: str
    version: str
    task: str
    trained_on: str
    licence: str
    description: str
    size: int                      # the archive's bytes
    unpacked_size: int
    sha256: str                    # the archive's
    asset: str                     # the archive's file name
    urls: list[str]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)   # relative name -> {"size", "sha256"}
    in_package: bool = False

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> "Entry":
        try:
            entry = cls(name=name, kind=str(data["kind"]), version=str(data["version"]), task=str(data["task"]),
                       trained_on=str(data.get("trained_on", "")), licence=str(data["licence"]),
                       description=str(data.get("description", "")), size=int(data["size"]),
                       unpacked_size=int(data["unpacked_size"]), sha256=str(data["sha256"]),
                       asset=str(data["asset"]), urls=[str(u) for u in data["urls"]],
                       files={str(k): dict(v) for k, v in data["files"].items()},
                       in_package=bool(data.get("in_package", False)))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:   # OverflowError: a size of 1e999
            raise BundleError(f"The model registry {REGISTRY_PATH} has a broken entry {name!r} ({exc}); "
                              "reinstall orbitai or rewrite it with scripts/write_registry.py.") from exc
        check_entry_names(entry)
        return entry

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "name"}
        return out

    def download_urls(self) -> list[str]:
        """Where the archive is fetched from: ``$ORBITAI_MODELS_URL/<asset>`` when that is set, else `urls`."""
        base = os.environ.get(BASE_URL_ENV, "").strip()
        return [f"{base.rstrip('/')}/{self.asset}"] if base else list(self.urls)


def _plain_file_name(text: str) -> bool:
    return bool(MODEL_NAME.fullmatch(text)) and ".." not in text


def check_entry_names(entry: Entry) -> None:
    """Refuse in one line (`BundleError`) an entry whose name, archive name or file names could be followed as a
    path: a name the registry gives is data, never a path (``../x`` once made an install write, then delete, a file
    outside the user's folder). Checked when the registry is read and again before an install writes anything."""
    bad = None
    if not _plain_file_name(entry.name):
        bad = f"name {entry.name!r}"
    elif not _plain_file_name(entry.asset):
        bad = f"archive name {entry.asset!r}"
    else:
        for rel in entry.files:
            parts = rel.split("/")
            if rel.startswith("/") or "\\" in rel or ":" in rel or any(p in ("", ".", "..") for p in parts):
                bad = f"file name {rel!r}"
                break
    if bad is not None:
        raise BundleError(f"The model registry {REGISTRY_PATH} has an entry {entry.name[:80]!r} whose "
                          f"{bad[:140]} is not a plain name (a name is never a path: no '/', '\\' or '..'); refused, nothing "
                          "written; reinstall orbitai or rewrite the registry with scripts/write_registry.py.")


def url_for(name: str, version: str, asset: str, repository: str = REPOSITORY_URL) -> str:
    return URL_PATTERN.format(repository=repository.rstrip("/"), name=name, version=version, asset=asset)


def asset_name(name: str, version: str) -> str:
    return f"{name}-{version}{ARCHIVE_SUFFIX}"


# ---------------------------------------------------------------------------------------------------------- reading

_cache: dict[str, Any] = {}


def load_registry(path: Optional[Path] = None) -> dict[str, Entry]:
    """The registry's entries by name (read once per file and modification time)."""
    p = Path(path) if path is not None else REGISTRY_PATH
    try:
        st = p.stat()
    except OSError:
        return {}                      # a package without a registry: nothing to download, local bundles only
    key = f"{p}:{st.st_mtime_ns}:{st.st_size}"
    if _cache.get("key") != key:
        try:
            data = json.loads(p.read_text())
            entries = {str(n): Entry.from_json(str(n), e) for n, e in data["entries"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:   # [[[[... too deep
            raise BundleError(f"The model registry {p} cannot be read ({exc}); reinstall orbitai.") from exc
        _cache.update(key=key, entries=entries)
    return dict(_cache["entries"])


def registry_entry(name: str) -> Optional[Entry]:
    return load_registry().get(name)


def entry_for_asset(file_name: str) -> Optional[Entry]:
    """The entry whose archive is called ``file_name`` (a URL's or a downloaded file's last part)."""
    return next((e for e in load_registry().values() if e.asset == file_name), None)


# ---------------------------------------------------------------------------------------------------- where things are

def user_folder(kind: str) -> Path:
    """Where ``orbitai models install`` puts a ``kind`` ('model' or 'data'): the user's folder."""
    models = user_model_folder()
    return models if kind == "model" else models.parent / "data"


def mirror_folder(kind: str) -> Path:
    """The local mirror: the package's own bundles or data sets (present in a development checkout)."""
    return BUILTIN_DIR if kind == "model" else DATA_DIR


def _complete(folder: Path, kind: str) -> bool:
    return (folder / METADATA).is_file() if kind == "model" else folder.is_dir() and any(folder.iterdir())


def locate(name: str, kind: Optional[str] = None) -> Optional[tuple[str, Path]]:
    """(``'user'`` or ``'mirror'``, folder) of ``name`` in the resolution order (module docstring), or None."""
    entry = registry_entry(name)
    kinds = [kind] if kind else ([entry.kind] if entry else list(KINDS))
    for where, folder_of in (("user", user_folder), ("mirror", mirror_folder)):
        for k in kinds:
            folder = folder_of(k) / name
            if _complete(folder, k):
                return where, folder
    return None


def model_to_install(name: Optional[str]) -> Optional[Entry]:
    """The registry model entry ``name`` when it is installed nowhere (neither the user's folder nor the mirror),
    else None (installed, not a registry model, or no name): the one rule of "this Apply needs a download first"
    (`orbitai.mrml.jobs.JobLogic.modelOffer`, used by the Slicer and the browser panels)."""
    entry = registry_entry(name) if name else None
    if entry is None or entry.kind != "model":
        return None
    found = any((folder / entry.name / METADATA).is_file() for folder in search_paths())  # $ORBITAI_MODEL_PATH too
    return None if found else entry


def data_file(name: str, *parts: str) -> Path:
    """A file of data set ``name`` (``parts`` inside it): from the user's data folder, else the package's; a registry
    data set found in neither is a one-line error saying how to install it."""
    found = locate(name, "data")
    if found is not None:
        return found[1].joinpath(*parts)
    entry = registry_entry(name)
    if entry is not None and entry.kind == "data":
        raise BundleError(missing_message(entry))
    return DATA_DIR.joinpath(name, *parts)


def missing_message(entry: Entry) -> str:
    return (f"The {entry.kind} {entry.name!r} is not installed: 'orbitai models install {entry.name}' downloads it "
            f"({human_size(entry.size)}, checked by SHA-256), or download {entry.urls[0] if entry.urls else entry.asset} "
            "yourself and run 'orbitai models install FILE'.")


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"  # pragma: no cover


# ------------------------------------------------------------------------------------------------------- archives

def folder_files(folder: Path) -> list[Path]:
    """The files of an entry's folder, sorted by relative name (hidden files and caches left out); a link or a
    special file is refused (an archive holds plain files only)."""
    out = []
    for p in sorted(folder.rglob("*"), key=lambda q: q.relative_to(folder).as_posix()):
        rel = p.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise BundleError(f"{p} is a link or a special file; an archive holds plain files only.")
        if p.is_file():
            out.append(p)
    return out


def file_table(folder: Path) -> dict[str, dict[str, Any]]:
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": sha256_file(p)}
            for p in folder_files(folder)}


class _HashWriter(io.RawIOBase):
    """A write-only stream that hashes (and counts) what is written, optionally copying it to ``out``."""

    def __init__(self, out: Optional[BinaryIO] = None) -> None:
        self.hash = hashlib.sha256()
        self.size = 0
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.hash.update(data)
        self.size += len(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)


def write_archive(folder: Path, name: str, out: Optional[BinaryIO] = None) -> tuple[int, str]:
    """Write the deterministic ``.tar.gz`` of ``folder`` (members ``name/<file>``, sorted, plain files and folders
    only, mtime `ARCHIVE_MTIME`, owner 0, modes 0644/0755, gzip header without name or time) to ``out`` (or only
    measure it); returns (size, sha256)."""
    sink = _HashWriter(out)
    with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=9, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            files = folder_files(folder)
            dirs = sorted({p.relative_to(folder).parent.as_posix() for p in files} - {"."})
            names = [(d, None) for d in [""] + dirs] + [(p.relative_to(folder).as_posix(), p) for p in files]
            for rel, path in sorted(names, key=lambda x: x[0]):
                info = tarfile.TarInfo(f"{name}/{rel}".rstrip("/"))
                info.mtime, info.uid, info.gid, info.uname, info.gname = ARCHIVE_MTIME, 0, 0, "", ""
                if path is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = path.stat().st_size, 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
    return sink.size, sink.hash.hexdigest()


def zlib_family() -> str:
    """'zlib-ng' or 'zlib': the deflate implementation, which decides a ``.tar.gz``'s bytes (zlib-ng compresses the
    same members into other bytes)."""
    return "zlib-ng" if "ng" in zlib.ZLIB_RUNTIME_VERSION.lower() else "zlib"


# ------------------------------------------------------------------------------------------------- writing entries

def _trained_on(meta: dict[str, Any]) -> str:
    data = meta.get("training_data")
    if isinstance(data, str) and data.strip():
        return " ".join(data.split())
    training = meta.get("training")
    cfg = meta.get("config") or (training.get("config") if isinstance(training, dict) else None)
    return f"synthetic phantoms (training configuration {cfg})" if cfg else "synthetic phantoms"


def make_entry(folder: Path, kind: str, repository: str = REPOSITORY_URL,
               archive_dir: Optional[Path] = None) -> Entry:
    """The entry of a bundle folder (``kind`` 'model') or data set folder ('data'); with ``archive_dir`` its
    archive is written there too."""
    name = folder.name
    if kind == "model":
        meta = json.loads((folder / METADATA).read_text())
        if meta.get("name") != name:
            raise BundleError(f"Bundle folder {folder} holds the bundle {meta.get('name')!r}; a registry entry's "
                              "folder has the bundle's name.")
        version, task = str(meta.get("version", "1")), str(meta.get("task", ""))
        trained_on, licence = _trained_on(meta), str(meta.get("license") or PROJECT_LICENCE)
        description, in_package = " ".join(str(meta.get("description", "")).split()), False
    else:
        facts = DATA_SETS.get(name)
        if facts is None:
            raise BundleError(f"The data set {folder} is not described in orbitai.bundle.registry.DATA_SETS; add "
                              "its version, task, licence and whether the package keeps it.")
        version, task, licence = str(facts["version"]), str(facts["task"]), str(facts["licence"])
        trained_on, in_package = "", bool(facts["in_package"])
        attribution = folder / "ATTRIBUTION.md"
        first = attribution.read_text().splitlines()[0] if attribution.is_file() else name
        description = first.lstrip("# ").strip()
    files = file_table(folder)
    asset = asset_name(name, version)
    if archive_dir is not None:
        archive_dir.mkdir(parents=True, exist_ok=True)
        with open(archive_dir / asset, "wb") as f:
            size, digest = write_archive(folder, name, f)
    else:
        size, digest = write_archive(folder, name)
    return Entry(name=name, kind=kind, version=version, task=task, trained_on=trained_on, licence=licence,
                 description=description, size=size, unpacked_size=sum(f["size"] for f in files.values()),
                 sha256=digest, asset=asset, urls=[url_for(name, version, asset, repository)], files=files,
                 in_package=in_package)


def tree_folders(models_dir: Path = BUILTIN_DIR, data_dir: Path = DATA_DIR) -> Iterator[tuple[Path, str]]:
    """The folders the registry describes: every bundle in ``models_dir`` and every data set in ``data_dir``."""
    if models_dir.is_dir():
        for meta in sorted(models_dir.glob(f"*/{METADATA}")):
            yield meta.parent, "model"
    if data_dir.is_dir():
        for d in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            yield d, "data"


def registry_json(entries: list[Entry], repository: str = REPOSITORY_URL) -> dict[str, Any]:
    return {"format": 1, "repository": repository, "url_pattern": URL_PATTERN, "archive": ARCHIVE_SUFFIX,
            "deflate": zlib_family(),
            "entries": {e.name: e.to_json() for e in sorted(entries, key=lambda e: (e.kind != "model", e.name))}}
