"""Issue 63, "One predictor per task": every front end reaches the task's one predictor (`orbitai.predictor`, named in
the task table `orbitai.tasks`), and the result.json it writes names it (``predictor``): the command line (one case;
a cohort, serial and on a Dask worker), the warm worker, the Logic's child (a Slicer module's Apply on a real MRML
scene) and the browser (``orbitai web`` on a raw websocket).

Table-driven by task (`TASKS`): each row names the task's predictor class, its command, fast CPU options, how to
write one case's inputs and how to set its Slicer Logic up. The seg and tao rows are A1's; the ivgc and neuro rows
are added by whoever builds those predictors (same shape)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from orbitai.cli import main
from orbitai.io import write_volume
from orbitai.phantoms import orbit_case
from orbitai.predictor import predictor_name
from orbitai.tasks import TASKS as TASK_TABLE
from orbitai.tasks import predictor_class

REPO = Path(__file__).resolve().parents[2]
SEED = 777005      # never used for training cohorts


def _seg_files(folder: Path) -> dict[str, Path]:
    return {"image": write_volume(orbit_case(SEED, modality="ct", oblique=False).image, folder / "ct.nrrd")}


def _tao_files(folder: Path) -> dict[str, Path]:
    case = orbit_case(SEED, "t2", tao="active", orientation="axial")
    return {"image": write_volume(case.image, folder / "t2.nrrd"),
            "segmentation": write_volume(case.labels, folder / "t2_orbits.nrrd")}


@functools.lru_cache(maxsize=1)
def _ivgc_case():
    from orbitai.testing.ivgc_response import _phantom

    return _phantom(SEED)


def _ivgc_files(folder: Path) -> dict[str, Path]:
    case = _ivgc_case()
    return {"image": write_volume(case.image, folder / "t2.nrrd"),
            "segmentation": write_volume(case.labels, folder / "recti.nrrd")}


def _neuro_files(folder: Path) -> dict[str, Path]:
    from orbitai.testing.neuro_fixtures import phantom

    case = phantom()      # one brain FLAIR phantom per process (lru_cache); its lesions given: no lesion network
    return {"image": write_volume(case.image, folder / "flair.nrrd"),
            "segmentation": write_volume(case.labels, folder / "lesions.nrrd")}


def _ivgc_logic(ctx) -> tuple[Any, Any, dict]:
    from orbitai.app.ivgc_response import IVGCResponseLogic
    from orbitai.testing.ivgc_response import _phantom_nodes

    _, node, seg = _phantom_nodes(ctx, seed=SEED)
    return IVGCResponseLogic(ctx), node, {"segmentation_node": seg, "device": "cpu", "gradcam": False}


def _neuro_logic(ctx) -> tuple[Any, Any, dict]:
    from orbitai.app.neuro_differential import NeuroDifferentialLogic
    from orbitai.testing.neuro_fixtures import lesion_node, phantom_flair

    case, node = phantom_flair(ctx)
    return NeuroDifferentialLogic(ctx), node, {"lesion_segmentation": lesion_node(ctx, case.labels, node),
                                               "device": "cpu", "heatmap": False}


def _seg_logic(ctx) -> tuple[Any, Any, dict]:
    from orbitai.app.orbit_segmentation import OrbitSegmentationLogic
    from orbitai.testing.orbit_segmentation import _phantom_node

    _, node = _phantom_node(ctx)
    return OrbitSegmentationLogic(ctx), node, {"device": "cpu"}


def _tao_logic(ctx) -> tuple[Any, Any, dict]:
    from orbitai.app.tao_activity import TAOActivityLogic
    from orbitai.testing.tao_activity import _mri_node

    _, node, seg = _mri_node(ctx)
    return TAOActivityLogic(ctx), node, {"segmentation_node": seg, "device": "cpu", "maps": False}


@dataclass(frozen=True)
class TaskRow:
    """One task's front ends: its predictor (result.json's ``predictor``), its predict command and fast CPU options,
    one case's input files by role (``image`` first; each other role is the ``--<role>`` option of one case and a
    column of a manifest) and its Slicer Logic on a scene: (Logic, input node, Apply's options). ``flags``: a role's
    option of one case where it is not ``--<role>`` (neuro's lesion segmentation: ``--lesions``)."""

    task: str
    predictor: str
    command: tuple[str, ...]
    options: tuple[str, ...]
    files: Callable[[Path], dict[str, Path]]
    logic: Optional[Callable[[Any], tuple[Any, Any, dict]]] = None
    flags: tuple[tuple[str, str], ...] = ()

    def one_case(self, files: dict[str, Path]) -> list[str]:
        return [str(files["image"]), *(a for role, path in files.items() if role != "image"
                                       for a in (dict(self.flags).get(role, f"--{role}"), str(path)))]

    def manifest(self, files: dict[str, Path], folder: Path, cases: tuple[str, ...] = ("a", "b")) -> Path:
        """A manifest of ``cases``, each the same files (its columns: case_id and the roles)."""
        rows = [",".join(["case_id", *files])] + [",".join([c, *map(str, files.values())]) for c in cases]
        (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
        return folder / "manifest.csv"


TASKS = [
    TaskRow("seg", "orbitai.orbit.predictor.OrbitPredictor", ("seg", "predict"), ("--device", "cpu", "--no-mirror"),
            _seg_files, _seg_logic),
    TaskRow("tao", "orbitai.tao.predictor.TaoPredictor", ("tao", "predict"), ("--device", "cpu", "--no-maps"),
            _tao_files, _tao_logic),
    TaskRow("ivgc", "orbitai.ivgc.predictor.IvgcPredictor", ("ivgc", "predict"), ("--device", "cpu", "--no-gradcam"),
            _ivgc_files, _ivgc_logic),
    TaskRow("neuro", "orbitai.neuro.predictor.NeuroPredictor", ("neuro", "predict"),
            ("--device", "cpu", "--no-heatmap"), _neuro_files, _neuro_logic, flags=(("segmentation", "--lesions"),)),
]
BY_TASK = {row.task: row for row in TASKS}


def _named(folder: Path) -> str:
    return json.loads((folder / "result.json").read_text())["predictor"]


@pytest.fixture(params=TASKS, ids=[row.task for row in TASKS])
def row(request) -> TaskRow:
    return request.param


#: The routes every task shares into its command (the warm worker, the Logic's child, the browser's job): they run
#: the task's command line, whose call of the predictor each task's command-line test above checks. Seg's rows keep
#: the routes in the default suite; the other tasks' (30-80 s each on a loaded 2-core machine) run under -m slow.
ROUTE_ROWS = [pytest.param(r, id=r.task, marks=() if r.task == "seg" else pytest.mark.slow) for r in TASKS]


@pytest.fixture(params=ROUTE_ROWS)
def route_row(request) -> TaskRow:
    return request.param


def test_the_table_names_each_tasks_registered_predictor(row):
    cls = predictor_class(row.task)
    assert row.task in TASK_TABLE and cls.task == row.task and predictor_name(cls) == row.predictor


def test_command_line_one_case_and_cohort_call_the_tasks_predictor(row, tmp_path, monkeypatch, capsys):
    """The single-case path and the cohort's per-case step (serial) construct the task's predictor class and call
    its ``predict``: one object per case run alone, one for the whole cohort (its models loaded once); each
    result.json names it."""
    cls = predictor_class(row.task)
    calls: list[Any] = []
    real = cls.predict

    def counting(self, *args, **kwargs):
        calls.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "predict", counting)
    files = row.files(tmp_path)
    assert main([*row.command, *row.one_case(files), "--out", str(tmp_path / "one"), *row.options]) == 0
    assert len(calls) == 1 and type(calls[0]) is cls
    assert _named(tmp_path / "one") == row.predictor
    manifest = row.manifest(files, tmp_path)
    assert main([*row.command, "--manifest", str(manifest), "--out", str(tmp_path / "cohort"), *row.options]) == 0
    assert len(calls) == 3 and type(calls[1]) is cls and calls[2] is calls[1]
    assert [_named(tmp_path / "cohort" / c) for c in ("a", "b")] == [row.predictor] * 2
    capsys.readouterr()


@pytest.mark.slow   # a Dask cluster and a worker importing torch (~100 s on a loaded 2-core machine); the serial
#                     cohort test above keeps the per-case step (the same on a worker) in the default suite
def test_cohort_on_a_dask_worker_names_the_predictor(tmp_path):
    """``--workers 1``: the case runs in a Dask worker process, through the same per-case step."""
    pytest.importorskip("distributed")
    row = BY_TASK["seg"]
    manifest = row.manifest(row.files(tmp_path), tmp_path, cases=("a",))
    assert main([*row.command, "--manifest", str(manifest), "--out", str(tmp_path / "dask"), "--workers", "1",
                 *row.options]) == 0
    assert _named(tmp_path / "dask" / "a") == row.predictor


@pytest.fixture(scope="module")
def warm_worker():
    from orbitai.jobs.warm import WarmWorker

    worker = WarmWorker(preload=False)
    yield worker
    worker.shutdown()


def test_the_warm_worker_calls_the_tasks_predictor(route_row, warm_worker, tmp_path):
    from orbitai.jobs.warm import WarmJob

    row = route_row
    files = row.files(tmp_path)
    res = WarmJob([*row.command, *row.one_case(files), "--out", "{out}/case", *row.options], dest=tmp_path / "job",
                  worker=warm_worker).run()
    assert res.ok and _named(tmp_path / "job" / "case") == row.predictor


def test_a_slicer_modules_apply_reaches_the_tasks_predictor(route_row, ctx):
    """The module's Logic on a real MRML scene (slicer-core): Apply starts the job's child, the results are imported;
    the job's result.json names the predictor."""
    row = route_row
    pytest.importorskip("slicer")
    if row.logic is None:
        pytest.skip(f"{row.task} has no Slicer module")
    logic, node, options = row.logic(ctx)
    logic.warm_worker = False     # this instance: a one-shot child (the warm worker has its own test above)
    named: list[str] = []
    real = logic.importResults

    def reading(out_dir, *args, **kwargs):
        named.append(_named(Path(out_dir)))
        return real(out_dir, *args, **kwargs)

    logic.importResults = reading
    assert logic.run(node, **options) is not None
    assert named == [row.predictor]


#: Loaded first by every Python process of the web test (PYTHONPATH): keeps a copy of each result.json written, so
#: that the test reads what the job the browser started wrote (its own folder is removed once imported).
RECORDER = textwrap.dedent('''
    import json, os, uuid
    import orbitai.result as _result

    _write = _result.TaskResult.write

    def _recorded(self, out_dir, extra=None):
        path = _write(self, out_dir, extra)
        folder = os.environ["ORBITAI_TEST_RESULTS"]
        with open(os.path.join(folder, uuid.uuid4().hex + ".json"), "w") as f:
            f.write(open(path).read())
        return path

    _result.TaskResult.write = _recorded
''')


@contextlib.contextmanager
def _recording_web_server(tmp_path: Path, monkeypatch, fill: Callable[[Path], Any]):
    """``orbitai web`` (its own process, as a user starts it) over a data folder that ``fill`` writes, every Python
    process it starts loading `RECORDER`; yields (server, the ws_client module, the folder of recorded results)."""
    pytest.importorskip("trame_slicer")
    from orbitai.testing.web import web_server

    monkeypatch.syspath_prepend(str(REPO / "Testing" / "web"))
    import ws_client

    hook, data, results = tmp_path / "hook", tmp_path / "data", tmp_path / "results"
    for d in (hook, data, results):
        d.mkdir()
    (hook / "sitecustomize.py").write_text(RECORDER)
    fill(data)
    env = {"PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "ORBITAI_TEST_RESULTS": str(results)}
    with web_server(str(data), env=env) as srv:
        yield srv, ws_client, results


def _recorded(results: Path) -> list[tuple[str, str]]:
    """(task, predictor) of each result.json the server's jobs wrote."""
    return [(d["task"], d["predictor"]) for d in (json.loads(p.read_text()) for p in results.glob("*.json"))]


def test_the_browsers_apply_reaches_the_segmentation_predictor(tmp_path, monkeypatch):
    """``orbitai web`` on a raw websocket: the orbit panel's Apply runs the job that writes a result.json naming
    `OrbitPredictor`."""
    async def go(srv, ws) -> dict:
        async with ws.connect(srv.url) as c:
            await c.hello(srv.token)
            state = await ws.load_data(c, "ct.nrrd")
            assert state["orbit_apply_enabled"], state["orbit_apply_tip"]
            await c.trigger(ws.click_trigger(state, "orbitai-orbit-apply"), {})
            return await ws.wait_state(c, lambda s: not s["orbit_running"] and (
                "structures segmented" in s["orbit_status"] or s["orbit_error"]), 300, "segmentation")

    with _recording_web_server(tmp_path, monkeypatch, BY_TASK["seg"].files) as (srv, ws, results):
        done = asyncio.run(go(srv, ws))
    assert done["orbit_error"] == "", done["orbit_error"]
    assert _recorded(results) == [("segmentation", BY_TASK["seg"].predictor)]


@pytest.mark.slow   # the browser's route is the same for every task (seg's test above keeps it in the default suite)
def test_the_browsers_apply_reaches_the_ivgc_predictor(tmp_path, monkeypatch):
    """``orbitai web`` on a raw websocket: the IVGC panel's Apply on a T2 MRI and its recti segmentation (both loaded
    from the data folder) runs the job that writes a result.json naming `IvgcPredictor`."""
    def phantom(data: Path) -> None:
        assert main(["phantom", "ivgc", "--n", "1", "--seed", str(SEED), "--out", str(data / "ivgc"),
                     "--montage-cases", "0"]) == 0

    async def go(srv, ws) -> dict:
        async with ws.connect(srv.url) as c:
            await c.hello(srv.token)
            state = await ws.load_data(c, "ivgc/images/ivgc_0000.nrrd")
            assert state["load_error"] == "", state["load_error"]
            state = await ws.load_data(c, "ivgc/segmentations/ivgc_0000.seg.nrrd",
                                       lambda s: any(x["title"] == "ivgc_0000" for x in s["segmentations"]))
            assert state["load_error"] == "", state["load_error"]
            seg = next(x["value"] for x in state["segmentations"] if x["title"] == "ivgc_0000")
            await c.set_state(module="ivgc", ivgc_segmentation_node=seg)
            state = await ws.wait_state(c, lambda s: s["ivgc_apply_enabled"], 60, "the IVGC Apply")
            await c.trigger(ws.click_trigger(state, "orbitai-ivgc-apply"), {})
            return await ws.wait_state(c, lambda s: not s["ivgc_running"] and (
                s["ivgc_table_rows"] or s["ivgc_error"]), 300, "the IVGC job")

    with _recording_web_server(tmp_path, monkeypatch, phantom) as (srv, ws, results):
        done = asyncio.run(go(srv, ws))
    assert done["ivgc_error"] == "", done["ivgc_error"]
    assert _recorded(results) == [("ivgc_response", BY_TASK["ivgc"].predictor)]
