"""``--dicom-attributes`` values as DICOM text: a name beyond ASCII is written in UTF-8 with its character set
(ISO_IR 192) and survives into the SEG and SR; a backslash (DICOM's value delimiter) is refused, not split
into two values; a long value is echoed shortened; a NaN image is refused before any DICOM is prepared."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.dicom.source import parse_attributes, write_derived_series
from orbitai.errors import UserError
from orbitai.io import write_volume
from orbitai.phantoms.orbit import orbit_case

pydicom = pytest.importorskip("pydicom")
SEED = 777045  # never used for training cohorts
NAME = "眼窩^太郎"


def test_non_ascii_name_is_written_in_utf8_with_its_character_set(tmp_path):
    image = orbit_case(SEED, "ct").image
    folder = write_derived_series(image, tmp_path / "series", parse_attributes(json.dumps(
        {"PatientID": "OA-8", "PatientName": NAME})), "CT")
    first = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(first)
    assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == NAME
    assert NAME.encode("utf-8") in first.read_bytes()


def test_ascii_attributes_keep_the_default_character_set(tmp_path):
    folder = write_derived_series(orbit_case(SEED, "ct").image, tmp_path / "series",
                                  parse_attributes('{"PatientID": "OA-9", "PatientName": "Doe^Jane"}'), "CT")
    assert "SpecificCharacterSet" not in pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])


def test_non_ascii_name_survives_into_seg_and_sr(tmp_path):
    pytest.importorskip("highdicom")
    from test_seg_sr import dciodvfy_errors

    image = write_volume(orbit_case(SEED, "ct").image, tmp_path / "ct.nrrd")
    out = tmp_path / "out"
    attrs = json.dumps({"PatientID": "OA-10", "PatientName": NAME}, ensure_ascii=False)
    assert main(["seg", "predict", str(image), "--out", str(out), "--device", "cpu", "--no-mirror",
                 "--dicom-attributes", attrs]) == 0
    for name in ("segmentation.dcm", "report.dcm"):
        ds = pydicom.dcmread(out / name)
        assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == NAME, name
        assert dciodvfy_errors(out / name) == []


@pytest.mark.parametrize("key", ["PatientID", "PatientName", "AccessionNumber", "StudyDescription"])
def test_a_backslash_is_refused_not_split(key):
    with pytest.raises(UserError, match="contains a backslash, which DICOM reserves to separate values") as info:
        parse_attributes(json.dumps({"PatientID": "1", key: "A\\B"}))
    assert "\n" not in str(info.value)


def test_a_long_value_is_echoed_shortened():
    with pytest.raises(UserError) as info:
        parse_attributes(json.dumps({"PatientID": "1", "PatientName": "x" * 10_000}))
    message = str(info.value)
    assert "not a valid DICOM PN value" in message and "(10000 characters)" in message and len(message) < 300
    with pytest.raises(UserError) as info:
        parse_attributes(json.dumps({"PatientID": "1", "y" * 10_000: "1"}))
    assert "unknown attribute" in str(info.value) and len(str(info.value)) < 500


def test_a_nan_image_with_attributes_is_refused_before_any_dicom(tmp_path, capsys):
    image = orbit_case(SEED, "ct").image
    a = image.array.astype(np.float32)
    a[3, 4, 5] = np.nan
    path = write_volume(image.with_array(a), tmp_path / "nan.nrrd")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)      # numpy's "invalid value encountered in cast"
        code = main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu",
                     "--dicom-attributes", '{"PatientID": "1"}'])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 NaN/infinite voxels" in err[0]
