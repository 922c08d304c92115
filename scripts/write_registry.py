"""Write ``orbitai/resources/registry.json`` from the bundles and data sets in the tree (never edit it by hand).

    python scripts/write_registry.py                       # the registry, from orbitai/resources/models and orbitai/data
    python scripts/write_registry.py --archives DIR        # also the release assets (one .tar.gz per entry) in DIR
    python scripts/write_registry.py --repository URL      # download addresses from another repository address
    python scripts/write_registry.py --check               # exit 1 when the registry does not match the tree

Each archive is made deterministically (`orbitai.bundle.registry.write_archive`), so the SHA-256 written here is
the SHA-256 of the asset the release uploads.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orbitai.bundle import registry
from orbitai.staging import strict_json, write_text_atomic


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=registry.REGISTRY_PATH, help="the registry file to write")
    ap.add_argument("--archives", type=Path, help="also write each entry's archive into this folder")
    ap.add_argument("--repository", default=registry.REPOSITORY_URL, help="the repository address of the URLs")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = ap.parse_args(argv)
    entries = [registry.make_entry(folder, kind, args.repository, args.archives)
               for folder, kind in registry.tree_folders()]
    data = registry.registry_json(entries, args.repository)
    if args.check:
        old = json.loads(args.out.read_text()) if args.out.is_file() else None
        if old != data:
            print(f"{args.out} does not match the bundles and data sets in the tree; run scripts/write_registry.py",
                  file=sys.stderr)
            return 1
        print(f"{args.out}: {len(entries)} entries match the tree")
        return 0
    write_text_atomic(args.out, strict_json(data))
    print(f"wrote {args.out}: {len(entries)} entries"
          + (f"; archives in {args.archives}" if args.archives else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
