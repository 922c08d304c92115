"""Ways to damage a file on disk, shared by the tests of checksummed checkpoints and caches.

Plain functions (no pytest), so the in-Slicer self-tests can use them as well.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from orbitai.bundle import sha256_file
from orbitai.training.checkpoint import sidecar

__all__ = ["flip_bytes", "truncate", "drop_checksum", "pickle_payload_with_valid_checksum", "PWNED"]

#: The file a refused pickle payload would have created, beside the damaged file.
PWNED = "PWNED"


def flip_bytes(path: Path, count: int = 64) -> None:
    """Invert ``count`` bytes in the middle of the file (size unchanged)."""
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, min(len(data), len(data) // 2 + count)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut the file to the fraction ``keep`` of its size."""
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def drop_checksum(path: Path) -> None:
    """Remove the file's checksum sidecar (as a file written by an older version has none)."""
    sidecar(path).unlink()


class _Payload:
    """Unpickling this would create the file ``marker``: proof that a loader ran pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def pickle_payload_with_valid_checksum(path: Path, key: str = "model") -> None:
    """Replace the file by a pickle whose loading would create ``PWNED`` beside it, with a matching
    checksum sidecar, so only the loader's refusal of pickles can stop it."""
    path.write_bytes(pickle.dumps({key: _Payload(path.parent / PWNED), "epoch": 1}, protocol=2))
    sidecar(path).write_text(sha256_file(path) + "\n")
