"""The warm worker (#20): jobs reuse one ``python -m orbitai.worker`` child, with `OrbitaiJob`'s semantics
(``{out}`` handed over only on success, one-line errors, cancel), restart after a kill or a crash, an exit
when the parent dies, and the opt-in model cache of `orbitai.bundle.core`."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

from orbitai.errors import JobError
from orbitai.mrml.jobs import child_error
from orbitai.jobs.child import OrbitaiJob
from orbitai.jobs.process import JobResult
from orbitai.testing import process_gone, wait_for_progress
from orbitai.jobs.warm import WarmJob, WarmWorker

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and process groups")

REPO = Path(__file__).resolve().parents[2]
#: A command that runs for many seconds, reports progress from the first second and writes into {out}.
LONG = ["phantom", "orbit-ct", "--n", "300", "--montage-cases", "0", "--out", "{out}/cohort"]


@pytest.fixture(scope="module")
def worker():
    w = WarmWorker()
    yield w
    w.shutdown()


def _maps_torch(pid: int) -> bool:
    """Whether process ``pid`` has torch's C++ library mapped (torch is imported there)."""
    with open(f"/proc/{pid}/maps") as f:
        return any("libtorch" in line for line in f)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/PID/maps")
def test_second_job_reuses_the_worker_and_skips_the_imports(worker):
    """The second job runs in the worker process that already holds torch: it imports nothing again (how much
    that saves is `python -m benchmarks worker`, not a bound here)."""
    first = WarmJob(["info"], worker=worker).run()
    pid = worker.pid
    assert _maps_torch(pid), "torch is not loaded in the warm worker after its first job"
    job = WarmJob(["info"], worker=worker).start()
    second = job.result()
    assert job.warm and job.worker_pid == pid, "the second job did not run in the worker that holds torch"
    assert first.ok and second.ok and any(ln.startswith("torch") for ln in second.stdout), second.stdout
    assert worker.starts == 1 and worker.alive() and worker.pid == pid


def test_outputs_handed_over_only_on_success(worker, tmp_path):
    dest = tmp_path / "ok"
    res = WarmJob(["phantom", "orbit-ct", "--n", "1", "--montage-cases", "0", "--out", "{out}/cohort"],
                  dest=dest, worker=worker).run()
    assert res.ok and res.out_dir == dest
    assert (dest / "cohort" / "manifest.csv").is_file()
    failing = WarmJob(["seg", "predict", str(tmp_path / "missing.nrrd"), "--out", "{out}/seg"],
                      dest=tmp_path / "failed", worker=worker)
    with pytest.raises(JobError, match=r"exit 2.*No such file or directory"):
        failing.run()
    assert failing.warm and not (tmp_path / "failed").exists() and not failing.tmp.exists()


def test_failing_job_error_is_one_line_as_from_a_child(worker, tmp_path):
    args = ["seg", "predict", str(tmp_path / "missing.nrrd"), "--out", "{out}/seg"]
    res = WarmJob(args, worker=worker).run(check=False)
    assert isinstance(res, JobResult) and res.returncode == 2 and not res.ok and res.out_dir is None
    assert res.stderr.strip().splitlines() == [
        f"orbitai seg predict: error: No such file or directory: {tmp_path / 'missing.nrrd'} "
        "(check the path and its permissions)"]
    assert child_error("Segmentation", args, res) == (
        f"Segmentation failed: No such file or directory: {tmp_path / 'missing.nrrd'} (check the path and its permissions)")
    usage = WarmJob(["seg", "predict"], worker=worker).run(check=False)  # argparse exits 2 inside the worker
    assert usage.returncode == 2 and "error: the following arguments are required" in usage.stderr
    assert WarmJob(["info"], worker=worker).run().ok


def test_cancel_interrupts_the_job_and_the_worker_goes_on(worker, tmp_path):
    WarmJob(["info"], worker=worker).run()
    pid = worker.pid
    job = WarmJob(LONG, dest=tmp_path / "out", worker=worker).start()
    assert job.warm and job.worker_pid == pid
    wait_for_progress(job)
    job.cancel()
    res = job.result()
    assert res.cancelled and not res.ok and res.out_dir is None
    assert not (tmp_path / "out").exists() and not job.tmp.exists()
    # interrupted inside the worker (a Python loop stops at once), not killed: the same worker serves on
    assert res.returncode == 130 and res.stderr.strip() == "orbitai phantom: cancelled"
    assert WarmJob(["info"], worker=worker).run().ok and worker.pid == pid


def test_cancel_kills_a_worker_that_does_not_stop_in_time(tmp_path):
    w = WarmWorker(preload=False)
    try:
        job = WarmJob(LONG, dest=tmp_path / "out", worker=w).start()
        wait_for_progress(job)
        pid = job.worker_pid
        job.cancel(grace_s=0.0)  # no time to stop: the worker is killed
        res = job.result()
        assert res.cancelled and res.returncode == -signal.SIGKILL and "worker" not in res.stderr
        assert not (tmp_path / "out").exists() and not job.tmp.exists()
        assert WarmJob(["info"], worker=w).run().ok and w.pid != pid and w.starts == 2
    finally:
        w.shutdown()


def test_cancel_through_run_event(worker, tmp_path):
    cancel = threading.Event()
    job = WarmJob(LONG, dest=tmp_path / "out", worker=worker)
    threading.Timer(1.0, cancel.set).start()
    with pytest.raises(JobError, match="Cancelled"):
        job.run(cancel=cancel)
    assert not (tmp_path / "out").exists() and not job.tmp.exists()


@pytest.mark.slow   # over 15 s; the worker's other tests keep it in the default suite
def test_busy_worker_runs_a_second_job_in_its_own_child(worker, tmp_path):
    long_job = WarmJob(LONG, worker=worker).start()
    try:
        second = WarmJob(["info"], worker=worker).start()
        assert not second.warm and second.proc is not None  # a one-shot child, not a wait
        assert second.run().ok
    finally:
        long_job.cancel()
        long_job.result()


@pytest.mark.slow   # over 15 s; the worker's other tests keep it in the default suite
def test_a_killed_worker_is_restarted_on_the_next_job(tmp_path):
    w = WarmWorker(preload=False)
    try:
        assert WarmJob(["info"], worker=w).run().ok
        pid = w.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert process_gone(pid), f"process {pid} still alive"
        res = WarmJob(["info"], worker=w).run()
        assert res.ok and w.pid != pid and w.starts == 2
    finally:
        w.shutdown()


def test_a_worker_dying_mid_job_fails_that_job_with_one_line(tmp_path):
    w = WarmWorker(preload=False)
    try:
        job = WarmJob(LONG, dest=tmp_path / "out", worker=w).start()
        wait_for_progress(job)
        os.kill(job.worker_pid, signal.SIGKILL)
        res = job.result()
        assert res.returncode == -signal.SIGKILL and not res.ok and res.out_dir is None
        assert not (tmp_path / "out").exists() and not job.tmp.exists()
        message = child_error("Orbit phantoms", job.args, res)
        assert "\n" not in message and message.startswith(
            "Orbit phantoms stopped unexpectedly (killed by signal SIGKILL: orbitai worker: the worker process "
            "ended during the job"), message
        assert WarmJob(["info"], worker=w).run().ok and w.starts == 2
    finally:
        w.shutdown()


def test_the_worker_exits_when_its_parent_dies(tmp_path):
    code = ("import sys, time; from orbitai.jobs.warm import WarmWorker, WarmJob\n"
            "w = WarmWorker(preload=False); w.start(); print(w.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert process_gone(pid), f"process {pid} still alive"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_jobs_run_with_the_callers_folder_and_environment(worker, tmp_path, monkeypatch):
    """A relative --out is the caller's current folder at start, not the worker's; TMPDIR is the caller's."""
    monkeypatch.chdir(tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # an earlier test's cancel may have had to kill the shared worker under load: make sure one is up first
    assert WarmJob(["info"], worker=worker).run().ok
    pid, starts = worker.pid, worker.starts
    job = WarmJob(["phantom", "orbit-ct", "--n", "1", "--montage-cases", "0", "--out", "rel"], worker=worker,
                  env={"TMPDIR": str(tmpdir)}).start()
    assert job.warm and job.worker_pid == pid, "the job did not run in the warm worker"
    res = job.result()
    assert res.ok and (tmp_path / "rel" / "manifest.csv").is_file()
    assert worker.starts == starts


def test_a_job_needing_another_interpreter_setup_runs_in_its_own_child(worker, tmp_path):
    job = WarmJob(["info"], worker=worker, env={"OMP_NUM_THREADS": "1" if os.environ.get("OMP_NUM_THREADS") != "1"
                                                 else "2"}).start()
    assert not job.warm and job.proc is not None and job.run().ok


def test_worker_state_is_put_back_after_a_job(tmp_path):
    """What a command may change (folder, environment, argv, logging, warnings, umask) is restored."""
    from orbitai.worker import _State

    state = _State()
    before = (os.getcwd(), dict(os.environ), list(sys.argv), logging.getLogger().level,
              list(logging.getLogger().handlers), list(warnings.filters), tempfile.gettempdir())
    umask = os.umask(0)
    os.umask(umask)
    try:
        state.before_job({**os.environ, "ORBITAI_JOB_VAR": "1", "TMPDIR": str(tmp_path)}, str(tmp_path))
        assert os.getcwd() == str(tmp_path) and os.environ["ORBITAI_JOB_VAR"] == "1"
        assert tempfile.gettempdir() == str(tmp_path)
        sys.argv[:] = ["orbitai", "x"]
        logging.basicConfig(level=logging.DEBUG, force=False)
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger().addHandler(logging.StreamHandler())
        warnings.simplefilter("ignore")
        os.umask(0o077)
    finally:
        state.restore()
    after = (os.getcwd(), dict(os.environ), list(sys.argv), logging.getLogger().level,
             list(logging.getLogger().handlers), list(warnings.filters), tempfile.gettempdir())
    assert after == before
    assert os.umask(umask) == umask


# ------------------------------------------------------------------------------------------------ model cache
@pytest.fixture()
def small_bundle(tmp_path):
    import orbitai.orbit  # noqa: F401  (registers the orbit networks; the test passed only after another module did)
    from orbitai.bundle import find_bundle

    src = find_bundle("orbit_sequnet_ct_demo").path
    dst = tmp_path / "bundle"
    shutil.copytree(src, dst)
    return dst


@pytest.fixture()
def model_cache():
    from orbitai.bundle.core import disable_model_cache, enable_model_cache

    disable_model_cache()          # a fresh cache: an earlier test in this process (a cohort run) may hold one
    cache = enable_model_cache()
    yield cache
    disable_model_cache()


def test_model_cache_returns_the_same_model_until_the_weights_change(small_bundle, model_cache):
    import torch

    from orbitai.bundle.core import WEIGHTS, load_bundle

    first = load_bundle(small_bundle).load_model("cpu")
    assert load_bundle(small_bundle).load_model("cpu") is first
    assert model_cache.hits == 1 and model_cache.misses == 1
    # the weights file replaced (same content, new file): loaded afresh and verified again
    weights = small_bundle / WEIGHTS
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data)
    second = load_bundle(small_bundle).load_model("cpu")
    assert second is not first
    assert load_bundle(small_bundle).load_model("cpu") is second
    # a caller that changed the model (trained it in place) does not hand it on
    with torch.no_grad():
        next(second.parameters()).add_(1.0)
    third = load_bundle(small_bundle).load_model("cpu")
    assert third is not second and third.training is False
    # a corrupted weights file is refused, not served from the cache
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    from orbitai.errors import BundleError

    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(small_bundle).load_model("cpu")


def test_without_the_cache_every_load_builds_a_new_model(small_bundle):
    from orbitai.bundle.core import load_bundle

    b = load_bundle(small_bundle)
    assert b.load_model("cpu") is not b.load_model("cpu")


def test_module_logics_use_the_warm_worker_unless_switched_off(monkeypatch):
    from orbitai.mrml.jobs import JobLogic

    class Logic(JobLogic):
        pass

    logic = object.__new__(Logic)  # makeJob needs no scene
    monkeypatch.delenv("ORBITAI_WARM_WORKER", raising=False)
    assert type(logic.makeJob(["info"])) is WarmJob
    monkeypatch.setenv("ORBITAI_WARM_WORKER", "0")
    assert type(logic.makeJob(["info"])) is OrbitaiJob
    monkeypatch.delenv("ORBITAI_WARM_WORKER")
    monkeypatch.setattr(Logic, "warm_worker", False)
    assert type(logic.makeJob(["info"])) is OrbitaiJob


def test_a_worker_that_died_is_replaced_without_waiting_on_the_main_thread(monkeypatch):
    """Apply starts the warm worker (issue #63): when the last one has died, it is reaped without ``Popen.wait`` (the
    press would wait on it; a full run failed `test_no_model_work_in_process` so)."""
    from orbitai.jobs.warm import WarmWorker

    worker = WarmWorker(preload=False).start()
    first = worker._proc
    try:
        first.kill()
        while first.popen.poll() is None:
            time.sleep(0.02)

        def no_waiting(self, *args, **kwargs):
            raise AssertionError("waited on a worker that had ended")

        with monkeypatch.context() as m:
            m.setattr(subprocess.Popen, "wait", no_waiting)
            worker.start()
        assert worker._proc is not first and worker.alive() and worker.starts == 2
    finally:
        if worker._proc is not None:
            worker._proc.close()


def test_an_import_cut_short_by_a_cancel_is_noticed():
    # a cancel inside ``import pydicom`` left pydicom's submodules without their package in a warm worker; its next
    # job failed with "partially initialized module 'pydicom' has no attribute 'uid'". After a cancelled job with
    # such leftovers the worker ends, and the parent starts a fresh one for the next job.
    from orbitai.worker import imports_cut_short

    assert imports_cut_short() == []
    left = {name: None for name in ("os", "os.path", "pydicom.uid", "pydicom.config")}
    assert imports_cut_short(left) == ["pydicom.config", "pydicom.uid"]
