"""``python -m orbitai``: the command line as a process of its own (`orbitai.cli.entry`)."""
from orbitai.cli import entry

entry()
