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

import multiprocessing
import os
from typing import Any, Callable, Generator, Sequence, TypeVar

import torch
from torch.utils.data import DataLoader, Dataset

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
            from orbitai.errors import ConfigError

            raise ConfigError(f"{WORKERS_ENV}={env!r}: give a whole number of worker processes (0: none).") from None
    return max(1, (os.cpu_count() or 2) // 2)


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


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def prefetched(make: Callable[[K], B], keys: Sequence[K], workers: int | None = None, depth: int = 2) -> Generator[B, None, None]:
    """``make(key)`` for every key in order, made ``depth`` batches ahead by ``workers`` forked processes (None:
    :func:`default_workers`; 0, one key, or no fork: in this process). ``make`` returns numpy arrays or anything
    picklable; it must depend on its key alone (the key seeds its generator)."""
    workers = default_workers() if workers is None else workers
    if workers <= 0 or len(keys) <= 1 or not fork_available():
        for k in keys:
            yield make(k)
        return
    loader = DataLoader(_Keyed(keys, make), batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=max(1, depth), collate_fn=_as_is, worker_init_fn=_one_thread,
                        multiprocessing_context="fork", persistent_workers=False)
    it = iter(loader)
    try:
        yield from it
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)   # a loop left early: workers ended now, not at collection
        if shutdown is not None:
            shutdown()
