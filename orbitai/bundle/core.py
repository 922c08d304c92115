"""Model bundles: a folder with ``metadata.json`` and the model files it names.

``metadata.json`` follows MONAI Bundle metadata conventions where they fit and is checked against
its task's JSON Schema (`orbitai.bundle.schema`)::

    {"name": "orbit_svnet_ct_demo", "version": "0.1.0", "task": "segmentation",
     "architecture": {"name": "svnet", "args": {...}},
     "input": {"modality": "CT", "spacing": [...], "patch_dhw": [...], "structures": [...], "intensity": {...}},
     "training_data": "...", "metrics": {...}, "weights_sha256": "<hex>",
     "files": {"classifier": {"path": "classifier.skops", "format": "skops", "sha256": "<hex>"}}}

A network's weights are ``model.pt`` (a state_dict): loading checks its SHA-256 against the
metadata *before* deserialising, then uses ``torch.load(weights_only=True)`` so a pickle carrying
code is refused. Other files (scikit-learn models, parameter sets) are read by
`orbitai.bundle.formats`, also checksum first and never with pickle.

A long-lived process (the warm worker, `orbitai.worker`) may call `enable_model_cache`: `Bundle.load_model`
then hands back the model it loaded before for the same bundle folder, metadata, unchanged weights file
(size, modification time, inode) and device, so a second prediction skips building and loading.
Off by default: one-shot commands and training never see it.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Optional

from orbitai.bundle import listing
from orbitai.bundle.schema import checks_key, validate_metadata
from orbitai.bundle.weights import non_finite
from orbitai.errors import BundleError, UserError
from orbitai.io.checksums import sha256_file, sha256_input  # noqa: F401  (the bundle API names them)
from orbitai.staging import looks_like_path, strict_json

if TYPE_CHECKING:  # pragma: no cover - torch is imported only to load or save weights
    import torch

METADATA = "metadata.json"
WEIGHTS = "model.pt"
#: A model or data-set name a user gives (a name, never a path): letters, digits, ``-``, ``_`` and ``.`` (not first), at
#: most 64 characters.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Bundles shipped with the package (package data: in the wheel and in the Slicer extension).
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"


@dataclass
class Bundle:
    path: Path
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def architecture(self) -> str:
        """The network's registry name ('' for a bundle of scikit-learn/parameter files only)."""
        return str((self.metadata.get("architecture") or {}).get("name", ""))

    @property
    def arch_args(self) -> dict[str, Any]:
        return dict(self.metadata["architecture"].get("args", {}))

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS

    def check_metadata(self) -> None:
        """The full schema check of the metadata (`load_bundle` may have checked only its keys)."""
        validate_metadata(self.metadata, where=f"Bundle {self.path}: {METADATA}", full=True)

    def verify(self) -> None:
        """Raise `BundleError` unless the weights file exists and matches its checksum."""
        if not self.weights_path.is_file():
            raise BundleError(f"Bundle '{self.name}' ({self.path}): weights file {WEIGHTS} is missing.")
        digest = sha256_file(self.weights_path)
        if digest != self.metadata["weights_sha256"]:
            raise BundleError(
                f"Bundle '{self.name}' ({self.path}): checksum mismatch for {WEIGHTS} "
                f"(expected {self.metadata['weights_sha256'][:12]}..., got {digest[:12]}...). "
                "The file is corrupt or was replaced; reinstall or retrain the bundle."
            )

    def load_file(self, role: str) -> Any:
        """The bundle file listed under ``files[role]``, checksum-verified and read by its format
        (skops, JSON, radiomics parameters, state_dict; never pickle)."""
        from orbitai.bundle.formats import load_file

        self.check_metadata()
        entry = (self.metadata.get("files") or {}).get(role)
        if entry is None:
            raise BundleError(f"Bundle '{self.name}' ({self.path}) has no {role!r} file; it lists "
                              f"{sorted(self.metadata.get('files') or {}) or 'none'}.")
        return load_file(self.path, entry, role)

    def load_state_dict(self) -> dict[str, "torch.Tensor"]:
        import torch

        self.check_metadata()
        self.verify()
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise BundleError(
                f"Bundle '{self.name}' ({self.path}): {WEIGHTS} is not a plain tensor state_dict "
                f"and was refused for safety ({type(exc).__name__}: {str(exc).splitlines()[0]})."
            ) from exc
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise BundleError(f"Bundle '{self.name}' ({self.path}): {WEIGHTS} is not a state_dict of tensors.")
        bad = non_finite(state)
        if bad:
            raise BundleError(f"Bundle '{self.name}' ({self.path}): {WEIGHTS} holds NaN or infinite values in "
                              f"{len(bad)} tensor(s) ({', '.join(bad[:3])}): the weights are corrupt and were "
                              f"refused; reinstall it ('orbitai models install {self.name}', adding --overwrite for "
                              "a folder of your own) or retrain it.")
        return state

    def load_model(self, device: "str | torch.device" = "cpu") -> "torch.nn.Module":
        """Build the architecture, load the verified weights, return it in eval mode (the same object as
        before when the model cache is enabled and nothing changed, see `enable_model_cache`)."""
        cache = _model_cache
        if cache is None:
            return self._build_model(device)
        key = cache.key(self, device)
        model = cache.get(key)
        if model is None:
            model = self._build_model(device)
            cache.put(key, model)
        return model

    def _build_model(self, device: "str | torch.device") -> "torch.nn.Module":
        from orbitai.models import build_model

        self.check_metadata()
        if not self.architecture:
            raise BundleError(f"Bundle '{self.name}' ({self.metadata.get('task')}) holds no network, only the files "
                              f"{sorted(self.metadata.get('files') or {})}; read them with load_file().")
        try:
            model = build_model(self.architecture, **self.arch_args)
        except (KeyError, TypeError) as exc:
            raise BundleError(f"Bundle '{self.name}': cannot build architecture {self.architecture!r}: {exc}") from exc
        state = self.load_state_dict()
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise BundleError(
                f"Bundle '{self.name}': weights do not fit architecture {self.architecture!r} "
                f"with args {self.arch_args} ({first[0] if first else exc})."
            ) from exc
        return model.to(device).eval()


class ModelCache:
    """Loaded models by (bundle folder, metadata, weights file identity, device), least recently used dropped
    beyond ``max_models``. A hit is handed out only while the model is untouched: in eval mode and with every
    parameter and buffer still the tensor it was, never modified in place (a caller that trained or moved it
    gets a freshly loaded one instead)."""

    def __init__(self, max_models: int = 4) -> None:
        self.max_models = max(1, int(max_models))
        self.hits = 0
        self.misses = 0
        self._models: "OrderedDict[Hashable, tuple[torch.nn.Module, tuple]]" = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(bundle: Bundle, device: "str | torch.device") -> Hashable:
        import torch

        try:
            st = bundle.weights_path.stat()
            weights: tuple = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            weights = ("missing",)  # never cached: loading raises the bundle's own error
        meta = json.dumps(bundle.metadata, sort_keys=True, default=str)
        return (str(bundle.path.resolve()), meta, weights, str(torch.device(device)))

    @staticmethod
    def _fingerprint(model: "torch.nn.Module") -> tuple:
        tensors = [*model.parameters(), *model.buffers()]
        return (model.training, tuple((t.data_ptr(), t._version, t.requires_grad) for t in tensors))

    def get(self, key: Hashable) -> "Optional[torch.nn.Module]":
        with self._lock:
            entry = self._models.get(key)
            if entry is not None and self._fingerprint(entry[0]) == entry[1]:
                self._models.move_to_end(key)
                self.hits += 1
                return entry[0]
            self._models.pop(key, None)  # absent, or changed by its last user: load afresh
            self.misses += 1
            return None

    def put(self, key: Hashable, model: "torch.nn.Module") -> None:
        with self._lock:
            self._models[key] = (model, self._fingerprint(model))
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)

    def __len__(self) -> int:
        return len(self._models)


_model_cache: Optional[ModelCache] = None


def enable_model_cache(max_models: int = 4) -> ModelCache:
    """Keep loaded models for reuse by `Bundle.load_model` in this process (the warm worker's choice;
    nothing else should enable it). Returns the cache (counters ``hits``, ``misses``)."""
    global _model_cache
    if _model_cache is None:
        _model_cache = ModelCache(max_models)
    return _model_cache


def disable_model_cache() -> None:
    """Drop the cached models and load afresh from now on (the default)."""
    global _model_cache
    _model_cache = None


def load_bundle(path: str | os.PathLike, text: Optional[str] = None) -> Bundle:
    """Read and validate a bundle folder's metadata (weights are checked when loaded; ``text``: the file's, if read).

    Without ``jsonschema`` only the required keys are checked, so bundles can be listed before
    the dependencies are installed; loading a model or file runs the full schema check."""
    p = Path(path)
    meta_path = p / METADATA
    if not p.is_dir():
        raise BundleError(f"Model bundle folder not found: {p}")
    if not meta_path.is_file():
        raise BundleError(f"Bundle {p} has no {METADATA}.")
    try:
        meta = json.loads(meta_path.read_text() if text is None else text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"Bundle {p}: {METADATA} is not valid JSON ({exc}).") from exc
    validate_metadata(meta, where=f"Bundle {p}: {METADATA}")
    return Bundle(p, meta)


def save_bundle(model: "torch.nn.Module", path: str | os.PathLike, metadata: dict[str, Any],
                overwrite: bool = False) -> Bundle:
    """Write a PyTorch bundle (``model.pt`` state_dict + metadata) atomically (`write_bundle`)."""
    import torch

    def write(tmp: Path) -> dict[str, Any]:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        bad = non_finite(state)
        if bad:      # a model that diverged (or started from corrupt weights) is never installed
            raise BundleError(f"The model for {path} holds NaN or infinite values in {len(bad)} tensor(s) "
                              f"({', '.join(bad[:3])}): not written; the training diverged, start it again (a "
                              "lower learning rate, another base model).")
        torch.save(state, tmp / WEIGHTS)
        return {"weights_sha256": sha256_file(tmp / WEIGHTS)}

    return write_bundle(path, metadata, write, overwrite)


#: How a bundle's floating-point weights are stored (metadata ``weights_precision``; absent: float32). Loading casts
#: them to the network's own dtype (``load_state_dict`` copies into float32 parameters), so only storage changes.
WEIGHT_PRECISIONS = ("float32", "float16")
#: The largest magnitude float16 holds; a tensor beyond it stays float32, as does one that float16 rounds by more
#: than `FLOAT16_RELATIVE_ERROR` of its largest value (a tensor of tiny values, flushed towards zero).
FLOAT16_MAX = 65504.0
FLOAT16_RELATIVE_ERROR = 1e-3


def half_precision_state(state: dict[str, "torch.Tensor"]) -> tuple[dict[str, "torch.Tensor"], list[str]]:
    """``state`` with its float32 tensors stored as float16, and the names of those kept in float32 because float16
    cannot hold them (see `FLOAT16_MAX`). Integer tensors (BatchNorm's ``num_batches_tracked``) stay as they are."""
    import torch

    out: dict[str, torch.Tensor] = {}
    kept: list[str] = []
    done: dict[tuple, torch.Tensor] = {}     # a module reached by two names (an alias) stays one stored tensor
    for name, t in state.items():
        if t.dtype != torch.float32:
            out[name] = t
            continue
        same = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        if same in done:
            out[name] = done[same]
            continue
        h = t.to(torch.float16)
        scale = float(t.abs().max()) if t.numel() else 0.0
        error = float((h.to(torch.float32) - t).abs().max()) if t.numel() else 0.0
        if scale > FLOAT16_MAX or not bool(torch.isfinite(h).all()) or error > FLOAT16_RELATIVE_ERROR * scale:
            out[name] = t
            kept.append(name)
        else:
            out[name] = h.contiguous()
        done[same] = out[name]
    return out, kept


def _own_entries(meta: dict[str, Any]) -> set[str]:
    """The entries a bundle written by `write_bundle` holds: its metadata, weights and listed files."""
    given = meta.get("files")
    files: dict[str, Any] = given if isinstance(given, dict) else {}
    listed = {str(f.get("path")) for f in files.values() if isinstance(f, dict) and f.get("path")}
    return {METADATA, WEIGHTS, *listed}


def check_bundle_folder(path: str | os.PathLike, task: str, overwrite: bool = False) -> bool:
    """The one rule for a folder that a bundle replaces as a whole (every training's ``--out``): a folder
    the command did not create is never emptied. Returns whether writing must first move ``path`` aside;
    raises `UserError` (one line saying what to do) otherwise, before any work.

    * absent, or an empty folder: written there;
    * a ``task`` bundle holding only its own files (an earlier training's output): replaced as a whole;
    * a ``task`` bundle that also holds other files: refused, unless ``overwrite`` (``--overwrite``): the old
      folder is then moved aside to ``<name>.old-<date>-<time>`` beside it when the new bundle is written;
    * anything else (a folder that is not a model bundle, another task's bundle, a file): refused."""
    p = Path(path)
    if not p.is_dir() or p.is_symlink():
        if p.exists() or p.is_symlink():
            raise UserError(f"The bundle folder {p} is a file; choose a new folder name.")
        return False
    entries = sorted(e.name for e in p.iterdir())
    if not entries:
        return False
    shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
    try:
        meta = json.loads((p / METADATA).read_text())
        kind = meta.get("task") if isinstance(meta, dict) else None
    except (OSError, ValueError):
        kind = None
    if not isinstance(kind, str):
        raise UserError(f"The bundle folder {p} already exists and is not a model bundle (it holds {shown}); "
                        "choose a new folder name: a training never writes into another folder.")
    if kind != task:
        raise UserError(f"The bundle folder {p} holds a {kind} bundle, not a {task} one; choose a new folder name.")
    extra = sorted(set(entries) - _own_entries(meta))
    if extra and not overwrite:
        raise UserError(f"The bundle folder {p} holds an earlier {task} bundle and other files "
                        f"({', '.join(extra[:4])}); choose a new folder name, or add --overwrite to move the "
                        f"old folder aside to {p.name}.old-<date>-<time> (nothing is deleted).")
    return bool(extra)


def _move_aside(p: Path) -> Path:
    """Rename ``p`` to a free ``<name>.old-<date>-<time>[-N]`` beside it (nothing is deleted)."""
    stem = f"{p.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    aside, n = p.with_name(stem), 1
    while aside.exists() or aside.is_symlink():
        n += 1
        aside = p.with_name(f"{stem}-{n}")
    os.replace(p, aside)
    print(f"moved the earlier {p} aside to {aside}", flush=True)
    return aside


def write_bundle(path: str | os.PathLike, metadata: dict[str, Any],
                 write_files: Callable[[Path], dict[str, Any]], overwrite: bool = False) -> Bundle:
    """Write a bundle atomically: ``write_files(tmp)`` writes the model files into a temporary
    folder and returns metadata keys to add (checksums, ``files`` entries); the metadata is
    validated against its task's schema, then the folder is renamed into place. An existing ``path``
    follows `check_bundle_folder` (checked first and again before it is replaced): only an earlier bundle
    of the same task holding nothing else is replaced; with ``overwrite`` one holding other files too is
    moved aside; anything else is refused."""
    p = Path(path)
    task = str(metadata.get("task", ""))
    check_bundle_folder(p, task, overwrite)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}-", dir=p.parent))
    try:
        meta = {**metadata, **write_files(tmp)}
        validate_metadata(meta, where="Bundle metadata", full=True)
        (tmp / METADATA).write_text(strict_json(meta))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700; give the usual permissions
        if check_bundle_folder(p, task, overwrite):
            _move_aside(p)
        elif p.exists():
            shutil.rmtree(p)   # an empty folder or an earlier bundle of this task, nothing else
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Bundle(p, meta)


#: Names another folder for the user's own models than ``~/.orbitai/models`` (a shared install, the tests).
USER_MODELS_ENV = "ORBITAI_USER_MODELS"


def user_model_folder() -> Path:
    """The user's own models (``~/.orbitai/models``, or ``$ORBITAI_USER_MODELS``): searched before the package's
    bundles; where fine-tuned and installed models (``orbitai models install``) go."""
    env = os.environ.get(USER_MODELS_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".orbitai" / "models"


#: Set to 1 only by the Makefile's targets that build the bundled models (``make models``, ``make trust``).
WRITE_BUNDLED_ENV = "ORBITAI_WRITE_BUNDLED_MODELS"


def refuse_package_folder(path: str | os.PathLike, what: str = "--out") -> None:
    """Bundled models are read-only for every command: refuse in one line a ``path`` (``what`` names the option)
    that is, or lies inside, the package's bundled models folder (`BUILTIN_DIR`, links resolved)."""
    if os.environ.get(WRITE_BUNDLED_ENV) == "1":     # the maintainers' builds of the bundled models (Makefile)
        return
    p = Path(path).expanduser().resolve()
    builtin = BUILTIN_DIR.resolve()
    if p == builtin or builtin in p.parents:
        raise UserError(f"{what} {path} lies in the bundled models' folder {builtin}, which no command writes; "
                        "choose a folder of your own (a fine-tuned model goes to the user model folder "
                        f"{user_model_folder()} by default).")


def search_paths() -> list[Path]:
    """Where bundles are looked up: $ORBITAI_MODEL_PATH entries, the user model folder, then the built-ins (the local
    mirror of the model registry, `orbitai.bundle.registry`: the order the registry resolves a name in)."""
    paths = [Path(x) for x in os.environ.get("ORBITAI_MODEL_PATH", "").split(os.pathsep) if x]
    paths += [user_model_folder(), BUILTIN_DIR]
    return paths


def _listed_bundle(meta: Path, checks: tuple[Any, ...]) -> Optional[Bundle]:
    """`load_bundle` of ``meta``'s folder for a listing (None: refused), checked once per text and ``checks``
    (`orbitai.bundle.listing`); each call gives a Bundle of its own (the text parsed again)."""
    try:
        text = meta.read_text()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):   # as load_bundle's refusals
        return None
    ok = listing.passed(meta, checks, text)
    if ok is not None:
        return Bundle(meta.parent, json.loads(text)) if ok else None
    try:
        bundle: Optional[Bundle] = load_bundle(meta.parent, text)
    except BundleError:
        bundle = None
    listing.remember(meta, checks, text, bundle is not None)
    return bundle


def iter_bundles() -> Iterator[Bundle]:
    """The installed bundles on the search paths (the first of a name wins), checked as `load_bundle` does (once per
    text of each file in a process: `_listed_bundle`); a folder whose metadata does not check is left out."""
    seen = set()
    checks = checks_key()
    for root in search_paths():
        if not root.is_dir():
            continue
        for meta in sorted(root.glob(f"*/{METADATA}")):
            b = _listed_bundle(meta, checks)
            if b is not None and b.name not in seen:
                seen.add(b.name)
                yield b


def find_bundle(name_or_path: str) -> Bundle:
    """A bundle by name on the search paths first, then by folder path (clear error listing what exists).

    Installed bundles only: `orbitai.bundle.install.find_model` also downloads a registry model on first use
    (when its caller allows it) or says how to install it.

    Text written as a path (`orbitai.staging.looks_like_path`: ``./b``, ``models/b``, ``~/b``) is only a
    folder; a bare name is a bundle's name first, a folder of that name in the working directory after."""
    p = Path(name_or_path).expanduser()
    as_path = looks_like_path(name_or_path)
    available = []
    if not as_path:
        for b in iter_bundles():
            if name_or_path in (b.name, b.path.name):
                return b
            available.append(b.name)
    if (p / METADATA).is_file():
        return load_bundle(p)
    if p.is_dir():
        raise BundleError(f"The folder {name_or_path} is not a model bundle (it has no {METADATA}); give a bundle "
                          "folder written by 'orbitai ... train' or a bundle name ('orbitai info' lists them).")
    if as_path:
        raise BundleError(f"No model bundle folder {name_or_path}: it does not exist; give a bundle folder or a "
                          "bundle name ('orbitai info' lists them).")
    raise BundleError(
        f"No model bundle named {name_or_path!r}. Available: {', '.join(available) or 'none'}. "
        "Pass a bundle folder path or set ORBITAI_MODEL_PATH ('orbitai models list' shows the registry's models, "
        "'orbitai models install NAME' installs one)."
    )
