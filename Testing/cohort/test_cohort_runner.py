"""The cohort runner (issue 34): one mechanism for every predict command's ``--manifest`` run, serial or on
``dask.distributed``: complete cases only, resume, failed.csv, cancel, and the Dask run equal to the serial one."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from orbitai.cli import main
from orbitai.cohort.records import CohortCase
from orbitai.cohort.runner import FAILED_FILE, CohortError, CohortTask, check_cohort_options, run_cohort
from orbitai.errors import BundleError, InputError, UserError
from orbitai.io import read_volume, write_volume
from orbitai.result import TaskResult

# --------------------------------------------------------------------------------------------- a toy task


class ToyResult(TaskResult):
    task = "toy"

    def __init__(self, value: float) -> None:
        self.value = value

    def to_json(self) -> dict:
        return {"model": "toy", "warnings": [], "value": self.value}

    def _write_files(self, folder: Path) -> dict[str, str]:
        (folder / "value.txt").write_text(repr(self.value))
        return {"value": "value.txt"}


def toy_predict(case: CohortCase, folder: Path) -> None:
    if case.inputs.get("fatal"):
        raise BundleError("Bundle 'nope' not found.")
    if case.inputs.get("bad"):
        raise InputError(f"Case {case.case_id}: the image is empty.\n(second line)")
    print(f"predicted {case.case_id}")
    ToyResult(float(case.inputs["value"])).write(folder)


TOY = CohortTask("toy predict", toy_predict, ToyResult, ("result.json", "value.txt"))


def _toy_cases(n: int = 4, **special: dict) -> list[CohortCase]:
    return [CohortCase(f"c{i}", {"value": i, **special.get(f"c{i}", {})}) for i in range(n)]


def _entries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def test_failed_case_is_listed_and_the_others_complete(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(CohortError, match=r"1 of 4 cases failed \(c2; see .*failed.csv\); the other 3 are complete"):
        run_cohort(TOY, _toy_cases(c2={"bad": True}), out, bar=False)
    assert _entries(out) == ["c0", "c1", "c3", FAILED_FILE]          # no stage folder, no half case
    assert (out / FAILED_FILE).read_text() == "case_id,error\nc2,the image is empty. (second line)\n"
    assert ToyResult.read_json(out / "c3")["value"] == 3.0
    printed = capsys.readouterr().out
    assert "predicted c0" in printed and "failed: case c2: the image is empty." in printed
    assert "PROGRESS 4/4 c3 done" in printed
    # the rerun does only the failed case; once it succeeds, failed.csv goes
    report = run_cohort(TOY, _toy_cases(), out, bar=False)
    assert report.done == ["c2"] and report.skipped == ["c0", "c1", "c3"] and not report.failed
    assert _entries(out) == ["c0", "c1", "c2", "c3"]


def test_resume_runs_only_missing_and_incomplete_cases(tmp_path):
    out = tmp_path / "out"
    run_cohort(TOY, _toy_cases(), out, bar=False)
    mtimes = {c: (out / c / "result.json").stat().st_mtime_ns for c in ("c0", "c3")}
    import shutil

    shutil.rmtree(out / "c1")                                         # a killed run: c1 never written
    (out / "c2" / "result.json").unlink()                             # c2 half written
    (out / ".c2-abcd1234").mkdir()                                    # the user's, named like a stage folder
    (out / ".c2-abcd1234" / "mine.txt").write_text("mine")
    ran: list[str] = []
    report = run_cohort(TOY, _toy_cases(), out, bar=False, on_case=lambda cid, run, err: ran.append(cid))
    assert ran == ["c1", "c2"] and report.skipped == ["c0", "c3"]
    assert _entries(out) == [".c2-abcd1234", "c0", "c1", "c2", "c3"]   # a folder the runner did not make stays
    assert (out / ".c2-abcd1234" / "mine.txt").read_text() == "mine"
    assert {c: (out / c / "result.json").stat().st_mtime_ns for c in ("c0", "c3")} == mtimes
    assert ToyResult.read_json(out / "c2")["value"] == 2.0


def test_a_foreign_file_in_an_incomplete_case_is_never_removed(tmp_path):
    out = tmp_path / "out"
    (out / "c1").mkdir(parents=True)
    (out / "c1" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not written by this command"):
        run_cohort(TOY, _toy_cases(), out, bar=False)
    assert _entries(out) == ["c1"] and (out / "c1" / "notes.txt").read_text() == "mine"


def test_every_case_failed_writes_nothing(tmp_path):
    out = tmp_path / "out"
    bad = {"bad": True}
    with pytest.raises(CohortError, match=r"every case failed, nothing written: c0 \(the image is empty"):
        run_cohort(TOY, _toy_cases(2, c0=bad, c1=bad), out, bar=False)
    assert not out.exists()
    with pytest.raises(InputError, match="Case c0: the image is empty"):   # a single case: its own error
        run_cohort(TOY, _toy_cases(1, c0=bad), out, bar=False)
    assert not out.exists()


def test_a_fatal_error_stops_the_run(tmp_path):
    ran: list[str] = []
    with pytest.raises(BundleError):
        run_cohort(TOY, _toy_cases(c1={"fatal": True}), tmp_path / "out", bar=False,
                   on_case=lambda cid, run, err: ran.append(cid))
    assert ran == ["c0"] and _entries(tmp_path / "out") == ["c0"]


def test_cancel_leaves_only_complete_cases(tmp_path, capsys):
    def cancel(cid, run, err):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cohort(TOY, _toy_cases(), tmp_path / "out", bar=False, on_case=cancel)
    assert _entries(tmp_path / "out") == ["c0"]
    assert "cancelled after 1 of 4 cases; complete in" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (dict(workers=-1), "--workers must be 0 or more"),
    (dict(workers=2, scheduler="tcp://127.0.0.1:9"), "not both"),
    (dict(manifest=None, workers=2), "give --manifest"),
    (dict(image="a.nrrd"), "Give an image or --manifest, not both"),
])
def test_impossible_cohort_options_are_refused(argv, message):
    args = argparse.Namespace(**{"manifest": "m.csv", "image": None, "workers": None, "scheduler": None, **argv})
    with pytest.raises(UserError, match=message):
        check_cohort_options(args, "image")


def test_an_unreachable_scheduler_is_one_line_at_once(tmp_path):
    with pytest.raises(InputError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_cohort(TOY, _toy_cases(), tmp_path / "out", scheduler="tcp://127.0.0.1:9", bar=False)
    assert not (tmp_path / "out").exists()   # how fast: pytest-timeout bounds a hang; no clock here


# --------------------------------------------------------------------------------------------- seg predict
SEEDS = (777101, 777102)


@pytest.fixture(scope="module")
def seg_cohort(tmp_path_factory) -> Path:
    """Three small CT phantom cases (two anatomies, one copied) and a planted bad case (not an image)."""
    from orbitai.phantoms import orbit_case

    d = tmp_path_factory.mktemp("cohort_in")
    for seed in SEEDS:
        write_volume(orbit_case(seed, modality="ct", oblique=False).image, d / f"{seed}.nrrd")
    (d / "broken.nrrd").write_bytes(b"NRRD0004\nthis is not an image\n")
    rows = [f"a,{SEEDS[0]}.nrrd", f"b,{SEEDS[1]}.nrrd", "bad,broken.nrrd", f"c,{SEEDS[0]}.nrrd"]
    (d / "m.csv").write_text("case_id,image\n" + "".join(r + "\n" for r in rows))
    return d / "m.csv"


def _seg(manifest: Path, out: Path, *extra: str) -> int:
    return main(["seg", "predict", "--manifest", str(manifest), "--out", str(out), "--device", "cpu", "--no-mirror",
                 "--model", "orbit_svnet_ct_demo", "--labelmap", "--uncertainty", *extra])


def test_dask_run_equals_the_serial_run(seg_cohort, tmp_path, capsys):
    serial, dask = tmp_path / "serial", tmp_path / "dask"
    assert _seg(seg_cohort, serial) == 1
    assert _seg(seg_cohort, dask, "--workers", "2") == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("orbitai seg predict: error: 1 of 4 cases failed (bad; see")
    for out in (serial, dask):
        assert _entries(out) == ["a", "b", "c", FAILED_FILE]
        lines = (out / FAILED_FILE).read_text().splitlines()
        assert lines[0] == "case_id,error" and len(lines) == 2 and lines[1].startswith("bad,")
    for case in ("a", "b", "c"):
        assert (serial / case / "labels.nrrd").read_bytes() == (dask / case / "labels.nrrd").read_bytes()
        assert (serial / case / "segmentation.seg.nrrd").read_bytes() == \
            (dask / case / "segmentation.seg.nrrd").read_bytes()
        assert (serial / case / "volumes.csv").read_bytes() == (dask / case / "volumes.csv").read_bytes()
        u_serial, u_dask = (read_volume(o / case / "uncertainty.nrrd").array for o in (serial, dask))
        np.testing.assert_allclose(u_dask, u_serial, rtol=0, atol=1e-6)
        assert json.loads((dask / case / "result.json").read_text())["model"] == "orbit_svnet_ct_demo"


@pytest.mark.slow   # over 15 s; test_dask_run_equals_the_serial_run keeps Dask against serial in the default suite
def test_a_worker_with_all_the_cores_gives_the_serial_probabilities_bit_for_bit(seg_cohort, tmp_path, capsys):
    """A local worker runs on its share of the cores: one worker has them all, as the serial process, so the same
    summation order and the very same uncertainty maps (2 workers on 2 cores: within 1e-6, above)."""
    import subprocess
    import sys

    serial, dask = tmp_path / "serial", tmp_path / "dask"
    for out, extra in ((serial, []), (dask, ["--workers", "1"])):   # fresh processes: torch's default threads
        r = subprocess.run([sys.executable, "-m", "orbitai", "seg", "predict", "--manifest", str(seg_cohort), "--out",
                            str(out), "--device", "cpu", "--no-mirror", "--model", "orbit_svnet_ct_demo",
                            "--uncertainty", *extra], capture_output=True, text=True)
        assert r.returncode == 1 and "1 of 4 cases failed (bad" in r.stderr
    for case in ("a", "b"):
        assert (serial / case / "uncertainty.nrrd").read_bytes() == (dask / case / "uncertainty.nrrd").read_bytes()


def test_dask_cancel_stops_the_workers_and_keeps_complete_cases(seg_cohort, tmp_path):
    from orbitai.orbit.cli import cohort_task

    args = argparse.Namespace(model="orbit_svnet_ct_demo", device="cpu", window="overlap", no_mirror=True,
                              uncertainty=False, labelmap=False)
    cases = [CohortCase(c, {"image": str(seg_cohort.parent / f"{s}.nrrd")}) for c, s in
             (("a", SEEDS[0]), ("b", SEEDS[1]), ("c", SEEDS[0]), ("d", SEEDS[1]))]
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    seen: list[str] = []

    def cancel(cid, run, err):
        seen.append(cid)
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_cohort(cohort_task(args), cases, out, workers=2, bar=False, on_case=cancel)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # (this process's multiprocessing resource tracker, started with the first cluster, lives as long as it)
        left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
        if not left:
            break
        time.sleep(0.5)
    assert not left, f"worker processes still running: {[(p.pid, p.cmdline()) for p in left]}"
    # only complete cases (the first one at least), no stage folder
    entries = _entries(out)
    assert seen[0] in entries and all(not e.startswith(".") for e in entries)
    for e in entries:
        assert (out / e / "result.json").is_file()
    # the rerun (serial) does only the others
    report = run_cohort(cohort_task(args), cases, out, bar=False)
    assert sorted(report.skipped) == entries and sorted(report.done + report.skipped) == ["a", "b", "c", "d"]


def test_resume_after_a_kill_runs_only_the_missing_case(seg_cohort, tmp_path, capsys):
    out = tmp_path / "out"
    assert _seg(seg_cohort, out) == 1
    import shutil

    shutil.rmtree(out / "b")
    (out / "c" / "result.json").unlink()                # a half-written case is replaced
    before = (out / "a" / "labels.nrrd").stat().st_mtime_ns
    capsys.readouterr()
    assert _seg(seg_cohort, out) == 1
    printed = capsys.readouterr().out
    assert "1 of 4 cases already complete" in printed
    assert "case b complete" in printed and "case c complete" in printed and "case a complete" not in printed
    assert (out / "a" / "labels.nrrd").stat().st_mtime_ns == before
    assert _entries(out) == ["a", "b", "c", FAILED_FILE]


@pytest.mark.slow  # the default suite's 20-minute budget; ~23 s: test_resume_after_a_kill_runs_only_the_missing_case keeps the bar
def test_sixteen_cases_killed_half_way_resume_with_only_the_missing_ones(seg_cohort, tmp_path):
    """The issue's bar: a 16-case run (15 images and a planted bad case) killed with SIGKILL half-way (no clean-up
    at all) and run again: only the missing cases run, failed.csv names the bad case, the other 15 are complete."""
    import os
    import signal
    import subprocess
    import sys

    d = seg_cohort.parent
    rows = [f"case{i:02d},{SEEDS[i % 2]}.nrrd" for i in range(15)]
    rows.insert(7, "planted,broken.nrrd")
    manifest = tmp_path / "m16.csv"
    manifest.write_text("case_id,image\n" + "".join(f"{r.split(',')[0]},{d / r.split(',')[1]}\n" for r in rows))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orbitai", "seg", "predict", "--manifest", str(manifest), "--out", str(out),
           "--device", "cpu", "--no-mirror", "--model", "orbit_svnet_ct_demo", "--labelmap"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    done = 0
    for line in proc.stdout:
        done += line.startswith("case ") and " complete (" in line
        if done == 8:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    complete = {p.name for p in out.iterdir() if (p / "result.json").is_file()}
    assert 8 <= len(complete) < 15
    stamps = {c: (out / c / "labels.nrrd").stat().st_mtime_ns for c in complete}
    rerun = subprocess.run(cmd, capture_output=True, text=True)   # a hang: the suite's hang guard (pytest-timeout)
    assert rerun.returncode == 1
    assert f"{len(complete)} of 16 cases already complete" in rerun.stdout
    ran = {ln.split()[1] for ln in rerun.stdout.splitlines() if ln.startswith("case ") and " complete (" in ln}
    assert ran == {f"case{i:02d}" for i in range(15)} - complete     # only the missing ones
    assert all((out / c / "labels.nrrd").stat().st_mtime_ns == t for c, t in stamps.items())
    failed = (out / FAILED_FILE).read_text().splitlines()
    assert failed[0] == "case_id,error" and len(failed) == 2 and failed[1].startswith("planted,")
    assert sorted(p.name for p in out.iterdir()) == sorted([f"case{i:02d}" for i in range(15)] + [FAILED_FILE])
    assert rerun.stderr.strip().splitlines()[-1].startswith("orbitai seg predict: error: 1 of 16 cases failed (planted")


def test_cohort_task_is_declared_once_per_command():
    """Every predict command takes --manifest, --workers and --scheduler (the one runner)."""
    from orbitai.cli import build_parser

    parser = build_parser()
    for argv in (["seg", "predict"], ["tao", "predict"], ["ivgc", "predict"], ["neuro", "lesions"],
                 ["neuro", "predict"]):
        args = parser.parse_args([*argv, "--manifest", "m.csv", "--out", "o", "--workers", "3",
                                  "--scheduler", "tcp://h:1"])
        assert (args.manifest, args.workers, args.scheduler) == ("m.csv", 3, "tcp://h:1")


@pytest.mark.slow   # over 15 s; test_dask_run_equals_the_serial_run keeps Dask against serial in the default suite
def test_tao_cohort_on_dask_equals_serial_probabilities(tmp_path, capsys):
    """A classification command: the per-eye probabilities of 2 TAO cases on 2 Dask workers equal the serial run's
    to 1e-6 (and the manifest's segmentation column places the crops)."""
    from orbitai.phantoms import orbit_case

    rows = []
    for i, activity in enumerate(("active", "inactive")):
        case = orbit_case(777600 + i, "t2", tao=activity, orientation="axial")
        write_volume(case.image, tmp_path / f"t{i}.nrrd")
        write_volume(case.labels, tmp_path / f"s{i}.nrrd")
        rows.append(f"x{i},t{i}.nrrd,s{i}.nrrd\n")
    (tmp_path / "m.csv").write_text("case_id,image,segmentation\n" + "".join(rows))
    probabilities = {}
    for name, extra in (("serial", []), ("dask", ["--workers", "2"])):
        assert main(["tao", "predict", "--manifest", str(tmp_path / "m.csv"), "--out", str(tmp_path / name),
                     "--device", "cpu", "--no-maps", *extra]) == 0
        docs = [json.loads((tmp_path / name / f"x{i}" / "result.json").read_text()) for i in range(2)]
        assert all(d["segmentation"] == "given" for d in docs)
        probabilities[name] = np.array([[e["probability_active"] for e in d["eyes"]] for d in docs])
    np.testing.assert_allclose(probabilities["dask"], probabilities["serial"], rtol=0, atol=1e-6)
    assert probabilities["serial"][0].mean() > probabilities["serial"][1].mean()   # active above inactive


@pytest.mark.parametrize("command, kind, field", [
    (["ivgc", "predict"], "ivgc", "probability"),
    pytest.param(["neuro", "lesions"], "brain-flair", "lesions", marks=pytest.mark.slow),   # ~25 s (suite budget)
], ids=["ivgc-predict", "neuro-lesions"])
def test_a_manifest_run_gives_the_one_image_results(tmp_path, command, kind, field):
    """IVGC response and white-matter lesions over a phantom cohort's manifest (its image and segmentation columns,
    IVGC's clinical ones): each case's result.json equals the one-image command's on that case."""
    from orbitai.cohort.manifest import read_manifest
    from orbitai.phantoms.cohort import write_cohort

    manifest = write_cohort(kind, 2, 777700, tmp_path / "c", montage_cases=0)
    cases = read_manifest(manifest, need_segmentation=False)
    if kind == "brain-flair":   # images only: the lesion network runs (a segmentation column gives the lesions)
        manifest = tmp_path / "images.csv"
        manifest.write_text("case_id,image\n" + "".join(f"{c.case_id},{c.image}\n" for c in cases))
    assert main([*command, "--manifest", str(manifest), "--out", str(tmp_path / "cohort"), "--device", "cpu"]) == 0
    case = cases[1]
    extra = ["--segmentation", str(case.segmentation)] if kind == "ivgc" else []   # IVGC's recti
    assert main([*command, str(case.image), *extra, "--out", str(tmp_path / "one"), "--device", "cpu"]) == 0
    many, one = (json.loads((tmp_path / d / "result.json").read_text()) for d in (f"cohort/{case.case_id}", "one"))
    assert field in one and many[field] == one[field]
    # the cohort row also carries the clinical columns, which the SVM says it ignores: the one difference
    if kind == "ivgc":
        assert many.pop("warnings") == ["model ivgc_svm_demo (svm) does not use clinical features; they were ignored"]
        assert one.pop("warnings") == []
    skip = ("seconds", "timing")
    assert {k: v for k, v in many.items() if k not in skip} == {k: v for k, v in one.items() if k not in skip}
