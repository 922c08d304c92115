"""The command line imports only the module of the command that runs (issue 45): ``orbitai --help`` loads none of
them, ``orbitai tao ...`` only ``orbitai.tao.cli``; every command is listed with its help either way."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from orbitai.cli import COMMANDS, build_parser, requested_command

SCRIPT = """
import json, sys
from orbitai.cli import COMMANDS, build_parser
build_parser(only=sys.argv[1])
modules = {m for m, _help in COMMANDS.values()}
print(json.dumps({"commands": sorted(m for m in modules if m in sys.modules), "torch": "torch" in sys.modules}))
"""


def _loaded(only: str) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, only], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_help_loads_no_command_module_and_no_torch():
    assert _loaded("") == {"commands": [], "torch": False}


@pytest.mark.parametrize("name", ["tao", "dicom"])
def test_a_command_loads_only_its_own_module(name):
    assert _loaded(name)["commands"] == [COMMANDS[name][0]]


def test_every_command_is_listed_with_its_modules_help_whichever_is_loaded(capsys):
    full = build_parser()
    lazy = build_parser(only="")
    for parser in (full, lazy):
        sub = next(a for a in parser._actions if a.dest == "command")
        assert {c.dest: c.help for c in sub._choices_actions} == {name: h for name, (_m, h) in COMMANDS.items()}


@pytest.mark.parametrize("argv, name", [(["--verbose", "seg", "predict"], "seg"), (["--help"], None), ([], None),
                                        (["nonsense"], None), (["--debug", "web", "--help"], "web")])
def test_the_command_is_the_first_word(argv, name):
    assert requested_command(argv) == name
