"""``orbitai seg predict`` on a DICOM series also writes a DICOM SEG and a TID 1500 SR (issue 33), checked by
independent tools: dcmqi reads the SEG back voxel-identical to the .seg.nrrd (in geometry too), dciodvfy
finds no error in either file, and the SR's volumes equal volumes.csv."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, read_volume, write_dicom_series
from orbitai.io.segfile import read_segmentation
from orbitai.orbit.result import SegmentationResult
from orbitai.phantoms.clinical_ct import write_clinical_series
from orbitai.phantoms.orbit import orbit_case

pytest.importorskip("highdicom", reason="install orbitai[dicom] (pydicom, highdicom)")
SEED = 777003  # never used for training cohorts


def segimage2itkimage() -> str:
    exe = Path(sys.executable).parent / "segimage2itkimage"
    found = str(exe) if exe.exists() else shutil.which("segimage2itkimage")
    if not found:
        pytest.skip("dcmqi is not installed: pip install dcmqi")
    return found


def dciodvfy() -> str:
    found = shutil.which("dciodvfy")
    if not found:
        pytest.skip("dciodvfy is not installed: apt-get install dicom3tools (make venv does it as root)")
    return found


def predict(folder: Path, out: Path, *extra: str) -> Path:
    assert main(["seg", "predict", str(folder), "--out", str(out), "--device", "cpu", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    return write_dicom_series(orbit_case(SEED, "ct").image, tmp_path_factory.mktemp("dicom_seg") / "series")


@pytest.fixture(scope="module")
def result(series) -> Path:
    return predict(series, series.parent / "out")


def dcmqi_masks(seg: Path, tmp: Path) -> dict[str, Volume]:
    """segment label -> its mask as dcmqi reads the SEG (one NRRD per segment)."""
    out = tmp / "dcmqi"
    out.mkdir()
    run = subprocess.run([segimage2itkimage(), "--inputDICOM", str(seg), "--outputDirectory", str(out),
                          "-t", "nrrd", "-p", "seg"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    meta = json.loads((out / "seg-meta.json").read_text())
    masks = {}
    for group in meta["segmentAttributes"]:
        for attrs in group:
            masks[attrs["SegmentLabel"]] = read_volume(out / f"seg-{attrs['labelID']}.nrrd")
    return masks


def assert_same_masks(seg_dcm: Path, seg_nrrd: Path, tmp: Path) -> int:
    """Every segment dcmqi reads lies on the .seg.nrrd's lattice (same spacing and direction, origin on a
    voxel) and equals that label's mask there, with nothing of it outside; returns the segments compared."""
    labels, table = read_segmentation(seg_nrrd)
    masks = dcmqi_masks(seg_dcm, tmp)
    assert set(masks) <= {info.name for info in table.values()}
    for value, info in table.items():
        truth = labels.array == value
        if info.name not in masks:
            assert not truth.any(), f"{info.name} is missing from the SEG"
            continue
        mask = masks[info.name]
        np.testing.assert_allclose(mask.spacing, labels.spacing, rtol=1e-5)
        np.testing.assert_allclose(mask.direction, labels.direction, atol=1e-5)
        ijk = labels.physical_to_index(mask.origin)
        start = np.round(ijk).astype(int)
        np.testing.assert_allclose(ijk, start, atol=1e-3)
        i0, j0, k0 = start
        nk, nj, ni = mask.shape
        assert min(start) >= 0 and k0 + nk <= labels.shape[0] and j0 + nj <= labels.shape[1] \
            and i0 + ni <= labels.shape[2]
        window = truth[k0:k0 + nk, j0:j0 + nj, i0:i0 + ni]
        assert np.array_equal(mask.array > 0, window), info.name
        assert int(window.sum()) == int(truth.sum()), f"{info.name}: voxels outside the SEG's extent"
    return len(masks)


def dciodvfy_errors(path: Path) -> list[str]:
    run = subprocess.run([dciodvfy(), str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (run.stdout + run.stderr).splitlines() if ln.startswith("Error")]


def test_dicom_input_writes_seg_and_sr_listed_in_result(result):
    data = json.loads((result / "result.json").read_text())
    assert data["files"]["dicom_seg"] == "segmentation.dcm" and data["files"]["dicom_sr"] == "report.dcm"
    assert sorted(p.name for p in result.iterdir()) == ["report.dcm", "result.json", "segmentation.dcm",
                                                         "segmentation.seg.nrrd", "volumes.csv"]
    SegmentationResult.read(result)        # the folder still honours its contract


def test_seg_codes_and_algorithm(result):
    import pydicom

    seg = pydicom.dcmread(result / "segmentation.dcm")
    assert seg.Modality == "SEG" and seg.SegmentationType == "BINARY"
    assert seg.FrameOfReferenceUID == "1.2.826.0.1.3680043.2.1125.1.3"
    assert seg.StudyInstanceUID == "1.2.826.0.1.3680043.2.1125.1.1"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.826.0.1.3680043.2.1125.1.2"
    first = seg.SegmentSequence[0]
    assert first.SegmentLabel == "eyeball_left"
    assert first.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "123037004"
    prop = first.SegmentedPropertyTypeCodeSequence[0]
    assert (prop.CodingSchemeDesignator, prop.CodeValue) == ("SCT", "79652003")
    assert prop.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"      # Left
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0] \
        .SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "24028007"             # Right
    alg = first.SegmentationAlgorithmIdentificationSequence[0]
    assert alg.AlgorithmName == "orbit_svnet_ct_demo" and alg.AlgorithmVersion


def test_dcmqi_reads_the_seg_voxel_identical_to_the_nrrd(result, tmp_path):
    assert assert_same_masks(result / "segmentation.dcm", result / "segmentation.seg.nrrd", tmp_path) >= 10


def test_dciodvfy_finds_no_error_in_seg_and_sr(result):
    assert dciodvfy_errors(result / "segmentation.dcm") == []
    assert dciodvfy_errors(result / "report.dcm") == []


def test_sr_volumes_equal_volumes_csv_and_reference_their_segments(result):
    import highdicom as hd
    import pydicom

    with (result / "volumes.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    seg = pydicom.dcmread(result / "segmentation.dcm")
    number_of = {s.SegmentLabel: int(s.SegmentNumber) for s in seg.SegmentSequence}
    sr = hd.sr.srread(result / "report.dcm")
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"          # Comprehensive 3D SR
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"         # Imaging Measurement Report (TID 1500)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    found = {}
    for g in groups:
        (m,) = g.get_measurements()
        assert (m.name.value, m.unit.value) == ("118565006", "cm3")
        ref = g.referenced_segment
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert ref.referenced_segment_numbers == [number_of[g.tracking_identifier]]
        found[g.tracking_identifier] = m.value
    assert list(found) == [r["name"] for r in rows]
    for r in rows:
        assert found[r["name"]] == pytest.approx(float(r["volume_cm3"]), rel=1e-9, abs=1e-12)
    device_names = [item.TextValue for item in sr.ContentSequence
                    if item.ConceptNameCodeSequence[0].CodeValue == "121013"]     # Device Observer Name
    assert device_names == ["orbit_svnet_ct_demo"]


def test_tilted_series_seg_lies_on_the_resampled_grid(tmp_path):
    case = orbit_case(5, "ct", orientation="axial", size=(128, 128, 96), spacing=(0.8, 0.8, 0.8), oblique=False)
    folder = write_clinical_series(case, tmp_path / "dicom", [2.5] * 15, 20.0, matrix=96, pixel_mm=1.0).folder
    out = predict(folder, tmp_path / "out", "--no-mirror")
    notes = json.loads((out / "result.json").read_text())["acquisition"]["notes"]
    assert any("segmentation.dcm lies on the resampled regular grid" in n for n in notes)
    assert assert_same_masks(out / "segmentation.dcm", out / "segmentation.seg.nrrd", tmp_path) >= 2
    assert dciodvfy_errors(out / "segmentation.dcm") == []
    assert dciodvfy_errors(out / "report.dcm") == []


def test_missing_highdicom_is_one_clear_error(monkeypatch):
    from orbitai.dicom import DicomExportError, require_highdicom

    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.raises(DicomExportError, match=r"pip install 'orbitai\[dicom\]'"):
        require_highdicom()


def test_without_highdicom_predict_writes_the_rest_and_warns(series, tmp_path, monkeypatch):
    from orbitai.dicom import export
    from orbitai.orbit import predictor

    monkeypatch.setattr(export, "writer_available", lambda: False)      # the predictor's DICOM step
    monkeypatch.setattr(predictor, "writer_available", lambda: False)   # the note of a resampled series
    out = predict(series, tmp_path / "out")
    data = json.loads((out / "result.json").read_text())
    assert "dicom_seg" not in data["files"] and not list(out.glob("*.dcm"))
    assert any("pip install 'orbitai[dicom]'" in w for w in data["warnings"])
