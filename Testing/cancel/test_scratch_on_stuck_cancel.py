"""A command ended from its watcher thread (`orbitai.cli.stop_when_stuck`: a cancel that finds the main thread stuck
for a second, say in closing a Dask cluster on a loaded machine) leaves no scratch folder in ``TMPDIR``: the Dask
cluster's and the DDP launcher's temporary folders are removed by `staging.remove_unfinished`, which the watcher
runs before it exits. (CI once found ``orbitai-dask-*`` left after ``ivgc features --workers 2`` got SIGTERM.)"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from orbitai import staging
from orbitai.cohort import cluster
from orbitai.training import launch


@pytest.fixture()
def tmpdir_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_a_scratch_folder_goes_with_the_block_and_with_a_stop_from_outside(tmpdir_only: Path) -> None:
    with staging.scratch_folder("orbitai-x-") as folder:
        (folder / "lock").write_text("held")
        assert folder.parent == tmpdir_only and folder.is_dir()
    assert list(tmpdir_only.iterdir()) == []
    with staging.scratch_folder("orbitai-x-") as folder:
        (folder / "lock").write_text("held")
        staging.remove_unfinished()          # what the watcher does before os._exit
        assert not folder.exists()


def test_the_local_dask_clusters_scratch_is_removed_by_a_stop_from_outside(tmpdir_only: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import dask
    import dask.distributed

    class Closable:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.kwargs = kwargs

        def close(self) -> None:
            pass

    monkeypatch.setattr(cluster, "_start_local_cluster", Closable)
    monkeypatch.setattr(dask.distributed, "Client", Closable)
    with cluster.dask_client(workers=2, scheduler=None, n_tasks=2):
        scratch = Path(dask.config.get("temporary-directory"))
        (scratch / "worker-1.dirlock").write_text("")
        assert scratch.parent == tmpdir_only
        staging.remove_unfinished()
        assert list(tmpdir_only.iterdir()) == []


def test_the_ddp_launchers_logs_folder_is_removed_by_a_stop_from_outside(tmpdir_only: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def stopped_from_outside(argv: object, nproc: int, verbose: bool, out: object, logs: str) -> int:
        (Path(logs) / "error.json").write_text("{}")
        staging.remove_unfinished()
        seen.append(Path(logs))
        return 130

    monkeypatch.setattr(launch, "_launch", stopped_from_outside)
    assert launch.launch(["tao", "train"], nproc=2) == 130
    assert seen and seen[0].parent == tmpdir_only
    assert list(tmpdir_only.iterdir()) == []


# A worker process still starting when the cluster's scratch folder is removed makes it anew (Dask's WorkSpace creates
# its whole path): CI once found ``orbitai-dask-*`` left after ``ivgc features --workers 2`` got SIGINT while starting.
_LATE_WORKER = ("import os, sys, time; time.sleep(float(sys.argv[2])); "
                "os.makedirs(os.path.join(sys.argv[1], 'dask-scratch-space', 'worker-1'), exist_ok=True)")
# the same worker started by a parent that ends at once: no longer this process's descendant
_ORPHANED_WORKER = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[3], sys.argv[1], "
                    "sys.argv[2]])")


@pytest.mark.parametrize("orphaned", [False, True], ids=["child", "orphaned"])
@pytest.mark.parametrize("outside", [False, True], ids=["block-ends", "stop-from-outside"])
def test_a_late_worker_cannot_leave_the_clusters_scratch_behind(tmpdir_only: Path, orphaned: bool,
                                                               outside: bool) -> None:
    import os
    import subprocess
    import sys
    import time

    processes = cluster._ClusterProcesses()
    env = dict(os.environ, **{cluster.CLUSTER_MARK: processes.token})
    with staging.scratch_folder("orbitai-dask-", processes.end) as folder:
        args = ["-c", _ORPHANED_WORKER, str(folder), "1.0", _LATE_WORKER] if orphaned else \
            ["-c", _LATE_WORKER, str(folder), "1.0"]
        started = subprocess.Popen([sys.executable, *args], env=env)
        if outside:
            staging.remove_unfinished()
            assert not folder.exists()
    started.wait(10)
    time.sleep(1.5)                 # past the worker's own 1 s: it ran to its end before the removal
    assert list(tmpdir_only.iterdir()) == []
    assert processes._marked() == []


def test_a_worker_that_does_not_end_is_killed_before_the_scratch_goes(tmpdir_only: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import sys

    monkeypatch.setattr(cluster, "CHILDREN_GRACE_S", 0.5)
    processes = cluster._ClusterProcesses()
    env = dict(os.environ, **{cluster.CLUSTER_MARK: processes.token})
    with staging.scratch_folder("orbitai-dask-", processes.end) as folder:
        stuck = subprocess.Popen([sys.executable, "-c", _LATE_WORKER, str(folder), "60"], env=env)
    assert stuck.wait(10) != 0 and not folder.exists()
    assert list(tmpdir_only.iterdir()) == []


def test_a_worker_started_by_one_killed_at_the_end_is_killed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """`_ClusterProcesses.end` kills what is left after the grace, and again what those left behind: a worker killed
    just after it started one of its own (which no scan had seen yet) left that one running past the end, and it
    made the cluster's scratch folder anew after its removal (CI under load: ``block-ends-orphaned`` above)."""
    import psutil

    class Fake:
        def __init__(self, pid: int) -> None:
            self.pid, self.alive = pid, True

        def is_running(self) -> bool:
            return self.alive

        def status(self) -> str:
            return psutil.STATUS_RUNNING if self.alive else psutil.STATUS_ZOMBIE

        def kill(self) -> None:
            self.alive = False

    first, second = Fake(101), Fake(102)

    def marked(self: object) -> list:
        # the second is started by the first as the first is killed: seen only once the first is gone
        return [p for p in (first, second) if p.alive and (p is first or not first.alive)]

    monkeypatch.setattr(cluster, "CHILDREN_GRACE_S", 0.2)
    monkeypatch.setattr(cluster._ClusterProcesses, "_marked", marked)
    cluster._ClusterProcesses().end()
    assert not first.alive and not second.alive
