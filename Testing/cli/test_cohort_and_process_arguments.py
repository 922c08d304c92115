"""Arguments of a cohort (``--manifest``) and of a training on several processes (``--nproc``): an option that a
manifest run cannot honour is refused in one line, ``--nproc`` is bounded and every argument is checked before any
process or folder is made, and a rank killed from outside is one line naming it, with nothing left beside --out."""
from __future__ import annotations

import inspect
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from orbitai.training import launch
from orbitai.cli import build_parser, main
from orbitai.phantoms.cohort import write_cohort

SEED = 777341  # never used for training cohorts


@pytest.fixture(scope="module")
def tao_cohort(tmp_path_factory) -> Path:
    return write_cohort("tao", 8, SEED, tmp_path_factory.mktemp("tao") / "c", montage_cases=0)


def _err(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


@pytest.mark.parametrize("command", [["seg", "predict"], ["tao", "predict"], ["ivgc", "predict"],
                                     ["neuro", "lesions"], ["neuro", "predict"]], ids=" ".join)
@pytest.mark.parametrize("option, message", [
    (["--series", "1.2.3"], "--series chooses the series of one image; with --manifest give each case's series"),
    (["--dicom-attributes", '{"PatientID": "123"}'], "--dicom-attributes gives the patient and study of one image; "
                                                     "it cannot apply to every case of --manifest"),
], ids=["series", "dicom-attributes"])
def test_one_image_options_with_a_manifest_are_refused_not_ignored(tmp_path, capsys, command, option, message):
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,segmentation\na,a.nrrd,a.seg.nrrd\n")
    assert main([*command, "--manifest", str(manifest), "--out", str(tmp_path / "o"), *option]) == 2
    err = _err(capsys)
    assert len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]


def _training_commands() -> list[tuple[str, object]]:
    """(command, function) of every command with --nproc."""
    found = []

    def walk(parser, name):
        for action in parser._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for sub, p in action.choices.items():
                    walk(p, f"{name} {sub}".strip())
        if any("--nproc" in a.option_strings for a in parser._actions):
            found.append((name, parser.get_default("func")))

    walk(build_parser(), "")
    return found


def test_every_command_with_nproc_stops_its_check_pass_before_training():
    commands = _training_commands()
    assert {c for c, _ in commands} >= {"seg train", "tao train", "ivgc train", "neuro train"}
    for name, func in commands:
        assert "arguments_checked()" in inspect.getsource(func), f"{name} never ends the launcher's check pass"


@pytest.fixture
def no_launch(monkeypatch):
    """`launch.launch` recorded, not run: the ranks' processes are not started."""
    calls: list[tuple] = []
    monkeypatch.setattr(launch, "launch", lambda argv, nproc, verbose=False, out=None: calls.append((nproc, out)) or 0)
    return calls


def test_nproc_is_bounded_by_the_usable_cores(tmp_path, capsys, no_launch):
    n = launch.usable_cores() + 1
    assert main(["tao", "train", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "b"),
                 "--nproc", str(n)]) == 2
    assert _err(capsys) == [f"orbitai tao train: error: --nproc {n} is more than the {n - 1} core(s) this process "
                            f"may use; give at most {n - 1}."]
    assert not no_launch and not list(tmp_path.iterdir())


@pytest.mark.skipif(launch.usable_cores() < 2, reason="--nproc 2 needs 2 cores")
@pytest.mark.parametrize("extra, message", [
    (["--manifest", "{tmp}/missing.csv"], "Manifest not found"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0."),
    (["--holdout", "1.5"], "--holdout must be a fraction in [0, 1), got 1.5."),
], ids=["missing-manifest", "epochs", "holdout"])
def test_every_argument_is_checked_before_any_rank_starts(tmp_path, capsys, no_launch, tao_cohort, extra, message):
    manifest = tao_cohort
    argv = ["tao", "train", "--manifest", str(manifest), "--network", "B", "--device", "cpu",
            "--out", str(tmp_path / "new" / "deep" / "b"), "--nproc", "2"]
    assert main([*argv, *(a.format(tmp=tmp_path) for a in extra)]) == 2
    err = _err(capsys)
    assert len(err) == 1 and message in err[0], err
    assert not no_launch and not list(tmp_path.iterdir())


@pytest.mark.skipif(launch.usable_cores() < 2, reason="--nproc 2 needs 2 cores")
def test_good_arguments_reach_the_launcher_without_training_in_it(tmp_path, capsys, no_launch, monkeypatch,
                                                                  tao_cohort):
    import orbitai.tao.train as tao_train

    monkeypatch.setattr(tao_train, "train_tao", lambda *a, **k: pytest.fail("trained in the launcher's process"))
    manifest = tao_cohort
    out = str(tmp_path / "b")
    assert main(["tao", "train", "--manifest", str(manifest), "--network", "B", "--device", "cpu", "--out", out,
                 "--nproc", "2"]) == 0
    assert no_launch == [(2, out)] and not list(tmp_path.iterdir())


@pytest.mark.skipif(launch.usable_cores() < 2, reason="--nproc 2 needs 2 cores")
def test_a_bad_argument_on_two_processes_starts_no_rank_and_makes_no_folder(tmp_path, tao_cohort):
    """The real command line: no rank's process starts (its scratch folder would make OUT's parents)."""
    manifest = tao_cohort
    r = subprocess.run([sys.executable, "-m", "orbitai", "tao", "train", "--manifest", str(manifest), "--epochs", "0",
                        "--out", str(tmp_path / "new" / "deep" / "b"), "--nproc", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["orbitai tao train: error: --epochs must be at least 1, got 0."]
    assert not list(tmp_path.iterdir())


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow   # about 30 s: two ranks train an epoch before the kill
@pytest.mark.skipif(launch.usable_cores() < 2, reason="--nproc 2 needs 2 cores")
def test_a_rank_killed_by_sigkill_is_one_line_naming_it_and_leaves_no_scratch_folder(tmp_path, tao_cohort):
    manifest = tao_cohort
    run = tmp_path / "run"
    run.mkdir()
    cmd = [sys.executable, "-m", "orbitai", "tao", "train", "--manifest", str(manifest), "--network", "B",
           "--epochs", "4", "--holdout", "0", "--device", "cpu", "--out", str(run / "b"), "--nproc", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = run / ".b-training" / "checkpoint.pt"     # an epoch done: every rank is training
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    ranks = [c for c in _children(proc.pid) if "orbitai" in " ".join(c.cmdline())]
    second = [c for c in ranks if c.environ().get("RANK") == "1"]
    assert len(ranks) == 2 and len(second) == 1, "two ranks run under the launcher"
    assert [p.name for p in run.iterdir() if p.name.startswith(".b-ranks-")], "rank 1 writes beside --out"
    second[0].send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines() == [
        "orbitai tao train: error: process 1 of 2 was killed by SIGKILL (out of memory?); run again (the training "
        "resumes from its last checkpoint) or with fewer processes."]
    gone, alive = psutil.wait_procs(ranks, timeout=30)
    assert not alive, "every rank has stopped"
    assert sorted(p.name for p in run.iterdir()) == [".b-training"]      # the checkpoint to resume from, no scratch


def test_a_rank_error_file_cut_short_is_passed_over(tmp_path):
    """A rank killed while writing its error leaves an empty or partial file: the launcher says another rank's
    line, or the exit code, never a ValueError of its own."""
    from types import SimpleNamespace

    (tmp_path / "0.txt").write_text("")                                  # killed before a byte was written
    (tmp_path / "1.txt").write_text("2\nthe manifest has no image column\n")
    failures = {0: SimpleNamespace(exitcode=1), 1: SimpleNamespace(exitcode=2)}
    assert launch._failure_line(tmp_path, failures, 2) == ("the manifest has no image column", 2)
    (tmp_path / "1.txt").write_text("2")                                  # cut short: no line
    with pytest.raises(launch.JobError, match="process 0 of 2 ended with exit code 1"):
        launch._failure_line(tmp_path, failures, 2)


def test_a_rank_writes_its_error_whole(tmp_path, monkeypatch):
    monkeypatch.setenv(launch.ERRORS_ENV, str(tmp_path))
    monkeypatch.setenv(launch.WORLD_ENV, "2")
    monkeypatch.setenv(launch.RANK_ENV, "1")
    written: list[str] = []
    real = launch.write_text_atomic
    monkeypatch.setattr(launch, "write_text_atomic", lambda path, text: written.append(text) or real(path, text))
    launch.report_error("bad input", 2)
    assert written == ["2\nbad input\n"] and [p.name for p in tmp_path.iterdir()] == ["1.txt"]
