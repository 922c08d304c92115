"""What a predict command accepts as a DICOM image (issue 33): a folder of several series is refused listing them
unless ``--series UID`` chooses one; a SEG, SR or RTSTRUCT, or one slice, given as the image is refused; each in
one line with nothing written. ``--series`` is resolved once for every predict command (orbitai.cli.main)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import build_parser, main
from orbitai.dicom.inputs import parse_dicomweb_url, resolved_images
from orbitai.errors import UserError
from orbitai.io import Volume, read_scan, write_dicom_slice, write_volume
from orbitai.io.dicom_folder import survey_folder
from orbitai.phantoms.orbit import orbit_case

pydicom = pytest.importorskip("pydicom")
SEED = 777021  # never used for training cohorts
PREDICT_COMMANDS = [["seg", "predict"], ["seg", "prior"], ["tao", "predict"], ["ivgc", "predict"],
                    ["neuro", "lesions"], ["neuro", "predict"]]


def write_series(vol: Volume, folder: Path, series_uid: str, modality: str = "CT", description: str = "") -> Path:
    """``vol`` as a DICOM series with its own SeriesInstanceUID (same study and frame of reference)."""
    folder.mkdir(parents=True, exist_ok=True)
    d = vol.direction
    arr = vol.array.astype(np.int16)
    for k in range(arr.shape[0]):
        write_dicom_slice(arr[k], folder / f"{series_uid[-3:]}_{k:04d}.dcm", vol.index_to_physical((0, 0, k)),
                          d[:, 0], d[:, 1], (vol.spacing[0], vol.spacing[1]), k + 1,
                          {"0008|0060": modality, "0020|000e": series_uid, "0008|103e": description,
                           "0008|0018": f"{series_uid}.{k + 1}", "0018|0050": f"{vol.spacing[2]:.6f}"})
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """``two``: a CT phantom and a smaller second series in one folder; ``ct``: the CT alone."""
    root = tmp_path_factory.mktemp("dicom_inputs")
    ct = orbit_case(SEED, "ct").image
    small = Volume(ct.array[::4, ::4, ::4].copy(), tuple(s * 4 for s in ct.spacing), ct.origin, ct.direction)
    write_series(ct, root / "two", "1.2.826.0.1.3680043.2.1125.9.101", description="orbits")
    write_series(small, root / "two", "1.2.826.0.1.3680043.2.1125.9.202", description="scout")
    write_series(ct, root / "ct", "1.2.826.0.1.3680043.2.1125.9.101")
    write_volume(Volume(np.zeros_like(ct.array, dtype=np.uint8), ct.spacing, ct.origin, ct.direction),
                 root / "seg.nrrd")
    return {"two": root / "two", "ct": root / "ct", "root": root}


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_survey_lists_the_series_of_a_folder(folders):
    survey = survey_folder(folders["two"])
    assert sorted(s.uid for s in survey.series) == ["1.2.826.0.1.3680043.2.1125.9.101",
                                                    "1.2.826.0.1.3680043.2.1125.9.202"]
    assert not survey.others


@pytest.mark.parametrize("command", PREDICT_COMMANDS, ids=" ".join)
def test_several_series_are_refused_listing_them_by_every_predict_command(folders, command, capsys, tmp_path):
    out = tmp_path / "out"
    extra = ["--segmentation", str(folders["root"] / "seg.nrrd")] if command == ["ivgc", "predict"] else []
    assert main([*command, str(folders["two"]), "--out", str(out), "--device", "cpu", *extra]) == 2
    line = one_error_line(capsys)
    assert "holds 2 image series; choose one with --series UID" in line
    assert "1.2.826.0.1.3680043.2.1125.9.101 (CT, 'orbits'" in line and ".9.202 (CT, 'scout'" in line
    assert not out.exists()


def test_series_option_reads_the_chosen_series_alone(folders):
    args = build_parser().parse_args(["seg", "predict", str(folders["two"]), "--out", "x",
                                      "--series", "1.2.826.0.1.3680043.2.1125.9.202"])
    with resolved_images(args):
        linked = Path(args.image[0])
        assert linked != folders["two"] and linked.name == "two"
        vol, acq = read_scan(linked)
        assert vol.array.shape == tuple(-(-n // 4) for n in orbit_case(SEED, "ct").image.array.shape)
        assert acq.source == "dicom"
    assert not linked.exists()                       # the temporary folder is gone afterwards
    assert args.image == [str(folders["two"])]


def test_series_option_with_a_uid_not_there_lists_the_series(folders, capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["seg", "predict", str(folders["two"]), "--out", str(out), "--series", "1.2.3"]) == 2
    line = one_error_line(capsys)
    assert "Series 1.2.3 is not in" in line and ".9.101" in line and ".9.202" in line
    assert not out.exists()


def test_series_option_on_a_file_is_refused(folders, capsys, tmp_path):
    f = next(folders["ct"].iterdir())
    assert main(["seg", "predict", str(f), "--out", str(tmp_path / "o"), "--series", "1.2.3"]) == 2
    assert "chooses a series in a DICOM folder" in one_error_line(capsys)


@pytest.fixture(scope="module")
def result(folders) -> Path:
    """seg predict of the chosen series in the two-series folder: SEG and SR reference that series."""
    out = folders["root"] / "out"
    assert main(["seg", "predict", str(folders["two"]), "--series", "1.2.826.0.1.3680043.2.1125.9.101",
                 "--out", str(out), "--device", "cpu"]) == 0
    return out


def test_predict_on_the_chosen_series_references_it_in_the_seg(result):
    pytest.importorskip("highdicom")
    files = json.loads((result / "result.json").read_text())["files"]
    seg = pydicom.dcmread(result / files["dicom_seg"])
    refs = {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence}
    assert refs == {"1.2.826.0.1.3680043.2.1125.9.101"}


@pytest.mark.parametrize("name, kind", [("segmentation.dcm", "DICOM Segmentation (SEG)"),
                                        ("report.dcm", "DICOM Structured Report (SR)")])
def test_a_seg_or_sr_given_as_the_image_is_refused(result, name, kind, capsys, tmp_path):
    pytest.importorskip("highdicom")
    out = tmp_path / "out"
    assert main(["seg", "predict", str(result / name), "--out", str(out)]) == 2
    assert f"is a {kind}, not an image" in one_error_line(capsys)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / name).write_bytes((result / name).read_bytes())
    assert main(["tao", "predict", str(alone), "--out", str(out)]) == 2
    assert f"holds {kind} but no image series" in one_error_line(capsys)
    assert not out.exists()


def test_a_folder_with_the_results_beside_the_series_still_reads(result, folders, tmp_path):
    pytest.importorskip("highdicom")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in folders["ct"].iterdir():
        (mixed / f.name).write_bytes(f.read_bytes())
    for name in ("segmentation.dcm", "report.dcm"):
        (mixed / name).write_bytes((result / name).read_bytes())
    vol, _ = read_scan(mixed)
    assert vol.array.shape == orbit_case(SEED, "ct").image.array.shape


def test_an_rtstruct_given_as_the_image_is_refused(tmp_path, capsys):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    path = tmp_path / "rtstruct.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert main(["neuro", "lesions", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "is a DICOM RT Structure Set (RTSTRUCT), not an image" in one_error_line(capsys)


def test_one_slice_is_refused_pointing_at_its_folder(folders, capsys, tmp_path):
    f = sorted(folders["ct"].iterdir())[0]
    assert main(["seg", "predict", str(f), "--out", str(tmp_path / "o")]) == 2
    assert "is one DICOM slice; give the folder that holds its series" in one_error_line(capsys)


@pytest.mark.parametrize("url, parts", [
    ("http://127.0.0.1:8042/dicom-web/studies/1.2.3/series/4.5", ("http://127.0.0.1:8042/dicom-web", "1.2.3", "4.5")),
    ("https://pacs/wado/studies/1.2.3/", ("https://pacs/wado", "1.2.3", None)),
])
def test_dicomweb_urls_are_parsed(url, parts):
    assert parse_dicomweb_url(url) == parts


def test_a_url_that_names_no_study_is_refused():
    with pytest.raises(UserError, match="not a DICOMweb study or series URL"):
        parse_dicomweb_url("http://127.0.0.1:8042/dicom-web/series/1.2")
