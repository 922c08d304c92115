"""A stand-in child for runner tests: ``python -m child_job STEPS SLEEP OUTDIR [fail]``."""
import sys
import time
from pathlib import Path

from orbitai.progress import emit

steps, sleep, out = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
for i in range(steps):
    time.sleep(sleep)
    (out / f"part{i}.txt").write_text(str(i))
    emit(i + 1, steps, f"step {i + 1}")
if len(sys.argv) > 4:
    print("something went wrong: bad input", file=sys.stderr)
    sys.exit(3)
print("all done")
