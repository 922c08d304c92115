"""``python -m benchmarks [name ...]``: run every ``bench_*.py`` (or the named ones)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
names = sys.argv[1:] or sorted(p.stem for p in here.glob("bench_*.py"))
failed = []
for name in names:
    mod = name if name.startswith("bench_") else f"bench_{name}"
    print(f"=== {mod}")
    try:
        importlib.import_module(f"benchmarks.{mod}").main()
    except Exception as exc:  # noqa: BLE001 - report and go on with the other benchmarks
        print(f"{mod} FAILED: {exc!r}")
        failed.append(mod)
sys.exit(1 if failed else 0)
