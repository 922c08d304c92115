"""``orbitai dicom push`` stores only complete DICOM files and believes only what the PACS confirms: a file cut
short (pixel data or an SR's content) stops the push in one line before anything is sent, and instances the
STOW-RS answer does not confirm are an error, never "stored". Against Orthanc (orthanc_fixture) and a stub."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from orbitai.cli import main
from orbitai.io import write_dicom_series
from orbitai.io.dicom import new_uid
from orbitai.phantoms.orbit import orbit_case
from orthanc_fixture import ORTHANC_INSTALL, find_orthanc, orthanc_server

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("dicomweb_client", reason="install orbitai[dicom]")
SEED = 777047  # never used for training cohorts


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def cut(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture()
def series(tmp_path) -> tuple[Path, str]:
    study = new_uid()
    return write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "series", "CT", study, new_uid()), study


def test_a_truncated_image_is_refused_before_anything_is_stored(series, capsys):
    if find_orthanc() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Orthanc is missing in CI: {ORTHANC_INSTALL}")
        pytest.skip(ORTHANC_INSTALL)
    from orbitai.dicom.web import DicomWebError, search_series

    folder, study = series
    victim = sorted(folder.glob("*.dcm"))[3]
    cut(victim, 0.6)
    with orthanc_server() as url:
        assert main(["dicom", "push", str(folder), "--url", url]) == 2
        line = one_error_line(capsys)
        assert victim.name in line and "not a complete DICOM file" in line and "nothing was stored" in line
        assert "stored" not in capsys.readouterr().out
        with pytest.raises(DicomWebError, match="No study"):
            search_series(url, study)
        victim.unlink()                                  # the rest is complete: stored, and said so
        assert main(["dicom", "push", str(folder), "--url", url]) == 0
        assert f"stored {len(list(folder.iterdir()))} instance(s)" in capsys.readouterr().out


def test_a_truncated_report_is_refused(tmp_path, capsys):
    pytest.importorskip("highdicom")
    from orbitai.dicom.web import incomplete

    out = tmp_path / "out"
    folder = write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "series")
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    for name in ("report.dcm", "segmentation.dcm"):
        assert incomplete(pydicom.dcmread(out / name)) is None
        cut(out / name, 0.7)
        assert "cut short" in incomplete(pydicom.dcmread(out / name))
    capsys.readouterr()
    assert main(["dicom", "push", str(out), "--url", "http://127.0.0.1:9/dicom-web"]) == 2
    assert "not a complete DICOM file" in one_error_line(capsys)


def test_an_image_without_pixel_data_is_incomplete(series):
    from orbitai.dicom.web import incomplete

    folder, _ = series
    path = sorted(folder.glob("*.dcm"))[0]
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    assert incomplete(pydicom.dcmread(path)) == "it is an image without pixel data"


class StubClient:
    """A STOW-RS server that answers success but confirms only ``confirm`` of the instances sent."""

    def __init__(self, confirm: int):
        self.confirm = confirm

    def store_instances(self, datasets, study_instance_uid=None):
        from pydicom import Dataset

        answer = Dataset()
        items = []
        for ds in datasets[: self.confirm]:
            item = Dataset()
            item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
            items.append(item)
        answer.ReferencedSOPSequence = items
        return answer


@pytest.mark.parametrize("confirm, code", [(0, 2), (5, 2), (10_000, 0)])
def test_only_instances_the_server_confirms_count_as_stored(series, monkeypatch, capsys, confirm, code):
    from orbitai.dicom import web

    folder, _ = series
    monkeypatch.setattr(web, "_client", lambda url, timeout=web.TIMEOUT_S: StubClient(confirm))
    assert main(["dicom", "push", str(folder), "--url", "http://pacs.invalid/dicom-web"]) == code
    if code:
        assert "did not confirm" in one_error_line(capsys)
    else:
        assert f"stored {len(list(folder.iterdir()))} instance(s)" in capsys.readouterr().out
