"""Training on several processes (issue 34): ``orbitai <task> train --nproc N`` on torch DDP (gloo on CPU), the
same global batch, schedule and seeds as one process; rank 0 alone writes; resume and cancel stop every rank.

Tolerances (stated in docs/cli.md, "Training on several processes"): one training step on 2 ranks equals the one-process step to 1e-5 (outputs,
gradients, batch-norm statistics); the first epoch's mean loss to 1e-5; later epochs drift by float summation order
only, as much as one process run on 1 thread instead of 2 does (measured 0.6-1.5 % after 3 epochs on the TAO
phantoms): within 2 %."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from orbitai.cli import main
from orbitai.phantoms.cohort import write_cohort
from orbitai.testing.cli import run_cli
from orbitai.testing.servers import free_port

SEED = 777340  # never used for training cohorts


@pytest.mark.parametrize("global_layers", [True, False], ids=["global-batch", "plain-ddp"])
def test_a_step_on_two_ranks_is_the_one_process_step(global_layers):
    """Batch norm over the global batch and the global batch's dropout masks (`orbitai.training.distributed.wrap`) make an
    uneven 4 + 3 split of a batch of 7 train as the whole batch on one process; plain DDP does not (the check
    can fail)."""
    import torch.multiprocessing as mp

    from orbitai.testing.ddp import one_step_check

    # A rank killed by a signal (gloo's native teardown, seen once in CI: SIGABRT "terminate called without an active
    # exception") is retried once on a new port; a failed check in a rank raises at once, never retried.
    for attempt in (0, 1):
        try:
            mp.spawn(one_step_check, args=(2, free_port(), global_layers), nprocs=2)
            return
        except mp.ProcessExitedException as exc:
            if attempt or not exc.signal_name:
                raise


def _orbitai(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orbitai", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def tao_cohort(tmp_path_factory) -> Path:
    return write_cohort("tao", 8, SEED, tmp_path_factory.mktemp("tao") / "cohort", montage_cases=0)


def _train(manifest: Path, out: Path, nproc: int, epochs: int = 3) -> subprocess.CompletedProcess:
    """One process: in this one (no interpreter of its own importing torch); several: the command as a user runs
    it, its launcher starting the ranks."""
    args = ["tao", "train", "--manifest", str(manifest), "--network", "B", "--epochs", str(epochs), "--holdout", "0",
            "--device", "cpu", "--out", str(out), "--nproc", str(nproc)]
    return run_cli(args) if nproc == 1 else _orbitai(*args)


def _history(bundle: Path) -> list[float]:
    return [h["train_loss"] for h in json.loads((bundle / "metadata.json").read_text())["training"]["history"]]


@pytest.mark.slow  # ~53 s: the default suite keeps a step on two ranks against the one-process step (above)
def test_two_processes_train_as_one(tao_cohort, tmp_path):
    """TAO Network B, 3 epochs, 2 processes vs 1 with the same global batch: the losses agree within the stated
    tolerance; rank 0 alone wrote (no scratch or work folder is left, the bundle says 2 processes)."""
    runs = {}
    for n in (1, 2):
        t0 = time.perf_counter()
        r = _train(tao_cohort, tmp_path / f"b{n}", n)
        assert r.returncode == 0, r.stderr
        runs[n] = (_history(tmp_path / f"b{n}"), time.perf_counter() - t0)
        assert "error" not in r.stderr and "Traceback" not in r.stderr
    one, two = runs[1][0], runs[2][0]
    print(f"losses 1 process {one} ({runs[1][1]:.1f} s), 2 processes {two} ({runs[2][1]:.1f} s)")
    assert len(one) == len(two) == 3
    assert abs(one[0] - two[0]) <= 1e-5
    assert all(abs(a - b) <= 0.02 * a for a, b in zip(one[1:], two[1:]))
    meta = json.loads((tmp_path / "b2" / "metadata.json").read_text())["training"]
    assert meta["processes"] == 2 and meta["epochs_run"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b1", "b2"]


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGINT, marks=pytest.mark.slow),
                                 pytest.param(signal.SIGTERM, marks=pytest.mark.slow)],
                         ids=["ctrl-c", "kill"])
def test_cancel_stops_every_rank_and_the_same_command_resumes(tao_cohort, tmp_path, sig):
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "orbitai", "tao", "train", "--manifest", str(tao_cohort), "--network", "B",
           "--epochs", "4", "--holdout", "0", "--device", "cpu", "--out", str(out), "--nproc", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / ".b-training" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not ckpt.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    ranks = [c for c in _children(proc.pid) if "orbitai" in " ".join(c.cmdline())]
    assert len(ranks) == 2, "two ranks run under the launcher"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["orbitai tao train: cancelled"]
    gone, alive = psutil.wait_procs(ranks, timeout=10)
    assert not alive, "every rank has stopped"
    assert ckpt.is_file() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b-training"]   # no rank's scratch folder is left
    done = (tmp_path / ".b-training" / "epochs.csv").read_text().splitlines()[1:]
    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    first = int(done[-1].split(",")[0]) + 1       # the last finished epoch, 1-based
    assert f"epoch {first}/4" not in rerun.stdout and "epoch 4/4" in rerun.stdout    # went on, did not start over
    assert len(_history(out)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_bad_options_are_refused_in_one_line(tmp_path, capsys, monkeypatch):
    assert main(["tao", "train", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / "b"),
                 "--nproc", "0"]) == 2
    assert capsys.readouterr().err.strip() == "orbitai tao train: error: --nproc must be at least 1, got 0."
    monkeypatch.setenv("WORLD_SIZE", "2")   # a prediction run under torchrun
    monkeypatch.setenv("RANK", "0")
    assert main(["info"]) == 2
    assert "'info' runs in one process; only the training commands" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.slow   # launches two ranks to refuse; test_two_processes_train_as_one keeps DDP in the default suite
def test_a_model_fitted_by_scikit_learn_is_refused_on_several_processes(tmp_path):
    man = write_cohort("ivgc", 4, SEED, tmp_path / "c", montage_cases=0)
    r = _orbitai("ivgc", "train", "--manifest", str(man), "--model", "svm", "--out", str(tmp_path / "b"),
                 "--nproc", "2")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "orbitai ivgc train: error: --nproc: a svm model is fitted by scikit-learn in one process; give --nproc "
        "only with a deep model (resnet50, rdinet, rdinet_clinical)."]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


@pytest.mark.slow
def test_segmentation_trains_as_one_on_two_processes(tmp_path):
    """SV-net (svnet-demo-ct, batch 2: one patch a process), 1 epoch of 30 iterations: the mean loss within 1 %."""
    man = write_cohort("orbit-ct", 2, SEED, tmp_path / "c", montage_cases=0)
    losses = {}
    for n in (1, 2):
        r = _orbitai("seg", "train", "--manifest", str(man), "--config", "svnet-demo-ct", "--epochs", "1",
                     "--device", "cpu", "--out", str(tmp_path / f"s{n}"), "--nproc", str(n))
        assert r.returncode == 0, r.stderr
        rows = (tmp_path / f"s{n}-metrics.csv").read_text().splitlines()
        losses[n] = float(rows[1].split(",")[1])
    assert abs(losses[1] - losses[2]) <= 0.01 * losses[1], losses
    assert json.loads((tmp_path / "s2" / "metadata.json").read_text())["training"]["processes"] == 2
    assert not [p for p in tmp_path.iterdir() if "rank" in p.name or p.name.endswith("-training")]


def test_one_process_is_not_distributed():
    from orbitai.training import distributed

    assert os.environ.get("WORLD_SIZE") is None
    assert distributed.world_size() == 1 and distributed.rank() == 0
    assert distributed.local_slice([3, 4, 5]) == [3, 4, 5] and distributed.loss_weight(3, 3) == 1.0
    assert distributed.sum_over_ranks([1.5, 2]) == [1.5, 2.0] and distributed.any_rank(True)


@pytest.mark.slow
@pytest.mark.parametrize("kind, argv", [
    ("ivgc", ["ivgc", "train", "--model", "resnet50"]),
    ("brain-flair", ["neuro", "train"]),
], ids=["ivgc-resnet50", "neuro-twoview"])
def test_the_other_trainings_run_on_two_processes(tmp_path, kind, argv):
    """IVGC's deep models and NeuroDifferential's classifier share the classifier loop: 2 epochs on 2 processes write a
    bundle that says so, with both epochs' losses, and nothing else."""
    man = write_cohort(kind, 8, SEED, tmp_path / "c", montage_cases=0)
    r = _orbitai(*argv, "--manifest", str(man), "--epochs", "2", "--holdout", "0", "--device", "cpu",
                 "--out", str(tmp_path / "b"), "--nproc", "2")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())["training"]
    assert meta["processes"] == 2 and len(meta["history"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]
