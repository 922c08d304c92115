"""The ``orbitai`` command line: ``orbitai <command> ...`` (also ``python -m orbitai``).

Each command lives in its own module exposing ``add_parser(subparsers, help_text)``, which registers an ``argparse``
sub-parser whose ``func(args) -> int`` does the work. `COMMANDS` names them; only the module of the command that runs
is imported, so ``orbitai --help`` stays fast. The ``cli.py`` modules import the work's modules (torch and the rest)
inside ``func``, so that a command's ``--help`` stays fast too.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import warnings
import weakref
from typing import Iterator, NoReturn, Optional, Sequence

from orbitai import __version__
from orbitai.errors import OrbitAIError, one_line
from orbitai.progress import CANCEL_SIGNALS, cancel_on_signals, real_stderr_fd
from orbitai.staging import disk_full, remove_unfinished
from orbitai.tasks import TASKS

__all__ = ["main", "build_parser", "COMMANDS", "requested_command", "entry"]

#: The commands, in the order ``--help`` lists them: name -> (the module whose ``add_parser(sub, help_text)`` adds
#: it, its one-line help). Only the command that runs is imported (`main`), so ``orbitai --help`` loads none of them and their modules
#: can import what they use at the top.
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("orbitai.commands.info", "print versions, the compute device and the model bundles found"),
    "demo": ("orbitai.commands.demo", "run the main job on built-in data and save a Slicer scene"),
    "models": ("orbitai.commands.models", "list, install (download or offline), verify and remove model bundles "
                                          "and training data sets"),
    "phantom": ("orbitai.phantoms.cli", "write a synthetic cohort (orbital CT/MRI, domain-randomised, TAO, IVGC, "
                                        "brain FLAIR) with ground truth"),
    **{name: (task.command, task.help) for name, task in TASKS.items()},     # seg, tao, ivgc, neuro: the task table
    "scan": ("orbitai.commands.scan", "what a scan is: CT or MRI, weighting, fat suppression, what is in view"),
    "dicom": ("orbitai.dicom.cli", "exchange with a PACS over DICOMweb: push results, fetch a series"),
    "web": ("orbitai.web.cli", "the four modules and the annotation tools in a web browser"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of usage text plus error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The command line's parser: every command's (``only`` None), or command ``only``'s with the others listed by
    name and help alone, so that only its module is imported."""
    parser = ArgumentParser(
        prog="orbitai",
        description=(
            "OrbitAI: AI for orbital and neuro-ophthalmic imaging (the engine of the OrbitAI "
            "3D Slicer extension). Run 'orbitai <command> --help' for a command's options."
        ),
        epilog="Example: orbitai info   |   orbitai demo --out demo_output",
    )
    parser.add_argument("--version", action="version", version=f"orbitai {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module, help_text) in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).add_parser(sub, help_text)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def requested_command(argv: Sequence[str]) -> Optional[str]:
    """The command an argument list runs (its first word that is not an option), if it names one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def command_name(args: argparse.Namespace) -> str:
    """'seg predict' for ``orbitai seg predict ...``: the command and its sub-command, if any."""
    sub = [v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)]
    return " ".join([str(args.command), *sub])


def _os_error(exc: OSError) -> tuple[str, int]:
    """One line and exit code for a file-system error: 2 for the user's path, 1 otherwise (a full disk, named as such)."""
    if disk_full(exc):
        where = f" while writing {exc.filename}" if exc.filename else ""
        return f"the disk is full{where} ({exc.strerror or one_line(exc)}); free space and run again", 1
    user = isinstance(exc, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                            PermissionError))
    if exc.strerror and exc.filename:
        hint = " (check the path and its permissions)" if user else ""
        return f"{exc.strerror}: {exc.filename}{hint}", 2 if user else 1
    return one_line(exc), 2 if user else 1


#: After a cancel signal, how long the main thread may stay inside one library call (where Python cannot run the
#: signal's handler) before `stop_when_stuck` ends the command from outside it.
STUCK_S = 1.0


@contextlib.contextmanager
def stop_when_stuck(prefix: str, grace_s: float = STUCK_S) -> Iterator[None]:
    """While active, a cancel signal (SIGINT, SIGTERM, SIGHUP) that finds the main thread inside one library call
    (SimpleITK writing or resampling a large image, a radiomics filter: Python runs signal handlers only between the
    main thread's bytecodes) still stops the command within ``grace_s`` (+ the clean-up): a watcher thread hears the
    signal (``signal.set_wakeup_fd``), and when the main thread has not moved from its place for ``grace_s``, it
    removes what unfinished output blocks would (`orbitai.staging.remove_unfinished`: hidden stages, new work folders
    without a checkpoint) and the temporary folders waiting for their clean-up, says ``PREFIX cancelled`` and exits
    with 130. A main thread that moves (the handler ran: the command cleans up on its own) is left alone. Outside the
    main thread, or where another part (an asyncio loop) takes the wake-up fd over, it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except (ValueError, OSError):
        reader.close()
        writer.close()
        yield
        return
    done = threading.Event()
    cancels = {int(s) for s in (signal.SIGINT, *CANCEL_SIGNALS)}
    main_id = threading.main_thread().ident

    def place() -> tuple[int, int]:
        frame = sys._current_frames().get(main_id or 0)
        return (id(frame), frame.f_lasti) if frame is not None else (0, -1)

    def watch() -> None:
        try:
            while not done.is_set():
                data = reader.recv(64)
                if not data or done.is_set():
                    return
                if not cancels.intersection(data):
                    continue
                where, deadline = place(), time.monotonic() + grace_s
                while place() == where and not done.is_set():
                    if time.monotonic() >= deadline:
                        _stop_now(prefix)
                    time.sleep(0.02)
        except OSError:
            return
        finally:
            reader.close()

    threading.Thread(target=watch, name="orbitai-stop-when-stuck", daemon=True).start()
    try:
        yield
    finally:
        done.set()
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(previous)
        writer.close()                 # the watcher's recv ends


def _stop_now(prefix: str) -> NoReturn:
    """End the process from the watcher thread: unfinished outputs and temporary folders removed, one line, exit 130."""
    remove_unfinished()
    cleanup = threading.Thread(target=weakref.finalize._exitfunc, daemon=True)  # type: ignore[attr-defined]
    cleanup.start()                    # tempfile.TemporaryDirectory's clean-ups (each a weakref.finalize)
    cleanup.join(0.5)
    _say_cancelled(prefix, from_watcher=True)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(130)


#: The running command's prefix (``orbitai NAME: ``), once `main` knows it.
_command_prefix: list[str] = []
#: The cancel's line was said (`_say_cancelled`): `entry` says it when a cancel ended `main` before `main` could.
_cancel_said: list[str] = []


def _say_cancelled(prefix: str, from_watcher: bool = False) -> None:
    """Say ``PREFIX cancelled`` once per command (`orbitai.training.launch.report_error`: on stderr, or for a rank into
    its launcher's folder), from `main`'s handler, the stuck-command watcher or `entry` (a cancel that ended `main`
    outside its handler), whichever comes first. A cancelled command ended without its line in fresh-clone runs (the
    cancel test while a Dask cluster starts): the watcher wrote it to descriptor 2, which is the null device while
    the cluster's processes start (`orbitai.progress.stderr_to_null`)."""
    if _cancel_said:
        return
    _cancel_said.append(prefix)
    launch = sys.modules.get("orbitai.training.launch")      # imported by `main` (never import in the watcher)
    line = prefix + "cancelled"
    with contextlib.suppress(Exception):
        if launch is not None and (not from_watcher or launch.env_world_size() > 1):
            launch.report_error(line, 130)
        elif launch is None or launch.env_rank() == 0:
            fd = real_stderr_fd()
            if fd != 2:             # stderr is on the null device while a Dask cluster starts: the real one
                os.write(fd, (line + "\n").encode())
                return
            try:
                print(line, file=sys.stderr, flush=True)
            except RuntimeError:    # the main thread is inside a write to stderr (a reentrant call): the file itself
                os.write(2, (line + "\n").encode())


@contextlib.contextmanager
def library_warnings_logged() -> Iterator[None]:
    """Warnings that libraries raise (pydicom's and highdicom's ``check_person_name`` on DICOM inputs, ...) go to the
    log (``orbitai.library``, shown with --verbose), not into the user's output: the command's own warnings are its
    printed ``warning:`` lines and its result's ``warnings`` (issue 63)."""
    log = logging.getLogger("orbitai.library")

    def to_log(message, category, filename, lineno, file=None, line=None) -> None:   # warnings.showwarning's shape
        log.debug("%s: %s (%s:%s)", category.__name__, message, filename, lineno)

    with warnings.catch_warnings():
        warnings.showwarning = to_log
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors end it with one line on stderr (see `orbitai.errors`), not a traceback."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=requested_command(words) or "")
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from orbitai.training import launch
    from orbitai.errors import UserError

    prefix = f"orbitai {command_name(args)}: "
    _command_prefix[:] = [prefix]
    _cancel_said.clear()                # the warm worker runs one command after another in one process
    ranks = launch.env_world_size()
    # under torchrun rank 0 speaks for the command and the others name themselves; under `launch` the launcher
    # says the first failing rank's line as the command's
    if launch.env_rank() > 0 and not os.environ.get(launch.ERRORS_ENV):
        prefix = f"orbitai {command_name(args)} [process {launch.env_rank()} of {ranks}]: "
    try:
        from orbitai.dicom.inputs import resolved_images

        if ranks > 1 and not hasattr(args, "nproc"):
            raise UserError(f"'{command_name(args)}' runs in one process; only the training commands run as "
                            "several (torchrun, --nproc).")
        nproc = getattr(args, "nproc", 1)
        launch.check_nproc(nproc)
        # the web server stops its jobs itself on the signal (its loop stays responsive): no stop from outside
        with cancel_on_signals(), stop_when_stuck(prefix) if args.command != "web" else contextlib.nullcontext():
            if nproc > 1 and ranks == 1:          # start the ranks, each runs this command again
                launch.check_arguments(args.func, args)   # every argument first: no process, no folder yet
                return launch.launch(list(sys.argv[1:] if argv is None else argv), nproc, args.verbose,
                                     out=getattr(args, "out", None))
            with (launch.rank_context(args) if ranks > 1 else contextlib.nullcontext()), \
                    resolved_images(args), library_warnings_logged():    # --series, DICOMweb URLs: local files
                return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.debug:
            raise
        _say_cancelled(prefix)
        return 130
    except Exception as exc:  # the one place that turns any error into one line (re-raised with --debug)
        if args.debug:
            raise
        if isinstance(exc, OrbitAIError):
            msg, code = one_line(exc), exc.exit_code
        elif isinstance(exc, OSError):
            msg, code = _os_error(exc)
        else:  # a bug or an unforeseen failure: still one line, the traceback with --debug
            msg, code = f"{type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)", 1
        launch.report_error(prefix + "error: " + msg, code)
        return code


def entry() -> NoReturn:
    """The process entry point (``orbitai`` and ``python -m orbitai``): `main`, then exit with its code.

    After a cancel (exit 130) everything is cleaned up and reported; a second Ctrl-C or ``kill`` while
    Python shuts down must not turn that clean exit into a traceback or a death by signal, so further
    cancel signals are ignored from then on. (Only here: `main` also runs inside the worker process.)"""
    try:
        code = main()
    except KeyboardInterrupt:   # a signal after the cancel's report, or one before `main` could report it
        if _command_prefix:
            _say_cancelled(_command_prefix[0])
        code = 130
    if code == 130:
        for sig in (signal.SIGINT, *CANCEL_SIGNALS):
            signal.signal(sig, signal.SIG_IGN)
        # A handled cancel has still ended by SIGINT (exit -2, not 130) under load in the cancel tests: CPython
        # kills itself with SIGINT at the end of finalisation when it has recorded a KeyboardInterrupt as
        # unhandled somewhere. Finish the way finalisation would (threads joined, atexit clean-ups run, streams
        # flushed) and exit with 130 ourselves.
        import atexit
        import os

        threading._shutdown()  # type: ignore[attr-defined]  # what Py_FinalizeEx runs first
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(130)
    # Python's exit collects every object left, torch's many thousands among them: 0.5-0.7 s of a 'seg predict' on
    # 2 cores spent after the command is done. Frozen, they are left to the process's end (every clean-up still runs:
    # atexit, threads joined, streams flushed, objects freed by reference count).
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
