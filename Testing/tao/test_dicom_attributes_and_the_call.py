"""Issue 62.11: ``tao predict --dicom-attributes`` gives the same call, probability, out-of-distribution verdict and
scan facts as the same run without it: the attributes go into the DICOM outputs (the derived series, SR) only, never
into the model's input or what the scan is said to be."""
from __future__ import annotations

import json

import pytest

from orbitai.cli import main
from orbitai.io import write_volume
from orbitai.phantoms.orbit import orbit_case


@pytest.fixture(scope="module")
def mri(tmp_path_factory):
    d = tmp_path_factory.mktemp("tao_dicom_attributes")
    case = orbit_case(3990123, "t2", tao="active", orientation="axial")
    return str(write_volume(case.image, d / "t2.nrrd")), str(write_volume(case.labels, d / "t2_seg.nrrd"))


def test_dicom_attributes_do_not_change_the_call_or_the_scan_facts(mri, tmp_path, capsys):
    runs = {}
    for name, extra in (("plain", []), ("dicom", ["--dicom-attributes", '{"PatientID": "P-62-11"}'])):
        out = tmp_path / name
        assert main(["tao", "predict", mri[0], "--segmentation", mri[1], "--no-maps", "--out", str(out), *extra]) == 0
        runs[name] = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    keys = ("side", "probability_active", "call", "ood", "trust", "reason")
    eyes = {k: [{key: e.get(key) for key in keys} for e in r["eyes"]] for k, r in runs.items()}
    assert eyes["dicom"] == eyes["plain"]
    assert runs["dicom"]["scan"] == runs["plain"]["scan"]
    assert runs["dicom"]["files"].keys() > runs["plain"]["files"].keys()      # the DICOM outputs were written


def test_ivgc_dicom_attributes_do_not_change_the_call_either(tmp_path, capsys):
    from orbitai.cohort.manifest import read_manifest
    from orbitai.phantoms.cohort import write_cohort

    case = read_manifest(write_cohort("ivgc", 1, 7990, tmp_path / "c", montage_cases=0))[0]
    runs = {}
    for name, extra in (("plain", []), ("dicom", ["--dicom-attributes", '{"PatientID": "P-62-11"}'])):
        out = tmp_path / name
        assert main(["ivgc", "predict", str(case.image), "--segmentation", str(case.segmentation), "--no-gradcam",
                     "--out", str(out), *extra]) == 0
        runs[name] = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    keys = ("probability", "call", "ood", "trust", "scan")
    assert {k: runs["dicom"].get(k) for k in keys} == {k: runs["plain"].get(k) for k in keys}
