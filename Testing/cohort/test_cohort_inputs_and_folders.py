"""The cohort runner's resume is keyed by the inputs' content, it removes only folders it made itself, every case_id
is one portable folder name, and a ``--scheduler`` that is no (working) Dask scheduler is one line in bounded time."""
from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from orbitai.cohort import cluster, folders, runner
from orbitai.cohort.folders import WORK_MARKER, WORK_PREFIX
from orbitai.cohort.records import INPUTS_FILE, CohortCase
from orbitai.cohort.runner import FAILED_FILE, CohortError, CohortTask, run_cohort
from orbitai.errors import InputError, OrbitAIError
from orbitai.result import TaskResult


class ValueResult(TaskResult):
    task = "toy"

    def __init__(self, value: str) -> None:
        self.value = value

    def to_json(self) -> dict:
        return {"model": "toy", "warnings": [], "value": self.value}

    def _write_files(self, folder: Path) -> dict[str, str]:
        (folder / "value.txt").write_text(self.value)
        return {"value": "value.txt"}


def read_predict(options: dict, case: CohortCase, folder: Path) -> None:
    """The "prediction": the image file's text (times the option ``scale``), or a failure for "bad"."""
    text = Path(case.inputs["image"]).read_text()
    if text == "bad":
        raise InputError(f"Case {case.case_id}: the image is bad.")
    ValueResult(text * options.get("scale", 1)).write(folder)


def _task(**options) -> CohortTask:
    import functools

    return CohortTask("toy predict", functools.partial(read_predict, options), ValueResult, ("result.json", "value.txt"))


def _cases(folder: Path, values: dict[str, str]) -> list[CohortCase]:
    cases = []
    for cid, text in values.items():
        image = folder / f"{cid}.txt"
        if not image.exists() or image.read_text() != text:
            image.write_text(text)
        cases.append(CohortCase(cid, {"image": str(image)}, (str(image),)))
    return cases


def _value(out: Path, cid: str) -> str:
    return ValueResult.read_json(out / cid)["value"]


def test_a_corrected_image_runs_its_case_again(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    run_cohort(_task(), _cases(inputs, {"a": "active", "b": "active"}), out, bar=False)
    assert _value(out, "b") == "active"
    report = run_cohort(_task(), _cases(inputs, {"a": "active", "b": "inactive"}), out, bar=False)  # b corrected
    assert report.done == ["b"] and report.skipped == ["a"]
    assert _value(out, "b") == "inactive"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]          # no work folder left


def test_the_same_content_elsewhere_is_the_same_case_and_other_options_run_every_case(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    run_cohort(_task(), _cases(inputs, {"a": "x", "b": "y"}), out, bar=False)
    moved = tmp_path / "moved"
    inputs.rename(moved)                                                 # same files, another place and time
    os.utime(moved / "a.txt", ns=(1, 1))
    assert run_cohort(_task(), _cases(moved, {"a": "x", "b": "y"}), out, bar=False).skipped == ["a", "b"]
    report = run_cohort(_task(scale=2), _cases(moved, {"a": "x", "b": "y"}), out, bar=False)
    assert report.done == ["a", "b"] and _value(out, "a") == "xx"
    record = json.loads((out / "a" / INPUTS_FILE).read_text())
    assert record["options"] == {"command": "toy predict", "scale": 2}


def test_a_corrected_image_that_now_fails_leaves_no_result_of_the_old_one(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    run_cohort(_task(), _cases(inputs, {"a": "x", "b": "y"}), out, bar=False)
    with pytest.raises(CohortError, match=r"1 of 2 cases failed \(b;"):
        run_cohort(_task(), _cases(inputs, {"a": "x", "b": "bad"}), out, bar=False)
    assert sorted(p.name for p in out.iterdir()) == ["a", FAILED_FILE]


def test_a_case_without_an_input_record_is_predicted_again_and_a_foreign_file_in_it_is_kept(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    run_cohort(_task(), _cases(inputs, {"a": "x"}), out, bar=False)
    (out / "a" / INPUTS_FILE).unlink()                                   # e.g. written by an earlier version
    assert run_cohort(_task(), _cases(inputs, {"a": "x"}), out, bar=False).done == ["a"]
    (out / "a" / "notes.txt").write_text("mine")
    (inputs / "a.txt").write_text("z")
    with pytest.raises(InputError, match="holds notes.txt, not written by this command"):
        run_cohort(_task(), _cases(inputs, {"a": "z"}), out, bar=False)
    assert (out / "a" / "notes.txt").read_text() == "mine" and _value(out, "a") == "x"


def test_only_the_runners_own_work_folders_are_removed(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    mine = [out / ".a-abcd1234", out / f"{WORK_PREFIX}notmine0", out / ".b-12345678"]
    for folder in mine:                                                  # named like stage or work folders
        folder.mkdir()
        (folder / "data.txt").write_text("mine")
    killed = out / f"{WORK_PREFIX}killed00"                              # a killed run's, marked, its process gone
    (killed / "a").mkdir(parents=True)
    dead = 2 ** 22 + 12345
    while folders._alive(dead):
        dead += 1
    (killed / WORK_MARKER).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    running = out / f"{WORK_PREFIX}running0"                             # a running run's: its process lives
    running.mkdir()
    (running / WORK_MARKER).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    run_cohort(_task(), _cases(inputs, {"a": "x", "b": "y"}), out, bar=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(["a", "b", running.name, *(p.name for p in mine)])
    assert all((p / "data.txt").read_text() == "mine" for p in mine)


@pytest.mark.parametrize("case_id, message", [
    (".a-abcd1234", r"begins with '\.'"),
    (" ", "empty or only white space"),
    ("\t", "control character"),
    ("a\nb", "control character"),
    ("failed.csv", "is the name of the list of failed cases"),
    ("FAILED.CSV", "is the name of the list of failed cases"),
])
def test_a_case_id_that_cannot_be_its_own_folder_is_refused_before_any_work(tmp_path, case_id, message):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    cases = _cases(inputs, {"a": "x", "c": "bad"})
    cases.append(CohortCase(case_id, {"image": str(inputs / "a.txt")}))
    with pytest.raises(InputError, match=message) as err:
        run_cohort(_task(), cases, out, bar=False)
    assert "\n" not in str(err.value) and not out.exists()


def test_nfc_and_nfd_spellings_of_a_case_id_are_one_folder(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    (inputs / "i.txt").write_text("x")
    image = str(inputs / "i.txt")
    run_cohort(_task(), [CohortCase(nfd, {"image": image})], out, bar=False)
    assert [p.name for p in out.iterdir()] == [nfc]
    assert run_cohort(_task(), [CohortCase(nfc, {"image": image})], out, bar=False).skipped == [nfc]
    with pytest.raises(InputError, match="would share one folder"):
        run_cohort(_task(), [CohortCase(nfc, {"image": image}), CohortCase(nfd, {"image": image})], out, bar=False)


# --------------------------------------------------------------------------------------------- --scheduler
@pytest.fixture
def quick_scheduler_timeouts(monkeypatch):
    monkeypatch.setattr(cluster, "SCHEDULER_TIMEOUT", 1.0)
    monkeypatch.setattr(cluster, "WORKER_WAIT", 1.0)


@pytest.mark.timeout(120)
def test_a_port_that_accepts_and_never_answers_is_one_line_after_the_timeout(tmp_path, quick_scheduler_timeouts):
    with socket.socket() as listener:       # the kernel accepts connections into the backlog; nobody answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(InputError, match=f"{address} accepted the connection but did not answer as a Dask "
                                             "scheduler within 1 s") as err:
            run_cohort(_task(), _cases(tmp_path, {"a": "x"}), tmp_path / "out", scheduler=address, bar=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_an_http_port_is_named_as_such(tmp_path, quick_scheduler_timeouts):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server.RequestHandlerClass.log_message = lambda *a, **k: None   # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(InputError, match=f"{address} is a web \\(HTTP\\) server, not a Dask scheduler; give "
                                             "the scheduler's address") as err:
            run_cohort(_task(), _cases(tmp_path, {"a": "x"}), tmp_path / "out", scheduler=address, bar=False)
    finally:
        server.shutdown()
        server.server_close()
    assert "EiB" not in str(err.value) and not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
def test_a_scheduler_without_workers_is_waited_for_with_a_word_and_a_bound(tmp_path, quick_scheduler_timeouts,
                                                                          capsys):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        with pytest.raises(InputError, match=f"The Dask scheduler at {address} has no workers \\(none came in 1 s\\)"):
            run_cohort(_task(), _cases(tmp_path, {"a": "x"}), tmp_path / "out", scheduler=address, bar=False)
    assert f"waiting up to 1 s for a worker of the Dask scheduler at {address}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------- the user's files
def test_files_the_user_writes_into_case_folders_during_the_run_are_never_removed(tmp_path):
    """OUT/b (a complete case predicted again) and OUT/c (no folder when the run started) get the user's files
    after the run's start-up check: those cases fail with one line each and every file stays."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    run_cohort(_task(), _cases(inputs, {"a": "x", "b": "y"}), out, bar=False)

    def user_writes(cid, run, err):
        if cid == "a":
            (out / "b" / "notes.txt").write_text("mine")
            (out / "c").mkdir()
            (out / "c" / "mine.txt").write_text("mine too")

    with pytest.raises(CohortError, match=r"2 of 3 cases failed \(b, c;") as err:
        run_cohort(_task(scale=2), _cases(inputs, {"a": "x", "b": "y", "c": "z"}), out, bar=False, on_case=user_writes)
    assert "\n" not in str(err.value)
    assert (out / "b" / "notes.txt").read_text() == "mine" and (out / "c" / "mine.txt").read_text() == "mine too"
    assert sorted(p.name for p in (out / "c").iterdir()) == ["mine.txt"]
    failed = (out / FAILED_FILE).read_text()
    assert "notes.txt, not written by this command" in failed and "appeared while the run was predicting" in failed
    assert _value(out, "a") == "xx" and not [p for p in out.iterdir() if p.name.startswith(WORK_PREFIX)]


def test_a_file_written_into_an_incomplete_case_after_the_check_stops_its_removal(tmp_path, monkeypatch):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (out / "a").mkdir(parents=True)
    (out / "a" / "value.txt").write_text("half")                       # a killed run's incomplete case
    checked = runner._leftover

    def then_the_user_writes(folder, task):
        found = checked(folder, task)
        (folder / "notes.txt").write_text("mine")                       # after the start-up check
        return found

    monkeypatch.setattr(runner, "_leftover", then_the_user_writes)
    with pytest.raises(InputError, match="holds notes.txt, not written by this command"):
        run_cohort(_task(), _cases(inputs, {"a": "x"}), out, bar=False)
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    assert (out / "a" / "notes.txt").read_text() == "mine" and (out / "a" / "value.txt").read_text() == "half"


# --------------------------------------------------------------------------------------------- late workers
def test_a_worker_still_running_after_the_run_ended_writes_nothing(tmp_path):
    """A case still predicting (a remote Dask worker) when the run removed its work folder: the writer does not
    make the work folder again, or it is removed again; nothing reaches OUT."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    work = folders.make_work_folder(out, "toy predict")

    def predict_while_cancelled(case, folder):
        import shutil

        shutil.rmtree(work)                                             # the runner ends meanwhile
        ValueResult("late").write(folder)

    case = _cases(inputs, {"a": "x"})[0]
    with pytest.raises(OrbitAIError, match="the run was cancelled or ended"):
        runner.execute_case(predict_while_cancelled, case, str(out), str(work), {})
    assert list(out.iterdir()) == []


def test_a_retried_case_starts_from_an_empty_work_folder(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    work = folders.make_work_folder(out, "toy predict")
    (work / "a").mkdir()
    (work / "a" / "stale.txt").write_text("from the first attempt")    # Dask ran the task before, on a lost worker
    case = _cases(inputs, {"a": "x"})[0]
    runner.execute_case(_task().predict, case, str(out), str(work), {})
    assert sorted(p.name for p in (out / "a").iterdir()) == sorted([INPUTS_FILE, "result.json", "value.txt"])


def test_another_machines_recent_work_folder_is_kept_with_a_warning(tmp_path, capsys):
    import time

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    recent, old = out / f"{WORK_PREFIX}elsewhe1", out / f"{WORK_PREFIX}elsewhe2"
    for folder, started in ((recent, time.time() - 3600), (old, time.time() - 8 * 24 * 3600)):
        folder.mkdir()
        (folder / WORK_MARKER).write_text(json.dumps({"pid": 1, "host": "another-node", "started": started}))
    run_cohort(_task(), _cases(inputs, {"a": "x"}), out, bar=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(["a", recent.name])
    err = capsys.readouterr().err
    assert f"warning: kept {recent}: the work folder of a run on another-node" in err and str(old) not in err


# --------------------------------------------------------------------------------------------- what decides a case
def _bundle(folder: Path, weights: str) -> Path:
    from orbitai.bundle.core import BUILTIN_DIR

    folder.mkdir(parents=True, exist_ok=True)
    meta = json.loads((BUILTIN_DIR / "orbit_svnet_ct_demo" / "metadata.json").read_text())
    meta.update(name="my_bundle", weights_sha256=weights)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def test_a_model_is_recorded_by_its_bundle_not_by_how_it_was_typed(tmp_path, monkeypatch):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    bundle = _bundle(tmp_path / "b", "1" * 64)
    monkeypatch.chdir(tmp_path)
    cases = _cases(inputs, {"a": "x"})
    assert run_cohort(_task(model="./b"), cases, out, bar=False).done == ["a"]
    for spelling in ("b", str(bundle), "b/"):                            # the same bundle, written otherwise
        assert run_cohort(_task(model=spelling), cases, out, bar=False).skipped == ["a"], spelling
    _bundle(bundle, "2" * 64)                                            # retrained in place
    assert run_cohort(_task(model="./b"), cases, out, bar=False).done == ["a"]
    record = json.loads((out / "a" / INPUTS_FILE).read_text())
    assert record["options"]["model"]["bundle"] == "my_bundle"
    assert record["options"]["model"]["weights_sha256"] == "2" * 64


@pytest.mark.parametrize("replace", ["in place", "by a new file"])
def test_a_same_size_image_copied_with_its_old_time_runs_its_case_again(tmp_path, replace):
    """``cp -p`` of a corrected image of the same size keeps the modification time: its change time (in place)
    or its inode (a new file) still tells it."""
    import shutil

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    cases = _cases(inputs, {"a": "active"})
    image = inputs / "a.txt"
    past = image.stat().st_mtime_ns - 3_600_000_000_000
    os.utime(image, ns=(past, past))                                   # settled: its signature is trusted
    run_cohort(_task(), cases, out, bar=False)
    corrected = tmp_path / "corrected.txt"
    corrected.write_text("ACTIVE")                                     # the same size
    os.utime(corrected, ns=(past, past))
    if replace == "in place":
        shutil.copy2(corrected, image)                                 # cp -p: the same inode, the old time
    else:
        shutil.copy2(corrected, inputs / "new.txt")
        os.replace(inputs / "new.txt", image)
    assert image.stat().st_mtime_ns == past and image.stat().st_size == len("active")
    assert run_cohort(_task(), cases, out, bar=False).done == ["a"]
    assert _value(out, "a") == "ACTIVE"


def test_an_image_written_in_the_last_two_seconds_is_read_again(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    cases = _cases(inputs, {"a": "active"})
    run_cohort(_task(), cases, out, bar=False)
    record = json.loads((out / "a" / INPUTS_FILE).read_text())
    assert record["inputs"]["image"]["signature"] is None               # just written: not trusted


def test_a_scheduler_whose_worker_wait_times_out_as_asyncio_says_so(monkeypatch):
    """On Python 3.9 and 3.10 distributed's timeouts are asyncio.TimeoutError, not the built-in TimeoutError."""
    import asyncio

    class Client:
        def nthreads(self):
            return {}

        def wait_for_workers(self, n, timeout):
            raise asyncio.TimeoutError

    with pytest.raises(InputError, match="has no workers"):
        cluster._wait_for_a_worker(Client(), "tcp://h:1")
