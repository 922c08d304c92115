"""A volume file as a derived DICOM series with the user's patient and study (``--dicom-attributes``, issue 33):
geometry and values kept (floats to half an int16 step), dciodvfy finds no error, bad attributes one line each."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from orbitai.dicom.source import parse_attributes, write_derived_series
from orbitai.errors import UserError
from orbitai.io import read_scan
from orbitai.phantoms.orbit import orbit_case

pydicom = pytest.importorskip("pydicom")
SEED = 777031  # never used for training cohorts


def dciodvfy_errors(path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if not exe:
        pytest.skip("dciodvfy is not installed: apt-get install dicom3tools (make venv does it as root)")
    run = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("modality, scale", [("ct", 1.0), ("t2", 1.0), ("t1", 1 / 997.0)])
def test_derived_series_keeps_geometry_and_values(tmp_path, modality, scale):
    image = orbit_case(SEED, modality).image
    image = image.with_array(image.array.astype(np.float64) * scale + (0.25 if scale != 1.0 else 0.0))
    attrs = parse_attributes('{"PatientID": "OA-1", "PatientName": "Doe^Jane", "StudyDate": "20261124", '
                             '"StudyInstanceUID": "1.2.826.0.1.3680043.2.1125.5.1", "PatientSex": "F"}')
    folder = write_derived_series(image, tmp_path / "series", attrs, "CT" if modality == "ct" else "MR", "x.nrrd")
    vol, acq = read_scan(folder)
    step = float(np.ptp(image.array)) / 65534
    assert np.abs(vol.array - image.array).max() <= (0 if scale == 1.0 else step / 2 + 1e-9)
    assert np.allclose(vol.origin, image.origin, atol=1e-6) and np.allclose(vol.direction, image.direction)
    assert np.allclose(vol.spacing, image.spacing, atol=1e-6) and not acq.notes
    files = sorted(folder.iterdir())
    ds = pydicom.dcmread(files[0])
    assert (ds.PatientID, str(ds.PatientName), ds.StudyInstanceUID) == ("OA-1", "Doe^Jane",
                                                                       "1.2.826.0.1.3680043.2.1125.5.1")
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "x.nrrd" in ds.DerivationDescription
    assert len({pydicom.dcmread(f).SOPInstanceUID for f in files}) == len(files)
    assert dciodvfy_errors(files[len(files) // 2]) == []


@pytest.mark.parametrize("text, message", [
    ('{"PatientName": "Doe^Jane"}', "give at least PatientID"),
    ('{"PatientID": "1", "Weight": "70"}', "unknown attribute(s) Weight"),
    ('{"PatientID": "1", "StudyDate": "2026-11-24"}', "StudyDate '2026-11-24' is not a valid DICOM DA value (a date"),
    ('{"PatientID": "1", "StudyInstanceUID": "1.2.x"}', "not a valid DICOM UI value"),
    ('{"PatientID": "1", "PatientSex": "X"}', "PatientSex must be M, F or O"),
    ('{"PatientID": ["1"]}', "PatientID must be a string"),
    ('{"PatientID": "1",', "is not valid JSON"),
    ("[1, 2]", "neither a JSON object nor a file"),
])
def test_bad_attributes_are_one_line_each(text, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_attributes(text)
    assert "\n" not in str(info.value)


def test_attributes_from_a_file(tmp_path):
    f = tmp_path / "patient.json"
    f.write_text(json.dumps({"PatientID": 12345, "AccessionNumber": "A1"}))
    assert parse_attributes(str(f)) == {"PatientID": "12345", "AccessionNumber": "A1"}


def test_predict_on_a_volume_file_with_attributes_writes_seg_sr_and_the_source_series(tmp_path):
    from orbitai.cli import main
    from orbitai.io import write_volume
    from orbitai.orbit.result import SegmentationResult

    pytest.importorskip("highdicom")
    image = write_volume(orbit_case(SEED, "ct").image, tmp_path / "ct.nrrd")
    out = tmp_path / "out"
    attrs = '{"PatientID": "OA-7", "PatientName": "Doe^John", "StudyInstanceUID": "1.2.826.0.1.3680043.2.1125.5.7"}'
    assert main(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--dicom-attributes", attrs]) == 0
    files = json.loads((out / "result.json").read_text())["files"]
    assert (files["dicom_seg"], files["dicom_sr"], files["dicom_source"]) == ("segmentation.dcm", "report.dcm",
                                                                             "source_dicom")
    SegmentationResult.read(out)
    seg = pydicom.dcmread(out / "segmentation.dcm")
    source = sorted((out / "source_dicom").iterdir())
    first = pydicom.dcmread(source[0])
    assert (seg.PatientID, str(seg.PatientName), seg.StudyInstanceUID) == ("OA-7", "Doe^John",
                                                                          "1.2.826.0.1.3680043.2.1125.5.7")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert len(source) == orbit_case(SEED, "ct").image.array.shape[0]
    assert dciodvfy_errors(out / "segmentation.dcm") == [] and dciodvfy_errors(out / "report.dcm") == []


def test_attributes_with_dicom_input_are_refused(tmp_path, capsys):
    from orbitai.cli import main
    from orbitai.io import write_dicom_series

    series = write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "series")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(series), "--out", str(out), "--dicom-attributes", '{"PatientID": "1"}']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--dicom-attributes is for a volume file" in err[0]
    assert not out.exists()


def test_long_bad_attributes_are_shown_cut_with_their_length_in_whole_parentheses():
    key = "K" * 70
    with pytest.raises(UserError) as info:
        parse_attributes(json.dumps({"PatientID": "1", key: "x"}))
    assert f"unknown attribute(s) {'K' * 64}... (70 characters); give any of" in str(info.value)
    with pytest.raises(UserError) as info:
        parse_attributes(json.dumps({"PatientID": ["1" * 80]}))
    assert str(info.value).endswith(f"PatientID must be a string, got [\"{'1' * 62}... (84 characters).")


def test_a_non_ascii_source_file_name_is_kept_in_the_derived_series(tmp_path):
    image = orbit_case(SEED, "ct").image
    folder = write_derived_series(image, tmp_path / "series", {"PatientID": "OA-2"}, "CT", "眼窩_é.nrrd")
    ds = pydicom.dcmread(sorted(folder.iterdir())[0])
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.DerivationDescription == "Converted by OrbitAI from 眼窩_é.nrrd"
    plain = write_derived_series(image, tmp_path / "plain", {"PatientID": "OA-2"}, "CT", "x.nrrd")
    assert "SpecificCharacterSet" not in pydicom.dcmread(sorted(plain.iterdir())[0])
