"""What a scan is (issue 50): one place that says it, from DICOM tags, the file name and the image."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orbitai.cli import main
from orbitai.io import Volume, VolumeError, read_scan, write_dicom_series, write_volume
from orbitai.io.values import offset_ct_evidence
from orbitai.phantoms.clinical_ct import source_phantom, write_clinical_series
from orbitai.phantoms.heads import HELD_OUT, render_scan
from orbitai.phantoms.orbit import orbit_case
from orbitai.scan import Expects, Fact, ScanFacts, parse_stated, scan_facts
from orbitai.scan.classifier import load
from orbitai.scan.tags import from_file_name, from_tags
from orbitai.scan.values import image_is_ct
from orbitai.tao.spec import EXPECTS as TAO_EXPECTS

T = {"Modality": "0008|0060", "SeriesDescription": "0008|103e", "ScanningSequence": "0018|0020",
     "ScanOptions": "0018|0022", "RepetitionTime": "0018|0080", "EchoTime": "0018|0081", "InversionTime": "0018|0082"}


def tags(**kw: str) -> dict[str, str]:
    return {T[k]: v for k, v in kw.items()}


def twelve_bit_t2(seed: int = 3) -> Volume:
    """A brain-protocol T2 head as the public set stores it: int16 0-4095 (12 bits), 2 mm slices, no modality in
    the header, its histogram such that the old value rule took it for CT stored with +1024."""
    rng = np.random.default_rng(seed)
    r = render_scan(HELD_OUT[0], rng, "MR", "T2", False, "clinical_head", slice_mm=2.0, storage=False)
    a = r.volume.array.astype(np.float64)
    # the scanner's scaling as in the real scan: 3.5 % of voxels above 1700 (CSF, fat), air near 0
    scaled = a / np.percentile(a, 96.5) * 1700
    return r.volume.with_array(np.clip(np.rint(scaled), 0, 4095).astype(np.int16))


def test_the_real_t2_that_was_refused_as_offset_ct_is_routed_to_the_mri_model():
    vol = twelve_bit_t2()
    assert vol.array.min() >= 0 and vol.array.max() <= 4095
    assert offset_ct_evidence(vol) is not None                      # the old rule's trap, rebuilt
    with pytest.raises(VolumeError, match="1024"):
        image_is_ct(vol, "t2.nii.gz")                               # what users met before
    facts = scan_facts(vol, path="sub-07_acq.nii.gz")
    assert facts.require_modality() == "MR" and facts.modality.source == "image"
    assert image_is_ct(vol, "t2.nii.gz", facts.require_modality()) is False
    assert facts.weighting.value == "T2"


@pytest.mark.parametrize("stored", ["uint8", "uint8 saturated"])
def test_an_8_bit_dry_skull_ct_is_known_as_ct_and_refused_not_given_to_the_mri_model(stored):
    r = render_scan(HELD_OUT[1], np.random.default_rng(5), "CT", view="dry_skull", slice_mm=2.0, storage=False)
    hu = r.volume.array
    low, high = (-1000, 2000) if stored == "uint8" else (-200, 600)
    vol = r.volume.with_array(np.clip((hu - low) / (high - low) * 255, 0, 255).round().astype(np.uint8))
    facts = scan_facts(vol)
    assert facts.require_modality() == "CT", facts.to_json()
    with pytest.raises(VolumeError, match="CT stored as 8-bit values"):
        image_is_ct(vol, "skull.nrrd", facts.require_modality())


def test_mr_weighting_and_fat_suppression_from_dicom_tags():
    assert from_tags(tags(Modality="CT")) == {"modality": ("CT", "DICOM Modality")}
    t1 = from_tags(tags(Modality="MR", ScanningSequence="SE", RepetitionTime="500", EchoTime="12"))
    assert t1["weighting"][0] == "T1" and t1["modality"][0] == "MR"
    t2fs = from_tags(tags(Modality="MR", ScanningSequence="SE", ScanOptions="FS\\PFP", RepetitionTime="4000",
                          EchoTime="90"))
    assert t2fs["weighting"][0] == "T2" and t2fs["fat_suppressed"] == (True, "DICOM ScanOptions")
    flair = from_tags(tags(Modality="MR", ScanningSequence="SE\\IR", RepetitionTime="9000", EchoTime="120",
                           InversionTime="2500"))
    assert flair["weighting"][0] == "FLAIR"
    stir = from_tags(tags(Modality="MR", ScanningSequence="IR", RepetitionTime="4000", EchoTime="50",
                          InversionTime="160"))
    assert stir["fat_suppressed"][0] is True and stir["weighting"][0] == "T2"
    pd = from_tags(tags(Modality="MR", RepetitionTime="3000", EchoTime="15", SeriesDescription="PD TSE"))
    assert pd["weighting"][0] == "PD" and "fat_suppressed" not in pd      # no method named: no evidence (#69.6)
    spir = from_tags(tags(Modality="MR", SeriesDescription="T2W_SPIR COR"))
    assert spir["weighting"][0] == "T2" and spir["fat_suppressed"][0] is True
    assert from_file_name("sub-01_FLAIR.nii.gz") == {"modality": ("MR", "file name"), "weighting": ("FLAIR", "file name")}
    assert from_file_name("head_ct.nrrd")["modality"][0] == "CT"


def test_stated_modality_wins_and_bad_values_are_refused():
    assert parse_stated("auto") == {} and parse_stated(None) == {}
    assert parse_stated("t2-fs") == {"modality": "MR", "weighting": "T2", "fat_suppressed": True}
    with pytest.raises(ValueError, match="US"):
        parse_stated("US")
    vol = orbit_case(1, "ct").image
    facts = scan_facts(vol, stated="T1")
    assert facts.modality == Fact("MR", 1.0, "stated (--modality)") and facts.weighting.value == "T1"
    assert any("looks like CT" in n for n in facts.notes)         # the disagreement is said


def test_an_unsure_answer_asks_for_modality_in_one_line():
    facts = ScanFacts(modality=Fact("MR", 0.6, "image"))
    with pytest.raises(VolumeError) as info:
        facts.require_modality("scan.nrrd")
    text = str(info.value)
    assert "\n" not in text and "--modality CT" in text and "60%" in text
    assert facts.summary().startswith("CT or MRI not certain")


def test_dicom_series_are_classified_from_their_tags_and_the_image_agrees(tmp_path):
    for modality, case in (("CT", orbit_case(3, "ct")), ("MR", orbit_case(3, "t1"))):
        folder = write_dicom_series(case.image, tmp_path / modality, modality)
        vol, acq = read_scan(folder)
        facts = scan_facts(vol, acq.tags, folder)
        assert facts.modality.value == modality and facts.modality.source == "DICOM Modality"
        seen = load().answer(vol)
        assert seen["modality"][0] == modality, seen


def test_tao_on_a_thick_brain_protocol_t2_without_fat_suppression_gets_caveats():
    r = render_scan(HELD_OUT[2], np.random.default_rng(11), "MR", "T2", False, "clinical_head", slice_mm=4.0)
    facts = scan_facts(r.volume)
    caveats = facts.caveats(TAO_EXPECTS)
    assert any("fat suppression" in c for c in caveats), facts.to_json()
    assert any("slices up to 3.3 mm" in c for c in caveats)
    spir = scan_facts(orbit_case(4, "t2").image)           # the phantoms TAO is made for: no caveat
    assert spir.caveats(TAO_EXPECTS) == [], spir.to_json()


def test_caveats_name_what_breaks_the_models_assumptions():
    facts = ScanFacts(modality=Fact("CT", 0.99, "image"), slice_mm=Fact(5.0, 1.0, "voxel spacing"))
    out = facts.caveats(Expects(modality="MR", weightings=("FLAIR",), max_slice_mm=3.0, name="The lesion model"))
    assert out[0].startswith("The lesion model was made for MR, but this scan is CT") and "5 mm" in out[1]


def test_scan_describe_and_modality_on_every_predict_command(tmp_path, capsys):
    path = write_volume(twelve_bit_t2(4), tmp_path / "t2_head.nii.gz")
    assert main(["scan", "describe", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["modality"]["value"] == "MR" and data["summary"].startswith("MR T2")
    for command in (["seg", "predict"], ["tao", "predict"], ["ivgc", "predict"], ["neuro", "predict"],
                    ["neuro", "lesions"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        assert "--modality" in capsys.readouterr().out, command
    with pytest.raises(SystemExit) as info:
        main(["seg", "predict", str(path), "--out", str(tmp_path / "o"), "--modality", "US"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "\n" not in err.strip() and "--modality" in err


def test_an_unsure_answer_that_likely_breaks_the_assumption_is_said_as_not_confirmed():
    facts = ScanFacts(modality=Fact("MR", 0.99, "image"), weighting=Fact("T1", 0.6, "image"),
                      fat_suppressed=Fact(False, 0.7, "image"))
    out = facts.caveats(TAO_EXPECTS)
    assert any("weighting could not be confirmed (the image suggests T1, 0.60)" in c for c in out), out
    assert any("fat suppressed could not be confirmed (the image suggests not fat suppressed, 0.70)" in c for c in out)
    likely_right = ScanFacts(modality=Fact("MR", 0.99, "image"), weighting=Fact("T2", 0.6, "image"),
                             fat_suppressed=Fact(True, 0.7, "image"))
    assert likely_right.caveats(TAO_EXPECTS) == []


def test_seg_predict_segments_the_12_bit_t2_with_the_mri_model_and_says_what_the_scan_is(tmp_path, capsys):
    path = write_volume(twelve_bit_t2(6), tmp_path / "t2_head.nii.gz")
    out = tmp_path / "seg"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    data = json.loads((out / "result.json").read_text())
    assert "mri" in data["model"] and data["scan"]["modality"]["value"] == "MR", data["scan"]
    assert "scan: MR" in capsys.readouterr().out


@pytest.mark.parametrize("encoding", ["hu", "rescaled", "offset1024", "window8"])
def test_clinical_ct_series_of_every_encoding_are_ct_by_tags_and_by_image(encoding, tmp_path):
    case = source_phantom(21, fov_mm=110.0, height_mm=70.0, spacing_mm=0.7)
    write_clinical_series(case, tmp_path / encoding, [1.0] * 40, matrix=160, pixel_mm=0.7, encoding=encoding)
    vol, acq = read_scan(tmp_path / encoding)
    facts = scan_facts(vol, acq.tags, tmp_path / encoding)
    assert facts.modality.value == "CT" and facts.modality.source == "DICOM Modality"
    assert load().answer(vol)["modality"][0] == "CT"
