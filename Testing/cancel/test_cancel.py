"""Cancel and failure leave nothing behind (#14), the particular moments: SIGTERM while ``tao predict``
writes leaves no hidden work folder; an interrupted or disk-full ``orbitai phantom`` leaves no cases
without a manifest; a failing ``demo`` leaves no file. (SIGINT and SIGTERM while every command works,
``demo`` and its child included: test_cancel_commands.py.)

Each test runs the real command in its own session with a fresh ``TMPDIR`` and checks, after the
signal, the exit status, the one stderr line, the processes left and every folder involved.
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux signals and resource limits")

REPO = Path(__file__).resolve().parents[2]


def _start(args: list[str], cwd: Path, tmpdir: Path, preexec_fn: Optional[Callable[[], None]] = None) -> subprocess.Popen:
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "orbitai", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=preexec_fn)


def _wait_for(what: str, cond: Callable[[], object], proc: subprocess.Popen, timeout: float = 90,
              step: float = 0.005) -> object:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = cond()
        if found:
            return found
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}:\n{out[-2000:]}\n{err[-2000:]}")
        time.sleep(step)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def _finish(proc: subprocess.Popen, timeout: Optional[float] = 20) -> list[str]:
    """The command's error lines once it ends; ``timeout``: how long it may take after a signal (None: a command that
    runs to its end unsignalled, left to the suite's hang guard)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the command did not stop within {timeout} s of the signal")
    return err.strip().splitlines()


@pytest.fixture()
def work(tmp_path: Path) -> tuple[Path, Path]:
    """(a folder to run in, an empty TMPDIR for the command)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "tmp").mkdir()
    return tmp_path / "run", tmp_path / "tmp"


@pytest.mark.slow  # about 15 s: the TAO maps are computed before the result is written
def test_sigterm_while_tao_predict_writes_leaves_no_hidden_folder(work):
    from orbitai.io import write_volume
    from orbitai.phantoms.cohort import make_case

    run, tmpdir = work
    image = write_volume(make_case("tao", 0, 0, 1).image, run.parent / "tao.nrrd")
    proc = _start(["tao", "predict", str(image), "--out", "O", "--figure"], run, tmpdir)
    _wait_for("the result being written", lambda: any(p.name.startswith(".O-") for p in run.iterdir()), proc,
              step=0.002)
    proc.send_signal(signal.SIGTERM)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert err == ["orbitai tao predict: cancelled"]
    assert list(run.iterdir()) == [], "a hidden work folder or a half result was left"
    assert list(tmpdir.iterdir()) == []


def test_interrupted_phantom_cohort_leaves_nothing(work):
    run, tmpdir = work
    proc = _start(["phantom", "orbit-ct", "--n", "50", "--out", "C"], run, tmpdir)

    def one_case_written() -> bool:
        return any(p.name.startswith(".C-") and any((p / "images").glob("*.nrrd")) for p in run.iterdir())

    _wait_for("the first case written", one_case_written, proc, step=0.02)
    proc.send_signal(signal.SIGTERM)
    err = _finish(proc)
    assert proc.returncode == 130, err
    assert err == ["orbitai phantom: cancelled"]
    assert list(run.iterdir()) == [], "cases without a manifest were left"
    assert list(tmpdir.iterdir()) == []


def _small_disk() -> None:
    """A 'disk' that takes 1 MB per file: larger writes fail with EFBIG (Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))


def test_phantom_cohort_on_a_full_disk_leaves_nothing(work):
    run, tmpdir = work
    proc = _start(["phantom", "orbit-ct", "--n", "2", "--out", "C"], run, tmpdir, preexec_fn=_small_disk)
    err = _finish(proc, timeout=None)
    assert proc.returncode == 1, err
    assert len(err) == 1 and err[0].startswith(f"orbitai phantom: error: the disk is full while writing {run}/C/images/"), err
    assert err[0].endswith("(File too large); free space and run again"), err
    assert list(run.iterdir()) == [], "a partial cohort was left"


def test_phantom_case_count_is_bounded_and_checked_before_any_work(tmp_path, capsys):
    from orbitai.cli import main
    from orbitai.phantoms.cli import MAX_CASES

    for args, message in [(["--n", str(MAX_CASES + 1)], f"--n must be at most {MAX_CASES}"),
                          (["--seed", "-1"], "--seed must be 0 or more"),
                          (["--montage-cases", "-1"], "--montage-cases must be 0 or more")]:
        assert main(["phantom", "tao", *args, "--out", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_new_cohort_replaces_the_previous_one(tmp_path):
    from orbitai.cli import main

    out = tmp_path / "c"
    (out).mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["phantom", "tao", "--n", "2", "--out", str(out)]) == 0
    assert main(["phantom", "tao", "--n", "1", "--montage-cases", "0", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["images", "manifest.csv", "notes.txt", "segmentations"]
    assert [p.name for p in (out / "images").iterdir()] == ["tao_0000.nrrd"]
    assert len((out / "manifest.csv").read_text().splitlines()) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_failing_demo_leaves_no_file(work):
    """A demo that fails (here: a full disk while it writes its phantom) leaves neither X nor its work folder."""
    run, tmpdir = work
    proc = _start(["demo", "--out", "X"], run, tmpdir, preexec_fn=_small_disk)
    err = _finish(proc, timeout=None)
    assert proc.returncode == 1, err
    assert len(err) == 1 and err[0].startswith(f"orbitai demo: error: the disk is full while writing {run}/X/"), err
    assert err[0].endswith("(File too large); free space and run again"), err
    assert list(run.iterdir()) == [], "the failed demo left files"
    assert list(tmpdir.iterdir()) == []
