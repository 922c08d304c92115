"""`orbitai.training.prefetch.forked_each`: the forked processes that build head pools and lesion phantoms."""
from __future__ import annotations

import os
import time

import psutil
import pytest

from orbitai.training.prefetch import fork_available, forked_each

pytestmark = pytest.mark.skipif(not fork_available(), reason="no fork on this platform")


def _square(x: int) -> int:
    return x * x


def _slow(x: int) -> int:
    time.sleep(x)
    return x


def _fail(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad job {x}")
    return x


def _die(x: int) -> int:
    if x == 1:
        os._exit(3)
    return x


def _ours() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE}


def test_every_job_is_answered_once_with_more_jobs_than_workers():
    got: list[int] = []
    forked_each(_square, list(range(7)), 2, got.append)
    assert sorted(got) == [x * x for x in range(7)]


def test_an_error_in_a_job_is_raised_here_with_its_type_and_no_process_is_left():
    before = _ours()
    with pytest.raises(ValueError, match="bad job 2"):
        forked_each(_fail, [1, 2, 3, 4], 2, lambda v: None)
    assert _ours() - before == set()


def test_a_process_that_dies_without_its_answer_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="exit code 3"):
        forked_each(_die, [1, 0], 2, lambda v: None)


def test_a_cancel_in_then_kills_the_processes_still_running_at_once():
    """The CI hang: a cancel while a multiprocessing.Pool's other worker was answering waited forever in
    Pool.terminate. Here the first answer's handler raises; the endless job is killed, not waited for."""
    before = _ours()

    def stop(v: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        forked_each(_slow, [0, 10**6, 10**6], 2, stop)     # waited for, the job would outlast the test's timeout
    assert _ours() - before == set()


def test_many_cancels_in_a_row_never_hang():
    """A cancel at every point of a round of answers (the race behind the hang), 30 times over."""
    for k in range(30):
        seen = []

        def stop(v: int, k: int = k, seen: list = seen) -> None:
            seen.append(v)
            if len(seen) == 1 + k % 3:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            forked_each(_square, list(range(6)), 2, stop)
