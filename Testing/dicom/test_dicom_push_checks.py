"""``orbitai dicom push`` stores only complete DICOM files and believes only what the PACS confirms: a file cut
short (pixel data or an SR's content) stops the push in one line before anything is sent, and instances the
STOW-RS answer does not confirm are an error, never "stored". Against Orthanc (orthanc_fixture) and a stub."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from orbitai.cli import main
from orbitai.io import write_dicom_series
from orbitai.io.dicom_write import new_uid
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


def rle_image(path: Path, frames: int = 2) -> Path:
    """A small multi-frame CT image compressed with RLE Lossless (pydicom's own encoder)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, RLELossless

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = new_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = new_uid(), new_uid(), "CT"
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.NumberOfFrames = 1, "MONOCHROME2", frames
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    pixels = np.random.default_rng(SEED).integers(0, 4000, (frames, 16, 16), dtype=np.uint16)
    ds.PixelData = pixels.tobytes()
    ds.compress(RLELossless)
    ds.save_as(path, enforce_file_format=True)
    return path


def _items(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each item of the file's encapsulated pixel data (the basic offset table first)."""
    import struct

    start = data.rindex(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff") + 12
    out = []
    while data[start:start + 4] == b"\xfe\xff\x00\xe0":
        (length,) = struct.unpack_from("<I", data, start + 4)
        out.append((start, start + 8 + length))
        start += 8 + length
    return out


def test_a_cut_compressed_image_is_refused(tmp_path, capsys):
    from orbitai.dicom.web import incomplete

    (tmp_path / "series").mkdir()
    path = rle_image(tmp_path / "series" / "rle.dcm")
    data = path.read_bytes()
    assert incomplete(pydicom.dcmread(path)) is None                          # intact: complete
    items = _items(data)
    assert len(items) == 3 and data[items[-1][1]:] == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    damaged = {
        "cut inside the last fragment": data[: items[-1][1] - 100],
        "cut at the sequence delimiter": data[: items[-1][1]],
        "a fragment shorter than its header says": data[: items[-1][1] - 100] + data[items[-1][1]:],
        "a frame's fragment missing": data[: items[-1][0]] + data[items[-1][1]:],
    }
    for how, cut_data in damaged.items():
        path.write_bytes(cut_data)
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)           # pydicom: "End of file reached before ..."
            assert incomplete(pydicom.dcmread(path)), how
            assert main(["dicom", "push", str(path.parent), "--url", "http://127.0.0.1:9/dicom-web"]) == 2
        line = one_error_line(capsys)
        assert "not a complete DICOM file" in line and "nothing was stored" in line, (how, line)
    path.write_bytes(data[: items[-1][0]] + data[items[-1][1]:])
    assert incomplete(pydicom.dcmread(path)) == "its compressed pixel data hold 1 fragment(s) for 2 frame(s)"
    path.write_bytes(data[: items[-1][1] - 100] + data[items[-1][1]:])
    assert "declares" in incomplete(pydicom.dcmread(path))


def test_the_uid_check_refuses_a_trailing_newline():
    from orbitai.dicom.web import DicomWebError, check_uid

    assert check_uid("1.2.840.10008") == "1.2.840.10008"
    for bad in ("1.2.3\n", "\n1.2.3", "1.2.3 "):
        with pytest.raises(DicomWebError, match="is not a DICOM UID"):
            check_uid(bad)


class FailingSecondStudy(StubClient):
    """Confirms every instance of the first study; the second fails as ``how`` says."""

    def __init__(self, how: str):
        super().__init__(10_000)
        self.how, self.calls = how, 0

    def store_instances(self, datasets, study_instance_uid=None):
        import requests

        self.calls += 1
        if self.calls == 1:
            return super().store_instances(datasets, study_instance_uid)
        if self.how == "request":
            raise requests.exceptions.ConnectionError("Connection refused")
        answer = StubClient(0).store_instances(datasets, study_instance_uid)
        if self.how == "refused":
            from pydicom import Dataset

            item = Dataset()
            item.ReferencedSOPInstanceUID = datasets[0].SOPInstanceUID
            answer.FailedSOPSequence = [item]
        return answer


@pytest.mark.parametrize("how, said", [("refused", "refused 1 instance(s)"), ("unconfirmed", "did not confirm"),
                                       ("request", "Cannot reach the DICOMweb server")])
def test_a_push_failing_after_a_stored_study_says_how_many_were_stored(tmp_path, monkeypatch, capsys, how, said):
    from orbitai.dicom import web

    first = write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "a", "CT", new_uid(), new_uid())
    write_dicom_series(orbit_case(SEED + 1, "ct").image, tmp_path / "b", "CT", new_uid(), new_uid())
    n = len(list(first.iterdir()))
    stub = FailingSecondStudy(how)
    monkeypatch.setattr(web, "_client", lambda url, timeout=web.TIMEOUT_S: stub)
    assert main(["dicom", "push", str(tmp_path / "a"), str(tmp_path / "b"), "--url", "http://pacs.invalid/dicom-web"]) == 2
    line = one_error_line(capsys)
    assert said in line and f"{n} instance(s) of 1 earlier study(ies) were stored before this failure" in line, line
