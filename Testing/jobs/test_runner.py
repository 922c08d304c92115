"""orbitai.jobs.child: progress streaming, hand-over on success only, cancel kills the child."""
from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from orbitai.jobs.child import JobError, OrbitaiJob

HERE = Path(__file__).resolve().parent


def job(args, dest=None):
    return OrbitaiJob(args, dest=dest, module="child_job", env={"PYTHONPATH": str(HERE)})


def test_progress_and_handover(tmp_path):
    events = []
    res = job(["3", "0.01", "{out}"], dest=tmp_path / "out").run(lambda d, t, m: events.append((d, t, m)))
    assert events == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part0.txt", "part1.txt", "part2.txt"]
    assert res.ok and "all done" in res.stdout


def test_failure_discards_outputs_and_reports_stderr(tmp_path):
    j = job(["2", "0.01", "{out}", "fail"], dest=tmp_path / "out")
    with pytest.raises(JobError, match="exit 3.*bad input"):
        j.run()
    assert not (tmp_path / "out").exists()
    assert not j.tmp.exists()


def test_cancel_kills_child_and_leaves_nothing(tmp_path):
    cancel = threading.Event()
    j = job(["200", "0.05", "{out}"], dest=tmp_path / "out")
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(JobError, match="Cancelled"):
        j.run(cancel=cancel)
    assert j.proc.poll() is not None
    assert not (tmp_path / "out").exists() and not j.tmp.exists()


def test_real_cli_child(tmp_path):
    res = OrbitaiJob(["info"]).run()
    assert any(line.startswith("orbitai") for line in res.stdout)


def test_interrupted_run_kills_child_and_removes_its_folder(tmp_path):
    """Ctrl-C (or SIGTERM, which orbitai.cli turns into KeyboardInterrupt) while ``run`` waits: the
    child is stopped, not orphaned, and its temporary folder is removed."""
    import _thread

    j = job(["200", "0.05", "{out}"], dest=tmp_path / "out")
    # interrupt_main does nothing while SIGINT is ignored (pytest started in the background by a
    # non-interactive shell): give SIGINT Python's handler for the test's duration.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = threading.Timer(0.5, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            j.run()
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert j.proc is not None and j.proc.poll() is not None
    assert not j.tmp.exists()
    assert not (tmp_path / "out").exists()


def test_the_child_finds_this_orbitai_first_and_no_folder_inside_it():
    """The child's PYTHONPATH starts with the folder holding this very orbitai package (e.g. the extension's copy),
    never a folder inside it (where orbitai/radiomics/ would hide pyradiomics' ``radiomics``)."""
    import os
    from pathlib import Path

    import orbitai
    from orbitai.jobs.process import child_env

    first = Path(child_env()["PYTHONPATH"].split(os.pathsep)[0])
    assert (first / "orbitai" / "__init__.py").resolve() == Path(orbitai.__file__).resolve()
