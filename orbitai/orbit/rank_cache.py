"""What "Which scan next" already knows (issue 81.8): a scan's ranking, kept once computed, so that ranking again
after a correction (the annotator's loop: rank, correct the first, mark it finished, rank again) segments only the
scans it has not seen. Profiled on a whole-head T2 (2 busy cores): 22-37 s a scan, all but 2-3 s in the network (the
coarse orbit search, then the fine pass); the model is loaded once per ranking, so the network runs are the time.

A ranking is kept under ``~/.orbitai/cache/rank`` (`orbitai.training.checkpoint.cache_folder`), one small JSON file
named by the digest of everything it depends on: the scan's voxels, type and grid, the model's weights (their
SHA-256 in its bundle), the ranking's options and `VERSION`. A changed scan, model or rule gives another name, so a
stale ranking is never read; an unreadable file is ignored (ranked again and written anew).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

import numpy as np

from orbitai.io import Volume
from orbitai.staging import strict_json
from orbitai.training.checkpoint import cache_folder

__all__ = ["VERSION", "ranking_key", "cached_ranking", "keep_ranking"]

#: Raised whenever what a ranking holds or how it is computed changes.
VERSION = 1
#: The fields of a kept ranking (`orbitai.orbit.rank.Ranked` less the case and file, which are the caller's).
FIELDS = ("score", "implausible", "structures", "mean_confidence", "note")


def ranking_key(vol: Volume, weights_sha256: str, options: dict[str, Any]) -> Optional[str]:
    """The digest naming the ranking of ``vol`` by the model whose weights have ``weights_sha256`` with ``options``
    (JSON-able); None without the weights' digest (nothing is kept then)."""
    if not weights_sha256:
        return None
    a = np.ascontiguousarray(vol.array)
    h = hashlib.sha256(json.dumps({"version": VERSION, "weights": weights_sha256, "options": options,
                                   "shape": list(a.shape), "dtype": a.dtype.str,
                                   "grid": np.round(vol.ijk_to_ras(), 6).tolist()}, sort_keys=True).encode())
    h.update(a.data.cast("B") if a.size else b"")
    return h.hexdigest()[:40]


def cached_ranking(key: Optional[str]) -> Optional[dict[str, Any]]:
    """The kept ranking named ``key`` (`FIELDS`), or None (none kept, unreadable, or no key)."""
    if key is None:
        return None
    try:
        found = json.loads((cache_folder("rank") / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and set(found) == set(FIELDS) else None


def keep_ranking(key: Optional[str], fields: dict[str, Any]) -> None:
    """Keep ``fields`` (`FIELDS`) as the ranking named ``key``; a folder that cannot be written keeps nothing."""
    if key is None or any(isinstance(v, float) and not np.isfinite(v) for v in fields.values()):
        return          # a score that could not be computed is computed again, never read back as null
    path = cache_folder("rank") / f"{key}.json"
    tmp = path.with_name(f"{key}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(strict_json({k: fields[k] for k in FIELDS}, indent=None), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
