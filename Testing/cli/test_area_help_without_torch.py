"""``orbitai seg|tao|ivgc|neuro --help`` (and a sub-command's ``--help``) import no torch (issue 63 item 3): they
used to load it (5-6 s) through ``orbitai.training.launch``, which every area's command line imports."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

# the command line as ``python -m orbitai`` runs it; at its exit (argparse's --help exits) say what was imported
SCRIPT = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("MODULES " + json.dumps(
    {"torch": sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")),
     "launch": "orbitai.training.launch" in sys.modules}) + "\\n"))
sys.argv = ["orbitai"] + sys.argv[1:]
import runpy
runpy.run_module("orbitai", run_name="__main__")
"""


def _help(*words: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *words, "--help"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "usage: orbitai" in done.stdout
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("MODULES "))
    return json.loads(line[len("MODULES "):])


@pytest.mark.parametrize("words", [("seg",), ("tao",), ("ivgc",), ("neuro",), ("seg", "predict"),
                                   ("neuro", "lesions")])
def test_area_help_imports_no_torch(words):
    loaded = _help(*words)
    assert loaded["launch"], "the area's command line no longer imports orbitai.training.launch: test is moot"
    assert loaded["torch"] == []
