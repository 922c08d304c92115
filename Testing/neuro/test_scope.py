"""The NMOSD/MS classifier's scope (issue 51): lesions in a vascular-territory pattern are found on infarct phantoms
and on no MS or NMOSD phantom, and a call on them reads 'do not use'; every call states the scope."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.io import write_volume
from orbitai.neuro.anatomy import extract_brain
from orbitai.classify.trust import scope_message
from orbitai.neuro.predict import VASCULAR, predict_neuro
from orbitai.neuro.scope import SCOPE, TERRITORY_ML, territorial_lesions
from orbitai.phantoms.brain import TERRITORIES, brain_flair_case, infarct_flair_case


@pytest.mark.parametrize("seed", [7101, 7102])
def test_infarct_phantoms_show_lesions_in_a_vascular_territory_pattern(seed):
    case = infarct_flair_case(seed)
    assert set(case.info["territories"]) <= set(TERRITORIES)
    found = territorial_lesions(case.labels, extract_brain(case.image))
    assert found and all(f["volume_ml"] >= TERRITORY_ML for f in found), case.info


@pytest.mark.parametrize("disease, options", [("ms", {"heavy": 1.0}), ("ms", {"confluent": 1.0}), ("nmosd", {}),
                                              ("nmosd", {"atypical": 1.0})])
def test_demyelinating_lesions_are_not_read_as_territorial(disease, options):
    case = brain_flair_case(7200, disease, **options)
    assert territorial_lesions(case.labels, extract_brain(case.image)) == [], (disease, options)


def test_a_call_on_infarcts_says_do_not_use_and_every_call_states_its_scope(tmp_path):
    case = infarct_flair_case(7100)
    flair, lesions = write_volume(case.image, tmp_path / "flair.nrrd"), write_volume(case.labels, tmp_path / "les.nrrd")
    pred = predict_neuro(flair, lesions, heatmap=False)
    data = pred.data()
    assert data["applies"] and data["trust"].startswith(scope_message(VASCULAR)[:-len("): do not use")])
    assert data["scope"] == SCOPE
    assert any("vascular-territory pattern" in w for w in data["warnings"])
    ms = brain_flair_case(7300, "ms")
    write_volume(ms.image, tmp_path / "flair.nrrd"), write_volume(ms.labels, tmp_path / "les.nrrd")
    ok = predict_neuro(flair, lesions, heatmap=False).data()
    assert ok["scope"] == SCOPE and not any("vascular-territory" in w for w in ok["warnings"])
    assert np.isfinite(ok["probability_nmosd"])
