"""Ctrl-C during a training whose batches come from prefetch workers (`orbitai.training.prefetch`): SIGINT to the
whole process group (a terminal's Ctrl-C, ``pkill -INT -f`` with the command line: the parent and its forked
workers) ends the command with 130 and leaves no worker behind.

Seen twice: the command said "cancelled" and ended, while a forked worker (the same command line, reparented to
init) stayed for good in its exit, joining the thread that fed its result queue, itself blocked writing a made batch
into a pipe nobody read. The fast case drives `batches_ahead` under the command's own cancel machinery
(`orbitai.progress.cancel_on_signals`, `orbitai.cli.stop_when_stuck`) with batches larger than a pipe; the slow one
cancels a real ``orbitai seg train`` after its first checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from test_cancel_commands import REPO, Run, _interruptible, alive, processes, progress

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc; forked workers")

#: A hang detector, not a performance bound: the fixed code ends in a few seconds.
HANG_S = 60

#: A trainer's loop as `orbitai.cli.main` runs it: batches of 8 MiB (larger than a pipe) made ahead by two workers
#: (who soon wait on the pipe, as the SV-net trainer's worker does) while the main thread "steps" in one library
#: call of more than `orbitai.cli.STUCK_S` (a sort in torch, which lets other threads run, like a network's step); a
#: cancel ends it with 130 as `orbitai.cli.entry` does. A Ctrl-C arrives mid-step, where Python cannot run its
#: handler, so `stop_when_stuck` ends the command from outside (``os._exit``): DataLoader's shut-down never runs.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import torch
    from orbitai.cli import stop_when_stuck
    from orbitai.progress import cancel_on_signals
    from orbitai.training.prefetch import batches_ahead

    def make(key):
        time.sleep(0.01)
        return np.full((2, 128, 128, 64), key, np.float32)

    try:
        with cancel_on_signals(), stop_when_stuck("prefetch: "):
            step = torch.rand(8_000_000)
            with batches_ahead(make, list(range(100000)), 0.5) as batches:
                for i, b in enumerate(batches):
                    if i == 3:
                        print("FLOWING", flush=True)
                    torch.sort(step)
    except KeyboardInterrupt:
        print("prefetch: cancelled", file=sys.stderr, flush=True)
        sys.exit(130)
""")


def group_left(group: int, timeout: float) -> list[str]:
    """The live processes of ``group`` once they are gone or ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while (left := [cmd or str(pid) for pid, (_, state, cmd) in processes(group=group).items() if state != "Z"]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_sigint_to_the_group_leaves_no_prefetch_worker(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", ORBITAI_PREFETCH_WORKERS="2",
               TMPDIR=str(tmp_path))
    err_file = tmp_path / "stderr.txt"   # a file: a worker left behind would hold a pipe open
    proc = subprocess.Popen([sys.executable, str(script)], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=err_file.open("w"), stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_interruptible)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "FLOWING" in line:
                break
        else:
            pytest.fail(f"the loop ended before its batches flowed: {proc.wait()} {err_file.read_text()}")
        workers = [p for p, (ppid, _, _) in processes(group=proc.pid).items() if ppid == proc.pid]
        assert len(workers) == 2, processes(group=proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=HANG_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the command did not end within {HANG_S} s of Ctrl-C")
        err = err_file.read_text()
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == ["prefetch: cancelled"], err
        left = group_left(proc.pid, HANG_S)
        assert not left, ("prefetch workers were left running after the command ended", left)
        assert not [p for p in workers if alive(p)]
    finally:
        with contextlib.suppress(ProcessLookupError):   # a hang: nothing of it left for the next test
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow  # one SV-net epoch on CPU (a few minutes on a loaded 2-core machine)
def test_seg_train_ctrl_c_after_a_checkpoint_ends_and_leaves_no_worker(tmp_path):
    """``orbitai seg train`` (batches from `batches_ahead`), Ctrl-C to its group after the first epoch's checkpoint:
    exit 130 with the one cancel line, the checkpoint kept, and nothing left in the group (no prefetch worker)."""
    from orbitai.phantoms.cohort import write_cohort

    cohort, run_dir, tmpdir = tmp_path / "seg", tmp_path / "run", tmp_path / "tmp"
    write_cohort("orbit-ct", 2, 0, cohort, montage_cases=0)
    run_dir.mkdir()
    tmpdir.mkdir()
    run = Run.start(["seg", "train", "--manifest", str(cohort / "manifest.csv"), "--config", "svnet-demo-ct",
                     "--epochs", "50", "--out", "B", "--device", "cpu"], run_dir, tmpdir)
    run.wait_for("the first epoch's checkpoint", lambda: progress(r"^PROGRESS \d+/\d+ epoch 2/50")(run, run_dir),
                 timeout=1200)
    assert [p for p, (ppid, _, _) in processes(group=run.proc.pid).items() if ppid == run.proc.pid], \
        "no prefetch worker to cancel"
    os.killpg(run.proc.pid, signal.SIGINT)
    err = run.finish(timeout=HANG_S)
    assert run.proc.returncode == 130 and err == ["orbitai seg train: cancelled"], err
    assert any("kept the checkpoint .B-training/checkpoint.pt" in line for line in run.stdout), run.stdout[-3:]
    assert (run_dir / ".B-training" / "checkpoint.pt").is_file()
    left = group_left(run.proc.pid, HANG_S)
    if left:
        os.killpg(run.proc.pid, signal.SIGKILL)
    assert not left, ("processes were left in the command's process group", left)
