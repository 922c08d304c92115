"""Checksummed, atomic training checkpoints and preprocessing caches (issue #14).

Every checkpoint (a dict of tensors, numbers and strings, read back with
``torch.load(weights_only=True)``) and every array cache (an ``.npz`` read back with
``allow_pickle=False``) is written to a temporary file beside its destination and moved into place
with ``os.replace``; a sidecar ``<name>.sha256`` records its digest, computed as for bundles
(:func:`orbitai.bundle.sha256_file`). Reading checks the digest before deserialising anything. A
file that is unreadable, truncated, altered, without its digest or holding a pickle payload is
named in one warning, removed, and reported as absent (``None``), so the caller starts over or
rebuilds: a damaged file is never half-loaded.
"""
from __future__ import annotations

import logging
import os
import pickle  # only for its exception type: nothing here is ever unpickled
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Optional, TypeVar

import numpy as np

from orbitai.errors import one_line
from orbitai.io.checksums import sha256_file

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a sidecar's name adds to the file it checks.
SIDECAR_SUFFIX = ".sha256"
STARTING_OVER = "starting over"
REBUILDING = "rebuilding it"


def sidecar(path: str | os.PathLike) -> Path:
    """The checksum file beside ``path``."""
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write`` the file into a temporary file beside ``path``, then move it and its digest into
    place; a crash in between leaves a file whose digest does not match, which reads as corrupt."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp, side_tmp = Path(name), Path(name + SIDECAR_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        side_tmp.write_text(f"{sha256_file(tmp)}  {path.name}\n")
        os.replace(tmp, path)
        os.replace(side_tmp, sidecar(path))
    finally:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)


PICKLED = "it holds pickled Python objects, which are never loaded"


def _unreadable(exc: BaseException) -> str:
    """Why deserialising failed, in a few words (never the libraries' advice to allow pickles)."""
    if isinstance(exc, pickle.UnpicklingError) or (isinstance(exc, ValueError) and "pickle" in str(exc)):
        return PICKLED
    text = one_line(exc)
    return f"unreadable: {text if len(text) <= 160 else text[:157] + '...'}"


def discard(path: Path, what: str, reason: str, action: str) -> None:
    """Warn in one line that ``what`` at ``path`` is unusable and why, and remove it and its digest."""
    log.warning("%s %s is corrupt (%s); %s.", what, path, reason, action)
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def _verified(path: Path, what: str, action: str) -> bool:
    """Whether ``path`` exists and matches its recorded digest (a mismatch is discarded)."""
    if not path.exists():
        sidecar(path).unlink(missing_ok=True)
        return False
    try:
        recorded = sidecar(path).read_text().split()
    except OSError:
        recorded = []
    if not recorded:
        discard(path, what, f"no checksum in {sidecar(path).name}", action)
        return False
    try:
        digest = sha256_file(path)
    except OSError as exc:
        discard(path, what, f"unreadable: {one_line(exc)}", action)
        return False
    if digest != recorded[0]:
        discard(path, what, "checksum mismatch", action)
        return False
    return True


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a training checkpoint (tensors, numbers, strings, lists and dicts of them)."""
    import torch   # the array caches (`save_arrays`) need none: a radiomics command loads no torch

    _write_atomic(Path(path), lambda f: torch.save(dict(state), f))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint") -> Optional[dict]:
    """The checkpoint at ``path``, or None when there is none or it is corrupt (then named in a
    warning and removed, so training starts over)."""
    path = Path(path)
    if not _verified(path, what, STARTING_OVER):
        return None
    try:
        import torch

        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to deserialise (pickle refused included) means unusable
        discard(path, what, _unreadable(exc), STARTING_OVER)
        return None
    if not isinstance(state, dict):
        discard(path, what, f"holds a {type(state).__name__}, not a checkpoint", STARTING_OVER)
        return None
    return state


def resume(path: str | os.PathLike, apply: Callable[[dict], T], reset: Callable[[], None],
           map_location: Any = "cpu", what: str = "checkpoint") -> Optional[T]:
    """Load the checkpoint at ``path`` and ``apply`` it to the training state (model, optimiser,
    generators). When there is none, it is corrupt, or it does not fit this training (``apply``
    raises), ``reset`` puts back the state as it was before, and None is returned: start over."""
    state = load_checkpoint(path, map_location, what)
    if state is None:
        return None
    try:
        return apply(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        reset()
        discard(Path(path), what, f"it does not fit this training: {one_line(exc)}", STARTING_OVER)
        return None


def _mapped_members(path: Path, skip: set[str]) -> dict[str, np.ndarray]:
    """Read-only memory maps of the ``.npy`` members of an uncompressed ``.npz`` (what :func:`save_arrays` writes)
    but ``skip``. By hand: numpy maps a ``.npy`` file, not a member of a zip archive; the member's data offset is
    read from its local zip header."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        for info in zf.infolist():
            name = info.filename[:-4]
            if name in skip:
                continue
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"member {info.filename} is compressed")
            f.seek(info.header_offset)
            local = f.read(30)
            n, m = struct.unpack("<HH", local[26:30])
            f.seek(info.header_offset + 30 + n + m)
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            out[name] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape,
                                  order="F" if fortran else "C")
    return out


def save_arrays(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a preprocessing cache: named arrays (numbers or fixed-width strings, no objects)."""
    for name, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"cache array {name!r} holds Python objects; caches hold plain arrays only.")
    _write_atomic(Path(path), lambda f: np.savez(f, **arrays))   # type: ignore[arg-type]


def load_arrays(path: str | os.PathLike, what: str = "preprocessing cache", mmap: bool = False
                ) -> Optional[dict[str, np.ndarray]]:
    """The arrays cached at ``path``, or None when there are none or the cache is corrupt (then
    named in a warning and removed, so the caller rebuilds it). ``mmap``: arrays of 1 MB and more are read-only
    memory maps into the (verified) file, so that a training over hundreds of caches keeps them in the page cache,
    which the system may reclaim, rather than in its own memory."""
    path = Path(path)
    if not _verified(path, what, REBUILDING):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {name: z[name] for name in z.files if not mmap or z.zip.getinfo(name + ".npy").file_size < 2 ** 20}
        if mmap:
            out.update(_mapped_members(path, set(out)))
        return out
    except Exception as exc:  # noqa: BLE001 - any failure to read the archive means it is unusable
        discard(path, what, _unreadable(exc), REBUILDING)
        return None


#: Names another folder for the reusable training caches than ``~/.orbitai/cache``.
CACHE_ENV = "ORBITAI_CACHE"


def cache_folder(kind: str) -> Path:
    """The folder of one kind of reusable training cache (``synth-heads``, ...): ``~/.orbitai/cache/<kind>`` or
    ``$ORBITAI_CACHE/<kind>``, outside any checkout; every file in it is checksummed and named by the digest of
    what made it, so any run on this machine may reuse it and a stale one is never read."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return (Path(env).expanduser() if env else Path.home() / ".orbitai" / "cache") / kind
