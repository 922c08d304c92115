"""Whose scan is shown (issue 61 item 3, issue 69 item 12), on its own: a DICOM series named as Slicer's DICOM browser
names it, its patient, study and series kept with the volume; a file known by its name. No server."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import Volume, write_dicom_series, write_volume
from orbitai.web.identity import identity_lines, patient_name, read_identity, scan_title, series_name, set_identity

pydicom = pytest.importorskip("pydicom")


def _series(folder, **tags):
    write_dicom_series(Volume(np.zeros((3, 8, 8), np.float32)), folder, "MR")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        for key, value in tags.items():
            setattr(ds, key, value)
        ds.save_as(f)
    return folder


def test_a_dicom_series_is_named_and_described_as_slicer_does(tmp_path):
    folder = _series(tmp_path / "orbitai-upload-rkdpsp6q", PatientName="DOE^JANE^Q", PatientID="123",
                     StudyDate="20240301", SeriesNumber="3", SeriesDescription="T2 TSE AX")
    identity = read_identity(folder)
    assert series_name(identity) == "3: T2 TSE AX"
    assert identity["Modality"] == "MR" and "File" not in identity

    class Node:
        attributes: dict = {}

        def SetAttribute(self, k, v):
            self.attributes[k] = v

        def GetAttribute(self, k):
            return self.attributes.get(k)

        def GetName(self):
            return "3: T2 TSE AX"

    node = Node()
    set_identity(node, identity)
    assert identity_lines(node) == ["DOE, JANE Q (ID 123)", "Study date 2024-03-01", "3: T2 TSE AX (MR)"]
    assert scan_title(node) == "3: T2 TSE AX — DOE, JANE Q, 123, 2024-03-01"
    assert "orbitai-upload" not in scan_title(node) + " ".join(identity_lines(node))


def test_a_series_without_number_or_description_and_a_file(tmp_path):
    assert series_name(read_identity(_series(tmp_path / "s", SeriesDescription="T1 SE"))) == "T1 SE"
    write_volume(Volume(np.zeros((3, 8, 8), np.float32)), tmp_path / "head.nii.gz")
    assert read_identity(tmp_path / "head.nii.gz") == {"File": "head.nii.gz"}
    assert series_name({"File": "head.nii.gz"}) == ""
    assert patient_name("DOE^JANE") == "DOE, JANE" and patient_name("") == ""


def test_a_long_header_value_is_cut(tmp_path):
    identity = read_identity(_series(tmp_path / "s", SeriesDescription="x" * 5000, SeriesNumber="1"))
    assert len(identity["SeriesDescription"]) <= 64
