"""``orbitai seg predict`` over several images or a manifest: the model loaded once, OUT/<case>/ per
case written complete or not at all, one-line errors for bad batches, cancel keeps finished cases."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.cohort.records import INPUTS_FILE
from orbitai.io import Volume, read_volume, write_volume
from orbitai.phantoms import orbit_case
from orbitai.orbit.cli import case_name
from orbitai.orbit.result import SegmentationResult

SEED = 777101  # never used for training cohorts
CASE_FILES = ["result.json", "segmentation.seg.nrrd", "volumes.csv"]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """An orbital CT phantom under two names and a block of soft tissue in air that has no orbit."""
    d = tmp_path_factory.mktemp("batch_in")
    ct = orbit_case(SEED, modality="ct", oblique=False).image
    out = {name: write_volume(ct, d / f"{name}.nrrd") for name in ("ct_a", "ct_b")}
    a = np.full((48, 96, 96), -1000, np.float32)
    a[8:40, 16:80, 16:80] = 35
    a += np.random.default_rng(0).normal(0, 5, a.shape).astype(np.float32)
    out["block"] = write_volume(Volume(a, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())),
                                d / "block.nii.gz")
    return out


def _err(capsys) -> str:
    return capsys.readouterr().err.strip()


def test_case_name_strips_volume_suffixes():
    assert case_name("/x/ct_a.nii.gz") == "ct_a"
    assert case_name("/x/scan.NRRD") == "scan"
    assert case_name("/x/dicom_series/") == "dicom_series"
    assert case_name("/x/.nrrd") == ".nrrd"


def test_batch_loads_the_model_once_and_writes_each_case(images, tmp_path, capsys, monkeypatch):
    import orbitai.orbit.predict as seg_predict

    loads = []
    real = seg_predict.load_seg_model

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(seg_predict, "load_seg_model", counting)
    out = tmp_path / "out"
    # the scan without orbits fails alone: the cases around it are written, the exit code says it failed
    code = main(["seg", "predict", str(images["ct_a"]), str(images["block"]), str(images["ct_b"]),
                 "--out", str(out), "--device", "cpu", "--no-mirror", "--model", "orbit_svnet_ct_demo"])
    captured = capsys.readouterr()
    assert code == 1
    assert len(loads) == 1
    # no stage folder, no half case; the failed case listed with its one-line error (the cohort runner)
    assert sorted(p.name for p in out.iterdir()) == ["ct_a", "ct_b", "failed.csv"]
    failed = (out / "failed.csv").read_text().splitlines()
    assert failed[0] == "case_id,error" and len(failed) == 2 and failed[1].startswith("block,No orbit found")
    for name in ("ct_a", "ct_b"):
        assert sorted(p.name for p in (out / name).iterdir()) == [INPUTS_FILE, *CASE_FILES]   # and what the case was made from
        res = SegmentationResult.read(out / name, reference=read_volume(images[name]))
        assert res.model == "orbit_svnet_ct_demo" and {r["name"] for r in res.volumes} >= {"eyeball_left"}
    assert "failed: case block: No orbit found" in captured.out
    assert captured.err.strip().splitlines() == [captured.err.strip()]
    assert captured.err.startswith("orbitai seg predict: error: 1 of 3 cases failed (block")
    assert captured.out.count("timing: window") == 2 and "case 3/3: ct_b" in captured.out
    assert "PROGRESS 3/3 ct_b done" in captured.out


def test_manifest_batch_names_folders_by_case_id(images, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"case_id,image\npatient 7,{images['ct_a']}\n")
    out = tmp_path / "out"
    assert main(["seg", "predict", "--manifest", str(manifest), "--out", str(out), "--device", "cpu",
                 "--no-mirror", "--labelmap"]) == 0
    assert sorted(p.name for p in (out / "patient 7").iterdir()) == [INPUTS_FILE, "labels.nrrd", *CASE_FILES]
    assert sorted(p.name for p in out.iterdir()) == ["patient 7"]


@pytest.mark.parametrize("manifest, args, message", [
    (None, [], "Give an image to segment"),
    ("case_id,image\na,{a}\n", ["{a}"], "not both"),
    ("case_id,image\n../up,{a}\n", [], "'../up' cannot name a folder under --out"),
    ("case_id,image\nA,{a}\na,{b}\n", [], "name one folder (they differ only in upper/lower case"),
    ("case_id,image\na,{a}\na,{b}\n", [], "listed more than once"),
    ("case_id,picture\na,{a}\n", [], "lacks column(s) ['image']"),
    ("case_id,image\na,{a}\nb,missing.nrrd\n", [], "No such file or directory"),
    (None, ["{a}", "{dup}"], "would both be written to"),
])
def test_bad_batches_get_one_line_errors_before_any_work(images, tmp_path, capsys, manifest, args, message):
    dup = tmp_path / "other" / "ct_a.nrrd"
    dup.parent.mkdir()
    dup.write_bytes(images["ct_a"].read_bytes())
    fill = {"a": images["ct_a"], "b": images["ct_b"], "dup": dup}
    argv = ["seg", "predict", *(a.format(**fill) for a in args), "--out", str(tmp_path / "o")]
    if manifest is not None:
        (tmp_path / "m.csv").write_text(manifest.format(**fill))
        argv += ["--manifest", str(tmp_path / "m.csv")]
    assert main(argv) == 2
    err = _err(capsys)
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_batch_output_may_not_overwrite_an_input(images, tmp_path, capsys):
    # OUT/ct_a/volumes.csv would be the input itself
    victim = tmp_path / "o" / "ct_a" / "volumes.csv"
    victim.parent.mkdir(parents=True)
    victim.write_text("x")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"case_id,image\nct_a,{images['ct_a']}\nct_b,{victim}\n")
    assert main(["seg", "predict", "--manifest", str(manifest), "--out", str(tmp_path / "o")]) == 2
    assert "would overwrite the input" in _err(capsys)
    assert victim.read_text() == "x"


@pytest.mark.slow   # a fresh process: imports and one prediction before the signal
def test_sigterm_keeps_finished_cases_and_no_half_case(images, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orbitai", "seg", "predict", str(images["ct_a"]), str(images["ct_b"]),
           "--out", str(out), "--device", "cpu", "--no-mirror", "--model", "orbit_svnet_ct_demo"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:   # the second case has started: the first one is complete
        seen.append(line)
        if line.startswith("case 2/2") or time.monotonic() > deadline:
            break
    assert any(s.startswith("case 2/2") for s in seen), "".join(seen[-5:])
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cancelled after 1 of 2 cases; complete in" in err and err.strip().endswith("cancelled")
    assert sorted(p.name for p in out.iterdir()) == ["ct_a"]
    assert sorted(p.name for p in (out / "ct_a").iterdir()) == [INPUTS_FILE, *CASE_FILES]
    SegmentationResult.read(out / "ct_a")
