"""The exchange with a real PACS (issue 33): Orthanc with its DICOMweb plugin, started on 127.0.0.1 for this
module and stopped after. A phantom CT and an MRI series are stored, fetched by UID (a folder, and a DICOMweb
URL given straight to predict), segmented, and the SEG and SR pushed back and found in the same study; bad
addresses and UIDs end in one line with nothing written."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orbitai.cli import main
from orbitai.io import write_dicom_series
from orbitai.io.dicom_write import new_uid
from orbitai.phantoms.orbit import orbit_case
from orthanc_fixture import ORTHANC_INSTALL, find_orthanc, orthanc_server

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom", reason="install orbitai[dicom]")
pytest.importorskip("dicomweb_client", reason="install orbitai[dicom]")
SEED = 777041  # never used for training cohorts


@pytest.fixture(scope="module")
def pacs() -> str:
    if find_orthanc() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Orthanc is missing in CI: {ORTHANC_INSTALL}")
        pytest.skip(ORTHANC_INSTALL)
    with orthanc_server() as url:
        yield url


@pytest.fixture(scope="module")
def stored(pacs, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """A CT and a T2 MRI phantom stored in the PACS, each in a study of its own: kind -> (study, series)."""
    from orbitai.dicom.web import push

    root = tmp_path_factory.mktemp("pacs_src")
    out = {}
    for kind, modality in (("ct", "CT"), ("t2", "MR")):
        study, series = new_uid(), new_uid()
        folder = write_dicom_series(orbit_case(SEED, kind).image, root / kind, modality, study, series)
        assert push([folder], pacs)["stored"] == len(list(folder.iterdir()))
        out[kind] = (study, series)
    return out


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def assert_results_in_the_study(pacs: str, study: str, out: Path) -> None:
    """SEG and SR series stored in ``study``; the SEG retrieved equals the local file."""
    from dicomweb_client.api import DICOMwebClient

    from orbitai.dicom.web import search_series

    files = json.loads((out / "result.json").read_text())["files"]
    local_seg = pydicom.dcmread(out / files["dicom_seg"])
    local_sr = pydicom.dcmread(out / files["dicom_sr"])
    assert local_seg.StudyInstanceUID == study == local_sr.StudyInstanceUID
    by_modality = {s.modality: s for s in search_series(pacs, study)}
    assert {"SEG", "SR"} <= set(by_modality)
    seg = DICOMwebClient(pacs).retrieve_series(study, by_modality["SEG"].uid)
    assert [ds.SOPInstanceUID for ds in seg] == [local_seg.SOPInstanceUID]
    assert len(seg[0].SegmentSequence) == len(local_seg.SegmentSequence)
    assert seg[0].pixel_array.sum() == local_seg.pixel_array.sum()


def test_round_trip_ct_fetch_predict_push(pacs, stored, tmp_path, capsys):
    study, series = stored["ct"]
    fetched = tmp_path / "fetched"
    assert main(["dicom", "fetch", "--url", pacs, "--study", study, "--out", str(fetched)]) == 0
    assert len(list(fetched.iterdir())) == orbit_case(SEED, "ct").image.array.shape[0]
    out = tmp_path / "out"
    assert main(["seg", "predict", str(fetched), "--out", str(out), "--device", "cpu"]) == 0
    assert main(["dicom", "push", str(out), "--url", pacs]) == 0
    assert "stored 2 instance(s)" in capsys.readouterr().out
    assert_results_in_the_study(pacs, study, out)


def test_round_trip_mri_from_a_dicomweb_url(pacs, stored, tmp_path):
    study, series = stored["t2"]
    out = tmp_path / "out"
    assert main(["seg", "predict", f"{pacs}/studies/{study}/series/{series}", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert main(["dicom", "push", str(out), "--url", pacs]) == 0
    assert_results_in_the_study(pacs, study, out)


def test_a_study_with_several_image_series_is_listed(pacs, stored, tmp_path, capsys):
    from orbitai.dicom.web import push

    study, series = stored["ct"]
    extra = write_dicom_series(orbit_case(SEED, "ct").image, tmp_path / "again", "CT", study, new_uid())
    push([extra], pacs)
    out = tmp_path / "out"
    assert main(["seg", "predict", f"{pacs}/studies/{study}", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "image series; choose one with --series UID" in line and series in line
    assert not out.exists()


@pytest.mark.parametrize("how", ["unreachable", "no such study", "no such series"])
def test_bad_addresses_are_one_line_and_write_nothing(pacs, stored, tmp_path, capsys, how):
    study, series = stored["ct"]
    url = {"unreachable": "http://127.0.0.1:9/dicom-web"}.get(how, pacs)
    study = "1.2.826.0.1.3680043.2.1125.404" if how == "no such study" else study
    series = "1.2.826.0.1.3680043.2.1125.405" if how == "no such series" else series
    expected = {"unreachable": "Cannot reach the DICOMweb server at http://127.0.0.1:9/dicom-web (connection refused)",
                "no such study": f"No study {study} on {url}",
                "no such series": f"No series {series} in study {study}"}[how]
    fetched = tmp_path / "fetched"
    assert main(["dicom", "fetch", "--url", url, "--study", study, "--series", series, "--out", str(fetched)]) == 2
    assert expected in one_error_line(capsys)
    out = tmp_path / "out"
    assert main(["tao", "predict", f"{url}/studies/{study}/series/{series}", "--out", str(out)]) == 2
    assert expected in one_error_line(capsys)
    assert not fetched.exists() and not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_pushing_a_folder_without_dicom_is_refused(pacs, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no DICOM here")
    assert main(["dicom", "push", str(tmp_path), "--url", pacs]) == 2
    assert "No DICOM files in" in one_error_line(capsys)


def test_nothing_is_left_running_after_the_server_stops():
    import subprocess

    if find_orthanc() is None:
        pytest.skip(ORTHANC_INSTALL)
    def running(port: str) -> set[str]:
        """Orthanc processes serving ``port`` (other servers, this module's or another test process's, may be up)."""
        pids = subprocess.run(["pgrep", "-f", "orbitai-orthanc-"], capture_output=True, text=True).stdout.split()
        found = set()
        for pid in pids:
            try:
                config = Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1].decode())
                if str(json.loads(config.read_text())["HttpPort"]) == port:
                    found.add(pid)
            except (OSError, IndexError, ValueError, KeyError):
                continue          # gone meanwhile, or not a server
        return found

    with orthanc_server() as url:
        assert url.startswith("http://127.0.0.1:")
        port = url.split(":")[2].split("/")[0]
        assert len(running(port)) == 1
    assert running(port) == set()
