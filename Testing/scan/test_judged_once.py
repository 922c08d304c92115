"""Issue 63, item 1: the input is judged once, by `orbitai.scan`, and the callers read its facts.

A walk of one image through ``seg predict`` entered the old value checks eight times (``looks_like_ct`` three times
and more, the 8-bit, +1024 and wrapped-values rules twice each); ``--modality`` was parsed by the argument parser
and again by ``scan_facts``; the TAO, IVGC, FLAIR and globe checks decided CT vs MR from the values themselves, so a
stated modality did not reach them; a PD named as BIDS names it ("PDw") was not recognised as T2w is."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from orbitai import modality
from orbitai.cli import build_parser, main
from orbitai.io import Volume, VolumeError, values as io_values, write_volume
from orbitai.phantoms.orbit import orbit_case
from orbitai.scan import Fact, scan_facts
from orbitai.scan.classifier import ScanClassifier
from orbitai.scan.tags import fat_suppressed_from_words, from_file_name
from orbitai.scan.values import ct_for_an_mr_model, in_hounsfield_units, model_family

import orbitai.orbit.predictor  # noqa: F401  (and what it reads the image with: imported before counting)

SEED = 777063  # never used for training cohorts


@pytest.fixture(scope="module")
def ct_image() -> Volume:
    return orbit_case(SEED, "ct").image


def _count_value_samples(monkeypatch) -> list[int]:
    """Count every sample taken of an image's values (each value check takes one), wherever it is imported."""
    original = io_values.value_sample
    calls: list[int] = []

    def counted(vol):
        calls.append(1)
        return original(vol)

    for name, mod in list(sys.modules.items()):
        if name.startswith("orbitai") and getattr(mod, "value_sample", None) is original:
            monkeypatch.setattr(mod, "value_sample", counted)
    return calls


def test_seg_predict_measures_the_image_values_and_asks_the_classifier_once(ct_image, tmp_path, monkeypatch):
    path = write_volume(ct_image, tmp_path / "ct.nrrd")
    samples = _count_value_samples(monkeypatch)
    answers: list[int] = []
    original_answer = ScanClassifier.answer

    def answer(self, vol, coarse=None):
        answers.append(1)
        return original_answer(self, vol, coarse)

    monkeypatch.setattr(ScanClassifier, "answer", answer)
    out = tmp_path / "out"
    assert main(["seg", "predict", str(path), "--out", str(out), "--device", "cpu", "--no-mirror"]) == 0
    assert (out / "result.json").is_file()
    assert answers == [1], "the image classifier is asked once per input"
    assert len(samples) == 1, f"the image's values were measured {len(samples)} times (once per input)"


def test_the_modality_option_is_parsed_once(ct_image, monkeypatch):
    calls: list[object] = []
    original = getattr(modality, "_parse", None)

    def counted(choice):
        calls.append(choice)
        assert original is not None
        return original(choice)

    monkeypatch.setattr(modality, "_parse", counted, raising=False)
    args = build_parser().parse_args(["seg", "predict", "x.nrrd", "--out", "o", "--modality", "pd-fs"])
    assert args.modality == "PD-FS"                        # the normalised text, as options record it
    facts = scan_facts(ct_image, stated=args.modality, image=False)
    assert calls == ["pd-fs"], calls                       # parsed by the parser only
    assert (facts.modality.value, facts.weighting.value, facts.fat_suppressed.value) == ("MR", "PD", True)
    assert facts.weighting.source.startswith("stated")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["seg", "predict", "x.nrrd", "--out", "o", "--modality", "DWI"])


def test_the_model_family_follows_the_statement_then_the_values(ct_image):
    assert model_family(scan_facts(ct_image, stated="T2", image=False)) == "MR"     # the user's word wins
    assert model_family(scan_facts(ct_image, stated="CT", image=False)) == "CT"
    assert model_family(scan_facts(ct_image, image=False)) == "CT"                  # nothing sure: the values
    assert model_family(None, ct_image) == "CT"
    mr = ct_image.with_array(np.clip(ct_image.array + 1000, 0, None).astype(np.float32))
    assert model_family(scan_facts(mr, image=False)) == "MR"


def test_values_are_hounsfield_units_unless_the_user_or_the_tags_say_otherwise(ct_image):
    """The vitreous' water-like HU rule reads the values as HU where they look so, even when the image classifier
    takes the scan for an MR (a dry skull in air; a crop of one orbit, on which the head-trained classifier can be
    sure of MR): the CT models read it too; a stated MR wins."""
    facts = scan_facts(ct_image, image=False)
    facts.modality = Fact("MR", 0.99, "image")
    assert model_family(facts) == "CT" and in_hounsfield_units(facts)
    assert not in_hounsfield_units(scan_facts(ct_image, stated="MR", image=False))
    assert in_hounsfield_units(scan_facts(ct_image, stated="CT", image=False))


def test_an_mr_only_model_refuses_a_ct_unless_the_user_says_mr(ct_image):
    """TAO, IVGC and the FLAIR check: a stated (or tagged) modality wins; otherwise either sign of CT refuses (the
    classifier sure of CT, or values in Hounsfield units even where the classifier takes the image for an MR)."""
    facts = scan_facts(ct_image, image=False)
    assert ct_for_an_mr_model(facts)
    facts.modality = Fact("MR", 0.99, "image")
    assert ct_for_an_mr_model(facts)
    assert not ct_for_an_mr_model(scan_facts(ct_image, stated="T2", image=False))
    mr = ct_image.with_array(np.clip(ct_image.array + 1000, 0, None).astype(np.float32))
    sure_ct = scan_facts(mr, image=False)
    sure_ct.modality = Fact("CT", 0.99, "image")
    assert ct_for_an_mr_model(sure_ct) and not ct_for_an_mr_model(scan_facts(mr, image=False))


def test_tao_and_ivgc_input_checks_read_the_stated_modality(ct_image, tmp_path):
    from orbitai.ivgc.features import load_case
    from orbitai.tao.preprocess import check_tao_input

    with pytest.raises(VolumeError, match="looks like CT"):
        check_tao_input(ct_image)                                   # no facts: the values say CT
    check_tao_input(ct_image, facts=scan_facts(ct_image, stated="T2", image=False))   # the user said T2: goes on
    case = orbit_case(SEED, "ct")
    image, seg = write_volume(case.image, tmp_path / "ct.nrrd"), write_volume(case.labels, tmp_path / "seg.nrrd")
    with pytest.raises(Exception, match="looks like CT"):
        load_case(image, seg)
    load_case(image, seg, facts=scan_facts(case.image, stated="T2", image=False))


# ----------------------------------------------------------------------------------------------------- PD
@pytest.mark.parametrize("name,fat", [("sub-01_PDw.nii.gz", None), ("COR_PDFS.nii.gz", True),
                                      ("pd_tse_cor.nrrd", None), ("proton_density.nii", None)])
def test_pd_is_named_like_the_other_weightings(name, fat):
    hints = from_file_name(name)
    assert hints.get("weighting", (None,))[0] == "PD" and hints["modality"][0] == "MR", hints
    assert hints.get("fat_suppressed", (None,))[0] is fat
    assert from_file_name("sub-01_T2w.nii.gz")["weighting"][0] == "T2"
    assert fat_suppressed_from_words("COR PDFS TSE") is True


def _head(shape=(60, 60, 48)) -> Volume:
    rng = np.random.default_rng(0)
    return Volume(rng.uniform(0, 800, shape).astype(np.float32), (1.0, 1.0, 2.4))


def test_an_image_unsure_of_a_pd_head_named_pdw_is_mr_pd_without_asking(monkeypatch):
    """The real case: a 2.4 mm PD head the image classifier calls MR with only 60 % confidence, named as BIDS names
    it: MR and PD follow from the name, no --modality is asked for."""
    monkeypatch.setattr("orbitai.scan.why_not_a_scan", lambda vol, coarse: "")
    monkeypatch.setattr(ScanClassifier, "answer", lambda self, vol, coarse=None: {
        "modality": ("MR", 0.6), "weighting": ("PD", 0.55), "fat_suppressed": (False, 0.9)})
    facts = scan_facts(_head(), path="sub-01_PDw.nii.gz")
    assert facts.require_modality() == "MR"
    assert facts.sure("weighting") and facts.weighting.value == "PD", facts.to_json()
    with pytest.raises(VolumeError, match="only 60% confidence"):
        scan_facts(_head(), path="series_0003.nii.gz").require_modality()     # nothing names it: asked


def test_a_pd_named_by_file_tags_or_statement_is_mr_with_confidence(monkeypatch):
    monkeypatch.setattr("orbitai.scan.why_not_a_scan", lambda vol, coarse: "no head found")   # the image is silent
    named = scan_facts(_head(), path="knee_or_head_PDw.nii.gz")
    assert named.require_modality() == "MR" and named.weighting.value == "PD", named.to_json()
    stated = scan_facts(_head(), stated="PD")
    assert stated.require_modality() == "MR" and stated.weighting.value == "PD"
    tagged = scan_facts(_head(), {"0008|0060": "MR", "0018|0080": "3000", "0018|0081": "30", "0018|0020": "SE"})
    assert tagged.require_modality() == "MR" and tagged.weighting.value == "PD"
    with pytest.raises(VolumeError, match="--modality"):
        scan_facts(_head(), path="series_0003.nii.gz").require_modality()


def test_neuro_lesions_judges_the_flairs_contrast_once(tmp_path, monkeypatch):
    """`neuro lesions` checked the FLAIR (its T2/T1-like contrast verdict) before and again after the brain
    extraction; the second time only the intracranial volume is new."""
    from orbitai.neuro.predict import NeuroOptions, lesions_of
    from orbitai.scan import flair as judge
    from orbitai.phantoms import brain_flair_case

    path = write_volume(brain_flair_case(SEED).image, tmp_path / "flair.nii.gz")
    verdicts: list[int] = []
    original = judge.flair_verdict

    def counted(*args, **kwargs):
        verdicts.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(judge, "flair_verdict", counted)
    found = lesions_of(path, None, None, lambda flair, mask: flair.with_array(np.zeros(flair.shape, np.uint8)),
                       NeuroOptions())
    assert found.extraction.icv_ml > 600
    assert verdicts == [1]


def test_the_orbit_model_asks_only_ct_or_mr_and_a_plainly_mr_scan_is_never_sent_back(monkeypatch):
    """Issue 78: the image classifier unsure of a PD head (MR 60 %), nothing naming it: its values hold no sign of CT,
    so the orbit models read it as MR and say why; the same doubt on Hounsfield values, or a classifier leaning to
    CT, is still asked about."""
    from orbitai.scan.values import bundled_model_family

    monkeypatch.setattr("orbitai.scan.why_not_a_scan", lambda vol, coarse: "")
    lean = {"modality": ("MR", 0.6), "weighting": ("PD", 0.55), "fat_suppressed": (False, 0.9)}
    monkeypatch.setattr(ScanClassifier, "answer", lambda self, vol, coarse=None: lean)
    facts = scan_facts(_head(), path="series_0003.nii.gz")
    assert not facts.sure("modality")
    assert bundled_model_family(facts, "series_0003.nii.gz", _head()) == "MR"
    assert any("no sign of CT" in n for n in facts.notes), facts.notes
    ct = Volume(np.where(_head().array > 400, 40.0, -1000.0).astype(np.float32), (1.0, 1.0, 2.4))
    with pytest.raises(VolumeError, match="--modality"):
        bundled_model_family(scan_facts(ct, path="series_0003.nii.gz"), "series_0003.nii.gz", ct)
    lean = {"modality": ("CT", 0.6), "weighting": ("PD", 0.55), "fat_suppressed": (False, 0.9)}
    with pytest.raises(VolumeError, match="--modality"):
        bundled_model_family(scan_facts(_head(), path="series_0003.nii.gz"), "series_0003.nii.gz", _head())
