"""Starting and joining the ranks of a training on several processes (``--nproc N``, or under ``torchrun``): what the
command line needs before any training code, so importing it costs no torch (every ``orbitai`` command imports it).

`launch` starts ``orbitai <argv>`` as N ranks on this machine with torch's elastic launcher (what
``torchrun --standalone`` runs); `rank_context` joins a rank to its process group and keeps its writing to rank 0;
`report_error` says a rank's one-line error once. The training loops' side is `orbitai.training.distributed`.
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

from orbitai.device import select_device, usable_cores
from orbitai.errors import JobError, UserError
from orbitai.staging import scratch_folder, write_text_atomic

#: Environment variables a launcher (``torchrun``, `launch`, Slurm with torchrun) sets for every rank.
WORLD_ENV, RANK_ENV, LOCAL_RANK_ENV = "WORLD_SIZE", "RANK", "LOCAL_RANK"
#: Where the ranks started by `launch` leave their one-line errors (`report_error`).
ERRORS_ENV = "ORBITAI_RANK_ERRORS"
#: The folder beside ``--out`` that `launch` names for its other ranks' scratch output, and removes at the end.
SCRATCH_ENV = "ORBITAI_RANK_SCRATCH"


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
    """``--nproc`` from 1 to the cores this process may use (each rank needs one; more only swap and thrash)."""
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}.")
    cores = usable_cores()
    if nproc > cores:
        raise UserError(f"--nproc {nproc} is more than the {cores} core(s) this process may use; give at most {cores}.")


class ArgumentsChecked(BaseException):
    """Ends a training command's check pass (`check_arguments`) where its training would begin."""


_check_pass = False


def arguments_checked() -> None:
    """Called by every training command with ``--nproc`` once all its arguments and inputs are checked, before it
    makes any folder or process: in the launcher's check pass (`check_arguments`) the command stops here."""
    if _check_pass:
        raise ArgumentsChecked


def check_arguments(func: Any, args: Any) -> None:
    """Run the command ``func(args)`` up to its `arguments_checked` call, in this process: every argument of a
    training on several processes is checked (one line for a bad one) before any rank starts or folder is made."""
    global _check_pass
    _check_pass = True
    try:
        func(args)
    except ArgumentsChecked:
        return
    finally:
        _check_pass = False
    raise RuntimeError(f"{getattr(func, '__name__', func)} does not call orbitai.training.launch.arguments_checked")


def _failure_line(logs: Path, failures: dict, nproc: int) -> tuple[str, int]:
    """The one line (and exit code) for ranks that failed: a rank killed by a signal from outside (SIGKILL: out of
    memory, a user's kill) first, as a `JobError` -- the others' errors (gloo's "Connection reset by peer") follow
    from it; else the first error line a rank wrote of its own (one that is not a lost peer before one that is)."""
    def signal_name(code: int) -> str:
        return signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"

    killed = sorted((r, f.exitcode) for r, f in failures.items()
                    if f.exitcode < 0 and -f.exitcode not in (signal.SIGTERM, signal.SIGINT))
    if killed:
        rank_, code = killed[0]
        raise JobError(f"process {rank_} of {nproc} was killed by {signal_name(code)} (out of memory?); run again "
                       "(the training resumes from its last checkpoint) or with fewer processes.")
    said = []
    for r in failures:
        f = logs / f"{r}.txt"
        try:
            code_text, _, line = f.read_text(encoding="utf-8").strip().partition("\n")
            code = int(code_text)
        except (OSError, ValueError):     # none, or (a rank killed while writing it) not a whole one
            continue
        if line:
            peer_lost = any(w in line for w in ("Connection reset by peer", "Connection closed by peer", "gloo",
                                                "NCCL", "Broken pipe"))
            said.append((peer_lost, f.stat().st_mtime_ns, r, line, code))
    if said:
        _, _, _, line, code = min(said)
        return line, code
    rank_, failure = min(failures.items())
    code = failure.exitcode
    if code < 0:
        raise JobError(f"process {rank_} of {nproc} was killed by {signal_name(code)}; run again (the training "
                       "resumes from its last checkpoint).")
    if code == 130:
        raise KeyboardInterrupt("a process was cancelled")
    raise JobError(f"process {rank_} of {nproc} ended with exit code {code}; rerun with --debug.")


def launch(argv: Sequence[str], nproc: int, verbose: bool = False, out: Optional[str] = None) -> int:
    """Run ``orbitai <argv>`` as ``nproc`` ranks on this machine and return its exit code: torch's elastic launcher
    (``torchrun --standalone``: a c10d rendezvous on a free local port, no restarts). Each rank gets
    ``usable_cores() // nproc`` threads. A cancel (Ctrl-C, SIGTERM) stops every rank and raises `KeyboardInterrupt`;
    a rank that fails has its one-line error said once (`_failure_line`), and the others are stopped. The ranks
    other than 0 write into a scratch folder beside ``out`` that this launcher names and removes whatever happens
    to them (a rank killed by SIGKILL included), with the parent folders of ``out`` it made when they stay empty."""
    check_nproc(nproc)
    with scratch_folder("orbitai-ranks-") as logs:     # the ranks' logs and error lines
        return _launch(argv, nproc, verbose, out, str(logs))


def _launch(argv: Sequence[str], nproc: int, verbose: bool, out: Optional[str], logs: str) -> int:
    """`launch` with its logs folder ``logs`` made."""
    # torch only here: every area's CLI imports this module, and its --help must not wait for torch
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, api, errors
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    # torch's elastic loggers have levels of their own (its get_logger): quiet each of them, not just the parent
    quiet = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
             if n.startswith(("torch.distributed.elastic", "torch.distributed.launcher"))]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    env_before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "TORCHELASTIC_SIGNALS_TO_HANDLE")}
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // nproc)))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                       rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.2,
                       logs_specs=DefaultLogsSpecs(log_dir=logs), local_addr="127.0.0.1")
    os.environ[ERRORS_ENV] = logs
    scratch: Optional[Path] = None
    made: Optional[Path] = None
    if out is not None:
        target = Path(out).absolute()
        scratch = target.parent / f".{target.name}-ranks-{uuid.uuid4().hex[:8]}"
        made = next((p for p in reversed([target.parent, *target.parent.parents]) if not p.exists()), None)
        os.environ[SCRATCH_ENV] = str(scratch)
    try:
        elastic_launch(cfg, sys.executable)("-m", "orbitai", *argv)
        return 0
    except api.SignalException as exc:
        raise KeyboardInterrupt(f"signal {exc.sigval}") from None
    except errors.ChildFailedError as exc:
        try:
            line, code = _failure_line(Path(logs), exc.failures, nproc)
        except (JobError, KeyboardInterrupt) as failed:
            raise failed from None
        print(line, file=sys.stderr)
        return code
    finally:
        os.environ.pop(ERRORS_ENV, None)
        os.environ.pop(SCRATCH_ENV, None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if made is not None and out is not None:    # parent folders of OUT made by the ranks, if still empty
            for p in [Path(out).absolute().parent, *Path(out).absolute().parent.parents]:
                if not p.is_relative_to(made):
                    break
                with contextlib.suppress(OSError):
                    p.rmdir()
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


def report_error(line: str, code: int) -> None:
    """Say a command's one-line error (or, code 130, its cancel): on stderr, or -- for a rank started by `launch` --
    into the launcher's folder, which says the first failing rank's line once. Under another launcher (torchrun)
    rank 0 says everything and the other ranks what is not bad input (exit 2: every rank checks it alike) nor a
    cancel (rank 0 says it)."""
    folder = os.environ.get(ERRORS_ENV)
    if folder and env_world_size() > 1:
        if code != 130:
            with contextlib.suppress(OSError):     # whole or not at all: the launcher may kill this rank meanwhile
                write_text_atomic(Path(folder) / f"{env_rank()}.txt", f"{code}\n{line}\n")
        return
    if env_rank() == 0 or code not in (2, 130):
        print(line, file=sys.stderr)


@contextlib.contextmanager
def rank_context(args: Any) -> Iterator[None]:
    """Around a training command run as one of several ranks (``WORLD_SIZE`` > 1): joins the process group
    (gloo on CPU, nccl on CUDA: ``args.device`` becomes this rank's GPU), and on ranks other than 0 points
    ``args.out`` into a scratch folder beside it (removed at the end, whatever happens) and silences stdout,
    so that rank 0 alone writes results and progress."""
    import torch.distributed    # binds torch; torch only here (see `launch`)

    dist = torch.distributed
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
            named = os.environ.get(SCRATCH_ENV)
            if named:          # `launch`'s folder beside OUT, which it removes whatever happens to this rank
                scratch = Path(named) / f"rank{dist.get_rank()}"
                scratch.mkdir(parents=True, exist_ok=True)
            else:              # another launcher (torchrun): beside OUT, removed when this rank ends
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
