"""Issue 63, "One predictor per task", ivgc and neuro: `IvgcPredictor` and `NeuroPredictor` are made once and keep
their models for every case (the classifier, the lesion network, the IVGC model each loaded once per predictor and
device), judge the scan once (facts the caller passes are used, not judged again), and ``neuro lesions`` (classify
false) and ``neuro predict`` share the one predictor. The front ends reaching them: Testing/core/test_one_predictor.py."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import orbitai.bundle.core as core
import orbitai.cohort.runner as runner
import orbitai.ivgc.predict as ivgc_predict
import orbitai.ivgc.predictor as ivgc_predictor
import orbitai.neuro.predict as neuro_predict
import orbitai.predictor as predictor
from orbitai.io import Volume, write_volume
from orbitai.ivgc.predictor import IvgcPredictor
from orbitai.neuro.predictor import NeuroPredictor
from orbitai.scan import scan_facts
from orbitai.tasks import predictor_for

SEED = 777005     # never used for training cohorts


@pytest.fixture
def built(monkeypatch) -> Counter:
    """How many times each bundle's network was built (the model cache off, as in a one-shot command)."""
    monkeypatch.setattr(core, "_model_cache", None)
    counts: Counter = Counter()
    real = core.Bundle._build_model

    def counting(self, device):
        counts[self.name] += 1
        return real(self, device)

    monkeypatch.setattr(core.Bundle, "_build_model", counting)
    return counts


@pytest.fixture(scope="module")
def flair_files(tmp_path_factory) -> dict[str, Path]:
    from orbitai.testing.neuro_fixtures import phantom

    d = tmp_path_factory.mktemp("flair")
    case = phantom()
    return {"flair": write_volume(case.image, d / "flair.nrrd"), "lesions": write_volume(case.labels, d / "les.nrrd")}


@pytest.fixture(scope="module")
def ivgc_files(tmp_path_factory) -> dict[str, Path]:
    from orbitai.testing.ivgc_response import _phantom

    d = tmp_path_factory.mktemp("ivgc")
    case = _phantom(SEED)
    return {"image": write_volume(case.image, d / "t2.nrrd"), "segmentation": write_volume(case.labels, d / "recti.nrrd")}


def _result(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text())


def test_neuro_classifier_loaded_once_for_lesions_and_predict(flair_files, built, tmp_path, capsys, monkeypatch):
    """Two ``neuro predict`` cases and one ``neuro lesions`` case by one predictor (the task table's, this worker's):
    the classifier is built once; lesions only writes no call; each result.json names the predictor."""
    monkeypatch.setattr(runner, "_STATE", {})      # a fresh worker: no predictor kept by an earlier test
    predictor = predictor_for("neuro", None, "cpu")
    assert type(predictor) is NeuroPredictor
    for name in ("a", "b"):
        predictor.predict(flair_files, tmp_path / name, {"no_heatmap": True})
    lesions = predictor.predict(flair_files, tmp_path / "lesions", {"classify": False})
    assert built == Counter({"neuro_twoview18_demo": 1})
    a, b, only = (_result(tmp_path / n) for n in ("a", "b", "lesions"))
    assert a["probability_nmosd"] == b["probability_nmosd"] and a["lesion_source"] == "given"
    assert "applies" not in only and only["lesions"] == a["lesions"] and lesions.data["lesions"] == a["lesions"]
    assert {d["predictor"] for d in (a, b, only)} == {"orbitai.neuro.predictor.NeuroPredictor"}
    assert capsys.readouterr().out == ""      # printing is the command line's (issue 82)


def test_neuro_lesion_network_loaded_once(built):
    """The lesion network of a predictor is built on its first FLAIR and reused for the next one."""
    rng = np.random.default_rng(0)
    a = rng.normal(100.0, 5.0, (22, 80, 80)).astype(np.float32)
    flair = Volume(a)
    brain = flair.with_array(np.pad(np.ones((20, 74, 74), np.uint8), ((1, 1), (3, 3), (3, 3))))   # 110 mL
    predictor = NeuroPredictor(device="cpu")
    masks = [predictor.segment(flair.with_array(a + k), brain, predictor.device) for k in (0.0, 1.0)]
    assert built == Counter({"neuro_lesion_unet_demo": 1})
    assert all(m.same_geometry(flair) and m.array.dtype == np.uint8 for m in masks)


def test_facts_given_are_not_judged_again(flair_files, ivgc_files, monkeypatch, tmp_path, capsys):
    """A caller that judged the scan passes its facts: neither predictor judges it again, and result.json carries them."""
    facts = {"flair": scan_facts(*_read(flair_files["flair"])), "ivgc": scan_facts(*_read(ivgc_files["image"]))}

    def judged_again(*args, **kwargs):
        raise AssertionError("the scan was judged again")

    monkeypatch.setattr(predictor, "scan_facts", judged_again)       # the skeleton's judge
    monkeypatch.setattr(neuro_predict, "scan_facts", judged_again)
    monkeypatch.setattr(ivgc_predict, "scan_facts", judged_again)
    NeuroPredictor(device="cpu").predict(flair_files, tmp_path / "n", {"classify": False}, facts=facts["flair"])
    IvgcPredictor(device="cpu").predict(ivgc_files, tmp_path / "i", {}, facts=facts["ivgc"])
    assert _result(tmp_path / "n")["scan"] == facts["flair"].to_json()
    assert _result(tmp_path / "i")["scan"] == facts["ivgc"].to_json()
    capsys.readouterr()


def _read(path: Path):
    from orbitai.io import read_scan

    vol, acquisition = read_scan(path)
    return vol, acquisition.tags, path


def test_ivgc_model_loaded_once_and_clinical_from_a_file_or_values(ivgc_files, monkeypatch, tmp_path, capsys):
    """Two cases by one IVGC predictor load its model once; the clinical values given as the --clinical file or as
    a dict (a cohort's) give the same result."""
    loads: list[str] = []
    real = ivgc_predictor.load_ivgc_model

    def counting(model, device):
        loads.append(str(model))
        return real(model, device)

    monkeypatch.setattr(ivgc_predictor, "load_ivgc_model", counting)
    clinical = {"age_years": 50.0, "cas_score": 4.0}
    (tmp_path / "clinical.json").write_text(json.dumps(clinical))
    predictor = IvgcPredictor("svm", "cpu")
    predictor.predict({**ivgc_files, "clinical": str(tmp_path / "clinical.json")}, tmp_path / "file", {})
    predictor.predict({**ivgc_files, "clinical": clinical}, tmp_path / "values", {})
    assert loads == ["svm"]
    file, values = _result(tmp_path / "file"), _result(tmp_path / "values")
    assert {k: v for k, v in file.items() if k != "seconds"} == {k: v for k, v in values.items() if k != "seconds"}
    assert file["predictor"] == "orbitai.ivgc.predictor.IvgcPredictor"
    assert capsys.readouterr().out == ""      # printing is the command line's (issue 82)
