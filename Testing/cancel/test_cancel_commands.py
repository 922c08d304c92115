"""Cancel leaves nothing behind (#14), for every long-running command: SIGINT to the command's process
group (a terminal's Ctrl-C) and SIGTERM to the command alone (``kill PID``) while it is really working.

Each case runs the real ``python -m orbitai`` in its own session with a fresh ``TMPDIR``, waits for a sign
that the work is under way (a progress line of the working phase, or its hidden work folder), records the
command's descendant processes, sends the signal and checks: exit 130 with the one line
``orbitai <command>: cancelled``, every descendant gone (read from /proc), no process naming the test's
folders, and no file or folder new or changed on disk (the run folder, the ``TMPDIR``, the shared input
cohorts). A training cancelled after a checkpoint keeps only that checkpoint (documented; see
``test_cancelled_training_keeps_only_its_checkpoint``).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads processes from /proc")

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------- processes
def processes(group: int | None = None) -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every live process (in process group ``group``, if given)."""
    procs = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # state, ppid, pgrp, session, ...
        if group is None or int(fields[2]) == group:
            procs[int(d.name)] = (int(fields[1]), fields[0], cmd)
    return procs


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    procs = processes()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, (ppid, state, _) in procs.items() if ppid in frontier and state != "Z"} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    info = processes().get(pid)
    return info is not None and info[1] != "Z"


def naming(folder: Path) -> list[str]:
    """Live processes whose command line names a path inside ``folder``."""
    return [cmd for pid, (_, state, cmd) in processes().items()
            if str(folder) in cmd and state != "Z" and pid != os.getpid()]


def listing(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``folders`` with its size and modification time."""
    out = {}
    for f in folders:
        for p in f.rglob("*"):
            st = p.lstat()
            out[str(p)] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def _interruptible() -> None:
    """Ctrl-C as in a terminal: a test run started in the background (``pytest &``) inherits SIGINT
    ignored, and Python then never raises KeyboardInterrupt; the command gets the default back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


#: torch's per-user compile cache in the temporary folder (``torchinductor_<user>``), made by any program
#: that builds a torch optimizer, successful runs included; shared and kept by torch, not a command output.
TORCH_CACHE = re.compile(r"^torchinductor_")


@dataclass
class Run:
    """A running ``python -m orbitai`` whose stdout and stderr lines are collected by threads."""

    proc: subprocess.Popen
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], cwd: Path, tmpdir: Path) -> "Run":
        env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "orbitai", *args], cwd=cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_interruptible)
        run = cls(proc)
        for stream, lines in ((proc.stdout, run.stdout), (proc.stderr, run.stderr)):
            reader = threading.Thread(target=lambda s=stream, ls=lines: ls.extend(iter(s.readline, "")), daemon=True)
            reader.start()
            run.readers.append(reader)
        return run

    def wait_for(self, what: str, cond: Callable[[], object], timeout: float = 180) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            if self.proc.poll() is not None:
                time.sleep(0.2)
                pytest.fail(f"the command ended (exit {self.proc.returncode}) before {what}:\n"
                            f"{''.join(self.stdout)[-2000:]}\n{''.join(self.stderr)[-2000:]}")
            time.sleep(0.01)
        os.killpg(self.proc.pid, signal.SIGKILL)
        pytest.fail(f"timed out waiting for {what}")

    def finish(self, timeout: float = 30) -> list[str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"the command did not stop within {timeout} s of the signal")
        for reader in self.readers:   # every line to the end of both streams, however loaded the machine
            reader.join(timeout=10)
        return [ln.rstrip("\n") for ln in self.stderr if ln.strip()]


def send(run: Run, sig: int) -> None:
    """SIGINT to the process group, as a terminal's Ctrl-C; SIGTERM to the command alone, as ``kill``."""
    if sig == signal.SIGINT:
        os.killpg(run.proc.pid, sig)
    else:
        run.proc.send_signal(sig)


# ------------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> Path:
    """Tiny phantom cohorts shared by every case: ``seg`` (2 orbital CTs), ``tao`` (4 T2 MRIs), ``ivgc`` (3),
    ``brain`` (4 brain FLAIRs)."""
    from orbitai.phantoms.cohort import write_cohort

    d = tmp_path_factory.mktemp("cancel_inputs")
    write_cohort("orbit-ct", 2, 0, d / "seg", montage_cases=0)
    write_cohort("tao", 4, 0, d / "tao", montage_cases=0)
    write_cohort("ivgc", 3, 0, d / "ivgc", montage_cases=0)
    write_cohort("brain-flair", 4, 0, d / "brain", montage_cases=0)
    return d


def progress(pattern: str) -> Callable[[Run, Path], bool]:
    """Ready once a stdout line matches ``pattern``."""
    rx = re.compile(pattern)
    return lambda run, folder: any(rx.search(line) for line in list(run.stdout))


def work_folder(prefix: str, pattern: str = "") -> Callable[[Run, Path], bool]:
    """Ready once a hidden folder ``prefix*`` exists in the run folder (and, if given, a progress line)."""
    line = progress(pattern) if pattern else (lambda run, folder: True)
    return lambda run, folder: any(p.name.startswith(prefix) for p in folder.iterdir()) and line(run, folder)


def child_started(command: str) -> Callable[[Run, Path], bool]:
    """Ready once a child process running ``orbitai COMMAND`` exists."""
    return lambda run, folder: any(command in processes().get(p, (0, "", ""))[2] for p in descendants(run.proc.pid))


def dask_starting(run: Run, folder: Path) -> bool:
    """Ready once the local Dask cluster is starting (its scheduler's scratch space exists in TMPDIR)."""
    return any(p.name.startswith("scheduler-") for p in (folder.parent / "tmp").glob("orbitai-dask-*/*/*"))


SEG_IMAGE = "seg/images/orbit_ct_0000.nrrd"
TAO_IMAGE, TAO_SEG = "tao/images/tao_0000.nrrd", "tao/segmentations/tao_0000.seg.nrrd"

#: command -> (arguments with {in} for the cohorts' folder, when it is working)
COMMANDS: dict[str, tuple[list[str], Callable[[Run, Path], bool]]] = {
    # inference under way: a progress line past "loading model"
    "seg predict": (["seg", "predict", f"{{in}}/{SEG_IMAGE}", "--out", "O", "--device", "cpu", "--uncertainty"],
                    progress(r"^PROGRESS \d+/\d+ (?!loading model)")),
    # every reference checked, the model loading or running
    "seg evaluate": (["seg", "evaluate", "--manifest", "{in}/seg/manifest.csv", "--model", "orbit_svnet_ct_demo",
                      "--out", "O", "--device", "cpu"], progress(r"^PROGRESS 2/2 checked")),
    # the cases prepared, training set up in the work folder beside the bundle
    "seg train": (["seg", "train", "--manifest", "{in}/seg/manifest.csv", "--config", "svnet-demo-ct",
                   "--epochs", "1", "--out", "B", "--device", "cpu"],
                  work_folder(".B-training")),
    "tao predict": (["tao", "predict", f"{{in}}/{TAO_IMAGE}", "--segmentation", f"{{in}}/{TAO_SEG}", "--out", "O",
                     "--device", "cpu"], progress(r"^PROGRESS [23]/4 ")),
    # the first case predicted
    "tao evaluate": (["tao", "evaluate", "--manifest", "{in}/tao/manifest.csv", "--model", "B", "--out", "O",
                      "--no-maps", "--device", "cpu"], progress(r"^PROGRESS 1/4 ")),
    # preprocessing under way in the work folder beside the bundle
    "tao train": (["tao", "train", "--manifest", "{in}/tao/manifest.csv", "--network", "demo-b", "--epochs", "3",
                   "--holdout", "0.5", "--out", "B", "--device", "cpu"],
                  work_folder(".B-training", r"preprocessing: preprocessed")),
    # preprocessing or the first fold under way in the hidden folder beside OUT
    "tao cv": (["tao", "cv", "--manifest", "{in}/tao/manifest.csv", "--network", "demo-b", "--folds", "2",
                "--epochs", "3", "--out", "O", "--device", "cpu"], work_folder(".O-")),
    "phantom orbit-ct": (["phantom", "orbit-ct", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    "phantom orbit-mri": (["phantom", "orbit-mri", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    "phantom orbit-synth": (["phantom", "orbit-synth", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    "phantom tao": (["phantom", "tao", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    "phantom ivgc": (["phantom", "ivgc", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    "phantom brain-flair": (["phantom", "brain-flair", "--n", "50", "--out", "C"], progress(r"^PROGRESS 1/50 ")),
    # the first case's radiomics extracted (one process: --workers 0); its per-case cache is the resume state
    "ivgc features": (["ivgc", "features", "--manifest", "{in}/ivgc/manifest.csv", "--strategies", "all",
                       "--workers", "0", "--out", "F.csv"], progress(r"^PROGRESS 1/3 ")),
    # two Dask worker processes started and the first case done: Ctrl-C to the group reaches the workers
    # too; they must go without a word (no KeyboardInterrupt traceback) and leave no scratch space
    "ivgc features --workers 2": (["ivgc", "features", "--manifest", "{in}/ivgc/manifest.csv", "--strategies",
                                   "all", "--workers", "2", "--out", "F.csv"], progress(r"^PROGRESS 1/3 ")),
    # the same while the local cluster starts (issue 32: Dask's exit hook printed a traceback, its log lines too)
    "ivgc features --workers 2 --while-starting": (["ivgc", "features", "--manifest", "{in}/ivgc/manifest.csv",
                                                    "--strategies", "all", "--workers", "2", "--out", "F.csv"],
                                                   dask_starting),
    # ResNet-50 (no radiomics needed) set up in the work folder beside the bundle, its first epoch under way
    "ivgc train": (["ivgc", "train", "--manifest", "{in}/ivgc/manifest.csv", "--model", "resnet50", "--epochs", "3",
                    "--holdout", "0", "--out", "B", "--device", "cpu"], work_folder(".B-training")),
    # brain extraction under way (the lesions given: no lesion bundle needed)
    "neuro lesions": (["neuro", "lesions", "{in}/brain/images/brain_flair_0000.nrrd", "--lesions",
                       "{in}/brain/segmentations/brain_flair_0000.seg.nrrd", "--out", "O", "--device", "cpu"],
                      progress(r"^PROGRESS 1/4 ")),
    # the classifier inputs being made in the work folder beside the bundle
    "neuro train": (["neuro", "train", "--manifest", "{in}/brain/manifest.csv", "--config", "twoview18-demo",
                     "--epochs", "3", "--holdout", "0", "--out", "B", "--device", "cpu"], work_folder(".B-training")),
    # the child 'seg predict' runs
    "demo": (["demo", "--out", "X", "--device", "cpu"], child_started("seg predict")),
}

#: What a cancelled command keeps on purpose: its resume state (finished cases of ``ivgc features``, each a
#: checksummed file and its ``.sha256``; a rerun reuses them), nothing else.
RESUME_STATE = {name: re.compile(r"^F\.csv\.cache(/[\w.-]+\.npz(\.sha256)?)?$")
                for name in ("ivgc features", "ivgc features --workers 2", "ivgc features --workers 2 --while-starting")}

#: Cases run under ``-m slow`` only. Both signals take one path (`orbitai.progress.cancel_on_signals`), so the
#: default suite gives each command one of them, SIGINT and SIGTERM in turn down the list (both to the Dask
#: runs, whose workers are a process group of their own); the phantom kinds share one writer and one staging,
#: so two kinds run by default.
PHANTOMS = {f"phantom {kind}" for kind in ("orbit-ct", "orbit-mri", "orbit-synth", "tao", "ivgc", "brain-flair")}
BOTH_SIGNALS = {"ivgc features --workers 2"}


def _slow(name: str, sig: str) -> bool:
    if name in PHANTOMS:
        return (name, sig) not in {("phantom orbit-ct", "SIGINT"), ("phantom tao", "SIGTERM")}
    if name in BOTH_SIGNALS:
        return False
    others = [n for n in COMMANDS if n not in PHANTOMS and n not in BOTH_SIGNALS]
    return sig != ("SIGINT", "SIGTERM")[others.index(name) % 2]


def _cases():
    for name in COMMANDS:
        for sig in (signal.SIGINT, signal.SIGTERM):
            marks = [pytest.mark.slow] if _slow(name, sig.name) else []
            yield pytest.param(name, sig, id=f"{name.replace(' ', '-')}-{sig.name}", marks=marks)


@pytest.mark.parametrize("name, sig", list(_cases()))
def test_cancel_leaves_no_process_and_no_file(cohorts, tmp_path, name, sig):
    args, ready = COMMANDS[name]
    run_dir, tmpdir = tmp_path / "run", tmp_path / "tmp"
    run_dir.mkdir()
    tmpdir.mkdir()
    before = listing(cohorts)
    run = Run.start([a.replace("{in}", str(cohorts)) for a in args], run_dir, tmpdir)
    run.wait_for(f"{name} to be working", lambda: ready(run, run_dir))
    children = descendants(run.proc.pid)
    send(run, sig)
    err = run.finish()
    command = "phantom" if name.startswith("phantom") else name.split(" --")[0]
    assert run.proc.returncode == 130, (err, "".join(run.stdout)[-1500:])
    assert err == [f"orbitai {command}: cancelled"]
    deadline = time.monotonic() + 5
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [processes()[p][2] for p in children if alive(p)], "processes were left running"
    # the group as a whole, given the same grace: a process still exiting (its command line already empty) is not
    # one left running (a fresh-clone run once caught one at the moment of looking)
    deadline = time.monotonic() + 5
    while (in_group := [cmd for _, state, cmd in processes(group=run.proc.pid).values() if state != "Z"]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not in_group, ("processes were left in the command's process group", in_group)
    assert not naming(tmp_path) and not naming(cohorts), "processes were left running"
    kept = RESUME_STATE.get(name)
    left = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*")]
    assert [p for p in left if kept is None or not kept.match(p)] == [], "files were left in the run folder"
    left_tmp = [p for p in tmpdir.iterdir() if not TORCH_CACHE.match(p.name)]
    assert left_tmp == [], ("files were left in the TMPDIR", [str(p.relative_to(tmpdir)) for d in left_tmp
                                                              for p in (d, *sorted(d.rglob("*")))][:20])
    assert listing(cohorts) == before, "the inputs changed"


@pytest.mark.slow  # two TAO trainings (about a minute)
def test_cancelled_training_keeps_only_its_checkpoint(cohorts, tmp_path):
    """A training cancelled after an epoch keeps its work folder (checkpoint, cache, per-epoch CSV) and says
    so; nothing else is left, and the same command then resumes from the checkpoint and finishes."""
    import csv

    run_dir, tmpdir = tmp_path / "run", tmp_path / "tmp"
    run_dir.mkdir()
    tmpdir.mkdir()
    args = ["tao", "train", "--manifest", f"{cohorts}/tao/manifest.csv", "--network", "demo-b", "--epochs", "12",
            "--holdout", "0.5", "--out", "B", "--device", "cpu"]
    run = Run.start(args, run_dir, tmpdir)
    run.wait_for("the first epoch's checkpoint", lambda: progress(r"^PROGRESS 1/12 epoch 1/12")(run, run_dir))
    send(run, signal.SIGTERM)
    err = run.finish()
    assert run.proc.returncode == 130 and err == ["orbitai tao train: cancelled"], err
    work = run_dir / ".B-training"
    assert any("kept the checkpoint .B-training/checkpoint.pt: run the same command again to resume" in line
               for line in run.stdout), run.stdout[-3:]
    assert [p.name for p in run_dir.iterdir()] == [".B-training"]
    assert {"checkpoint.pt", "epochs.csv"} <= {p.name for p in work.iterdir()}
    assert not [p for p in work.rglob("*") if p.name.startswith(".tmp") or p.suffix == ".tmp"], "a partial file"
    done = len(list(csv.DictReader((work / "epochs.csv").open())))
    assert 1 <= done < 12

    rerun = Run.start(args, run_dir, tmpdir)
    assert rerun.finish(timeout=300) == [] and rerun.proc.returncode == 0, "".join(rerun.stderr)
    # the bundle written, its work folder goes (orbitai.staging.training_folder); the epochs' log is in its metadata
    assert not work.exists()
    epochs = [h["epoch"] for h in json.loads((run_dir / "B" / "metadata.json").read_text())["training"]["history"]]
    assert epochs == list(range(1, 13)), epochs   # resumed: each epoch once, none redone
    assert not any("PROGRESS 1/12 " in line for line in rerun.stdout), "the rerun started over"
