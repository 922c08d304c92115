"""Store the bundled models' weights in half precision (issue 64: the development tree's weights halved).

    python scripts/store_half_precision.py            # every bundle in orbitai/resources/models (Makefile: half-precision)
    python scripts/store_half_precision.py --check    # exit 1 when a bundle's weights are float32 without a reason

Each bundle's float32 tensors are written as float16 (`orbitai.bundle.core.half_precision_state`; a tensor float16
cannot hold stays float32), its ``weights_sha256`` updated and ``weights_precision`` set. A bundle listed in
`KEEP_FLOAT32` keeps float32, with its reason written into its metadata. Loading casts the weights back to the
network's float32, so only storage changes; `benchmarks/bench_half_precision.py` measures what that does to the
outputs of the 8 phantom predictions. Run it after re-training a bundled model (the Makefile's model targets write
float32), then ``scripts/write_registry.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orbitai.bundle.core import BUILTIN_DIR, METADATA, WEIGHTS, half_precision_state, load_bundle
from orbitai.io.checksums import sha256_file
from orbitai.staging import strict_json, write_text_atomic

#: Bundles whose weights stay float32, and why (written to their metadata as ``weights_precision_reason``).
KEEP_FLOAT32: dict[str, str] = {}


def convert(folder: Path) -> tuple[int, int, list[str]]:
    """Rewrite ``folder``'s weights in float16; returns (bytes before, bytes after, tensors kept in float32)."""
    import torch

    bundle = load_bundle(folder)
    before = bundle.weights_path.stat().st_size
    state, kept = half_precision_state(bundle.load_state_dict())      # checksum verified first
    fd, tmp = tempfile.mkstemp(prefix=f".{WEIGHTS}-", dir=folder)
    os.close(fd)
    try:
        torch.save(state, tmp)
        meta = {**bundle.metadata, "weights_sha256": sha256_file(tmp), "weights_precision": "float16"}
        meta.pop("weights_precision_reason", None)
        os.replace(tmp, bundle.weights_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    write_text_atomic(folder / METADATA, strict_json(meta))
    return before, bundle.weights_path.stat().st_size, kept


def precision_of(folder: Path) -> str:
    return str(json.loads((folder / METADATA).read_text()).get("weights_precision", "float32"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=BUILTIN_DIR, help="the bundles' folder")
    ap.add_argument("--check", action="store_true", help="only check that every bundle is stored as intended")
    args = ap.parse_args(argv)
    folders = sorted(m.parent for m in args.models.glob(f"*/{METADATA}") if (m.parent / WEIGHTS).is_file())
    wrong = []
    for folder in folders:
        want = "float32" if folder.name in KEEP_FLOAT32 else "float16"
        if args.check:
            stored = precision_of(folder)
            if stored != want:
                wrong.append(f"{folder.name} is {stored}, should be {want}")
            continue
        if want == "float32":
            meta = {**json.loads((folder / METADATA).read_text()), "weights_precision": "float32",
                    "weights_precision_reason": KEEP_FLOAT32[folder.name]}
            write_text_atomic(folder / METADATA, strict_json(meta))
            print(f"{folder.name}: kept float32 ({KEEP_FLOAT32[folder.name]})")
        elif precision_of(folder) == "float16":
            print(f"{folder.name}: already float16")
        else:
            before, after, kept = convert(folder)
            print(f"{folder.name}: {before / 2**20:.2f} -> {after / 2**20:.2f} MiB"
                  + (f" ({len(kept)} tensors kept float32: {', '.join(kept[:3])})" if kept else ""))
    if wrong:
        print("; ".join(wrong) + ": run scripts/store_half_precision.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
