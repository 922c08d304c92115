"""Starting and joining the ranks of a training on several processes (``--nproc N``, or under ``torchrun``): what the
command line needs before any training code, so importing it costs no torch (every ``orbitai`` command imports it).

`launch` starts ``orbitai <argv>`` as N ranks on this machine with torch's elastic launcher (what
``torchrun --standalone`` runs); `rank_context` joins a rank to its process group and keeps its writing to rank 0;
`report_error` says a rank's one-line error once. The training loops' side is `orbitai.distributed`.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

from orbitai.errors import UserError

#: Environment variables a launcher (``torchrun``, `launch`, Slurm with torchrun) sets for every rank.
WORLD_ENV, RANK_ENV, LOCAL_RANK_ENV = "WORLD_SIZE", "RANK", "LOCAL_RANK"
#: Where the ranks started by `launch` leave their one-line errors (`report_error`).
ERRORS_ENV = "ORBITAI_RANK_ERRORS"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else (os.cpu_count() or 1)


def env_world_size() -> int:
    """The number of ranks this process was launched as one of (1 outside a launcher)."""
    try:
        return max(1, int(os.environ.get(WORLD_ENV, "1")))
    except ValueError:
        return 1


def env_rank() -> int:
    try:
        return int(os.environ.get(RANK_ENV, "0"))
    except ValueError:
        return 0



def check_nproc(nproc: int) -> None:
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}.")


def launch(argv: Sequence[str], nproc: int, verbose: bool = False) -> int:
    """Run ``orbitai <argv>`` as ``nproc`` ranks on this machine and return its exit code: torch's elastic launcher
    (``torchrun --standalone``: a c10d rendezvous on a free local port, no restarts). Each rank gets
    ``usable_cores() // nproc`` threads. A cancel (Ctrl-C, SIGTERM) stops every rank and raises `KeyboardInterrupt`;
    a rank that fails has printed its one-line error, and the others are stopped."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_nproc(nproc)
    # torch's elastic loggers have levels of their own (its get_logger): quiet each of them, not just the parent
    quiet = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
             if n.startswith(("torch.distributed.elastic", "torch.distributed.launcher"))]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TORCHELASTIC_SIGNALS_TO_HANDLE")}
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    logs = tempfile.mkdtemp(prefix="orbitai-ranks-")
    cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                       rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.2,
                       logs_specs=DefaultLogsSpecs(log_dir=logs), local_addr="127.0.0.1")
    os.environ[ERRORS_ENV] = logs
    try:
        elastic_launch(cfg, sys.executable)("-m", "orbitai", *argv)
        return 0
    except SignalException as exc:
        raise KeyboardInterrupt(f"signal {exc.sigval}") from None
    except ChildFailedError as exc:
        # the ranks that ended on an error of their own have left its line; the others were stopped by the
        # launcher after them (or died of a signal: out of memory)
        said = sorted(r for r in exc.failures if (Path(logs) / f"{r}.txt").is_file())
        if said:
            code_text, line = (Path(logs) / f"{said[0]}.txt").read_text().strip().split("\n", 1)
            print(line, file=sys.stderr)
            return int(code_text)
        rank_, failure = min(exc.failures.items())
        code = failure.exitcode
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            raise UserError(f"process {rank_} of {nproc} was killed by {name} (out of memory?); run again "
                            "(the training resumes from its last checkpoint) or with fewer processes.") from None
        if code == 130:
            raise KeyboardInterrupt("a process was cancelled") from None
        raise UserError(f"process {rank_} of {nproc} ended with exit code {code}; rerun with --debug.") from None
    finally:
        os.environ.pop(ERRORS_ENV, None)
        for s, h in handlers.items():
            if h is not None:
                signal.signal(s, h)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
        shutil.rmtree(logs, ignore_errors=True)


def report_error(line: str, code: int) -> None:
    """Say a command's one-line error (or, code 130, its cancel): on stderr, or -- for a rank started by `launch` --
    into the launcher's folder, which says the first failing rank's line once. Under another launcher (torchrun)
    rank 0 says everything and the other ranks what is not bad input (exit 2: every rank checks it alike) nor a
    cancel (rank 0 says it)."""
    folder = os.environ.get(ERRORS_ENV)
    if folder and env_world_size() > 1:
        if code != 130:
            with contextlib.suppress(OSError):
                (Path(folder) / f"{env_rank()}.txt").write_text(f"{code}\n{line}\n")   # the launcher may kill it first
        return
    if env_rank() == 0 or code not in (2, 130):
        print(line, file=sys.stderr)


@contextlib.contextmanager
def rank_context(args: Any) -> Iterator[None]:
    """Around a training command run as one of several ranks (``WORLD_SIZE`` > 1): joins the process group
    (gloo on CPU, nccl on CUDA: ``args.device`` becomes this rank's GPU), and on ranks other than 0 points
    ``args.out`` into a scratch folder beside it (removed at the end, whatever happens) and silences stdout,
    so that rank 0 alone writes results and progress."""
    import torch
    import torch.distributed as dist

    from orbitai.device import select_device

    device = select_device(getattr(args, "device", "auto"))
    local = int(os.environ.get(LOCAL_RANK_ENV, "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserError(f"Training on several processes runs on CPU (gloo) or CUDA (nccl), not on {device.type}; "
                        "give --device cpu or cuda.")
    args.device = str(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    scratch: Optional[Path] = None
    stdout = sys.stdout
    try:
        if dist.get_rank() != 0:
            out = Path(args.out).absolute()
            out.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-rank{dist.get_rank()}-", dir=out.parent))
            args.out = str(scratch / out.name)
            sys.stdout = open(os.devnull, "w")   # closed below
        yield
        dist.barrier()   # no rank leaves the group while another still talks to it
    finally:
        if sys.stdout is not stdout:
            sys.stdout.close()
            sys.stdout = stdout
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(Exception):   # a failed peer has left the group already
            dist.destroy_process_group()
