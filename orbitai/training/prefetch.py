"""Training batches made ahead of the step by worker processes (issue 77: synthesis off the critical path).

Every trainer draws its batches from keys alone (the orbit trainer's (epoch, iteration), the lesion trainer's step):
each key seeds the generator that makes its batch, so a batch made by a worker is the very batch the training loop
would have made itself, and a resumed run the same as one run. :func:`prefetched` hands the keys to torch's own
``DataLoader`` (worker processes, bounded prefetch, ordered results, clean shut-down) and yields the batches in key
order while the network steps on the previous ones.

Workers are forked (they share the parent's read-only pools and caches without pickling them); where fork is not
available (macOS and Windows defaults) the batches are made in the loop as before. Each worker runs its numerical
libraries on one thread, as DataLoader workers do.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from typing import Any, Callable, Generator, Iterator, Sequence, TypeVar

import torch
from torch.utils.data import DataLoader, Dataset

from orbitai.errors import ConfigError

K = TypeVar("K")
B = TypeVar("B")

#: Environment override of the number of worker processes (0: make batches in the loop).
WORKERS_ENV = "ORBITAI_PREFETCH_WORKERS"


def default_workers() -> int:
    """One worker per two cores, at least one (a 2-core machine: one worker beside the network's threads);
    ``ORBITAI_PREFETCH_WORKERS`` overrides."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            raise ConfigError(f"{WORKERS_ENV}={env!r}: give a whole number of worker processes (0: none).") from None
    return max(1, (os.cpu_count() or 2) // 2)


def core_split(synthesis_share: float, budget: int) -> tuple[int, int]:
    """(network threads, batch workers) for a trainer whose batch synthesis is ``synthesis_share`` of a step's CPU
    work, on ``budget`` cores: the network gets the cores its share of the work asks for (at least one), the workers
    twice the synthesis share (at least one; a worker with its queue full waits, so one too many costs little).
    Measured on 2 cores (``benchmarks/results/training_speed.json``): the lesion trainer (synthesis 0.46 of the work)
    steps 1.3x faster with 1 thread and 2 workers than with 2 threads and 1; the SV-nets (0.1) 1.3x slower. A fixed
    rule, not a timing: the same budget gives the same split, so a resumed run computes as the first did."""
    threads = min(budget, max(1, round(budget * (1.0 - synthesis_share))))
    return threads, max(1, math.ceil(2 * budget * synthesis_share))


@contextlib.contextmanager
def split_cores(synthesis_share: float) -> Iterator[int]:
    """Within the block torch steps on :func:`core_split`'s threads out of its current ones (the budget: ``--threads``
    or ``OMP_NUM_THREADS`` narrow it); yields the number of batch workers (``ORBITAI_PREFETCH_WORKERS`` overrides)."""
    budget = torch.get_num_threads()
    threads, workers = core_split(synthesis_share, budget)
    if os.environ.get(WORKERS_ENV, "").strip():
        threads, workers = budget, default_workers()
    torch.set_num_threads(threads)
    try:
        yield workers
    finally:
        torch.set_num_threads(budget)


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _Keyed(Dataset):
    """Item ``i``: ``make(keys[i])``."""

    def __init__(self, keys: Sequence[Any], make: Callable[[Any], Any]) -> None:
        self.keys, self.make = list(keys), make

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> Any:
        return self.make(self.keys[i])


def _as_is(batch: Any) -> Any:
    return batch


def one_thread(*_: Any) -> None:
    """A worker process's initialiser: its numerical libraries on one thread (its share of the cores), and the
    cancel signals back to their defaults: a forked worker inherits the command's cancel handler
    (`orbitai.progress.cancel_on_signals`), which made every worker that its pool ends (SIGTERM) print a
    ``KeyboardInterrupt`` traceback into the log; the command itself still cancels."""
    torch.set_num_threads(1)
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) not in (signal.SIG_IGN, None):
            signal.signal(sig, signal.SIG_DFL)


#: Linux ``prctl`` option: the signal a process gets when its parent ends.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Linux: this process is killed when ``parent`` ends (``prctl(PR_SET_PDEATHSIG, SIGKILL)``); elsewhere nothing.
    (Strictly: when the parent's thread that forked it ends; DataLoader forks from the thread that iterates, which
    outlives the loop.)"""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:   # the parent ended before the prctl: no signal will come
        os._exit(0)


def prefetch_worker(parent: int, worker_id: int) -> None:
    """A prefetch worker's initialiser: `one_thread`, SIGINT ignored, and (Linux) killed when ``parent`` ends.

    Why (a cancel left a worker behind for good, reparented to init): Ctrl-C in a terminal, like ``pkill -INT -f``
    with the command line, sends SIGINT to the workers too. A worker that took it left torch's worker loop at once,
    without the parent's "done" event, and so at its exit multiprocessing joined the thread feeding its result queue;
    that thread sat in a pipe write (a made batch, larger than the pipe, that the parent no longer read). Meanwhile
    the parent, in DataLoader's shut-down waiting for that worker (5 s), was stopped from outside by
    `orbitai.cli.stop_when_stuck` (``os._exit(130)``): it said "cancelled" and ended, the worker never terminated,
    blocked in its exit (three threads: two futex waits and one ``anon_pipe_write``). So only the parent handles a
    cancel: it ends the workers itself (the done event: a worker then exits without joining its feeder, and
    DataLoader terminates any that lingers); and should the parent end without that (``os._exit``, SIGKILL, a crash)
    the kernel kills the workers, which hold nothing but batches in memory."""
    one_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _close(it: Any) -> None:
    """Ends a DataLoader iterator's workers now (a loop left early), not at collection. However the shut-down ends
    (a second signal, DataLoader's SIGCHLD handler raising in it), no queue of the parent's is joined at exit:
    multiprocessing would otherwise wait there for a feeder thread writing into a pipe that no worker reads."""
    shutdown = getattr(it, "_shutdown_workers", None)
    try:
        if shutdown is not None:
            shutdown()
    finally:
        for q in [*getattr(it, "_index_queues", ()), getattr(it, "_worker_result_queue", None)]:
            if q is not None:
                with contextlib.suppress(Exception):
                    q.cancel_join_thread()
        for w in getattr(it, "_workers", ()):
            with contextlib.suppress(Exception):
                if w.is_alive():
                    w.kill()


def _forked_one(work: Callable[[K], B], job: K, answer: Any, parent: int) -> None:
    """A :func:`forked_each` process: ``work(job)`` on one thread, its answer (or its exception) sent back once."""
    one_thread()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    try:
        reply: tuple[str, Any] = ("ok", work(job))
    except BaseException as exc:   # noqa: BLE001 - handed to the parent, which raises it
        reply = ("error", exc)
    try:
        answer.send(reply)
    except Exception as exc:  # noqa: BLE001 - whatever failed to pickle (the answer, the exception): its words
        answer.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        answer.close()


def forked_each(work: Callable[[K], B], jobs: Sequence[K], workers: int, then: Callable[[B], None]) -> None:
    """``then(work(job))`` for every job, ``work`` run in a forked process of its own (one thread, SIGINT ignored,
    killed with this process), at most ``workers`` at a time; ``then`` runs here, in the order the jobs end. An
    exception in ``work`` is raised here; whatever ends the loop early (that, ``then`` raising, a cancel) kills the
    processes still running before it leaves. ``work``'s answers should be small: large results go to files.

    Written by hand rather than with ``multiprocessing.Pool``: every process here has a pipe of its own and shares no
    lock with another, whereas a Pool's workers share its result queue's lock, and ``Pool.terminate`` waits forever
    when it kills a worker that holds it (CI: a cancelled head build hung 20 minutes in ``_handle_tasks``)."""
    ctx = multiprocessing.get_context("fork")
    waiting = list(jobs)[::-1]
    live: dict[Any, Any] = {}           # the answer pipe's end -> its process
    try:
        while waiting or live:
            while waiting and len(live) < max(1, workers):
                ours, theirs = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_forked_one, args=(work, waiting.pop(), theirs, os.getpid()), daemon=True)
                proc.start()
                theirs.close()
                live[ours] = proc
            for ready in multiprocessing.connection.wait(list(live)):
                ours = ready  # type: ignore[assignment]   # one of live's pipe ends
                proc = live.pop(ours)
                try:
                    status, value = ours.recv()
                except EOFError:
                    proc.join()
                    raise RuntimeError(f"a worker process ended without its answer (exit code {proc.exitcode})"
                                       " - was it out of memory?") from None
                finally:
                    ours.close()
                proc.join()
                if status == "error":
                    raise value
                then(value)
    finally:
        for proc in live.values():
            proc.kill()
        for ours, proc in live.items():
            proc.join()
            ours.close()


def prefetched(make: Callable[[K], B], keys: Sequence[K], workers: int | None = None, depth: int = 2) -> Generator[B, None, None]:
    """``make(key)`` for every key in order, made ``depth`` batches ahead by ``workers`` forked processes (None:
    :func:`default_workers`; 0, one key, or no fork: in this process). ``make`` returns numpy arrays or anything
    picklable; it must depend on its key alone (the key seeds its generator). The workers ignore SIGINT and end with
    this process (`prefetch_worker`); a cancel is the parent's to handle."""
    workers = default_workers() if workers is None else workers
    if workers <= 0 or len(keys) <= 1 or not fork_available():
        for k in keys:
            yield make(k)
        return
    loader = DataLoader(_Keyed(keys, make), batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=max(1, depth), collate_fn=_as_is,
                        worker_init_fn=functools.partial(prefetch_worker, os.getpid()),
                        multiprocessing_context="fork", persistent_workers=False)
    it = iter(loader)
    try:
        yield from it
    finally:
        _close(it)


@contextlib.contextmanager
def batches_ahead(make: Callable[[K], B], keys: Sequence[K], synthesis_share: float) -> Iterator[Iterator[B]]:
    """A trainer's batches: :func:`prefetched` on the workers of :func:`split_cores`; when the block ends (the last
    step, a time limit, an error, a cancel) the workers end and torch gets its threads back."""
    with split_cores(synthesis_share) as workers:
        batches = prefetched(make, keys, workers=workers)
        try:
            yield batches
        finally:
            batches.close()
