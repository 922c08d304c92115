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

from orbitai.cohort import runner
from orbitai.cohort.runner import (FAILED_FILE, INPUTS_FILE, WORK_MARKER, WORK_PREFIX, CohortCase, CohortError,
                                   CohortTask, run_cohort)
from orbitai.errors import InputError
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
    while runner._alive(dead):
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
    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT", 1.0)
    monkeypatch.setattr(runner, "WORKER_WAIT", 1.0)


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
