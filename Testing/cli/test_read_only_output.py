"""A read-only ``--out`` (#14): every writing command refuses it before any work, with exit 2, one line
naming the folder and what to do, and writes nothing.

Permissions do not stop root, and the suite may run as root (containers): then each command runs as the
unprivileged user ``nobody`` (uid/gid 65534, no groups, no capabilities), which the read-only folder does
stop. It is started through ``setpriv`` (util-linux) rather than ``subprocess``'s ``user=``: this venv's
interpreter lies under root's private home (a pyenv build), which ``nobody`` cannot exec by itself;
``setpriv`` execs it, then the process runs with no privilege at all (the fixture checks that it is user
65534 and is refused a write into the read-only folder). The inputs lie in a world-readable folder of
their own, since pytest's ``tmp_path`` is private to its user. Where neither works the module is skipped,
saying why.

The commands run one after the other in one such process (`Commands`: ``orbitai.cli.main`` on each, with what it
writes to its stdout and stderr file descriptors caught), not a new interpreter each: the refusal is the command's,
not the process's, and each interpreter imported torch again (3-5 s a command on 2 cores).
"""
from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from orbitai.io import Volume, write_volume

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _as_user() -> list[str]:
    """The command prefix that runs a command as a user whom permissions stop (none when not root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without util-linux's setpriv to drop to an unprivileged user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def _env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "TMPDIR")}
    env.update(PYTHONPATH=str(REPO), HOME=str(cwd), TMPDIR=str(cwd / "tmp"), MPLCONFIGDIR=str(cwd / "tmp"))
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_as_user(), sys.executable, *args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


#: Runs as the test's user in the inputs' folder: reads one JSON list of arguments a line, runs ``orbitai ARGS``
#: (`orbitai.cli.main`) with file descriptors 1 and 2 on files of their own, answers one JSON line (exit code,
#: stdout, stderr) on the stdout it started with. An exception out of ``main`` is a traceback and exit 1, as the
#: process's would be.
DRIVER = """import json, os, sys, tempfile, traceback
from orbitai.cli import main
answers = os.fdopen(os.dup(1), "w")
for line in sys.stdin:
    args = json.loads(line)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2); os.close(saved[0]); os.close(saved[1])
        out.seek(0); err.seek(0)
        answers.write(json.dumps({"code": code, "stdout": out.read().decode(errors="replace"),
                                  "stderr": err.read().decode(errors="replace")}) + "\\n")
        answers.flush()
"""


class Commands:
    """One interpreter of the test's user (`DRIVER`) that runs the commands given to `run` in folder ``cwd``."""

    def __init__(self, cwd: Path) -> None:
        self.proc = subprocess.Popen([*_as_user(), sys.executable, "-c", DRIVER], cwd=cwd, env=_env(cwd), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, args: list[str], timeout_s: float = 300) -> subprocess.CompletedProcess:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"orbitai {' '.join(args)}: no answer within {timeout_s:.0f} s (the runner's stderr: "
                        f"{self.close()[-2000:]})")
        answer = json.loads(line)
        return subprocess.CompletedProcess(["orbitai", *args], answer["code"], answer["stdout"], answer["stderr"])

    def close(self) -> str:
        """Stop the runner; what it wrote to its stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.communicate()[1] or ""


#: Run as the test's user: who it is, and whether a write into the read-only folder is refused.
PROBE = """import os, sys
try:
    open("ro/probe", "w")
except PermissionError:
    print(os.geteuid(), "refused")
else:
    print(os.geteuid(), "written")
import orbitai.cli
"""


@pytest.fixture(scope="module")
def inputs() -> Iterator[Path]:
    """A world-readable folder with tiny inputs, a writable ``tmp`` and the read-only folder ``ro``."""
    d = Path(tempfile.mkdtemp(prefix="orbitai-readonly-"))
    try:
        d.chmod(0o755)
        write_volume(Volume(np.zeros((16, 16, 16), np.float32)), d / "img.nrrd")
        write_volume(Volume(np.zeros((16, 16, 16), np.uint8)), d / "seg.nrrd")
        (d / "m.csv").write_text("case_id,image,segmentation,label\n"
                                 + "".join(f"c{i},img.nrrd,seg.nrrd,{i % 2}\n" for i in range(4)))
        for sub in ("tmp", "ro", "ro_existing"):
            (d / sub).mkdir()
        (d / "tmp").chmod(0o777)
        (d / "ro").chmod(0o555)
        (d / "ro_existing").chmod(0o555)
        probe = _run(["-c", PROBE], d)
        if probe.returncode != 0:
            pytest.skip(f"an unprivileged user cannot run {sys.executable} with orbitai here: {probe.stderr[-300:]}")
        assert probe.stdout.split() == [str(NOBODY if os.geteuid() == 0 else os.geteuid()), "refused"], probe.stdout
        yield d
    finally:
        for sub in ("ro", "ro_existing"):
            if (d / sub).exists():
                (d / sub).chmod(0o755)
        shutil.rmtree(d, ignore_errors=True)


#: (command id, arguments; {out} is the read-only target)
COMMANDS = [
    ("phantom", ["phantom", "tao", "--n", "1", "--montage-cases", "0", "--out", "{out}"]),
    ("demo", ["demo", "--out", "{out}", "--device", "cpu"]),
    ("seg-predict", ["seg", "predict", "img.nrrd", "--out", "{out}", "--device", "cpu"]),
    ("seg-evaluate", ["seg", "evaluate", "--manifest", "m.csv", "--model", "orbit_svnet_ct_demo", "--out", "{out}"]),
    ("seg-train", ["seg", "train", "--manifest", "m.csv", "--config", "svnet-demo-ct", "--out", "{out}"]),
    ("tao-predict", ["tao", "predict", "img.nrrd", "--segmentation", "seg.nrrd", "--out", "{out}"]),
    ("tao-evaluate", ["tao", "evaluate", "--manifest", "m.csv", "--model", "B", "--out", "{out}"]),
    ("tao-train", ["tao", "train", "--manifest", "m.csv", "--holdout", "0", "--out", "{out}"]),
    ("tao-cv", ["tao", "cv", "--manifest", "m.csv", "--folds", "2", "--out", "{out}"]),
    ("neuro-lesions", ["neuro", "lesions", "img.nrrd", "--out", "{out}"]),
    ("neuro-train", ["neuro", "train", "--manifest", "m.csv", "--holdout", "0", "--out", "{out}"]),
]

#: Commands whose --out is a file (its folder is the read-only one).
FILE_COMMANDS = [
    ("ivgc-features", ["ivgc", "features", "--manifest", "m.csv", "--workers", "0", "--out", "{out}"]),
    ("ivgc-select", ["ivgc", "select", "--features", "f.csv", "--manifest", "m.csv", "--out", "{out}"]),
]


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if "tmp" not in p.relative_to(d).parts)


def _cases():
    """A new folder in a read-only one for every command; an existing read-only folder for the commands that
    write into it (a bundle replaces its folder as a whole: only the folder beside it counts), two of them
    by default (the same check), the others under ``-m slow``."""
    for name, args in COMMANDS:
        yield pytest.param(args, "ro/new", id=f"{name}-new-folder-in-read-only")
        if name not in ("seg-train", "tao-train", "neuro-train"):
            marks = [] if name in ("phantom", "seg-predict") else [pytest.mark.slow]
            yield pytest.param(args, "ro_existing", id=f"{name}-read-only-folder", marks=marks)
    for name, args in FILE_COMMANDS:
        yield pytest.param(args, "ro/out.csv", id=f"{name}-file-in-read-only-folder")


@pytest.fixture(scope="module")
def commands(inputs) -> Iterator[Commands]:
    runner = Commands(inputs)
    yield runner
    runner.close()


@pytest.mark.parametrize("args, target", list(_cases()))
def test_read_only_out_is_refused_before_any_work(inputs, commands, args, target):
    before = _listing(inputs)
    res = commands.run([a.replace("{out}", target) for a in args])
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    where = inputs / target.split("/")[0]
    assert f"{target} cannot be written: no permission to write in {where};" in lines[0], lines[0]
    assert "choose another --out or change that folder's permissions" in lines[0]
    assert _listing(inputs) == before, "something was written"
