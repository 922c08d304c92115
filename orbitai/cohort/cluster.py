"""The Dask side of the cohort runner, once for every command that runs cases on ``dask.distributed``.

A Dask client (:func:`dask_client`) on a local cluster of worker processes (each one case at a time on its share
of the cores; its scratch space in a temporary folder removed with it) or on an existing scheduler, whose address
is checked first to be a Dask scheduler answering in bounded time (:func:`check_scheduler`) with a worker
(``WORKER_WAIT``); Dask's log lines and its worker processes' tracebacks shown only with -v (quiet children), a
cancel while the cluster starts closing what was started. :func:`dask_map` and :func:`map_on` run a function over
keyed items there, reporting each as it completes: used by the runner (`orbitai.cohort.runner.run_cohort`) and by
``ivgc features``.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import sys
import time
import uuid
from typing import Any, Callable, Iterator, Mapping, Optional

import psutil  # type: ignore[import-untyped]  # a dependency of dask.distributed

from orbitai.device import usable_cores
from orbitai.errors import InputError, UserError, one_line
from orbitai.progress import deferred_cancel, stderr_to_null
from orbitai.staging import scratch_folder

#: Seconds to wait for an existing scheduler (``--scheduler``) to answer.
SCHEDULER_TIMEOUT = 10.0
#: Seconds to wait for a first worker on an existing scheduler that has none.
WORKER_WAIT = 60.0


@contextlib.contextmanager
def _quiet_children() -> Iterator[None]:
    """Start worker processes with their standard error on the null device (unless -v): a Ctrl-C to the
    process group stops them too, and Python would print each one's KeyboardInterrupt traceback; a
    case's error still reaches the parent through its future. (Ignoring or blocking SIGINT instead
    loses a Ctrl-C given while they start: Dask spawns them from its event-loop thread.)"""
    if logging.getLogger().getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    with stderr_to_null():
        yield


class _NoDaskLines(logging.Filter):
    """Drops Dask's (``distributed.*``) log records: on a cancel it logs "Couldn't gather", "Closing
    scheduler", "killed by signal" and the like, at any level and from loggers with levels of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("distributed")


_NO_DASK_LINES = _NoDaskLines()


def _silence_dask() -> None:
    """Without -v, no Dask log line reaches stderr for the rest of the process: the filter sits on the
    handlers themselves (Dask's own on ``distributed`` and the root's), so neither a level Dask sets again
    (``silence_logs``) nor the cluster closing at exit after a cancel brings its lines back."""
    for name in ("distributed", ""):
        for handler in logging.getLogger(name).handlers:
            if _NO_DASK_LINES not in handler.filters:
                handler.addFilter(_NO_DASK_LINES)


def _start_local_cluster(**kwargs: Any) -> Any:
    """A `LocalCluster`; a cancel (or failure) while it starts closes what was started there and then, so that
    Dask's exit hook does not close a half-started cluster later and print its traceback."""
    from dask.distributed import LocalCluster
    from distributed.deploy.spec import SpecCluster

    before = set(SpecCluster._instances)
    try:
        return LocalCluster(**kwargs)
    except BaseException:
        for cluster in set(SpecCluster._instances) - before:
            SpecCluster._instances.discard(cluster)
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)
        raise


#: The environment variable that marks a local cluster's worker processes (set through Dask's pre-spawn environment).
CLUSTER_MARK = "ORBITAI_DASK_CLUSTER"
#: multiprocessing's own helper processes (its start method's): they live until the command ends and write nothing.
_MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
#: Seconds the processes of a local cluster get to end on their own before they are killed.
CHILDREN_GRACE_S = 5.0
#: How many times `_ClusterProcesses.end` kills what is left of a cluster's processes before it gives up.
_KILL_ROUNDS = 5


class _ClusterProcesses:
    """The worker processes of one local cluster, found by the mark they carry in their environment (`CLUSTER_MARK`
    = ``token``), wherever they are in the process tree (a worker whose parent ended first is no longer a
    descendant). `end` waits up to ``CHILDREN_GRACE_S`` for them to end, then kills those left: it runs before the
    cluster's scratch folder is removed, since a worker still starting makes that folder anew (Dask's ``WorkSpace``
    creates its whole path) and it would be left behind."""

    def __init__(self) -> None:
        self.token = f"{os.getpid()}-{uuid.uuid4().hex}"

    def _marked(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if (p.pid != os.getpid() and p.environ().get(CLUSTER_MARK) == self.token
                        and not any(helper in " ".join(p.cmdline()) for helper in _MP_HELPERS)):
                    out.append(p)
        return out

    def end(self) -> None:
        # found by the mark, then followed by process (create time checked): one that is exiting has no environment
        # left to read, yet it runs until it is a zombie or gone
        seen: dict[int, psutil.Process] = {}

        def running() -> list[psutil.Process]:
            for p in self._marked():
                seen.setdefault(p.pid, p)
            out = []
            for p in seen.values():
                with contextlib.suppress(psutil.Error):
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                        out.append(p)
            return out

        def wait() -> list[psutil.Process]:
            deadline = time.monotonic() + CHILDREN_GRACE_S
            while (left := running()) and time.monotonic() < deadline:
                time.sleep(0.05)
            return left

        # a worker killed just after it started one of its own leaves that one running: kill again until none is
        # left (bounded: a process that keeps starting others is not followed forever)
        left = wait()
        for _ in range(_KILL_ROUNDS):
            if not left:
                break
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            left = wait()


_ADDRESS = re.compile(r"^(?:(?P<scheme>tcp|tls)://)?\[?(?P<host>[^\]/\s]+?)\]?:(?P<port>\d+)/?$")
#: The largest first message a Dask scheduler sends (its handshake: a few hundred bytes).
_HANDSHAKE_MAX = 1 << 20


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _is_http(sock: socket.socket) -> bool:
    """Whether the server on ``sock`` (silent so far) answers an HTTP request as a web server does."""
    try:
        sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
        sock.settimeout(min(2.0, SCHEDULER_TIMEOUT))
        return _recv_exactly(sock, 5) == b"HTTP/"
    except OSError:
        return False


def check_scheduler(address: str) -> None:
    """One line, within `SCHEDULER_TIMEOUT`, for a ``--scheduler`` address that is no Dask scheduler: nobody
    listening, a web (HTTP) server such as Dask's dashboard, a port that accepts and never answers, or one that
    answers something else (Dask's own connect would wait on without a bound, or read a web page's first bytes as
    a message length). A Dask scheduler speaks first on a new connection: its handshake must come in time."""
    text = address.strip()
    m = _ADDRESS.match(text)
    if not m:
        if "://" not in text:
            raise UserError(f"--scheduler {address!r} is not a Dask scheduler address (e.g. tcp://10.0.0.5:8786).")
        return        # another transport (ucx://, inproc://): Dask's own connect says
    port = int(m["port"])
    if not 0 < port < 65536:
        raise UserError(f"--scheduler {address!r}: the port must be 1 to 65535, got {port}.")
    try:
        sock = socket.create_connection((m["host"], port), timeout=min(5.0, SCHEDULER_TIMEOUT))
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address}: "
                         f"{getattr(exc, 'strerror', None) or one_line(exc)}.") from None
    use = "give the scheduler's address (e.g. tcp://HOST:8786; its dashboard, 8787, is a web page)"
    with sock:
        if m["scheme"] == "tls":
            return    # a TLS server waits for the client's hello
        sock.settimeout(SCHEDULER_TIMEOUT)
        try:
            head = _recv_exactly(sock, 8)
        except socket.timeout:
            if _is_http(sock):
                raise InputError(f"{address} is a web (HTTP) server, not a Dask scheduler; {use}.") from None
            raise InputError(f"{address} accepted the connection but did not answer as a Dask scheduler within "
                             f"{SCHEDULER_TIMEOUT:g} s; {use}, and check that it runs.") from None
        except OSError as exc:
            raise InputError(f"Cannot reach the Dask scheduler at {address}: "
                             f"{exc.strerror or one_line(exc)}.") from None
    if len(head) < 8:
        raise InputError(f"{address} closed the connection without answering as a Dask scheduler; {use}.")
    size = int.from_bytes(head, "little")
    if not 0 < size <= _HANDSHAKE_MAX:
        what = "a web (HTTP) server" if head.startswith(b"HTTP/") else f"something else (it sent {head!r})"
        raise InputError(f"{address} is {what}, not a Dask scheduler; {use}.")


def _wait_for_a_worker(client: Any, address: str) -> None:
    """Return once the scheduler at ``address`` has a worker; say that it is waited for, and give up after
    `WORKER_WAIT` seconds with one line (the cases would wait for ever)."""
    if client.nthreads():
        return
    print(f"waiting up to {WORKER_WAIT:g} s for a worker of the Dask scheduler at {address} (it has none)",
          file=sys.stderr, flush=True)
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT)
    except (TimeoutError, asyncio.TimeoutError, OSError):   # distinct classes on Python 3.9 and 3.10
        raise InputError(f"The Dask scheduler at {address} has no workers (none came in {WORKER_WAIT:g} s); start "
                         f"some with 'dask worker {address}', or leave out --scheduler (--workers N runs a local "
                         "cluster).") from None


@contextlib.contextmanager
def dask_client(workers: int, scheduler: Optional[str], n_tasks: int) -> Iterator[Any]:
    """A Dask client: on the scheduler at ``scheduler``, or on a local cluster of ``workers`` (at most
    ``n_tasks``) worker processes running one case at a time on their share of the cores, closed on leaving (also on a cancel: its processes stop).
    A local cluster's scratch space (and lock files) live in a temporary folder removed with it; Dask's
    own log lines show only with -v."""
    import dask
    from dask.distributed import Client

    with contextlib.ExitStack() as stack:    # closed in reverse: client, cluster, config, scratch folder, log level
        dask_log = logging.getLogger("distributed")
        if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
            # Dask's own lines only in a verbose run: its worker errors (with tracebacks) reach each case's
            # future, and a cancel or a busy machine makes it log "still alive, killing" and the like.
            stack.callback(dask_log.setLevel, dask_log.level)
            dask_log.setLevel(logging.CRITICAL)
            _silence_dask()
        if scheduler is not None:
            check_scheduler(scheduler)
            try:
                client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT:g}s")
            except (OSError, TimeoutError, asyncio.TimeoutError, ValueError, MemoryError) as exc:
                raise InputError(f"Cannot reach the Dask scheduler at {scheduler}: {one_line(exc)}") from exc
            stack.callback(client.close)
            _wait_for_a_worker(client, scheduler)
        else:
            processes = _ClusterProcesses()
            scratch = str(stack.enter_context(scratch_folder("orbitai-dask-", processes.end)))
            # one thread per worker for the numerical libraries, as Dask sets them; but not its MALLOC_TRIM_THRESHOLD_:
            # a fixed threshold turns off glibc's adaptive one, and every large array then costs fresh page faults
            # (measured: each case about 10 % slower, benchmarks/bench_cohort.py)
            environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                       if k != "MALLOC_TRIM_THRESHOLD_"}
            # each worker runs one case at a time on its share of the cores (Dask's default of one thread would
            # leave cores idle with fewer workers than cores); a larger setting of the user's Dask config stays
            n_workers = max(1, min(workers, n_tasks))
            share = max(1, usable_cores() // n_workers)
            for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                environ[key] = max(share, int(environ.get(key) or 1))
            environ[CLUSTER_MARK] = processes.token
            stack.enter_context(dask.config.set({"temporary-directory": scratch,
                                                 "distributed.nanny.pre-spawn-environ": environ}))
            # a cancel while the cluster starts takes effect once it is up (and registered to be closed): closing
            # a half-started cluster leaves processes behind or prints Dask's traceback
            with _quiet_children(), deferred_cancel():
                cluster = _start_local_cluster(n_workers=n_workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0", silence_logs=logging.ERROR,
                                               local_directory=scratch)
                stack.callback(cluster.close)
            if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
                _silence_dask()   # the cluster may have set up Dask's handlers anew
            client = Client(cluster)
            stack.callback(client.close)
        yield client


def dask_map(fn: Callable[..., Any], items: Mapping[str, tuple], workers: int, scheduler: Optional[str],
             finished: Callable[[str, Any, Optional[BaseException]], None], prefix: str = "orbitai") -> None:
    """``fn(*items[key])`` for every key on a Dask cluster (:func:`dask_client`); ``finished(key, value,
    error)`` as each completes, in the order they complete. An exception ``finished`` raises (or a cancel)
    closes the client and the local cluster, stopping the other tasks."""
    with dask_client(workers, scheduler, len(items)) as client:
        map_on(client, fn, items, finished, prefix)


def map_on(client: Any, fn: Callable[..., Any], items: Mapping[str, tuple],
           finished: Callable[[str, Any, Optional[BaseException]], None], prefix: str = "orbitai") -> None:
    """`dask_map` on an open ``client``."""
    from dask.distributed import as_completed

    futures = {client.submit(fn, *args, key=f"{prefix}-{i}-{key}", pure=False): key
               for i, (key, args) in enumerate(items.items())}
    for fut in as_completed(futures):
        key = futures[fut]
        try:
            value = fut.result()
        except Exception as exc:  # noqa: BLE001 - a task's failure (or its worker's death) is that task's
            finished(key, None, exc)
        else:
            finished(key, value, None)
