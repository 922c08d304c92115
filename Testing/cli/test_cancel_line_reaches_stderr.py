"""A cancel stopped by the stuck-command watcher while a Dask cluster starts (standard error on the null device for
the cluster's processes) still says its line on the real standard error: it went to the null device and two
fresh-clone runs saw a cancelled command end with exit 130 and no line."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import orbitai.training.launch
from orbitai import cli
from orbitai.progress import stderr_to_null
with stderr_to_null():
    print("hidden", file=__import__("sys").stderr, flush=True)
    cli._say_cancelled("orbitai ivgc features: ", from_watcher=True)
    cli._say_cancelled("orbitai ivgc features: ")          # said once
"""


def test_the_watchers_cancel_line_reaches_the_real_stderr_while_it_is_on_the_null_device():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines() == ["orbitai ivgc features: cancelled"]
