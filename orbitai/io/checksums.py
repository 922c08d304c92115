"""SHA-256 of files and inputs: what bundles record for their files and what cached tables record to name
the inputs they were computed from."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

__all__ = ["sha256_file", "sha256_input"]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_INPUT_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()


def sha256_input(path: str | os.PathLike) -> str:
    """The SHA-256 of an input (a file: :func:`sha256_file`; a folder such as a DICOM series: of its files'
    relative names and digests), what cached and precomputed tables record to name the files they were
    computed from. Remembered while the file is unchanged (same inode, size, modification and change
    times), so that a command checking an input twice reads it once; a file changed in the last two
    seconds (within the resolution of file times) is hashed every time."""
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f"{f.relative_to(p).as_posix()}\0{sha256_input(f)}\n".encode())
        return h.hexdigest()
    st = p.stat()
    key = (str(p.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _DIGESTS_LOCK:
        hit = _INPUT_DIGESTS.get(key)
    if hit is not None:
        return hit
    digest = sha256_file(p)
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > 2_000_000_000:
        with _DIGESTS_LOCK:
            _INPUT_DIGESTS[key] = digest
    return digest
