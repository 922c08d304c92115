"""NeuroDifferential training: configurations, recipe, CV with mean +- SD, lesion-table baseline, a
real (tiny) training of a two-view network, phantom input caching."""
from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from orbitai.classify.train import TrainSettings
from orbitai.errors import ConfigError, InputError
from orbitai.neuro.configs import ARCHITECTURES, CONFIGS, get_config
from orbitai.neuro.train import (LOCATIONS, PHANTOM_KIND_LOCATION, cross_validate, evaluate, feature_matrix,
                                 lesion_features, logistic_baseline, oracle_features, phantom_arrays,
                                 phantom_lesion_summary, predict, settings_for, train_model)


def test_configs_paper_and_demo_per_architecture():
    assert set(CONFIGS) == {n for a in ARCHITECTURES for n in (a, f"{a}-demo")}
    for a in ARCHITECTURES:
        p, d = get_config(a), get_config(f"{a}-demo")
        assert (p.optimizer, p.lr, p.lr_step, p.lr_gamma, p.lr_step_unit) == ("sgd", 0.01, 10, 0.9, "epoch")
        assert p.input_mode == "lesion_mask" and p.size == 100 and d.demo and not p.demo
        assert p.architecture == d.architecture == a
        if a.startswith("twoview"):
            assert p.kwargs["dropout"] == 0.15 and p.imagenet and p.kwargs["depth"] == int(a[-2:])
    assert get_config("twoview18", epochs=3).epochs == 3
    with pytest.raises(ConfigError):
        get_config("vgg16")
    with pytest.raises(ConfigError):
        get_config("twoview18", colour="red")


def test_settings_follow_the_paper_when_the_trainer_can():
    s, recipe = settings_for(get_config("twoview18"), epochs=30)
    assert s.epochs == 30 and s.batch_size == 8
    if {"optimizer", "lr_step", "lr_gamma", "momentum"} <= {f.name for f in fields(TrainSettings)}:
        assert recipe.startswith("SGD") and vars(s)["optimizer"] == "sgd" and s.lr == 0.01
    else:
        assert recipe.startswith("Adam") and "SGD lr 0.01" in recipe and s.lr == 1e-3


def test_cross_validation_folds_repeats_and_mean_sd():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 15)
    x = np.c_[y * 2.0 + rng.normal(0, 0.6, 30), rng.normal(0, 1, 30)]
    seen = []

    def fit_predict(tr, te):
        seen.append(te)
        return logistic_baseline(x[tr], y[tr]).predict_proba(x[te])[:, 1]

    cv = cross_validate(fit_predict, y, folds=5, repeats=3, seed=1)
    assert len(cv["per_fold"]) == 15 and len(seen) == 15
    for r in range(3):     # each repeat tests every case exactly once, stratified
        te = np.concatenate(seen[5 * r:5 * r + 5])
        assert sorted(te.tolist()) == list(range(30))
        assert all(y[s].sum() == 3 for s in seen[5 * r:5 * r + 5])
    accs = np.array([f["accuracy"] for f in cv["per_fold"]])
    assert cv["mean"]["accuracy"] == pytest.approx(accs.mean()) and cv["sd"]["accuracy"] == pytest.approx(accs.std(ddof=1))
    assert cv["mean"]["accuracy"] > 0.8 and set(cv["mean"]) == {"accuracy", "sensitivity", "specificity", "auc"}
    with pytest.raises(InputError, match="cases per class"):
        cross_validate(fit_predict, np.array([0] * 10 + [1] * 3), folds=5, repeats=1)


def test_lesion_table_features_and_phantom_summary():
    summary = {"count": 4, "total_ml": 2.5, "percent_icv": 0.17, "icv_ml": 1450.0,
               "counts": {"periventricular": 3, "callosal": 1}, "volumes_ml": {"periventricular": 2.0, "callosal": 0.5}}
    f = lesion_features(summary)
    assert f["count"] == 4 and f["count_periventricular"] == 3 and f["count_juxtacortical"] == 0
    assert f["ml_callosal"] == 0.5 and f["percent_icv"] == 0.17 and len(f) == 3 + 2 * len(LOCATIONS)
    info = {"lesion_counts": {"periventricular": 5, "area_postrema": 1, "callosal_long": 3,
                              "third_ventricle_hypothalamus": 1}, "n_lesions": 10, "lesion_volume_ml": 1.2}
    s = phantom_lesion_summary(info)
    assert s["counts"] == {"periventricular": 6, "juxtacortical": 0, "infratentorial": 1, "deep_white_matter": 0,
                           "callosal": 3}
    assert sum(s["counts"].values()) == s["count"] == 10 and set(PHANTOM_KIND_LOCATION.values()) <= set(LOCATIONS)
    o = oracle_features(info, ["area_postrema", "juxtacortical"])
    assert o == {"kind_area_postrema": 1.0, "kind_juxtacortical": 0.0, "total_ml": 1.2}
    m, names = feature_matrix([o, {"total_ml": 3.0}])
    assert names == sorted(o) and m.shape == (2, 3) and m[1].tolist() == [0.0, 0.0, 3.0]


def test_train_a_two_view_network_and_evaluate(tmp_path):
    """One real epoch of the demo two-view network on 100^3 inputs; resumable work folder, probabilities."""
    rng = np.random.default_rng(0)
    x = np.zeros((6, 100, 100, 100), np.float32)
    y = np.array([0, 1, 0, 1, 0, 1])
    for i, lab in enumerate(y):
        z = 30 if lab else 70
        x[i, z - 4:z + 4, 45:55, 40 + i:50 + i] = 1
    x += rng.random(x.shape, dtype=np.float32) * 0.01
    model, summary = train_model(get_config("twoview18-demo", epochs=1), x, y, tmp_path / "w")
    assert summary["parameters"] == 1_063_906 and summary["n_train"] == 6 and summary["finished"]
    assert summary["init"]["pretrained"] is False and (tmp_path / "w" / "epochs.csv").exists()
    assert json.loads((tmp_path / "w" / "summary.json").read_text())["recipe"] == summary["recipe"]
    p = predict(model, x)
    assert p.shape == (6,) and np.all((p >= 0) & (p <= 1))
    m = evaluate(p, y)
    assert 0 <= m["accuracy"] <= 1 and m["n"] == 6
    with pytest.raises(InputError, match="Classifier inputs"):
        train_model(get_config("twoview18-demo", epochs=1), x[:, :50], y, tmp_path / "w2")


@pytest.mark.slow
def test_phantom_arrays_are_cached(tmp_path):
    d = phantom_arrays(123, 2, tmp_path)
    assert d["x"].shape == (2, 100, 100, 100) and sorted(d["y"].tolist()) == [0, 1]
    assert d["info"][0]["n_lesions"] > 0 and d["x"][0].max() > 0.5
    again = phantom_arrays(123, 2, tmp_path)
    np.testing.assert_array_equal(np.asarray(again["x"]), np.asarray(d["x"]))
    assert not list(tmp_path.glob("*.part"))
    # an atypical cohort is cached under its own name, beside the default one
    a = phantom_arrays(123, 2, tmp_path, atypical=1.0)
    assert all(i["atypical"] for i in a["info"]) and not any(i["atypical"] for i in d["info"])
    assert sorted(p.name for p in tmp_path.glob("*.npy")) == ["brain-flair_s123_n2_lesion_mask_100.npy",
                                                             "brain-flair_s123_n2_lesion_mask_100_atypical100.npy"]
