"""DICOM SEG and SR of the other predict commands on DICOM input (issue 33): ``neuro lesions`` and ``neuro
predict`` (SEG of the lesions and the intracranial mask, SR of the lesion numbers and P(NMOSD)), ``tao predict``
(SR of P(active) per eye) and ``ivgc predict`` (SR of P(response) with the model and ROI strategy). Checked by
independent tools: dciodvfy finds no error, dcmqi reads each SEG back voxel-identical to the .seg.nrrd, and
every number in the SR equals result.json."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_seg_sr import dciodvfy_errors, dcmqi_masks  # the same checks as the orbit SEG (Testing/dicom on sys.path)

from orbitai.cli import main
from orbitai.io import read_volume, write_dicom_series
from orbitai.phantoms import write_cohort
from orbitai.phantoms.brain import brain_flair_case

hd = pytest.importorskip("highdicom", reason="install orbitai[dicom] (pydicom, highdicom)")
SEED = 777061  # never used for training cohorts


def sr_numbers(path: Path) -> dict[tuple[str, str], float]:
    """(tracking identifier, measurement meaning) -> value of every measurement in the SR's measurement groups."""
    import pydicom

    out: dict[tuple[str, str], float] = {}

    def walk(items, label: str | None) -> None:
        for it in items:
            name = it.ConceptNameCodeSequence[0].CodeMeaning
            if name == "Tracking Identifier":
                label = it.TextValue
            elif it.ValueType == "NUM":
                out[(str(label), name)] = float(it.MeasuredValueSequence[0].NumericValue)
            if "ContentSequence" in it and name != "Measurement Group":
                walk(it.ContentSequence, label)

    def groups(items) -> None:
        for it in items:
            if it.ConceptNameCodeSequence[0].CodeMeaning == "Measurement Group":
                walk(it.ContentSequence, None)
            elif "ContentSequence" in it:
                groups(it.ContentSequence)

    groups(pydicom.dcmread(path).ContentSequence)
    return out


@pytest.fixture(scope="module")
def flair(tmp_path_factory) -> Path:
    case = brain_flair_case(SEED, "ms")
    image = case.image.with_array(np.round(case.image.array * 100.0))      # int16 keeps 0.01 steps
    return write_dicom_series(image, tmp_path_factory.mktemp("neuro_dicom") / "flair", "MR")


@pytest.fixture(scope="module", params=["lesions", "predict"])
def neuro(request, flair) -> Path:
    out = flair.parent / request.param
    extra = ["--no-heatmap"] if request.param == "predict" else []
    assert main(["neuro", request.param, str(flair), "--out", str(out), "--device", "cpu", *extra]) == 0
    return out


def test_neuro_writes_seg_and_sr_checked_by_dciodvfy(neuro):
    files = json.loads((neuro / "result.json").read_text())["files"]
    assert files["dicom_seg"] == "segmentation.dcm" and files["dicom_sr"] == "report.dcm"
    assert dciodvfy_errors(neuro / "segmentation.dcm") == []
    assert dciodvfy_errors(neuro / "report.dcm") == []


def test_neuro_seg_reads_back_voxel_identical_with_dcmqi(neuro, tmp_path):
    from orbitai.io.segfile import read_segmentation

    masks = dcmqi_masks(neuro / "segmentation.dcm", tmp_path)
    assert set(masks) == {"white_matter_lesions", "intracranial"}
    for label, nrrd in (("white_matter_lesions", "lesions.seg.nrrd"), ("intracranial", "brain.seg.nrrd")):
        truth = read_segmentation(neuro / nrrd)[0]
        mask = masks[label]
        start = np.round(truth.physical_to_index(mask.origin)).astype(int)
        i0, j0, k0 = start
        nk, nj, ni = mask.shape
        window = truth.array[k0:k0 + nk, j0:j0 + nj, i0:i0 + ni] != 0
        assert np.array_equal(mask.array > 0, window), label
        assert int(window.sum()) == int((truth.array != 0).sum()), label


def test_neuro_sr_numbers_equal_result_json(neuro):
    data = json.loads((neuro / "result.json").read_text())
    lesions = data["lesions"]
    numbers = sr_numbers(neuro / "report.dcm")
    assert numbers[("white_matter_lesions", "White matter lesion count")] == lesions["count"]
    assert numbers[("white_matter_lesions", "Volume")] == pytest.approx(lesions["total_ml"], rel=1e-12)
    assert numbers[("white_matter_lesions", "Lesion volume as percent of intracranial volume")] == \
        pytest.approx(lesions["percent_icv"], rel=1e-12)
    assert numbers[("intracranial", "Volume")] == pytest.approx(lesions["icv_ml"], rel=1e-12)
    for location, n in lesions["counts"].items():
        assert numbers[("white_matter_lesions", f"Lesion count, {location.replace('_', ' ')}")] == n
    for location, ml in lesions["volumes_ml"].items():
        assert numbers[("white_matter_lesions", f"Lesion volume, {location.replace('_', ' ')}")] == \
            pytest.approx(ml, rel=1e-12)
    if data.get("trust") and data.get("probability_nmosd") is not None:
        # a call marked do not use is not assessed: no probability in the SR (issue 61; test_not_assessed_calls.py)
        assert data["call"] is None and not any(meaning == "Probability" for _, meaning in numbers)
    elif "probability_nmosd" in data:
        assert numbers[("P(NMOSD)", "Probability")] == pytest.approx(data["probability_nmosd"], rel=1e-12)
    else:
        assert not any(label == "P(NMOSD)" for label, _ in numbers)


@pytest.fixture(scope="module")
def orbit_cases(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """A TAO and an IVGC phantom: (DICOM series folder, segmentation) each."""
    from orbitai.cohort.manifest import read_manifest

    root = tmp_path_factory.mktemp("orbit_dicom")
    out = {}
    for kind in ("tao", "ivgc"):
        case = read_manifest(write_cohort(kind, 1, SEED, root / kind, montage_cases=0), need_segmentation=True)[0]
        out[kind] = (write_dicom_series(read_volume(case.image), root / f"{kind}_dicom", "MR"), Path(case.segmentation))
    return out


def test_tao_sr_has_p_active_per_eye(orbit_cases, tmp_path):
    series, seg = orbit_cases["tao"]
    out = tmp_path / "tao"
    assert main(["tao", "predict", str(series), "--segmentation", str(seg), "--out", str(out), "--no-maps",
                 "--device", "cpu"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["files"]["dicom_sr"] == "report.dcm" and "dicom_seg" not in data["files"]
    assert dciodvfy_errors(out / "report.dcm") == []
    numbers = sr_numbers(out / "report.dcm")
    for eye in data["eyes"]:
        # a call marked do not use has no probability in the SR (this phantom series' tags say: no fat suppression;
        # issue 61, test_not_assessed_calls.py); any other eye's equals result.json
        if eye.get("trust"):
            assert eye["call"] is None and not any(label.startswith(f"P(active) {eye['side']}") for label, _ in numbers)
        else:
            assert numbers[(f"P(active) {eye['side']}", "Probability")] == pytest.approx(eye["probability_active"],
                                                                                         rel=1e-12)


def test_ivgc_sr_has_p_response_with_model_and_roi_strategy(orbit_cases, tmp_path):
    import pydicom

    series, seg = orbit_cases["ivgc"]
    out = tmp_path / "ivgc"
    assert main(["ivgc", "predict", str(series), "--segmentation", str(seg), "--out", str(out),
                 "--device", "cpu", "--no-gradcam"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert data["files"]["dicom_sr"] == "report.dcm"
    assert dciodvfy_errors(out / "report.dcm") == []
    if data.get("trust"):     # a call marked do not use has no probability in the SR (issue 61)
        assert data["call"] is None and not any(m == "Probability" for _, m in sr_numbers(out / "report.dcm"))
    else:
        assert sr_numbers(out / "report.dcm")[("P(responder)", "Probability")] == pytest.approx(data["probability"],
                                                                                             rel=1e-12)
    values = {str(e.value) for e in pydicom.dcmread(out / "report.dcm").iterall() if e.keyword in
              ("TextValue", "AlgorithmName", "AlgorithmParameters")}
    values |= {v for e in pydicom.dcmread(out / "report.dcm").iterall() if e.keyword == "AlgorithmParameters"
               for v in (e.value if e.VM > 1 else [e.value])}
    assert data["model"] in values and f"ROI strategy: {data['strategy']}" in values
