"""Issue 82, "The task table closes a circle": the task table (`orbitai.tasks.TASKS`) sits above the tasks, one row per
task naming its command, predictor, options, result and case files, read without importing a task; `predictor_for`
gives each task's predictor, neuro's included, one per worker process for each model and device, and a cohort's
per-case step of each task's command reuses that one. (That the shared `orbitai.predictor` names no task and no
import circles by name: Testing/test_design_doc.py.)"""
from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import orbitai.cohort.runner as runner
from orbitai.cli import COMMANDS
from orbitai.cohort.records import CohortCase
from orbitai.predictor import Predictor
from orbitai.result import RESULT_FILE, TaskResult
from orbitai.tasks import TASKS, predictor_for, resolve, task

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_worker(monkeypatch) -> dict:
    """This process as a new worker: no predictor kept by an earlier test."""
    state: dict = {}
    monkeypatch.setattr(runner, "_STATE", state)
    return state


def test_reading_the_table_imports_no_task():
    code = ("import sys, orbitai.cli, orbitai.tasks; "
            "loaded = [m for m in sys.modules if m.split('.')[1:2] in (['orbit'], ['tao'], ['ivgc'], ['neuro'], "
            "['predictor']) or m == 'torch']; print(loaded); assert not loaded, loaded")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("name", ["seg", "tao", "ivgc", "neuro"])
def test_each_row_resolves_to_its_tasks_parts(name):
    row = task(name)
    assert COMMANDS[name] == (row.command, row.help)
    cls = row.predictor_class()
    assert issubclass(cls, Predictor) and cls.task == name and cls.__module__.split(".")[1] == row.command.split(".")[1]
    assert issubclass(row.result_class(), TaskResult)
    files = row.files()
    assert files[0] == RESULT_FILE and all(isinstance(f, str) and "/" not in f for f in files)
    options = row.options_class()
    assert dataclasses.is_dataclass(options) and callable(getattr(options, "of", None))
    assert cls.Options is options and cls.case_files == files      # the predictor's own (issue 82.1)


def test_an_unknown_task_is_one_line():
    with pytest.raises(ValueError, match="no task 'nope'; tasks: seg, tao, ivgc, neuro"):
        task("nope")


@pytest.mark.parametrize("name", list(TASKS))
def test_predictor_for_is_one_per_worker_model_and_device(name, fresh_worker):
    first = predictor_for(name, None, "cpu")
    assert type(first) is TASKS[name].predictor_class() and predictor_for(name, None, "cpu") is first
    other = predictor_for(name, "another-model", "cpu")     # models load on the first case: none is read here
    assert other is not first and other.model == "another-model" and predictor_for(name, None, "cpu") is first
    runner._STATE.clear()         # a new worker (or a serial cohort's next run): a new predictor
    assert predictor_for(name, None, "cpu") is not first


def test_neuro_predictor_for_builds_with_its_lesion_model(fresh_worker):
    plain = predictor_for("neuro", None, "cpu")
    with_lesions = predictor_for("neuro", None, "cpu", lesion_model="my-lesions")
    assert plain.lesion_model is None and with_lesions.lesion_model == "my-lesions" and with_lesions is not plain
    assert predictor_for("neuro", None, "cpu", lesion_model="my-lesions") is with_lesions
    assert predictor_for("neuro", None, "cpu", lesion_model=None) is plain      # None: the bundled lesion network


def _cohort_step(name: str, options: dict, folder: Path) -> None:
    """Run task ``name``'s cohort per-case step (its ``cli.predict_case``) on a case of placeholder inputs."""
    inputs: dict[str, Any] = {"image": "x.nrrd", "segmentation": None, "clinical": {}}
    resolve(f"{task(name).command}:predict_case")(options, CohortCase("c1", inputs), folder)


@pytest.mark.parametrize("name", list(TASKS))
def test_a_cohorts_case_step_uses_the_workers_predictor(name, fresh_worker, monkeypatch, tmp_path):
    """Each task's cohort step (serial, or on a Dask worker) predicts with this worker's `predictor_for` predictor:
    every case by the same object, the one the table gives."""
    cls = TASKS[name].predictor_class()
    used: list[Predictor] = []
    monkeypatch.setattr(cls, "predict", lambda self, *a, **k: used.append(self))
    monkeypatch.setattr(importlib.import_module(TASKS[name].command), "tell", lambda *a: None)   # says the result
    options = {"model": None, "device": "cpu", "lesion_model": None}
    for case in ("a", "b"):
        _cohort_step(name, options, tmp_path / case)
    assert len(used) == 2 and used[0] is used[1] is predictor_for(name, None, "cpu")
