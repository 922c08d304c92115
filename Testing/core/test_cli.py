"""The orbitai command line: help, info, errors as one clear line."""
from __future__ import annotations

import subprocess
import sys

from orbitai.cli import main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "info" in out and "demo" in out


def test_info_runs(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "orbitai", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "orbitai" in res.stdout
